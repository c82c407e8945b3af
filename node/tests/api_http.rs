//! The node over HTTP: a real `tollgate run` process on the embedded store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::{NodeFiles, get, post, terminate};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"
mode = "prepaid"

[[subscribers]]
id = "4930222222"
products = ["office"]
currency = "EUR"
attributes = { segment = "gold" }
"#;

#[test]
fn charging_over_http_with_replays_bad_input_and_graceful_stop() {
    let node = NodeFiles::new(SUBSCRIBERS);
    let mut child = node.start();
    let pre = "4930111111";

    // Top-up, replayed: applied once, same answer.
    let top = json!({ "id": "t1", "amount": "10.00", "currency": "EUR" });
    let (status, body) = post(
        &node.url(&format!("/v1/accounts/{pre}/top-ups")),
        top.clone(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["balance"]["amount"], "10.00");
    let (_, again) = post(&node.url(&format!("/v1/accounts/{pre}/top-ups")), top);
    assert_eq!(again["balance"]["amount"], "10.00");

    // A session: reserve 120 s to a mobile (0.12/min peak in the consumer plan at 11:00 Berlin).
    let usage =
        json!({ "service": "voice", "callee": "4915112345", "start": "2026-03-02T10:00:00Z" });
    let reserve =
        json!({ "subscriber": pre, "request_id": "r1", "usage": usage, "requested_units": 120 });
    let (status, grant) = post(&node.url("/v1/sessions/call-1/reserve"), reserve.clone());
    assert_eq!(status, 200, "{grant}");
    assert_eq!(
        (
            grant["granted_units"].as_u64(),
            grant["reserved"]["amount"].as_str()
        ),
        (Some(120), Some("0.2400"))
    );
    let (_, replay) = post(&node.url("/v1/sessions/call-1/reserve"), reserve);
    assert_eq!(replay, grant, "a replayed request answers the same");
    let update =
        json!({ "subscriber": pre, "request_id": "r2", "used_units": 70, "requested_units": 60 });
    let (status, body) = post(&node.url("/v1/sessions/call-1/update"), update);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["charged"]["amount"], "0.2400",
        "70 s at 60/60 = 2 minutes"
    );
    let terminate_body = json!({ "subscriber": pre, "request_id": "r3", "used_units": 10 });
    let (status, body) = post(&node.url("/v1/sessions/call-1/terminate"), terminate_body);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["session_charged"]["amount"], "0.2400",
        "80 s is still 2 minutes"
    );
    let (_, balance) = get(&node.url(&format!("/v1/subscribers/{pre}/balance")));
    assert_eq!(
        (
            balance["balance"]["amount"].as_str(),
            balance["reserved"]["amount"].as_str()
        ),
        (Some("9.7600"), Some("0.0000"))
    );

    // CDRs: rated, duplicate, unknown subscriber, malformed.
    let cdrs = json!([
        { "id": "x1", "subscriber": "4930222222", "service": "voice", "callee": "4915112345", "start": "2026-03-02T18:58:00Z", "units": 290 },
        { "id": "x1", "subscriber": "4930222222", "service": "voice", "callee": "4915112345", "start": "2026-03-02T18:58:00Z", "units": 290 },
        { "id": "x2", "subscriber": "4940999999", "service": "sms", "start": "2026-03-02T10:00:00Z" },
        { "id": "x3", "subscriber": "4930222222", "service": "voice", "start": "not a time", "units": 1 }
    ]);
    let (status, body) = post(&node.url("/v1/cdrs"), cdrs.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["rated"].as_u64(),
            body["duplicates"].as_u64(),
            body["suspended"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(
        body["outcomes"][0]["charge"]["amount"], "0.4275",
        "the documented example charge"
    );
    assert_eq!(body["outcomes"][0]["catalogue_version"], 1);
    assert_eq!(
        body["outcomes"][1]["catalogue_version"], 1,
        "as first answered"
    );
    assert_eq!(body["outcomes"][2]["reason"], "rating.unknown_subscriber");
    assert_eq!(body["outcomes"][3]["reason"], "cdr.bad_timestamp");
    let (_, body) = post(&node.url("/v1/cdrs"), cdrs);
    assert_eq!(
        body["duplicates"].as_u64(),
        Some(2),
        "resending the batch charges nothing again"
    );
    let (status, usage) = get(&node.url("/v1/subscribers/4930222222/usage?limit=5"));
    assert_eq!(status, 200);
    assert_eq!(usage["items"][0]["cdr_id"], "x1");
    assert!(usage["items"][0]["explanation"]["legs"].is_array());
    assert_eq!(usage["items"][0]["catalogue_version"], 1);

    // Bad input: clear 4xx with a code, nothing applied.
    let (status, body) = post(
        &node.url("/v1/sessions/nope/update"),
        json!({ "subscriber": pre, "request_id": "u", "used_units": 1, "requested_units": 1 }),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("session.unknown"))
    );
    let (status, body) = post(
        &node.url("/v1/sessions/s2/reserve"),
        json!({ "subscriber": pre, "request_id": "n", "usage": usage_spec(), "requested_units": -5 }),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("request.invalid_field"))
    );
    assert_eq!(body["error"]["details"]["path"], "requested_units");
    let (status, body) = post(
        &node.url(&format!("/v1/accounts/{pre}/top-ups")),
        json!({ "id": "t9", "amount": "5", "currency": "USD" }),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("money.currency_mismatch"))
    );
    let (status, body) = get(&node.url("/v1/subscribers/4940999999/balance"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("subscriber.unknown"))
    );
    let (status, body) = get(&node.url("/v1/nowhere"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("route.unknown"))
    );
    let (_, balance) = get(&node.url(&format!("/v1/subscribers/{pre}/balance")));
    assert_eq!(
        balance["balance"]["amount"], "9.7600",
        "refused requests changed nothing"
    );

    // Metrics.
    let metrics = ureq::get(&node.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    // 8 records posted: 1 rated, 1 + 2 duplicates, 2 + 2 suspended (unknown subscriber, bad time).
    assert!(
        metrics.contains("tollgate_ingest_cdrs_total{outcome=\"suspended\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_ingest_cdrs_total{outcome=\"rated\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_actors_mailbox_messages 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_sessions_requests_total"),
        "{metrics}"
    );

    // Graceful stop on SIGTERM; a restart recovers the durable state.
    assert!(terminate(&mut child).success());
    let mut child = node.start();
    let (_, balance) = get(&node.url(&format!("/v1/subscribers/{pre}/balance")));
    assert_eq!(balance["balance"]["amount"], "9.7600");
    assert!(terminate(&mut child).success());
}

fn usage_spec() -> serde_json::Value {
    json!({ "service": "voice", "callee": "4915112345" })
}
