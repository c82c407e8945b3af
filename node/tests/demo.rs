//! `tollgate demo --exit`: starts, drives traffic, prints a consistent summary, stops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

#[test]
fn demo_runs_and_accounts_for_every_cdr() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "demo",
            "--seconds",
            "2",
            "--exit",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("CDRs: "))
        .unwrap_or_else(|| panic!("no CDR line in {stdout}"));
    // "CDRs: N ingested = R rated + D duplicates + S suspended (...)"
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (ingested, rated, duplicates, suspended) = (numbers[0], numbers[1], numbers[2], numbers[3]);
    assert!(ingested > 0 && rated > 0, "{line}");
    assert_eq!(ingested, rated + duplicates + suspended, "{line}");
    assert!(stdout.contains("sessions: "), "{stdout}");
    assert!(stdout.contains("p99"), "{stdout}");
    assert!(
        stdout.contains("customers: globex with 6 accounts"),
        "{stdout}"
    );
    // Last month's bill run over the embedded job queue: every payer billed, none failed.
    let run = stdout
        .lines()
        .find(|l| l.starts_with("bill run "))
        .unwrap_or_else(|| panic!("no bill run line in {stdout}"));
    assert!(run.contains(", 0 failed, state Finished"), "{run}");
    let payers: u64 = run
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(payers > 0, "{run}");
    assert!(run.contains(&format!("{payers} billed")), "{run}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("invoice INV-"))
            .count() as u64,
        payers,
        "{stdout}"
    );
    // The first invoice is paid by card token: the statement ends at zero.
    let paid = stdout
        .lines()
        .find(|l| l.starts_with("payment pay-"))
        .unwrap_or_else(|| panic!("no payment line in {stdout}"));
    assert!(
        paid.contains("by card token") && paid.contains("allocated to INV-"),
        "{paid}"
    );
    let statement: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("statement of"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert_eq!(statement.len(), 2, "invoice and payment: {stdout}");
    assert!(
        statement[1].contains(" payment ") && statement[1].trim_end().ends_with("balance     0.00"),
        "{stdout}"
    );
}
