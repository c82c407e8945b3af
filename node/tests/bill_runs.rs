//! Bill runs on the embedded job queue, through the API of a real node process: a 3-level
//! hierarchy billed to its head office with a section per location (usage from rated CDRs,
//! prorated fees, taxes), a discount, a payer that cannot be billed (no tax rate: dead-lettered
//! with its reason while the rest of the run finishes), idempotency by key and by period, bad
//! requests, and the printable invoice and document pack. Every amount is worked out by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

/// A postpaid subscriber of the example catalogue: an SMS costs 0.09 EUR.
const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"
"#;

fn put(url: &str, body: Value) -> (u16, Value) {
    call("PUT", url, Some(ADMIN_TOKEN), Some(body))
}

fn setup(with_xx: bool) -> Value {
    let mut rates = vec![
        json!({"category": "telecom", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"}),
        json!({"category": "usage", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"}),
    ];
    if with_xx {
        rates.push(
            json!({"category": "telecom", "jurisdiction": "XX", "code": "XX10", "rate": "0.10"}),
        );
    }
    json!({
        "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
        "price_list": {"id": "eur", "items": {
            "fee": {"code": "fee", "name": "Office line", "kind": {"recurring": {"timing": "in_arrears"}},
                    "category": "fee", "tax_category": "telecom", "prices": {"EUR": "10.00"}}
        }},
        "discounts": [{"id": "loyal", "name": "Loyalty 10%", "value": {"percentage": {"percent": "10"}},
                       "scope": "subscription"}],
        "tax_scheme": {"id": "vat", "rates": rates},
        "invoice_number_template": "INV-{yyyy}-{seq:06}"
    })
}

fn created(answer: (u16, Value)) {
    assert!(answer.0 == 201 || answer.0 == 200, "{}", answer.1);
}

fn customer(node: &NodeFiles, id: &str, person: Value) {
    let address = json!({"lines": ["Main St 1"], "city": "Berlin", "country": "DE"});
    created(post(
        &node.url("/v1/customers"),
        json!({"id": id, "person": person, "registration_address": address}),
    ));
}

fn account(node: &NodeFiles, id: &str, customer: &str, parent: Option<&str>, jurisdiction: &str) {
    let responsibility = if parent.is_some() {
        "paid_by_parent"
    } else {
        "self_paying"
    };
    created(post(
        &node.url("/v1/accounts"),
        json!({"id": id, "customer": customer, "parent": parent, "currency": "EUR",
               "bill_cycle": "monthly", "tax_jurisdiction": jurisdiction,
               "responsibility": responsibility}),
    ));
}

fn subscription(
    node: &NodeFiles,
    id: &str,
    account: &str,
    subscriber: Option<&str>,
    on: &str,
    discounts: &[&str],
) {
    let mut body = json!({"id": id, "account": account, "product": "office", "on": on,
                          "charges": [{"item": "fee"}], "discounts": discounts});
    if let Some(s) = subscriber {
        body["subscriber"] = json!(s);
    }
    created(post(&node.url("/v1/subscriptions"), body));
    let (status, body) = post(
        &node.url(&format!("/v1/subscriptions/{id}/status")),
        json!({"status": "active", "on": on}),
    );
    assert_eq!(status, 200, "{body}");
}

fn sms(id: &str, start: &str) -> Value {
    json!({"id": id, "subscriber": "4930111111", "service": "sms", "direction": "outbound",
           "callee": "4915112345", "start": start})
}

/// Polls a run until it is finished.
fn finished(node: &NodeFiles, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, view) = get(&node.url(&format!("/v1/bill-runs/{id}")));
        assert_eq!(status, 200, "{view}");
        if view["run"]["state"] == "finished" {
            return view;
        }
        assert!(Instant::now() < deadline, "run not finished: {view}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn invoices(node: &NodeFiles, query: &str) -> Vec<Value> {
    let (status, page) = get(&node.url(&format!("/v1/invoices?{query}")));
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// GETs a text answer (HTML) as the bootstrap admin.
fn get_text(url: &str) -> (u16, String) {
    let answer = ureq::get(url)
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call();
    match answer {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{e}"),
    }
}

fn amount(v: &Value) -> &str {
    v["amount"]
        .as_str()
        .unwrap_or_else(|| panic!("no amount in {v}"))
}

#[test]
fn a_bill_run_bills_a_hierarchy_once_and_dead_letters_what_it_cannot_bill() {
    let node = NodeFiles::new(SUBSCRIBERS);
    let _process = node.start();
    let (status, body) = put(&node.url("/v1/billing/setup"), setup(false));
    assert_eq!(status, 200, "{body}");
    customer(
        &node,
        "acme",
        json!({"type": "juridical", "legal_name": "ACME GmbH", "registration_number": "HRB 1"}),
    );
    customer(
        &node,
        "bob",
        json!({"type": "physical", "first_name": "Bob", "last_name": "Stone"}),
    );
    customer(
        &node,
        "xeno",
        json!({"type": "physical", "first_name": "Xeno", "last_name": "Far"}),
    );
    // Head office -> region -> location; the location's line has the subscriber.
    account(&node, "acme-hq", "acme", None, "DE");
    account(&node, "acme-north", "acme", Some("acme-hq"), "DE");
    account(&node, "acme-north-1", "acme", Some("acme-north"), "DE");
    account(&node, "bob-1", "bob", None, "DE");
    account(&node, "xeno-1", "xeno", None, "XX"); // no tax rate for XX yet
    subscription(&node, "s-hq", "acme-hq", None, "2026-09-01", &[]);
    subscription(
        &node,
        "s-n1",
        "acme-north-1",
        Some("4930111111"),
        "2026-10-16",
        &[],
    );
    subscription(&node, "s-bob", "bob-1", None, "2026-09-01", &["loyal"]);
    subscription(&node, "s-xeno", "xeno-1", None, "2026-09-01", &[]);
    // Three SMS in October (0.09 each), one in November (another period).
    let (status, answer) = post(
        &node.url("/v1/cdrs"),
        json!([
            sms("o1", "2026-10-16T10:00:00Z"),
            sms("o2", "2026-10-20T10:00:00Z"),
            sms("o3", "2026-10-31T23:59:59Z"),
            sms("n1", "2026-11-01T00:00:00Z"),
        ]),
    );
    assert_eq!((status, &answer["rated"]), (200, &json!(4)), "{answer}");

    // Bad requests change nothing.
    let bad = |body: Value, status: u16, code: &str| {
        let (s, b) = post(&node.url("/v1/bill-runs"), body);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{b}"
        );
    };
    bad(
        json!({"cycle": "weekly", "period": "2026-10", "key": "k"}),
        404,
        "billing.unknown_cycle",
    );
    bad(
        json!({"cycle": "monthly", "period": "2099-01", "key": "k"}),
        422,
        "billing.period_not_ended",
    );
    bad(
        json!({"cycle": "monthly", "period": "2026-10", "key": ""}),
        422,
        "billing.bad_key",
    );
    let (_, runs) = get(&node.url("/v1/bill-runs"));
    assert_eq!(runs["items"].as_array().unwrap().len(), 0, "{runs}");

    let (status, started) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2026-10", "key": "oct-2026"}),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        started["run"]["total"], 3,
        "three top-level payers: {started}"
    );
    let view = finished(&node, &id);
    assert_eq!(
        (
            &view["run"]["billed"],
            &view["run"]["failed"],
            &view["run"]["already_billed"]
        ),
        (&json!(2), &json!(1), &json!(0)),
        "{view}"
    );
    assert_eq!(view["failures"][0]["payer"], "xeno-1", "{view}");
    assert_eq!(
        view["failures"][0]["reason"], "billing.no_tax_rate",
        "{view}"
    );

    // ACME: sections hq (10.00), north (nothing), north-1 (fee 10.00 x 16/31 days = 5.16,
    // SMS 3 x 0.09 = 0.27). Subtotal 15.43; VAT 19 % on telecom 15.16 = 2.8804 -> 2.88 and on
    // usage 0.27 = 0.0513 -> 0.05: tax 2.93; total due 18.36.
    let acme = invoices(&node, "payer=acme-hq");
    assert_eq!(acme.len(), 1, "{acme:?}");
    let inv = &acme[0]["draft"];
    let sections: Vec<(&str, u64)> = inv["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["account"].as_str().unwrap(), s["depth"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        sections,
        [("acme-hq", 0), ("acme-north", 1), ("acme-north-1", 2)],
        "{inv}"
    );
    assert_eq!(amount(&inv["sections"][0]["total"]), "10.00", "{inv}");
    let n1 = &inv["sections"][2];
    assert_eq!(amount(&n1["fees"][0]["amount"]), "5.16", "{n1}");
    assert_eq!(
        (
            n1["usage"][0]["service"].as_str(),
            n1["usage"][0]["events"].as_u64()
        ),
        (Some("sms"), Some(3))
    );
    assert_eq!(amount(&n1["usage"][0]["amount"]), "0.27", "{n1}");
    assert_eq!(amount(&inv["totals"]["subtotal"]), "15.43", "{inv}");
    assert_eq!(amount(&inv["totals"]["tax"]), "2.93", "{inv}");
    assert_eq!(amount(&inv["totals"]["gross"]), "18.36", "{inv}");
    assert_eq!(inv["totals"]["gross"]["minor"], 1836);
    // Bob: 10.00 - 10 % = 9.00; VAT 1.71; 10.71.
    let bob = invoices(&node, "payer=bob-1");
    assert_eq!(
        amount(&bob[0]["draft"]["totals"]["gross"]),
        "10.71",
        "{bob:?}"
    );
    let numbers: BTreeSet<String> = invoices(&node, "")
        .iter()
        .map(|i| i["number"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        numbers,
        BTreeSet::from(["INV-2026-000001".to_string(), "INV-2026-000002".to_string()]),
        "numbered without gaps"
    );

    // The same key again: the same run, nothing new.
    let (status, again) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2026-10", "key": "oct-2026"}),
    );
    assert_eq!(
        (status, again["run"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    let (status, reused) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2026-09", "key": "oct-2026"}),
    );
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (409, Some("billing.key_reused")),
        "{reused}"
    );

    // Fix the tax scheme, run again under a new key: only the failed payer is billed now
    // (10.00 + 10 % = 11.00).
    let mut fixed = setup(true);
    fixed["version"] = json!(1);
    let (status, body) = put(&node.url("/v1/billing/setup"), fixed);
    assert_eq!(status, 200, "{body}");
    let (status, retry) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2026-10", "key": "oct-2026-retry"}),
    );
    assert_eq!(status, 201, "{retry}");
    let view = finished(&node, retry["run"]["id"].as_str().unwrap());
    assert_eq!(
        (
            &view["run"]["billed"],
            &view["run"]["already_billed"],
            &view["run"]["failed"]
        ),
        (&json!(1), &json!(2), &json!(0)),
        "{view}"
    );
    let xeno = invoices(&node, "payer=xeno-1");
    assert_eq!(xeno[0]["number"], "INV-2026-000003");
    assert_eq!(amount(&xeno[0]["draft"]["totals"]["gross"]), "11.00");
    assert_eq!(
        invoices(&node, "").len(),
        3,
        "every payer invoiced exactly once"
    );

    // Printable forms.
    let number = acme[0]["number"].as_str().unwrap();
    let (status, html) = get_text(&node.url(&format!("/v1/invoices/{number}/html")));
    assert_eq!(status, 200);
    assert!(
        html.contains("ACME GmbH") && html.contains("18.36 EUR") && html.contains(number),
        "{html}"
    );
    let (status, pack) =
        get_text(&node.url("/v1/customers/acme/documents?period_start=2026-10-01"));
    assert_eq!(status, 200);
    assert!(
        pack.contains(number) && !pack.contains("INV-2026-000003"),
        "{pack}"
    );
    // Every job outcome is counted.
    let (_, metrics) = get_text(&node.url("/metrics"));
    for (outcome, n) in [("billed", 3), ("already_billed", 2), ("failed", 1)] {
        let line = format!("tollgate_billing_items_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in {metrics}");
    }
    assert!(
        metrics.contains("tollgate_billing_runs_total 2"),
        "{metrics}"
    );
    // A subscription to an item without a price in the account's currency is refused.
    account(&node, "bob-usd", "bob", None, "DE");
    let (status, body) = call(
        "PUT",
        &node.url("/v1/accounts/bob-usd"),
        Some(ADMIN_TOKEN),
        Some(
            json!({"customer": "bob", "currency": "USD", "bill_cycle": "monthly",
                    "tax_jurisdiction": "DE", "responsibility": "self_paying"}),
        ),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &node.url("/v1/subscriptions"),
        json!({"id": "s-usd", "account": "bob-usd", "product": "office", "on": "2026-09-01",
               "charges": [{"item": "fee"}]}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("billing.no_price_list")),
        "{body}"
    );
    let (status, body) = get(&node.url("/v1/invoices/INV-1999-000001"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("billing.unknown_invoice"))
    );
}
