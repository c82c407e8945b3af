//! Rated output end to end, against a real Kafka-protocol broker (tansu), read back with an
//! independent consumer (kafka-python): every rated record appears on `cdr.rated` and every
//! suspended one on `cdr.suspense` with its reason, from the Kafka source and from HTTP alike;
//! duplicates publish nothing. While the output brokers are unreachable the outbox fills up to
//! its limit and ingestion waits (backpressure); after a SIGKILL and a restart with reachable
//! brokers, every pending message arrives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::json;
use support::kafka::{Consumed, Tansu, consume_with_kafka_python, produce_with_kafka_python};
use support::{NodeFiles, counts, get, post};

const RAW: &str = "cdr.raw";
const RATED: &str = "cdr.rated";
const SUSPENSE: &str = "cdr.suspense";

fn subscribers(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[subscribers]]\nid = \"49301{i:05}\"\nproducts = [\"consumer\"]\ncurrency = \"EUR\"\n"
            )
        })
        .collect()
}

fn sms(id: &str, subscriber: &str, start: &str) -> Vec<u8> {
    json!({ "id": id, "subscriber": subscriber, "service": "sms", "direction": "outbound",
            "callee": "4915112345", "start": start })
    .to_string()
    .into_bytes()
}

fn broker_with_topics() -> Tansu {
    let broker = Tansu::start();
    broker.create_topic(RAW, 4);
    broker.create_topic(RATED, 4);
    broker.create_topic(SUSPENSE, 2);
    broker
}

fn kafka_stats(node: &NodeFiles) -> Option<[u64; 5]> {
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
    Some(counts(&s))
}

fn metrics(node: &NodeFiles) -> String {
    ureq::get(&node.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

/// The value of the metric line starting with `name` (its labels included), if present.
fn metric(node: &NodeFiles, name: &str) -> Option<u64> {
    metrics(node)
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn wait_until(node: &NodeFiles, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        if Instant::now() >= deadline {
            let log = node.stderr();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "{what}: not in time; node stderr (newest first):\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Messages by id (`cdr_id` on the rated topic, `record_id` on the suspense topic), with how
/// many times each arrived.
fn by_id(messages: &[Consumed], field: &str) -> BTreeMap<String, Vec<Consumed>> {
    let mut all: BTreeMap<String, Vec<Consumed>> = BTreeMap::new();
    for m in messages {
        let id = m.value[field].as_str().unwrap().to_string();
        all.entry(id).or_default().push(m.clone());
    }
    all
}

#[test]
fn rated_and_suspended_records_reach_their_topics_exactly_once() {
    let broker = broker_with_topics();
    let node = NodeFiles::new(&subscribers(2));
    node.append_config(&format!(
        "[kafka]\nenabled = true\nbrokers = {:?}\nbatch_len_max = 50\nbatch_wait_ms = 10\n\
         output_enabled = true\n",
        broker.brokers()
    ));
    let start = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let (a, b) = ("4930100000", "4930100001");
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..50 {
        records.push((a.into(), sms(&format!("a{i}"), a, &start)));
        records.push((b.into(), sms(&format!("b{i}"), b, &start)));
    }
    for i in 0..10 {
        records.push((a.into(), sms(&format!("a{i}"), a, &start))); // duplicates
    }
    for i in 0..5 {
        records.push(("4999".into(), sms(&format!("u{i}"), "4999000000", &start)));
    }
    for i in 0..3 {
        records.push((a.into(), format!("{{\"id\": \"broken{i}\", ").into_bytes()));
    }
    for _ in 0..2 {
        records.push((b.into(), vec![0xff, 0xfe, b'{', 0x80]));
    }
    assert_eq!(records.len(), 120);
    produce_with_kafka_python(&broker.brokers(), RAW, &records);

    let _process = node.start();
    wait_until(&node, "120 records ingested", || {
        kafka_stats(&node).is_some_and(|s| s[0] >= 120)
    });
    assert_eq!(kafka_stats(&node).unwrap(), [120, 100, 10, 10, 0]);
    // HTTP records are published too: one rated, one duplicate (nothing), one suspended.
    let (status, body) = post(
        &node.url("/v1/cdrs"),
        json!([
            { "id": "h0", "subscriber": a, "service": "sms", "callee": "4915112345", "start": start },
            { "id": "h0", "subscriber": a, "service": "sms", "callee": "4915112345", "start": start },
            { "id": "h1", "subscriber": "4999000001", "service": "sms", "start": start }
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["rated"].as_u64(), body["duplicates"].as_u64()),
        (Some(1), Some(1))
    );

    // Everything published: the outbox is empty and the counters say how many went where.
    wait_until(&node, "outbox drained", || {
        metric(
            &node,
            "tollgate_kafka_output_records_total{topic=\"cdr.rated\"}",
        ) == Some(101)
            && metric(
                &node,
                "tollgate_kafka_output_records_total{topic=\"cdr.suspense\"}",
            ) == Some(11)
            && metric(&node, "tollgate_kafka_outbox_rows") == Some(0)
    });

    // cdr.rated: exactly the rated records, once each, keyed by subscriber, each subscriber in
    // one partition, with charge, currency, source and record id.
    let rated = consume_with_kafka_python(&broker.brokers(), RATED);
    let ids = by_id(&rated, "cdr_id");
    let mut expected: BTreeSet<String> = (0..50)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    expected.insert("h0".into());
    assert_eq!(ids.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(rated.len(), 101, "no broker restart: each exactly once");
    let mut partitions: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for m in &rated {
        let v = &m.value;
        assert_eq!(v["kind"], "rated");
        assert_eq!(m.key, v["subscriber"].as_str().unwrap());
        assert_eq!(
            Decimal::from_str(v["charge"].as_str().unwrap()).unwrap(),
            Decimal::new(9, 2),
            "{v}"
        );
        assert_eq!(v["currency"], "EUR");
        assert!(v["catalogue_version"].as_u64().is_some(), "{v}");
        assert!(v["rated_at"].as_str().is_some(), "{v}");
        let id = v["cdr_id"].as_str().unwrap();
        if id == "h0" {
            assert_eq!(v["source"], "http");
        } else {
            assert_eq!(v["source"], "kafka:cdr.raw");
            assert!(
                v["record_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("kafka:cdr.raw/")
            );
        }
        partitions
            .entry(m.key.clone())
            .or_default()
            .insert(m.partition);
    }
    assert!(partitions.values().all(|p| p.len() == 1), "{partitions:?}");

    // cdr.suspense: exactly the suspended records (the ids of the suspense API), once each,
    // keyed by record id, with reason and raw bytes (base64 when not UTF-8).
    let suspended = consume_with_kafka_python(&broker.brokers(), SUSPENSE);
    assert_eq!(suspended.len(), 11);
    let by_record = by_id(&suspended, "record_id");
    let (_, page) = get(&node.url("/v1/suspense?limit=100"));
    let items = page["items"].as_array().unwrap();
    let api_ids: BTreeSet<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(by_record.keys().cloned().collect::<BTreeSet<_>>(), api_ids);
    for item in items {
        let m = &by_record[item["id"].as_str().unwrap()][0];
        assert_eq!(m.key, item["id"].as_str().unwrap());
        assert_eq!(m.value["kind"], "suspended");
        assert_eq!(m.value["reason"], item["reason"], "{}", m.value);
        assert_eq!(m.value["source"], item["source"]);
    }
    let reasons = |reason: &str| {
        suspended
            .iter()
            .filter(|m| m.value["reason"] == reason)
            .collect::<Vec<_>>()
    };
    assert_eq!(reasons("rating.unknown_subscriber").len(), 6);
    let binary = reasons("cdr.bad_encoding");
    assert_eq!(binary.len(), 2);
    assert_eq!(binary[0].value["raw_base64"], "//57gA==");
    let unknown = &reasons("rating.unknown_subscriber")[0].value;
    assert!(
        unknown["raw"].as_str().unwrap().contains("4999"),
        "{unknown}"
    );
}

#[test]
fn output_pending_when_the_node_is_killed_arrives_after_the_restart() {
    let broker = broker_with_topics();
    let node = NodeFiles::new(&subscribers(2));
    // Output brokers where nothing listens: rows stay in the outbox. A small outbox limit:
    // ingestion stops there (backpressure) instead of dropping or growing without bound.
    let nowhere = format!("127.0.0.1:{}", support::free_port());
    node.append_config(&format!(
        "[kafka]\nenabled = true\nbrokers = {:?}\nbatch_len_max = 10\nbatch_wait_ms = 10\n\
         output_enabled = true\noutput_brokers = {nowhere:?}\noutput_outbox_len_max = 25\n",
        broker.brokers()
    ));
    let start = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..30 {
        for s in 0..2 {
            let id = format!("49301{s:05}");
            records.push((id.clone(), sms(&format!("k{i}"), &id, &start)));
        }
        if i % 8 == 0 {
            records.push(("4999".into(), sms(&format!("u{i}"), "4999000000", &start)));
        }
    }
    let total = records.len() as u64;
    assert_eq!(total, 64);
    produce_with_kafka_python(&broker.brokers(), RAW, &records);

    let mut process = node.start();
    // Ingestion runs until the outbox holds at least its limit, then waits.
    wait_until(&node, "outbox at its limit", || {
        metric(&node, "tollgate_kafka_outbox_rows").is_some_and(|n| n >= 25)
    });
    std::thread::sleep(Duration::from_secs(2));
    let stalled = kafka_stats(&node).unwrap();
    // The check runs when a batch is prepared, and two batches are in flight (one committing
    // while the next is rated): up to two batches of 10 records pass just below the limit.
    assert!(
        (25..45).contains(&stalled[0]),
        "stops between the limit and the limit plus two batches: {stalled:?}"
    );
    assert_eq!(
        metric(&node, "tollgate_kafka_outbox_rows"),
        Some(stalled[0]),
        "one row per rated or suspended record"
    );
    assert!(
        metric(
            &node,
            "tollgate_kafka_deliver_retries_total{topic=\"cdr.raw\"}"
        )
        .is_some_and(|n| n > 0),
        "the source retries the refused batch"
    );
    let _ = process.0.kill();
    let _ = process.wait();

    // Restart with reachable output brokers: the durable outbox goes out, ingestion resumes.
    let config = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(&node.config, config.replace(&nowhere, &broker.brokers())).unwrap();
    let _process = node.start();
    wait_until(&node, "everything ingested and published", || {
        kafka_stats(&node).is_some_and(|s| s[0] >= total)
            && metric(&node, "tollgate_kafka_outbox_rows") == Some(0)
    });
    assert_eq!(kafka_stats(&node).unwrap(), [total, 60, 4, 0, 0]);
    let rated = consume_with_kafka_python(&broker.brokers(), RATED);
    let ids = by_id(&rated, "cdr_id");
    assert_eq!(ids.len(), 30, "k0..k29 (per subscriber)");
    let pairs: BTreeSet<(String, String)> = rated
        .iter()
        .map(|m| {
            (
                m.value["subscriber"].as_str().unwrap().to_string(),
                m.value["cdr_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 60, "every rated record arrived");
    assert_eq!(
        rated.len(),
        60,
        "nothing reached a broker before the kill: each exactly once"
    );
    let suspended = consume_with_kafka_python(&broker.brokers(), SUSPENSE);
    assert_eq!(suspended.len(), 4);
    assert!(
        suspended
            .iter()
            .all(|m| m.value["reason"] == "rating.unknown_subscriber")
    );
}
