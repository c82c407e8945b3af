//! `tollgate rate` and `tollgate check-catalogue` on the shipped examples: the documented
//! totals (docs/examples.md), every record in exactly one output, problems listed.

// Test code: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .expect("run tollgate")
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Hand-computed charges of examples/cdrs.csv (see docs/examples.md for the working).
const EXPECTED: [(&str, &str, &str); 13] = [
    ("c001", "0.0000", "EUR"),  // 125 s -> 180 s, all from the 100 free minutes
    ("c002", "0.4800", "EUR"),  // 120 s peak x 0.12/min + 180 s offpeak x 0.08/min
    ("c003", "0.2150", "EUR"),  // 61 s at 30/6 -> 66 s x 0.15/min = 0.165 + 0.05 connection
    ("c004", "0.5000", "EUR"),  // 20 s x 0.60/min = 0.20, raised to the 0.50 minimum
    ("c005", "0.0900", "EUR"),  // one SMS
    ("c006", "0.0500", "EUR"),  // 2.5 MB x 0.02/MB
    ("c007", "0.4275", "EUR"),  // band at start: 300 s x 0.09/min = 0.45, gold -5%
    ("c008", "0.0570", "EUR"),  // trunk carrier-b: 90 s x 0.04/min = 0.06, gold -5%
    ("c009", "0.0713", "EUR"),  // 4 MB x 0.015 x 1.25 premium = 0.075, -5% = 0.07125 half-up
    ("c010", "3.0000", "RUB"),  // 8-800 from Moscow: 120 s x 1.50/min
    ("c011", "5.0000", "RUB"),  // 8-800 from Novosibirsk: 120 s x 2.50/min
    ("c012", "16.7000", "RUB"), // IVR 0.20 + shared agent 240 s x 4.00/min + post 0.50
    ("c013", "0.3000", "RUB"),  // IVR included, dedicated agent included, combination fee
];

const EXPECTED_SUSPENSE: [(u64, &str); 6] = [
    (14, "rating.unknown_subscriber"),
    (15, "cdr.bad_number"),
    (16, "cdr.bad_timestamp"),
    (17, "cdr.duplicate"),
    (18, "rating.unknown_service"),
    (19, "cdr.missing_field"),
];

fn rate_example(file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rated.jsonl");
    let suspense = dir.path().join("suspense.jsonl");
    let ex = examples();
    let output = tollgate(&[
        "rate",
        "--catalogue",
        ex.join("catalogue.toml").to_str().unwrap(),
        "--cdrs",
        ex.join(file).to_str().unwrap(),
        "--subscribers",
        ex.join("subscribers.toml").to_str().unwrap(),
        "--mapping",
        ex.join("mapping.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--suspense",
        suspense.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "records=19 rated=13 suspended=6 (cdr.bad_number=1, cdr.bad_timestamp=1, cdr.duplicate=1, \
         cdr.missing_field=1, rating.unknown_service=1, rating.unknown_subscriber=1) total: EUR 1.8908, RUB 25.0000"
    );

    let rated = lines(&out);
    let suspended = lines(&suspense);
    // Every input record is in exactly one output.
    let input_records = std::fs::read_to_string(ex.join(file))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("c") || l.starts_with('{'))
        .count();
    assert_eq!(input_records, 19);
    assert_eq!(rated.len() + suspended.len(), input_records);
    let numbers: BTreeSet<u64> = rated
        .iter()
        .chain(&suspended)
        .map(|v| v["record"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=19).collect::<BTreeSet<u64>>());

    let charges: BTreeMap<String, (String, String)> = rated
        .iter()
        .map(|v| {
            (
                v["cdr_id"].as_str().unwrap().to_string(),
                (
                    v["charge"]["amount"].as_str().unwrap().to_string(),
                    v["charge"]["currency"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    for (id, amount, currency) in EXPECTED {
        assert_eq!(
            charges.get(id),
            Some(&(amount.to_string(), currency.to_string())),
            "{id}"
        );
    }
    for v in &rated {
        assert!(
            v["explanation_text"]
                .as_str()
                .unwrap()
                .contains("rounded half-up to 4 dp")
        );
    }
    let reasons: Vec<(u64, String)> = suspended
        .iter()
        .map(|v| {
            (
                v["record"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = EXPECTED_SUSPENSE
        .iter()
        .map(|(n, r)| (*n, r.to_string()))
        .collect();
    assert_eq!(reasons, expected);
    for v in &suspended {
        assert!(
            !v["raw"].as_str().unwrap().is_empty(),
            "suspense keeps the raw record: {v}"
        );
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    // Partner shares: 10% of the SMS; 0.002 per started minute for carrier-b.
    let share = |id: &str| {
        rated.iter().find(|v| v["cdr_id"] == id).unwrap()["partner_shares"][0]["amount"]["amount"]
            .clone()
    };
    assert_eq!(share("c005"), "0.0090");
    assert_eq!(share("c007"), "0.0100");
    assert_eq!(share("c008"), "0.0030");
}

#[test]
fn rates_the_csv_example_to_the_documented_totals() {
    rate_example("cdrs.csv");
}

#[test]
fn rates_the_json_lines_example_to_the_same_totals() {
    rate_example("cdrs.jsonl");
}

#[test]
fn check_catalogue_accepts_the_example_and_lists_every_problem_of_a_broken_one() {
    let ok = tollgate(&[
        "check-catalogue",
        examples().join("catalogue.toml").to_str().unwrap(),
    ]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("40 prefixes"));

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(examples().join("catalogue.toml"))
        .unwrap()
        .replace("file = \"prefixes.csv\"", "file = \"missing.csv\"")
        .replace("increments = \"30/6\"", "increments = \"30/0\"")
        .replace("currency = \"RUB\"", "currency = \"RUR\"");
    std::fs::write(&broken, text).unwrap();
    let out = tollgate(&["check-catalogue", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("destinations[0].file: cannot read \"missing.csv\""),
        "{stdout}"
    );
    assert!(stdout.contains("plans[0].rules[2].increments"), "{stdout}");
    assert!(
        stdout.contains("plans[2].currency: unknown currency code \"RUR\""),
        "{stdout}"
    );
    assert!(stdout.contains("4 problem(s) found"), "{stdout}");

    // Nothing is rated with a broken catalogue.
    let out_file = dir.path().join("rated.jsonl");
    let ex = examples();
    let run = tollgate(&[
        "rate",
        "--catalogue",
        broken.to_str().unwrap(),
        "--cdrs",
        ex.join("cdrs.csv").to_str().unwrap(),
        "--subscribers",
        ex.join("subscribers.toml").to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--suspense",
        dir.path().join("s.jsonl").to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("nothing was rated"));
    assert!(!out_file.exists());
}

#[test]
fn a_malformed_line_is_suspended_and_the_rest_still_rated() {
    let dir = tempfile::tempdir().unwrap();
    let cdrs = dir.path().join("cdrs.csv");
    std::fs::write(
        &cdrs,
        b"id,subscriber,service,direction,caller,callee,start,units\n\
          m1,4930111111,sms,outbound,,,2026-03-02T10:00:00Z,\n\
          m2,4930111111,sms,outbound\n\
          m3,4930111111,sms,outbound,,,2026-03-02T10:00:00Z,\xff\xfe\n\
          m4,4930111111,sms,outbound,,,2026-03-02T10:00:00Z,1\n"
            .as_slice(),
    )
    .unwrap();
    let ex = examples();
    let out = dir.path().join("rated.jsonl");
    let suspense = dir.path().join("suspense.jsonl");
    let run = tollgate(&[
        "rate",
        "--catalogue",
        ex.join("catalogue.toml").to_str().unwrap(),
        "--cdrs",
        cdrs.to_str().unwrap(),
        "--subscribers",
        ex.join("subscribers.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--suspense",
        suspense.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(lines(&out).len(), 2);
    let s = lines(&suspense);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["reason"], "cdr.malformed");
    assert_eq!(s[1]["reason"], "cdr.malformed");
    assert!(s[1]["message"].as_str().unwrap().contains("UTF-8"));
}
