//! The catalogue through the API on a real node: a price change published while CDRs stream in
//! (every record rated by exactly one version, the one in force at its start time, none
//! failing), bulk prefix upload, validation problems, versions staying readable, audit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, call_raw, get, post};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"
"#;

fn sms(id: &str, start: &str) -> Value {
    json!({ "id": id, "subscriber": "4930111111", "service": "sms", "direction": "outbound",
            "callee": "4915112345", "start": start })
}

/// A draft copied from version `from`, with the consumer SMS price set to `rate`.
fn draft_with_sms_rate(node: &NodeFiles, from: u64, rate: &str) -> (String, u64) {
    let (status, draft) = post(
        &node.url("/v1/catalogue/drafts"),
        json!({ "from_version": from }),
    );
    assert_eq!(status, 201, "{draft}");
    let id = draft["id"].as_str().unwrap().to_string();
    let (status, mut plan) = get(&node.url(&format!(
        "/v1/catalogue/drafts/{id}/items/plans/consumer-eur"
    )));
    assert_eq!(status, 200, "{plan}");
    let rules = plan["rules"].as_array_mut().unwrap();
    let sms = rules.iter_mut().find(|r| r["id"] == "sms").unwrap();
    sms["price"] = json!({ "rate": rate });
    let (status, after) = call(
        "PUT",
        &node.url(&format!(
            "/v1/catalogue/drafts/{id}/items/plans/consumer-eur"
        )),
        Some(ADMIN_TOKEN),
        Some(plan),
    );
    assert_eq!(status, 200, "{after}");
    let (status, validation) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/validate")),
        json!({}),
    );
    assert_eq!(
        (status, &validation["valid"]),
        (200, &json!(true)),
        "{validation}"
    );
    (id, after["revision"].as_u64().unwrap())
}

#[test]
fn a_price_version_published_under_load_rates_every_cdr_with_exactly_the_version_in_force() {
    let files = NodeFiles::new(SUBSCRIBERS);
    let _node = files.start();
    let node = &files;

    let (status, versions) = get(&node.url("/v1/catalogue/versions"));
    assert_eq!(status, 200);
    assert_eq!(
        versions["items"].as_array().unwrap().len(),
        1,
        "the file became version 1"
    );
    assert_eq!(versions["items"][0]["published_by"], "system");

    // The boundary: a minute from now, whole second.
    let now = jiff::Timestamp::now().as_second();
    let boundary = jiff::Timestamp::from_second(now + 60).unwrap();
    let before = jiff::Timestamp::from_second(now + 60 - 3600)
        .unwrap()
        .to_string();
    let after = jiff::Timestamp::from_second(now + 60 + 3600)
        .unwrap()
        .to_string();
    let (draft, revision) = draft_with_sms_rate(node, 1, "0.05");

    // Stream batches of 40 CDRs (half before, half after the boundary) from two threads.
    let stop = Arc::new(AtomicBool::new(false));
    let published_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let streamers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            let url = node.url("/v1/cdrs");
            let (before, after) = (before.clone(), after.clone());
            std::thread::spawn(move || {
                let mut batches = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let cdrs: Vec<Value> = (0..40)
                        .map(|i| {
                            let start = if i % 2 == 0 { &before } else { &after };
                            sms(&format!("s{t}-{n}-{i}"), start)
                        })
                        .collect();
                    let sent = Instant::now();
                    let (status, body) = support::post(&url, Value::Array(cdrs));
                    assert_eq!(status, 200, "a CDR batch failed during the publish: {body}");
                    batches.push((sent, body));
                    n += 1;
                }
                batches
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let (status, version) = post(
        &node.url(&format!("/v1/catalogue/drafts/{draft}/publish")),
        json!({ "effective_from": boundary.to_string(), "revision": revision, "notes": "SMS 0.05" }),
    );
    assert_eq!(status, 201, "{version}");
    assert_eq!(version["version"], 2);
    *published_at.lock().unwrap() = Some(Instant::now());
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let published = published_at.lock().unwrap().unwrap();

    let (mut v1_after, mut v2, mut total, mut late_batches) = (0, 0, 0, 0);
    for s in streamers {
        for (sent, body) in s.join().unwrap() {
            assert_eq!(body["suspended"], 0, "{body}");
            let after_publish = sent > published;
            late_batches += usize::from(after_publish);
            for (i, o) in body["outcomes"].as_array().unwrap().iter().enumerate() {
                total += 1;
                assert_eq!(o["outcome"], "rated", "{o}");
                let version = o["catalogue_version"].as_u64().unwrap();
                let amount = o["charge"]["amount"].as_str().unwrap();
                // The price is exactly the one of the version that rated it.
                match version {
                    1 => assert_eq!(amount, "0.0900", "{o}"),
                    2 => assert_eq!(amount, "0.0500", "{o}"),
                    v => panic!("unknown version {v}: {o}"),
                }
                if i % 2 == 0 {
                    assert_eq!(
                        version, 1,
                        "a record before the boundary used version {version}"
                    );
                } else if after_publish {
                    assert_eq!(
                        version, 2,
                        "a record after the boundary, sent after the publish"
                    );
                    v2 += 1;
                } else {
                    // Sent before the publish answered: either version, exactly one.
                    if version == 1 { v1_after += 1 } else { v2 += 1 }
                }
            }
        }
    }
    assert!(
        late_batches > 0 && v2 > 0,
        "no batch after the publish: {late_batches}"
    );
    assert!(
        v1_after > 0,
        "no record after the boundary was rated before the publish"
    );
    eprintln!(
        "{total} CDRs streamed; after the boundary: {v1_after} by v1 (before publish), {v2} by v2"
    );

    // Versions stay readable; in-force lookups follow the effective date.
    let (_, v1) = get(&node.url("/v1/catalogue/versions/1"));
    let rate = |doc: &Value| {
        doc["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "consumer-eur")
            .unwrap()["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "sms")
            .unwrap()["price"]["rate"]
            .clone()
    };
    assert_eq!(rate(&v1["document"]), "0.09");
    let (_, v2doc) = get(&node.url("/v1/catalogue/versions/2"));
    assert_eq!(rate(&v2doc["document"]), "0.05");
    let at = |t: jiff::Timestamp| {
        get(&node.url(&format!("/v1/catalogue/in-force?at={t}"))).1["version"].clone()
    };
    assert_eq!(at(boundary), 2);
    assert_eq!(at(boundary - jiff::SignedDuration::from_secs(1)), 1);

    // Publishing again is an idempotent replay; the draft is gone.
    let (status, replay) = post(
        &node.url(&format!("/v1/catalogue/drafts/{draft}/publish")),
        json!({ "effective_from": boundary.to_string() }),
    );
    assert_eq!((status, &replay["version"]), (200, &json!(2)));
    assert_eq!(
        get(&node.url(&format!("/v1/catalogue/drafts/{draft}"))).0,
        404
    );

    // The audit trail: the publish with what changed.
    let (_, audit) = get(&node.url("/v1/audit?operation=catalogue.publish"));
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["target"], "catalogue/version/2");
    assert_eq!(items[0]["principal"], "bootstrap");
    assert_eq!(
        items[0]["after"]["changes"]["plans"]["changed"],
        json!(["consumer-eur"])
    );
    let (_, edits) = get(&node.url("/v1/audit?operation=catalogue.draft."));
    let ops: Vec<&str> = edits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["catalogue.draft.create", "catalogue.draft.put_item"]);
}

#[test]
fn bulk_prefix_upload_validation_problems_and_refusals() {
    let files = NodeFiles::new(SUBSCRIBERS);
    let _node = files.start();
    let node = &files;
    let (_, draft) = post(
        &node.url("/v1/catalogue/drafts"),
        json!({ "from_version": 1 }),
    );
    let id = draft["id"].as_str().unwrap().to_string();

    // 100k extra prefixes on top of the sample table, as one CSV upload.
    let mut csv = std::fs::read_to_string(support::examples().join("prefixes.csv")).unwrap();
    let original_rows = csv
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with("prefix"))
        .count();
    for i in 0..100_000u32 {
        csv.push_str(&format!("88{i:07},satellite,synthetic {i}\n"));
    }
    let started = Instant::now();
    let (status, info) = call_raw(
        "PUT",
        &node.url(&format!(
            "/v1/catalogue/drafts/{id}/prefix-tables/prefixes.csv"
        )),
        Some(ADMIN_TOKEN),
        "text/csv",
        csv.as_bytes(),
    );
    let upload = started.elapsed();
    assert_eq!(status, 200, "{info}");
    assert!(
        info["rows"].as_u64().unwrap() >= 100_000 + original_rows as u64 - 1,
        "{info} vs {original_rows}"
    );
    let started = Instant::now();
    let (status, version) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(5)).unwrap().to_string() }),
    );
    eprintln!(
        "100k-prefix upload {upload:?}, validate+publish {:?}",
        started.elapsed()
    );
    assert_eq!(status, 201, "{version}");
    let (status, body) = call(
        "GET",
        &node.url("/v1/catalogue/versions/2/prefix-tables/prefixes.csv"),
        Some(ADMIN_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}"); // CSV text: not JSON, so body is null
    // A synthetic destination rates with version 2 (satellite: 0.60/min, minimum charge 0.50).
    let start = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(3600))
        .unwrap()
        .to_string();
    let (status, rated) = post(
        &node.url("/v1/cdrs"),
        json!([{ "id": "sat-1", "subscriber": "4930111111", "service": "voice",
        "direction": "outbound", "callee": "880001234", "start": start, "units": 2 }]),
    );
    assert_eq!(status, 200, "{rated}");
    assert_eq!(rated["outcomes"][0]["catalogue_version"], 2, "{rated}");
    assert_eq!(
        rated["outcomes"][0]["charge"]["amount"], "0.5000",
        "{rated}"
    );

    // A bad table row is refused at upload with its line; nothing stored.
    let (_, draft) = post(
        &node.url("/v1/catalogue/drafts"),
        json!({ "from_version": 2 }),
    );
    let id = draft["id"].as_str().unwrap().to_string();
    let (status, body) = call_raw(
        "PUT",
        &node.url(&format!(
            "/v1/catalogue/drafts/{id}/prefix-tables/extra.csv"
        )),
        Some(ADMIN_TOKEN),
        "text/csv",
        b"prefix,zone\n49,de-fixed\nabc,de-fixed\n",
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("catalogue.invalid")),
        "{body}"
    );
    assert!(
        body["error"]["details"]["problems"][0]["line"]
            .as_u64()
            .is_some(),
        "{body}"
    );
    // An item that breaks the catalogue: publish refuses with every problem and a key path.
    let (status, _) = call(
        "PUT",
        &node.url(&format!("/v1/catalogue/drafts/{id}/items/products/broken")),
        Some(ADMIN_TOKEN),
        Some(json!({ "name": "Broken", "plans": ["no-such-plan"] })),
    );
    assert_eq!(status, 201);
    let (status, validation) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/validate")),
        json!({}),
    );
    assert_eq!((status, &validation["valid"]), (200, &json!(false)));
    let problem = &validation["problems"][0];
    assert!(
        problem["key"].as_str().unwrap().starts_with("products"),
        "{validation}"
    );
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("no-such-plan"),
        "{validation}"
    );
    let future = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap()
        .to_string();
    let (status, body) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": future }),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("catalogue.invalid")),
        "{body}"
    );
    // Past effective dates, stale revisions, unknown sections, item id mismatches.
    let (status, body) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": "2020-01-01T00:00:00Z" }),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("catalogue.effective_in_past")),
        "{body}"
    );
    let (status, body) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": future, "revision": 1 }),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("catalogue.stale_revision")),
        "{body}"
    );
    let (status, body) = call(
        "PUT",
        &node.url(&format!("/v1/catalogue/drafts/{id}/items/gizmos/x")),
        Some(ADMIN_TOKEN),
        Some(json!({})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("catalogue.unknown_section")),
        "{body}"
    );
    let (status, body) = call(
        "PUT",
        &node.url(&format!("/v1/catalogue/drafts/{id}/items/zones/a")),
        Some(ADMIN_TOKEN),
        Some(json!({ "id": "b" })),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("catalogue.item_id_mismatch")),
        "{body}"
    );
    let (_, versions) = get(&node.url("/v1/catalogue/versions"));
    assert_eq!(
        versions["items"].as_array().unwrap().len(),
        2,
        "nothing refused was published"
    );
}
