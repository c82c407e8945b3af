//! The file drop source on a real node: CSV and JSON-lines files dropped in `incoming/` end in
//! `done/` with exact reports and counters (source `files`), other files in `failed/` with a
//! reason and nothing counted; a node killed in the middle of a big file resumes it from the
//! stored position after a restart (clean stop or SIGKILL), so every line is ingested exactly
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, counts, get, stats};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"
"#;

fn drop_dir(node: &NodeFiles) -> PathBuf {
    node.dir.path().join("drop")
}

fn enable_files(node: &NodeFiles) {
    node.append_config(&format!(
        "[files]\nenabled = true\ndir = {:?}\npoll_interval_ms = 50\nbatch_len_max = 50\n",
        drop_dir(node).display().to_string()
    ));
}

/// Drops a file the way a mediation system should: written elsewhere, renamed in.
fn drop_file(node: &NodeFiles, name: &str, bytes: &[u8]) {
    let staging = node.dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let tmp = staging.join(name);
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, drop_dir(node).join("incoming").join(name)).unwrap();
}

fn stderr(node: &NodeFiles) -> String {
    std::fs::read_to_string(node.dir.path().join("node.stderr.log")).unwrap_or_default()
}

/// Waits until `path` exists.
fn wait_for(node: &NodeFiles, path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear; node log:\n{}",
            path.display(),
            stderr(node)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn report_counts(r: &Value) -> [u64; 6] {
    [
        "lines",
        "rated",
        "duplicates",
        "suspended",
        "filtered",
        "unresolved",
    ]
    .map(|k| r[k].as_u64().unwrap())
}

fn metrics(node: &NodeFiles) -> String {
    ureq::get(&node.url("/metrics"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

fn hour_ago() -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string()
}

fn jsonl(id: &str, subscriber: &str, service: &str, start: &str) -> String {
    json!({ "id": id, "subscriber": subscriber, "service": service,
            "direction": "outbound", "callee": "4915112345", "start": start })
    .to_string()
}

#[test]
fn csv_and_json_lines_files_end_in_done_with_exact_reports() {
    let node = NodeFiles::new(SUBSCRIBERS);
    enable_files(&node);
    let _process = node.start();
    let dir = drop_dir(&node);
    for sub in ["incoming", "done", "failed"] {
        assert!(dir.join(sub).is_dir(), "{sub}/ is created on start");
    }
    let start = hour_ago();

    // Files being written and hidden files are left alone.
    std::fs::write(dir.join("incoming/late.csv.part"), b"id,subscriber\n").unwrap();
    std::fs::write(dir.join("incoming/.hidden.jsonl"), b"{}\n").unwrap();

    // CSV (CRLF line ends): line 1 is the header; 2 rated, 1 duplicate, 1 bad timestamp,
    // 1 unknown subscriber, a blank line (not a record), 1 invalid UTF-8.
    let mut csv = Vec::new();
    csv.extend_from_slice(b"id,subscriber,service,direction,callee,start\r\n");
    csv.extend_from_slice(format!("c1,4930111111,sms,outbound,4915112345,{start}\r\n").as_bytes());
    csv.extend_from_slice(format!("c2,4930111111,sms,outbound,4915112345,{start}\r\n").as_bytes());
    csv.extend_from_slice(format!("c1,4930111111,sms,outbound,4915112345,{start}\r\n").as_bytes());
    csv.extend_from_slice(b"c3,4930111111,sms,outbound,4915112345,yesterday\r\n");
    csv.extend_from_slice(format!("c4,4999999999,sms,outbound,4915112345,{start}\r\n").as_bytes());
    csv.extend_from_slice(b"\r\n");
    csv.extend_from_slice(b"c5,4930111111,sms,outbound,49151\xff12345,");
    csv.extend_from_slice(start.as_bytes());
    // (no line end on the last line)

    // JSON lines: 3 rated, a duplicate within the file and one of the CSV file's records,
    // an unknown service, a broken line.
    let json_lines = [
        jsonl("j1", "4930111111", "sms", &start),
        jsonl("j2", "4930111111", "sms", &start),
        jsonl("j1", "4930111111", "sms", &start),
        jsonl("c1", "4930111111", "sms", &start),
        jsonl("j3", "4930111111", "sms", &start),
        jsonl("j4", "4930111111", "mms", &start),
        r#"{"id": "j5", "subscriber": "4930111111""#.to_string(),
    ];
    let began = Instant::now();
    // a.csv is renamed in first: every scan that sees b.jsonl sees a.csv before it.
    drop_file(&node, "a.csv", &csv);
    drop_file(&node, "b.jsonl", (json_lines.join("\n") + "\n").as_bytes());
    drop_file(&node, "c.xml", b"<cdrs/>");

    wait_for(&node, &dir.join("done/b.jsonl"), Duration::from_secs(30));
    wait_for(&node, &dir.join("failed/c.xml"), Duration::from_secs(30));
    eprintln!("three files taken in {:?}", began.elapsed());
    assert!(dir.join("done/a.csv").exists());
    for name in ["a.csv", "b.jsonl", "c.xml"] {
        assert!(!dir.join("incoming").join(name).exists(), "{name} moved");
    }
    assert!(dir.join("incoming/late.csv.part").exists());
    assert!(dir.join("incoming/.hidden.jsonl").exists());

    // Reports.
    let a = read_json(&dir.join("done/a.csv.report.json"));
    assert_eq!(a["file"], "a.csv", "{a}");
    assert_eq!(a["format"], "csv", "{a}");
    assert_eq!(report_counts(&a), [6, 2, 1, 3, 0, 0], "{a}");
    assert_eq!(
        a["reasons"],
        json!({ "cdr.bad_timestamp": 1, "rating.unknown_subscriber": 1, "cdr.bad_encoding": 1 }),
        "{a}"
    );
    let at = |k: &str| a[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert!(at("started_at") <= at("finished_at"), "{a}");
    assert_eq!(a["resumed"], 0);
    let b = read_json(&dir.join("done/b.jsonl.report.json"));
    assert_eq!(report_counts(&b), [7, 3, 2, 2, 0, 0], "{b}");
    assert_eq!(b["reasons"]["rating.unknown_service"], 1, "{b}");
    assert_eq!(b["reasons"]["cdr.malformed"], 1, "{b}");
    let c = read_json(&dir.join("failed/c.xml.report.json"));
    assert_eq!(c["reason"], "files.unsupported_format", "{c}");
    assert_eq!(c["ingested"], 0, "{c}");
    assert!(c["message"].as_str().unwrap().contains(".csv"), "{c}");

    // One source "files" with exact counters: 13 records.
    let s = stats(&node, "files");
    assert_eq!(counts(&s), [13, 5, 5, 3, 0], "{s}");
    assert_eq!(s["balanced"], true, "{s}");

    // Suspended lines keep their file and line number (the CSV header is line 1).
    let (status, record) = get(&node.url("/v1/suspense/record?id=files/a.csv/8"));
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["reason"], "cdr.bad_encoding", "{record}");
    assert_eq!(record["source"], "files", "{record}");
    let (_, record) = get(&node.url("/v1/suspense/record?id=files/a.csv/6"));
    assert_eq!(record["reason"], "rating.unknown_subscriber", "{record}");
    let (_, record) = get(&node.url("/v1/suspense/record?id=files/b.jsonl/7"));
    assert_eq!(record["reason"], "cdr.malformed", "{record}");

    // Charged 5 SMS at 0.09 EUR, once each.
    let (_, balance) = get(&node.url("/v1/subscribers/4930111111/balance"));
    assert_eq!(balance["balance"]["amount"], "-0.4500", "{balance}");
    assert_eq!(balance["entries"], 5, "{balance}");

    // A file name used again is refused, nothing of it counted.
    drop_file(
        &node,
        "a.csv",
        format!("id,subscriber,service,direction,callee,start\nc9,4930111111,sms,outbound,4915112345,{start}\n")
            .as_bytes(),
    );
    wait_for(&node, &dir.join("failed/a.csv"), Duration::from_secs(30));
    let again = read_json(&dir.join("failed/a.csv.report.json"));
    assert_eq!(again["reason"], "files.already_processed", "{again}");
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .starts_with("file name already processed"),
        "{again}"
    );
    // A CSV header that does not fit the mapping fails the file before anything is read.
    drop_file(&node, "d.csv", b"foo,bar\n1,2\n");
    wait_for(&node, &dir.join("failed/d.csv"), Duration::from_secs(30));
    assert_eq!(
        read_json(&dir.join("failed/d.csv.report.json"))["reason"],
        "files.bad_header"
    );
    // Empty files are done with nothing in them.
    drop_file(&node, "e.csv", b"");
    drop_file(&node, "f.ndjson", b"\n\n");
    wait_for(&node, &dir.join("done/f.ndjson"), Duration::from_secs(30));
    wait_for(&node, &dir.join("done/e.csv"), Duration::from_secs(30));
    for name in ["e.csv", "f.ndjson"] {
        let r = read_json(&dir.join(format!("done/{name}.report.json")));
        assert_eq!(report_counts(&r), [0; 6], "{r}");
    }
    assert_eq!(counts(&stats(&node, "files")), [13, 5, 5, 3, 0]);

    // The file counters move just after a file reaches done/ or failed/ (after the directory
    // fsyncs): seeing the file does not mean its count is already there.
    let deadline = Instant::now() + Duration::from_secs(10);
    for line in [
        "tollgate_files_total{outcome=\"done\"} 4",
        "tollgate_files_total{outcome=\"failed\"} 3",
        "tollgate_files_lines_total 13",
        "tollgate_mediation_records{outcome=\"ingested\",source=\"files\"} 13",
    ] {
        loop {
            let text = metrics(&node);
            if text.contains(line) {
                break;
            }
            assert!(Instant::now() < deadline, "{line} in\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_node_killed_mid_file_resumes_it_and_ingests_every_line_once() {
    const TOTAL: u64 = 6000;
    let node = NodeFiles::new(SUBSCRIBERS);
    enable_files(&node);
    let mut process = node.start();
    let dir = drop_dir(&node);
    let start = hour_ago();
    let mut body = String::from("id,subscriber,service,direction,callee,start\n");
    for i in 0..TOTAL {
        body.push_str(&format!(
            "big-{i},4930111111,sms,outbound,4915112345,{start}\n"
        ));
    }
    let began = Instant::now();
    drop_file(&node, "big.csv", body.as_bytes());

    // Stop the node (SIGTERM) once part of the file is durable, start it again, then kill it
    // (SIGKILL) further on.
    let ingested_at_least = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ingested = stats(&node, "files")["ingested"].as_u64().unwrap_or(0);
            if ingested >= n {
                return ingested;
            }
            assert!(Instant::now() < deadline, "no progress: {}", stderr(&node));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let at_stop = ingested_at_least(300);
    let status = support::terminate(&mut process);
    assert!(status.success(), "{status}");
    eprintln!(
        "stopped after {:?} with {at_stop}+ of {TOTAL} lines ingested",
        began.elapsed()
    );
    assert!(
        dir.join("incoming/big.csv").exists(),
        "the node stopped before the end of the file (raise TOTAL if this fails)"
    );
    let mut process = node.start();
    // Killed only once this run has made some lines durable itself (the stop above may land
    // well after 300 lines: a fixed mark could be passed already, and the kill would then hit
    // a run that had not resumed the file yet).
    let durable_at_start = ingested_at_least(at_stop);
    let at_kill = ingested_at_least(durable_at_start + 300);
    process.0.kill().unwrap();
    process.wait().unwrap();
    eprintln!(
        "killed after {:?} with {at_kill}+ of {TOTAL} lines ingested",
        began.elapsed()
    );
    assert!(
        dir.join("incoming/big.csv").exists(),
        "the node was killed before the end of the file (raise TOTAL if this fails)"
    );
    assert!(!dir.join("done/big.csv").exists());

    // Restart: the file resumes from its stored position and completes.
    let restarted = Instant::now();
    let _process = node.start();
    wait_for(&node, &dir.join("done/big.csv"), Duration::from_secs(60));
    eprintln!("finished {:?} after the restart", restarted.elapsed());
    let s = stats(&node, "files");
    assert_eq!(counts(&s), [TOTAL, TOTAL, 0, 0, 0], "{s}");
    let report = read_json(&dir.join("done/big.csv.report.json"));
    let r = report_counts(&report);
    assert_eq!(r[0], TOTAL, "{report}");
    assert_eq!(r[1] + r[5], TOTAL, "rated + unresolved: {report}");
    assert_eq!((r[2], r[3], r[4]), (0, 0, 0), "{report}");
    assert_eq!(report["resumed"], 2, "{report}");
    eprintln!("report: {report}");
    let (_, balance) = get(&node.url("/v1/subscribers/4930111111/balance"));
    assert_eq!(balance["balance"]["amount"], "-540.0000", "{balance}");
    assert_eq!(balance["entries"], TOTAL, "{balance}");
    assert!(
        !dir.join(".progress/big.csv.json").exists(),
        "progress is removed once the file is done"
    );
}
