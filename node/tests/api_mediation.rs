//! Suspense through the API on a real node: bad records land in suspense with their reason and
//! raw bytes; per-source counters always add up; a backdated catalogue fix followed by a recycle
//! rates the records once (a second recycle finds nothing open); export; audit of the recycle;
//! everything survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::{ADMIN_TOKEN, NodeFiles, call, call_raw, counts, get, post, stats};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"
"#;

#[test]
fn suspense_recycle_after_a_backdated_fix_and_exact_counters() {
    let node = NodeFiles::new(SUBSCRIBERS);
    let mut process = node.start();
    let now = jiff::Timestamp::now();
    let hour_ago = (now - jiff::SignedDuration::from_hours(1)).to_string();
    let in_3_days = (now + jiff::SignedDuration::from_hours(72)).to_string();
    let cdr = |id: &str, subscriber: &str, service: &str, start: &str| {
        json!({ "id": id, "subscriber": subscriber, "service": service,
                "direction": "outbound", "callee": "4915112345", "start": start })
        .to_string()
    };
    // JSON lines: 2 rated, 1 duplicate, and 5 kinds of bad record.
    let lines = [
        cdr("m1", "4930111111", "sms", &hour_ago),
        cdr("m1", "4930111111", "sms", &hour_ago),
        cdr("m2", "4930111111", "sms", &hour_ago),
        cdr("m3", "4999999999", "sms", &hour_ago),
        cdr("m4", "4930111111", "sms", &in_3_days),
        cdr("m5", "4930111111", "mms", &hour_ago),
        cdr("m6", "4930111111", "mms", &hour_ago),
        r#"{"id": "m7", "subscriber": "4930111111""#.to_string(),
    ];
    let body = lines.join("\n");
    let (status, answer) = call_raw(
        "POST",
        &node.url("/v1/cdrs"),
        Some(ADMIN_TOKEN),
        "application/x-ndjson",
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            &answer["rated"],
            &answer["duplicates"],
            &answer["suspended"]
        ),
        (&json!(2), &json!(1), &json!(5)),
        "{answer}"
    );
    let reasons: Vec<&str> = answer["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["reason"].as_str())
        .collect();
    assert_eq!(
        reasons[..4],
        [
            "rating.unknown_subscriber",
            "cdr.time_in_future",
            "rating.unknown_service",
            "rating.unknown_service"
        ],
        "{answer}"
    );
    assert!(reasons[4].starts_with("cdr."), "{reasons:?}");
    assert_eq!(counts(&stats(&node, "http")), [8, 2, 5, 1, 0]);
    assert_eq!(stats(&node, "http")["balanced"], true);

    // Suspense: filters, paging, one record, raw bytes kept.
    let (status, page) = get(&node.url("/v1/suspense?source=http&limit=2"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = get(&node.url(&format!("/v1/suspense?source=http&cursor={cursor}")));
    assert_eq!(rest["items"].as_array().unwrap().len(), 3, "{rest}");
    assert!(rest["next_cursor"].is_null());
    let (_, unknown) = get(&node.url("/v1/suspense?reason=rating.unknown_service"));
    let items = unknown["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{unknown}");
    assert_eq!(items[0]["id"], "http/4930111111/m5");
    assert_eq!(items[0]["raw"], lines[5].as_str());
    assert_eq!(items[0]["state"], "open");
    let (status, one) = get(&node.url("/v1/suspense/record?id=http/4999999999/m3"));
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["reason"], "rating.unknown_subscriber");
    assert_eq!(one["subscriber"], "4999999999");
    let (status, missing) = get(&node.url("/v1/suspense/record?id=nope"));
    assert_eq!(
        (status, &missing["error"]["code"]),
        (404, &json!("suspense.unknown"))
    );
    let (status, bad) = get(&node.url("/v1/suspense?state=maybe"));
    assert_eq!(status, 400, "{bad}");

    // Export: CSV with a header line and one line per record; JSON lines.
    let csv = ureq::get(&node.url("/v1/suspense/export?format=csv&source=http"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    assert!(csv.content_type().starts_with("text/csv"));
    let text = csv.into_string().unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap().get(2), Some("reason"));
    assert_eq!(reader.records().count(), 5);
    let jsonl = ureq::get(&node.url("/v1/suspense/export?format=jsonl&reason=rating."))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(jsonl.lines().count(), 3);

    // A recycle before any fix changes nothing but the attempts.
    let (status, report) = post(
        &node.url("/v1/suspense/recycle"),
        json!({ "reason": "rating.unknown_service" }),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["tried"], &report["suspended"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(counts(&stats(&node, "http")), [8, 2, 5, 1, 0]);

    // The fix: MMS priced at 0.20, in force from two days ago (a backdated correction).
    let (status, draft) = post(
        &node.url("/v1/catalogue/drafts"),
        json!({ "from_version": 1 }),
    );
    assert_eq!(status, 201, "{draft}");
    let id = draft["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        "PUT",
        &node.url(&format!("/v1/catalogue/drafts/{id}/items/services/mms")),
        Some(ADMIN_TOKEN),
        Some(json!({ "id": "mms", "unit": "event" })),
    );
    assert_eq!(status, 201, "{body}");
    let (_, mut plan) = get(&node.url(&format!(
        "/v1/catalogue/drafts/{id}/items/plans/consumer-eur"
    )));
    plan["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "mms", "service": "mms", "price": { "rate": "0.20" } }));
    let (status, body) = call(
        "PUT",
        &node.url(&format!(
            "/v1/catalogue/drafts/{id}/items/plans/consumer-eur"
        )),
        Some(ADMIN_TOKEN),
        Some(plan),
    );
    assert_eq!(status, 200, "{body}");
    let two_days_ago = (now - jiff::SignedDuration::from_hours(48)).to_string();
    let (status, refused) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": two_days_ago }),
    );
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "catalogue.effective_in_past");
    let (status, refused) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": two_days_ago, "backdate": true }),
    );
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "catalogue.backdate_needs_reason");
    let (status, version) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": two_days_ago, "backdate": true, "notes": "MMS rate was missing" }),
    );
    assert_eq!(status, 201, "{version}");
    assert_eq!(version["version"], 2);

    // Recycle: both MMS records rate once, with the fixed version.
    let (status, report) = post(
        &node.url("/v1/suspense/recycle"),
        json!({ "reason": "rating.unknown_service" }),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["tried"], &report["rated"]),
        (&json!(2), &json!(2)),
        "{report}"
    );
    assert_eq!(counts(&stats(&node, "http")), [8, 4, 3, 1, 0]);
    let (_, again) = post(
        &node.url("/v1/suspense/recycle"),
        json!({ "reason": "rating.unknown_service" }),
    );
    assert_eq!(
        again["tried"], 0,
        "a recycled record is never recycled again: {again}"
    );
    let (_, record) = get(&node.url("/v1/suspense/record?id=http/4930111111/m5"));
    assert_eq!(
        (
            &record["state"],
            &record["recycled_outcome"],
            &record["attempts"]
        ),
        (&json!("recycled"), &json!("rated"), &json!(3)),
        "{record}"
    );
    // Charged 0.09 + 0.09 (SMS) + 0.20 + 0.20 (MMS) = 0.58, once.
    let (_, balance) = get(&node.url("/v1/subscribers/4930111111/balance"));
    assert_eq!(balance["balance"]["amount"], "-0.5800", "{balance}");
    assert_eq!(balance["entries"], 4, "{balance}");
    // Resending a recycled record is a duplicate, not a second charge.
    let (_, resent) = call_raw(
        "POST",
        &node.url("/v1/cdrs"),
        Some(ADMIN_TOKEN),
        "application/x-ndjson",
        lines[5].as_bytes(),
    );
    assert_eq!(resent["duplicates"], 1, "{resent}");

    // The recycles are in the audit trail with who and each record's outcome.
    let (_, audit) = get(&node.url("/v1/audit?operation=suspense.recycle"));
    let records = audit["items"].as_array().unwrap();
    assert_eq!(
        records.len(),
        2,
        "an empty recycle changes nothing and records nothing: {audit}"
    );
    assert_eq!(records[1]["principal"], "bootstrap");
    assert_eq!(
        records[1]["after"]["records"][0]["outcome"], "rated",
        "{audit}"
    );

    // Counters and suspense survive a restart.
    let before = stats(&node, "http");
    support::terminate(&mut process);
    let _process = node.start();
    assert_eq!(stats(&node, "http"), before);
    let (_, open) = get(&node.url("/v1/suspense?state=open"));
    assert_eq!(open["items"].as_array().unwrap().len(), 3, "{open}");
}

#[test]
fn mediation_filters_drop_with_a_reason_and_the_content_key_catches_resent_records() {
    let node = NodeFiles::new(SUBSCRIBERS);
    node.append_config(
        // Continues the [mediation] table NodeFiles writes last.
        "duplicate_key = \"content\"\n\
         [[mediation.filters]]\nname = \"test-calls\"\nfield = \"callee\"\nprefix = \"49999\"\n\
         reason = \"filter.test_call\"\n",
    );
    let _process = node.start();
    let start = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2)).to_string();
    let record = |id: &str, callee: &str| {
        json!({ "id": id, "subscriber": "4930111111", "service": "sms",
                "direction": "outbound", "callee": callee, "start": start })
    };
    let (status, answer) = post(
        &node.url("/v1/cdrs"),
        json!([
            record("t1", "4999912345"),
            record("s1", "4915112345"),
            // The same call again under a new id (a mediation system that renumbers).
            record("s1-again", "4915112345"),
        ]),
    );
    assert_eq!(status, 200, "{answer}");
    let outcomes = answer["outcomes"].as_array().unwrap();
    assert_eq!(outcomes[0]["outcome"], "filtered", "{answer}");
    assert_eq!(outcomes[0]["reason"], "filter.test_call");
    assert_eq!(outcomes[0]["rule"], "test-calls");
    assert_eq!(outcomes[1]["outcome"], "rated");
    assert_eq!(outcomes[2]["outcome"], "duplicate", "{answer}");
    assert_eq!(answer["filtered"], 1);
    assert_eq!(counts(&stats(&node, "http")), [3, 1, 0, 1, 1]);
    let (_, balance) = get(&node.url("/v1/subscribers/4930111111/balance"));
    assert_eq!(balance["balance"]["amount"], "-0.0900", "{balance}");
    // Filtered records are not suspense.
    let (_, open) = get(&node.url("/v1/suspense"));
    assert!(open["items"].as_array().unwrap().is_empty(), "{open}");
}

#[test]
fn a_mapping_file_and_enrichment_rules_shape_records_before_rating() {
    let node = NodeFiles::new(SUBSCRIBERS);
    let mapping = node.dir.path().join("mapping.toml");
    std::fs::write(
        &mapping,
        "[fields]\nid = \"record_id\"\nsubscriber = \"msisdn\"\n\
         [defaults]\nservice = \"sms\"\ndirection = \"outbound\"\n\
         [numbers]\nrewrites = [{ prefix = \"00\", replace = \"\" }, { prefix = \"0\", replace = \"49\" }]\n",
    )
    .unwrap();
    node.append_config(&format!(
        // Continues the [mediation] table NodeFiles writes last.
        "mapping_path = {:?}\n\
         [[mediation.enrich]]\nname = \"o2-mobile\"\nfield = \"callee\"\nprefix = \"49176\"\n\
         attribute = \"partner\"\nvalue = \"o2\"\n\
         [[mediation.enrich]]\nname = \"german-mobile\"\nfield = \"callee\"\nprefix = \"4915\"\n\
         attribute = \"partner\"\nvalue = \"dtag\"\n\
         [[mediation.enrich]]\nname = \"later-rule-same-attribute\"\nfield = \"callee\"\n\
         prefix = \"49\"\nattribute = \"partner\"\nvalue = \"fallback\"\n",
        mapping.display().to_string()
    ));
    let _process = node.start();
    let start = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2)).to_string();
    let (status, answer) = post(
        &node.url("/v1/cdrs"),
        json!([
            { "record_id": "e1", "msisdn": "4930111111", "callee": "015112345", "start": start },
            { "record_id": "e2", "msisdn": "4930111111", "callee": "0176555", "start": start },
            { "record_id": "e3", "msisdn": "4930111111", "callee": "0301234", "start": start,
              "partner": "from-source" }
        ]),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rated"], 3, "{answer}");
    let (_, usage) = get(&node.url("/v1/subscribers/4930111111/usage?limit=10"));
    let by_id = |id: &str| {
        usage["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["cdr_id"] == id)
            .cloned()
            .unwrap()
    };
    // Field names mapped, numbers normalised by the mapping's rewrites, attributes set.
    let e1 = by_id("e1");
    assert_eq!(e1["cdr"]["callee"], "4915112345", "{e1}");
    assert_eq!(e1["cdr"]["attributes"]["partner"], "dtag", "{e1}");
    assert_eq!(by_id("e2")["cdr"]["attributes"]["partner"], "o2");
    // What the source sent is kept.
    assert_eq!(by_id("e3")["cdr"]["attributes"]["partner"], "from-source");
}
