//! Collections (dunning) end to end through the API of a real node process whose clock is
//! driven by the test (`[node] test_clock_enabled`): no sleeping through pay-by dates.
//!
//! The acceptance scenario, worked out by hand. Day d is 2026-01-01 + d days. Two customers
//! each get an invoice of 100.00 EUR on day 0 (December's fee, no tax) with a pay-by date on day
//! 10 (policy: pay by 10 days after issue). The policy's steps, counted from the due date:
//! +5 SMS (day 15), +15 penalty 2 % (day 25: 2 % of 100.00 = 2.00), +30 suspend (day 40), +60
//! disconnect (day 70). A collection run is started every day from day 11 to day 72.
//! - Dora never pays: SMS day 15, penalty 2.00 day 25, suspended day 40, disconnected day 70.
//! - Emil pays 102.00 on day 41 (invoice 100.00 + penalty 2.00): the case is settled, the
//!   suspension lifted, his subscription active again, and nothing happens on day 70.
//!
//! Every step is applied exactly once (per-run step counts add up to 2 SMS, 2 penalties, 2
//! suspensions and 1 disconnection), reservations are refused with `account.barred` while
//! suspended, and bad requests (future collection date, wrong currency, another customer's
//! invoice, a refund above the payment, a card number) are refused with nothing applied.
//! Afterwards: an over-payment kept as credit and refunded, the transfer reversed (the invoice
//! owes again, the statement shows it), and a top-up through the payments API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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

const DORA: &str = "4930111111";
const EMIL: &str = "4930222222";

fn put(url: &str, body: Value) -> (u16, Value) {
    call("PUT", url, Some(ADMIN_TOKEN), Some(body))
}

fn day(d: i64) -> String {
    let date = jiff::civil::date(2026, 1, 1)
        .checked_add(jiff::Span::new().days(d))
        .unwrap();
    date.to_string()
}

fn set_clock(node: &NodeFiles, d: i64) {
    let (status, body) = put(
        &node.url("/v1/test/clock"),
        json!({"now": format!("{}T08:00:00Z", day(d))}),
    );
    assert_eq!(status, 200, "{body}");
}

fn setup() -> Value {
    json!({
        "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
        "price_list": {"id": "eur", "items": {
            "line": {"code": "line", "name": "Business line", "kind": {"recurring": {"timing": "in_arrears"}},
                     "category": "fee", "tax_category": "telecom", "prices": {"EUR": "100.00"}}
        }},
        "tax_scheme": {"id": "none", "rates": [
            {"category": "telecom", "jurisdiction": "DE", "code": "EX", "rate": "0"},
            {"category": "usage", "jurisdiction": "DE", "code": "EX", "rate": "0"}
        ]},
        "dunning_policies": [{
            "id": "standard", "name": "Standard", "credit_classes": [], "pay_by_days": 10,
            "steps": [
                {"id": "sms", "after_days": 5, "action": {"type": "notify", "channel": "sms",
                 "template": "Dear {customer}, invoice {invoice} of {amount} {currency} was due on {due_on}."}},
                {"id": "penalty", "after_days": 15, "action": {"type": "penalty", "value": {"percent": "2"}}},
                {"id": "suspend", "after_days": 30, "action": {"type": "suspend"}},
                {"id": "disconnect", "after_days": 60, "action": {"type": "disconnect"}}
            ]
        }]
    })
}

fn created(answer: (u16, Value)) {
    assert!(answer.0 == 201 || answer.0 == 200, "{}", answer.1);
}

fn customer_with_line(node: &NodeFiles, name: &str, subscriber: &str) {
    let address = json!({"lines": ["Main St 1"], "city": "Berlin", "country": "DE"});
    created(post(
        &node.url("/v1/customers"),
        json!({"id": name, "person": {"type": "physical", "first_name": name, "last_name": "Test"},
               "phone": format!("+{subscriber}"), "registration_address": address}),
    ));
    created(post(
        &node.url("/v1/accounts"),
        json!({"id": format!("{name}-1"), "customer": name, "currency": "EUR",
               "bill_cycle": "monthly", "tax_jurisdiction": "DE", "responsibility": "self_paying"}),
    ));
    let sub = format!("s-{name}");
    created(post(
        &node.url("/v1/subscriptions"),
        json!({"id": sub, "account": format!("{name}-1"), "product": "line", "on": "2025-12-01",
               "subscriber": subscriber, "charges": [{"item": "line"}]}),
    ));
    let (status, body) = post(
        &node.url(&format!("/v1/subscriptions/{sub}/status")),
        json!({"status": "active", "on": "2025-12-01"}),
    );
    assert_eq!(status, 200, "{body}");
}

fn wait_finished(node: &NodeFiles, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, view) = get(&node.url(path));
        assert_eq!(status, 200, "{view}");
        if view["run"]["state"] == "finished" {
            return view;
        }
        assert!(Instant::now() < deadline, "run not finished: {view}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn receivables(node: &NodeFiles, account: &str) -> Value {
    let (status, body) = get(&node.url(&format!("/v1/accounts/{account}/receivables")));
    assert_eq!(status, 200, "{body}");
    body
}

fn subscription_status(node: &NodeFiles, id: &str) -> String {
    let (status, body) = get(&node.url(&format!("/v1/subscriptions/{id}")));
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().unwrap_or_default().to_string()
}

/// The subscription's status once it is `want`, or whatever it is after `within`.
fn status_within(node: &NodeFiles, id: &str, want: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let status = subscription_status(node, id);
        if status == want || Instant::now() >= deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A reservation of 60 s of voice; answers (status, error code or "granted").
fn reserve(node: &NodeFiles, subscriber: &str, request: &str) -> (u16, String) {
    let usage =
        json!({"service": "voice", "callee": "4915112345", "start": "2026-02-10T10:00:00Z"});
    let (status, body) = post(
        &node.url(&format!("/v1/sessions/{request}/reserve")),
        json!({"subscriber": subscriber, "request_id": request, "usage": usage, "requested_units": 60}),
    );
    let code = body["error"]["code"]
        .as_str()
        .map_or_else(|| "granted".to_string(), str::to_string);
    (status, code)
}

fn error_code(answer: &(u16, Value)) -> (u16, String) {
    (
        answer.0,
        answer.1["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn dunning_follows_the_policy_day_by_day_and_a_payment_resumes_service() {
    let node = NodeFiles::new(SUBSCRIBERS);
    node.enable_test_clock();
    node.append_config("[finance]\nnotifications_interval_ms = 100\n");
    let _process = node.start();

    set_clock(&node, 0);
    let (status, body) = put(&node.url("/v1/billing/setup"), setup());
    assert_eq!(status, 200, "{body}");
    customer_with_line(&node, "dora", DORA);
    customer_with_line(&node, "emil", EMIL);

    // Day 0: December is billed: 100.00 each, due on day 10.
    let (status, run) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2025-12", "key": "dec"}),
    );
    assert_eq!(status, 201, "{run}");
    let id = run["run"]["id"].as_str().unwrap().to_string();
    wait_finished(&node, &format!("/v1/bill-runs/{id}"));
    for account in ["dora-1", "emil-1"] {
        let r = receivables(&node, account);
        let invoice = &r["invoices"][0];
        assert_eq!(invoice["total"]["amount"], "100.00", "{r}");
        assert_eq!(invoice["due_on"], day(10), "{r}");
        assert_eq!(r["outstanding"]["amount"], "100.00", "{r}");
    }
    let dora_invoice = receivables(&node, "dora-1")["invoices"][0]["invoice"]
        .as_str()
        .unwrap()
        .to_string();

    // Not overdue yet on day 10 (the due date itself): a run finds nobody.
    set_clock(&node, 10);
    let (status, run) = post(&node.url("/v1/collection-runs"), json!({"key": "day-10"}));
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["run"]["total"], 0, "{run}");

    // A collection run dated after today is refused.
    let refused = post(
        &node.url("/v1/collection-runs"),
        json!({"key": "future", "as_of": day(11)}),
    );
    assert_eq!(
        error_code(&refused),
        (422, "collection.future_date".into()),
        "{}",
        refused.1
    );

    let mut steps_on: BTreeMap<i64, Value> = BTreeMap::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for d in 11..=72 {
        set_clock(&node, d);
        if d == 41 {
            // Emil pays invoice + penalty by bank transfer (ACH) on day 41.
            let (status, paid) = post(
                &node.url("/v1/payments"),
                json!({"key": "emil-pay-1", "account": "emil-1", "amount": "102.00",
                       "currency": "EUR", "method": {"type": "ach", "reference": "TRX-41"}}),
            );
            assert_eq!(status, 201, "{paid}");
            assert_eq!(paid["unallocated"]["amount"], "0.00", "{paid}");
            let r = receivables(&node, "emil-1");
            assert_eq!(r["outstanding"]["amount"], "0.00", "{r}");
            assert_eq!(r["service"]["suspended"], false, "{r}");
            assert_eq!(subscription_status(&node, "s-emil"), "active");
            assert_eq!(reserve(&node, EMIL, "emil-41"), (200, "granted".into()));
            // The same key again: the same payment, nothing new.
            let (status, again) = post(
                &node.url("/v1/payments"),
                json!({"key": "emil-pay-1", "account": "emil-1", "amount": "102.00",
                       "currency": "EUR", "method": {"type": "ach", "reference": "TRX-41"}}),
            );
            assert_eq!(
                (status, &again["payment"]["id"]),
                (200, &paid["payment"]["id"])
            );
        }
        let (status, run) = post(
            &node.url("/v1/collection-runs"),
            json!({"key": format!("day-{d}")}),
        );
        assert_eq!(status, 201, "{run}");
        let id = run["run"]["id"].as_str().unwrap().to_string();
        let view = wait_finished(&node, &format!("/v1/collection-runs/{id}"));
        assert_eq!(view["run"]["failed"], 0, "{view}");
        let steps = view["run"]["steps"].clone();
        for (action, n) in steps.as_object().unwrap() {
            *totals.entry(action.clone()).or_default() += n.as_u64().unwrap();
        }
        if !steps.as_object().unwrap().is_empty() {
            steps_on.insert(d, steps);
        }
        match d {
            25 => {
                // 100.00 + 2 % = 102.00 owed by both.
                for account in ["dora-1", "emil-1"] {
                    let r = receivables(&node, account);
                    assert_eq!(r["outstanding"]["amount"], "102.00", "{r}");
                    assert_eq!(r["invoices"][0]["charges"]["amount"], "2.00", "{r}");
                }
            }
            40 => {
                for (sub, subscriber) in [("s-dora", DORA), ("s-emil", EMIL)] {
                    // An item is done once its decision is durable; service follows right
                    // after (converge), so the run can read finished a moment before.
                    assert_eq!(
                        status_within(&node, sub, "suspended", Duration::from_secs(10)),
                        "suspended"
                    );
                    assert_eq!(
                        reserve(&node, subscriber, &format!("{sub}-40")),
                        (403, "account.barred".into())
                    );
                }
            }
            _ => {}
        }
    }
    // Each step once, on its day.
    let expected: BTreeMap<i64, Value> = [
        (15, json!({"notify": 2})),
        (25, json!({"penalty": 2})),
        (40, json!({"suspend": 2})),
        (70, json!({"disconnect": 1})),
    ]
    .into_iter()
    .collect();
    assert_eq!(steps_on, expected);
    assert_eq!(
        totals,
        [
            ("disconnect", 1),
            ("notify", 2),
            ("penalty", 2),
            ("suspend", 2)
        ]
        .into_iter()
        .map(|(a, n)| (a.to_string(), n))
        .collect()
    );
    assert_eq!(
        status_within(&node, "s-dora", "deactivated", Duration::from_secs(10)),
        "deactivated"
    );
    assert_eq!(subscription_status(&node, "s-emil"), "active");
    assert_eq!(reserve(&node, DORA, "dora-72").1, "account.barred");
    assert_eq!(reserve(&node, EMIL, "emil-72"), (200, "granted".into()));
    let dora = receivables(&node, "dora-1");
    assert_eq!(dora["service"]["disconnected"], true, "{dora}");
    assert_eq!(dora["outstanding"]["amount"], "102.00", "{dora}");

    // The SMS reminders went out through the outbox (file adapter) with the rendered text.
    let deadline = Instant::now() + Duration::from_secs(10);
    let sent = loop {
        let path = node.dir.path().join("data/notifications.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= 2 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(sent.lines().count(), 2, "{sent}");
    assert!(
        sent.contains(&format!(
            "Dear dora Test, invoice {dora_invoice} of 100.00 EUR was due on {}.",
            day(10)
        )),
        "{sent}"
    );
    let (_, notes) = get(&node.url("/v1/accounts/dora-1/notifications"));
    assert!(notes[0]["delivered_at"].is_string(), "{notes}");

    // Emil's statement: invoice 100.00, penalty 2.00, payment 102.00; closing balance 0.
    let (status, statement) = get(&node.url("/v1/accounts/emil-1/statement"));
    assert_eq!(status, 200, "{statement}");
    let lines: Vec<(String, String, String, String)> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["debit"]["amount"].as_str().unwrap().to_string(),
                l["credit"]["amount"].as_str().unwrap().to_string(),
                l["balance"]["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let line = |k: &str, d: &str, c: &str, b: &str| {
        (k.to_string(), d.to_string(), c.to_string(), b.to_string())
    };
    assert_eq!(
        lines,
        vec![
            line("invoice", "100.00", "0.00", "100.00"),
            line("penalty", "2.00", "0.00", "102.00"),
            line("payment", "0.00", "102.00", "0.00"),
        ],
        "{statement}"
    );

    // Bad payments change nothing.
    let bad = |body: Value, status: u16, code: &str| {
        let answer = post(&node.url("/v1/payments"), body);
        assert_eq!(
            error_code(&answer),
            (status, code.to_string()),
            "{}",
            answer.1
        );
    };
    bad(
        json!({"key": "usd", "account": "emil-1", "amount": "10.00", "currency": "USD",
               "method": {"type": "cash"}, "cashier": "desk-1"}),
        422,
        "payment.currency_mismatch",
    );
    bad(
        json!({"key": "foreign", "account": "emil-1", "amount": "10.00", "currency": "EUR",
               "method": {"type": "cash"}, "cashier": "desk-1",
               "allocations": [{"invoice": dora_invoice, "amount": "10.00"}]}),
        422,
        "payment.foreign_invoice",
    );
    bad(
        json!({"key": "pan", "account": "emil-1", "amount": "10.00", "currency": "EUR",
               "method": {"type": "card", "token": "4111 1111 1111 1111"}}),
        422,
        "payment.card_number_refused",
    );
    bad(
        json!({"key": "cash", "account": "emil-1", "amount": "10.00", "currency": "EUR",
               "method": {"type": "cash"}}),
        422,
        "payment.method_details",
    );
    bad(
        json!({"key": "later", "account": "emil-1", "amount": "10.00", "currency": "EUR",
               "method": {"type": "advance"}, "received_on": day(90)}),
        422,
        "payment.future_date",
    );
    let pay_id = receivables(&node, "emil-1");
    assert_eq!(pay_id["credit"]["amount"], "0.00", "{pay_id}");
    let (_, payments) = get(&node.url("/v1/accounts/emil-1/payments"));
    assert_eq!(payments.as_array().unwrap().len(), 1, "{payments}");
    let payment = payments[0]["payment"]["id"].as_str().unwrap().to_string();
    let refused = post(
        &node.url(&format!("/v1/payments/{payment}/refunds")),
        json!({"key": "too-much", "amount": "102.01", "currency": "EUR", "reason": "test"}),
    );
    assert_eq!(
        error_code(&refused),
        (422, "refund.exceeds_payment".into()),
        "{}",
        refused.1
    );
    let r = receivables(&node, "emil-1");
    assert_eq!(r["outstanding"]["amount"], "0.00", "{r}");

    // An over-payment stays as credit and can be refunded (once per key).
    let (status, over) = post(
        &node.url("/v1/payments"),
        json!({"key": "emil-cash-1", "account": "emil-1", "amount": "5.00", "currency": "EUR",
               "method": {"type": "cash"}, "cashier": "desk-7"}),
    );
    assert_eq!(status, 201, "{over}");
    assert_eq!(over["payment"]["cashier"], "desk-7");
    assert_eq!(over["unallocated"]["amount"], "5.00", "{over}");
    assert_eq!(receivables(&node, "emil-1")["credit"]["amount"], "5.00");
    let cash = over["payment"]["id"].as_str().unwrap().to_string();
    let refund = json!({"key": "emil-refund-1", "amount": "5.00", "currency": "EUR",
                        "reason": "paid twice at the desk"});
    let (status, refunded) = post(
        &node.url(&format!("/v1/payments/{cash}/refunds")),
        refund.clone(),
    );
    assert_eq!(status, 201, "{refunded}");
    let (status, _) = post(&node.url(&format!("/v1/payments/{cash}/refunds")), refund);
    assert_eq!(status, 200, "the same refund key answers the same refund");
    assert_eq!(receivables(&node, "emil-1")["credit"]["amount"], "0.00");

    // The 102.00 transfer is recalled by the bank: reversed, the invoice owes again.
    let (status, reversed) = post(
        &node.url(&format!("/v1/payments/{payment}/reversal")),
        json!({"reason": "recalled by the bank"}),
    );
    assert_eq!(status, 200, "{reversed}");
    assert_eq!(reversed["payment"]["state"], "reversed", "{reversed}");
    let r = receivables(&node, "emil-1");
    assert_eq!(r["outstanding"]["amount"], "102.00", "{r}");
    let (_, statement) = get(&node.url("/v1/accounts/emil-1/statement"));
    assert_eq!(
        statement["closing_balance"]["amount"], "102.00",
        "{statement}"
    );
    let kinds: Vec<&str> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "invoice",
            "penalty",
            "payment",
            "payment_reversal",
            "refund",
            "payment"
        ],
        "{statement}"
    );

    // A prepaid-style top-up through the payments API goes to the subscriber's balance.
    let (status, top_up) = post(
        &node.url("/v1/payments"),
        json!({"key": "shop-1", "subscriber": EMIL, "amount": "20.00", "currency": "EUR",
               "method": {"type": "voucher", "code": "V-123"}}),
    );
    assert_eq!(status, 201, "{top_up}");
    assert!(
        top_up["top_up"]["balance"]["amount"].is_string(),
        "{top_up}"
    );
}
