//! Rerating through the API on a real node: after a backdated price correction, a rerate job
//! reverses each changed charge and charges it anew (two new entries, nothing edited), reports
//! the differences, is idempotent per key, leaves records outside its range alone, and is in the
//! audit trail; a dry run writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"

[[subscribers]]
id = "4930222222"
products = ["consumer"]
currency = "EUR"
"#;

fn sms(id: &str, subscriber: &str, start: &str) -> Value {
    json!({ "id": id, "subscriber": subscriber, "service": "sms", "direction": "outbound",
            "callee": "4915112345", "start": start })
}

fn balance(node: &NodeFiles, id: &str) -> (String, u64) {
    let (status, body) = get(&node.url(&format!("/v1/subscribers/{id}/balance")));
    assert_eq!(status, 200, "{body}");
    (
        body["balance"]["amount"].as_str().unwrap().to_string(),
        body["entries"].as_u64().unwrap(),
    )
}

#[test]
fn rerate_after_a_price_correction_reverses_and_recharges_with_a_difference_report() {
    let node = NodeFiles::new(SUBSCRIBERS);
    let _process = node.start();
    let now = jiff::Timestamp::now();
    let ago = |h: i64| (now - jiff::SignedDuration::from_hours(h)).to_string();
    let (a, b) = ("4930111111", "4930222222");
    // Three SMS of a in the last day, one older (outside the rerate range), one of b.
    let (status, answer) = post(
        &node.url("/v1/cdrs"),
        json!([
            sms("r1", a, &ago(1)),
            sms("r2", a, &ago(2)),
            sms("r3", a, &ago(3)),
            sms("old", a, &ago(60)),
            sms("b1", b, &ago(1)),
        ]),
    );
    assert_eq!((status, &answer["rated"]), (200, &json!(5)), "{answer}");
    assert_eq!(balance(&node, a), ("-0.3600".into(), 4));

    // The SMS price was wrong for the last two days: 0.05, not 0.09 (a backdated correction).
    let (_, draft) = post(
        &node.url("/v1/catalogue/drafts"),
        json!({ "from_version": 1 }),
    );
    let id = draft["id"].as_str().unwrap().to_string();
    let (_, mut plan) = get(&node.url(&format!(
        "/v1/catalogue/drafts/{id}/items/plans/consumer-eur"
    )));
    let rules = plan["rules"].as_array_mut().unwrap();
    rules.iter_mut().find(|r| r["id"] == "sms").unwrap()["price"] = json!({ "rate": "0.05" });
    let (status, body) = call(
        "PUT",
        &node.url(&format!(
            "/v1/catalogue/drafts/{id}/items/plans/consumer-eur"
        )),
        Some(ADMIN_TOKEN),
        Some(plan),
    );
    assert_eq!(status, 200, "{body}");
    let (status, version) = post(
        &node.url(&format!("/v1/catalogue/drafts/{id}/publish")),
        json!({ "effective_from": ago(48), "backdate": true, "notes": "SMS promo price missed" }),
    );
    assert_eq!(status, 201, "{version}");

    let job = |key: &str, from: &str, dry_run: bool| {
        json!({ "key": key, "subscribers": [a, b], "from": from, "to": now.to_string(),
                "dry_run": dry_run })
    };
    // A dry run reports and writes nothing.
    let (status, dry) = post(&node.url("/v1/rerate"), job("sms-fix", &ago(24), true));
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (&dry["changed"], &dry["dry_run"]),
        (&json!(4), &json!(true)),
        "{dry}"
    );
    assert_eq!(balance(&node, a), ("-0.3600".into(), 4));

    // The job: 3 records of a and 1 of b change; the one of 60 h ago is outside the range.
    let (status, report) = post(&node.url("/v1/rerate"), job("sms-fix", &ago(24), false));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["records"],
            &report["changed"],
            &report["unchanged"],
            &report["failed"]
        ),
        (&json!(4), &json!(4), &json!(0), &json!(0)),
        "{report}"
    );
    assert_eq!(report["totals"]["EUR"]["old"], "0.3600", "{report}");
    assert_eq!(report["totals"]["EUR"]["new"], "0.2000");
    assert_eq!(report["totals"]["EUR"]["credit"], "0.1600");
    let of_a = report["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subscriber"] == a)
        .unwrap();
    let line = &of_a["changed"][0];
    assert_eq!(line["old_charge"]["amount"], "0.0900", "{line}");
    assert_eq!(line["new_charge"]["amount"], "0.0500");
    assert_eq!(
        (&line["old_version"], &line["new_version"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(of_a["credit"]["amount"], "0.1200");
    // Reversal + new charge per changed record: 4 + 2 * 3 entries; 0.09 (outside) + 3 * 0.05.
    assert_eq!(balance(&node, a), ("-0.2400".into(), 10));
    assert_eq!(balance(&node, b), ("-0.0500".into(), 3));
    // The current usage record of r1 is the rerated one.
    let (_, usage) = get(&node.url(&format!("/v1/subscribers/{a}/usage?limit=1")));
    let latest = &usage["items"][0];
    assert_eq!(latest["rerate"], "sms-fix", "{usage}");
    assert_eq!(latest["catalogue_version"], 2);

    // The same key again: the first report, nothing written.
    let (status, again) = post(&node.url("/v1/rerate"), job("sms-fix", &ago(24), false));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["subscribers"][0]["replayed"], true, "{again}");
    assert_eq!(again["changed"], 4);
    assert_eq!(balance(&node, a), ("-0.2400".into(), 10));
    // The same key for another range is refused.
    let (status, reused) = post(&node.url("/v1/rerate"), job("sms-fix", &ago(100), false));
    assert_eq!(
        (status, &reused["error"]["code"]),
        (409, &json!("rerate.key_reused"))
    );
    // A new job over the same range finds nothing to change.
    let (_, second) = post(&node.url("/v1/rerate"), job("sms-fix-2", &ago(24), false));
    assert_eq!(
        (&second["changed"], &second["unchanged"]),
        (&json!(0), &json!(4)),
        "{second}"
    );
    assert_eq!(balance(&node, a), ("-0.2400".into(), 10));

    // Bad requests change nothing.
    for (body, code) in [
        (
            json!({ "key": "x", "subscribers": ["4999"], "from": ago(5), "to": ago(1) }),
            "rerate.unknown_subscriber",
        ),
        (
            json!({ "key": "x", "subscribers": [a], "from": ago(1), "to": ago(5) }),
            "rerate.invalid",
        ),
        (
            json!({ "key": "bad key!", "subscribers": [a], "from": ago(5), "to": ago(1) }),
            "rerate.invalid",
        ),
        (
            json!({ "key": "x", "subscribers": [a, a], "from": ago(5), "to": ago(1) }),
            "rerate.invalid",
        ),
    ] {
        let (status, err) = post(&node.url("/v1/rerate"), body);
        assert_eq!(
            (status, &err["error"]["code"]),
            (422, &json!(code)),
            "{err}"
        );
    }
    assert_eq!(balance(&node, a), ("-0.2400".into(), 10));

    // Audit: one record per subscriber and applied job, with the balance before and after.
    let (_, audit) = get(&node.url("/v1/audit?operation=usage.rerate"));
    let records = audit["items"].as_array().unwrap();
    assert_eq!(
        records.len(),
        4,
        "two jobs applied to two subscribers: {audit}"
    );
    let first_a = records
        .iter()
        .find(|r| r["target"] == format!("subscriber/{a}") && r["after"]["job"] == "sms-fix")
        .unwrap();
    assert_eq!(first_a["before"]["balance"], "-0.3600", "{first_a}");
    assert_eq!(first_a["after"]["balance"], "-0.2400");
    assert_eq!(first_a["after"]["credit"], "0.1200");
}
