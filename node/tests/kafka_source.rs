//! The Kafka source end to end, against a real Kafka-protocol broker (tansu) and an independent
//! producer (kafka-python): every record is accounted for exactly once (rated, suspended with its
//! reason and raw bytes, or found duplicate), balances equal the expected sums, the position is
//! stored with the effects (a restart reads nothing twice), and SIGKILL at several points in a
//! stream loses and double-counts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kafka::{Tansu, produce_with_kafka_python};
use support::{NodeFiles, get};

const TOPIC: &str = "cdr.raw";

fn subscribers(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[subscribers]]\nid = \"49301{i:05}\"\nproducts = [\"consumer\"]\ncurrency = \"EUR\"\n"
            )
        })
        .collect()
}

fn kafka_config(broker: &Tansu, batch: usize) -> String {
    format!(
        "[kafka]\nenabled = true\nbrokers = {:?}\ntopic = {TOPIC:?}\nbatch_len_max = {batch}\nbatch_wait_ms = 10\n",
        broker.brokers()
    )
}

fn sms(id: &str, subscriber: &str, start: &str) -> Vec<u8> {
    json!({ "id": id, "subscriber": subscriber, "service": "sms", "direction": "outbound",
            "callee": "4915112345", "start": start })
    .to_string()
    .into_bytes()
}

fn stats(node: &NodeFiles) -> Option<[u64; 5]> {
    let (status, body) = get(&node.url("/v1/mediation/stats"));
    if status != 200 {
        return None;
    }
    let s = body["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == "kafka:cdr.raw")?
        .clone();
    assert_eq!(s["balanced"], true, "{s}");
    Some(
        ["ingested", "rated", "suspended", "duplicates", "filtered"]
            .map(|k| s[k].as_u64().unwrap()),
    )
}

fn wait_ingested(node: &NodeFiles, n: u64) -> [u64; 5] {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(s) = stats(node)
            && s[0] >= n
        {
            return s;
        }
        if Instant::now() >= deadline {
            let log = node.stderr();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "ingested {:?} of {n} in time; node stderr (last lines, newest first):\n{}",
                stats(node),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn balance(node: &NodeFiles, id: &str) -> String {
    let (status, body) = get(&node.url(&format!("/v1/subscribers/{id}/balance")));
    assert_eq!(status, 200, "{body}");
    body["balance"]["amount"].as_str().unwrap().to_string()
}

#[test]
fn every_record_from_the_broker_is_rated_suspended_or_duplicate_exactly_once() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 4);
    let node = NodeFiles::new(&subscribers(2));
    node.append_config(&kafka_config(&broker, 100));
    let start = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let (a, b) = ("4930100000", "4930100001");
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..100 {
        records.push((a.into(), sms(&format!("a{i}"), a, &start)));
        records.push((b.into(), sms(&format!("b{i}"), b, &start)));
    }
    for i in 0..20 {
        records.push((a.into(), sms(&format!("a{i}"), a, &start))); // duplicates
    }
    for i in 0..10 {
        records.push(("4999".into(), sms(&format!("u{i}"), "4999000000", &start)));
    }
    for i in 0..5 {
        records.push((a.into(), format!("{{\"id\": \"broken{i}\", ").into_bytes()));
    }
    for _ in 0..3 {
        records.push((b.into(), vec![0xff, 0xfe, b'{', 0x80]));
    }
    for _ in 0..2 {
        records.push((b.into(), Vec::new()));
    }
    assert_eq!(records.len(), 240);
    produce_with_kafka_python(&broker.brokers(), TOPIC, &records);

    let mut process = node.start();
    let counts = wait_ingested(&node, 240);
    assert_eq!(
        counts,
        [240, 200, 20, 20, 0],
        "ingested, rated, suspended, duplicates, filtered"
    );
    // 100 SMS at 0.09 each, charged once.
    assert_eq!(balance(&node, a), "-9.0000");
    assert_eq!(balance(&node, b), "-9.0000");
    // Suspense: every bad record with its reason, its raw bytes and its offset as id.
    let (_, page) = get(&node.url("/v1/suspense?source=kafka:cdr.raw&limit=100"));
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 20, "{page}");
    let count = |reason: &str| items.iter().filter(|i| i["reason"] == reason).count();
    assert_eq!(count("rating.unknown_subscriber"), 10);
    assert_eq!(count("cdr.bad_encoding"), 3);
    assert_eq!(count("cdr.empty"), 2);
    assert_eq!(items.len() - 15, 5, "the rest are the malformed ones");
    assert!(
        items
            .iter()
            .all(|i| i["id"].as_str().unwrap().starts_with("kafka:cdr.raw/"))
    );
    let binary: Vec<&Value> = items
        .iter()
        .filter(|i| i["reason"] == "cdr.bad_encoding")
        .collect();
    assert_eq!(binary[0]["raw_hex"], "fffe7b80");

    // Metrics: the durable counters and the lag.
    let metrics = ureq::get(&node.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(
            "tollgate_mediation_records{outcome=\"ingested\",source=\"kafka:cdr.raw\"} 240"
        ),
        "{metrics}"
    );
    // The source counts a batch when it sees it durable, just after the ingest counters moved.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut metrics = metrics;
    while !metrics.contains("tollgate_kafka_records_total{topic=\"cdr.raw\"} 240") {
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
        metrics = ureq::get(&node.url("/metrics"))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
    }
    while !metrics_lag_zero(&node) {
        assert!(Instant::now() < deadline, "consumer lag never reached 0");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A restart resumes from the stored positions: nothing is read twice; new records count.
    support::terminate(&mut process);
    let _process = node.start();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stats(&node).unwrap(), [240, 200, 20, 20, 0]);
    let more: Vec<(String, Vec<u8>)> = (100..110)
        .map(|i| (a.to_string(), sms(&format!("a{i}"), a, &start)))
        .collect();
    produce_with_kafka_python(&broker.brokers(), TOPIC, &more);
    assert_eq!(wait_ingested(&node, 250), [250, 210, 20, 20, 0]);
    assert_eq!(balance(&node, a), "-9.9000");
}

fn metrics_lag_zero(node: &NodeFiles) -> bool {
    let metrics = ureq::get(&node.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let lags: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tollgate_kafka_consumer_lag{"))
        .collect();
    lags.len() == 4 && lags.iter().all(|l| l.ends_with(" 0"))
}

#[test]
fn sigkill_mid_stream_loses_and_double_counts_nothing() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 4);
    let subscribers_n = 30;
    let per = 100;
    let node = NodeFiles::new(&subscribers(subscribers_n));
    // Small batches: many durable writes, so the kills land between and inside them.
    node.append_config(&kafka_config(&broker, 25));
    let start = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..per {
        for s in 0..subscribers_n {
            let id = format!("49301{s:05}");
            records.push((id.clone(), sms(&format!("k{i}"), &id, &start)));
        }
    }
    let total = records.len() as u64;
    produce_with_kafka_python(&broker.brokers(), TOPIC, &records);

    let seed: u64 = std::env::var("TOLLGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| jiff::Timestamp::now().as_millisecond() as u64);
    eprintln!("crash seed {seed} (TOLLGATE_CRASH_SEED={seed} replays the kill points)");
    let mut rng = seed;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let mut kills = 0;
    for round in 0..3u64 {
        let mut process = node.start();
        // Kill somewhere in this third of the stream.
        let target = total * round / 3 + 1 + next(total / 3 - 1);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ingested = stats(&node).map_or(0, |s| s[0]);
            if ingested >= target {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "stuck at {ingested} before kill {round}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let at = stats(&node).map_or(0, |s| s[0]);
        let _ = process.0.kill();
        let _ = process.wait();
        eprintln!("kill {round}: at {at} of {total}");
        if at < total {
            kills += 1;
        }
    }
    assert!(kills >= 2, "at least two kills landed mid-stream");
    let _process = node.start();
    let counts = wait_ingested(&node, total);
    assert_eq!(
        counts,
        [total, total, 0, 0, 0],
        "exactly once, after {kills} SIGKILLs"
    );
    for s in 0..subscribers_n {
        assert_eq!(
            balance(&node, &format!("49301{s:05}")),
            "-9.0000",
            "subscriber {s}"
        );
    }
}
