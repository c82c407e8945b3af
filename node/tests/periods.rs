//! Financial periods and rerating into a closed period, through the API of a real node.
//!
//! - Closing October with un-billed usage is refused (409, with the payers listed); a partial
//!   close of the account without usage goes through; after the bill run the close finishes.
//! - Permissions: a user whose role lacks `period.close` cannot close, one whose role has
//!   `period.close` but not `period.reopen` cannot reopen; reopening needs a reason; every
//!   change is in the audit trail with the period before and after.
//! - Forcing a close over un-billed usage needs a reason and records the payers it went over.
//! - Rerating October's SMS after a backdated price correction (0.09 -> 0.05) into the closed
//!   period books a credit note in November referencing the invoice, which stays byte for byte
//!   as issued. By hand: 3 SMS, old 0.27, new 0.15: line -0.12; VAT 19 % of -0.12 = -0.0228,
//!   rounded half-up to -0.02; the note's total is -0.14. The same job again books nothing new.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"
"#;
const ANN: &str = "4930111111";

fn put(url: &str, body: Value) -> (u16, Value) {
    call("PUT", url, Some(ADMIN_TOKEN), Some(body))
}

fn as_user(token: &str, url: &str, body: Value) -> (u16, Value) {
    call("POST", url, Some(token), Some(body))
}

fn created(answer: (u16, Value)) {
    assert!(answer.0 == 201 || answer.0 == 200, "{}", answer.1);
}

fn sms(id: &str, start: &str) -> Value {
    json!({"id": id, "subscriber": ANN, "service": "sms", "direction": "outbound",
           "callee": "4915112345", "start": start})
}

fn user_token(node: &NodeFiles, name: &str, roles: &[&str]) -> String {
    created(post(
        &node.url("/v1/users"),
        json!({"name": name, "roles": roles}),
    ));
    let (status, body) = post(
        &node.url(&format!("/v1/users/{name}/tokens")),
        json!({"label": format!("{name} token")}),
    );
    assert_eq!(status, 201, "{body}");
    body["secret"].as_str().unwrap().to_string()
}

fn customer_with_line(node: &NodeFiles, name: &str, subscriber: Option<&str>) {
    let address = json!({"lines": ["Main St 1"], "city": "Berlin", "country": "DE"});
    created(post(
        &node.url("/v1/customers"),
        json!({"id": name, "person": {"type": "physical", "first_name": name, "last_name": "Test"},
               "registration_address": address}),
    ));
    created(post(
        &node.url("/v1/accounts"),
        json!({"id": format!("{name}-1"), "customer": name, "currency": "EUR",
               "bill_cycle": "monthly", "tax_jurisdiction": "DE", "responsibility": "self_paying"}),
    ));
    let sub = format!("s-{name}");
    let mut body = json!({"id": sub, "account": format!("{name}-1"), "product": "line",
                          "on": "2026-09-01", "charges": [{"item": "fee"}]});
    if let Some(s) = subscriber {
        body["subscriber"] = json!(s);
    }
    created(post(&node.url("/v1/subscriptions"), body));
    let (status, body) = post(
        &node.url(&format!("/v1/subscriptions/{sub}/status")),
        json!({"status": "active", "on": "2026-09-01"}),
    );
    assert_eq!(status, 200, "{body}");
}

fn code(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"]["code"].as_str().unwrap_or(""))
}

/// The invoice as served, byte for byte.
fn invoice_bytes(node: &NodeFiles, number: &str) -> Vec<u8> {
    let response = ureq::get(&node.url(&format!("/v1/invoices/{number}")))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
    bytes
}

#[test]
fn periods_close_partially_then_fully_reopen_with_a_reason_and_rerating_books_a_credit_note() {
    let node = NodeFiles::new(SUBSCRIBERS);
    let _process = node.start();
    let (status, body) = put(
        &node.url("/v1/billing/setup"),
        json!({
            "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
            "price_list": {"id": "eur", "items": {
                "fee": {"code": "fee", "name": "Line", "kind": {"recurring": {"timing": "in_arrears"}},
                        "category": "fee", "tax_category": "telecom", "prices": {"EUR": "10.00"}}}},
            "tax_scheme": {"id": "vat", "rates": [
                {"category": "telecom", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"},
                {"category": "usage", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"}]}
        }),
    );
    assert_eq!(status, 200, "{body}");
    customer_with_line(&node, "ann", Some(ANN));
    customer_with_line(&node, "bob", None);
    let (status, answer) = post(
        &node.url("/v1/cdrs"),
        json!([
            sms("o1", "2026-10-05T10:00:00Z"),
            sms("o2", "2026-10-15T10:00:00Z"),
            sms("o3", "2026-10-25T10:00:00Z"),
            sms("s1", "2026-09-20T10:00:00Z"),
        ]),
    );
    assert_eq!((status, &answer["rated"]), (200, &json!(4)), "{answer}");

    let care = user_token(&node, "carl", &["care"]);
    let (status, body) = put(
        &node.url("/v1/roles/closer"),
        json!({"description": "closes periods", "permissions": ["period.close", "billing.read"]}),
    );
    assert!(status == 200 || status == 201, "{body}");
    let closer = user_token(&node, "cleo", &["closer"]);
    let close = node.url("/v1/periods/2026-10/close");
    let reopen = node.url("/v1/periods/2026-10/reopen");

    // Permissions: care cannot close.
    let denied = as_user(&care, &close, json!({}));
    assert_eq!(code(&denied), (403, "auth.forbidden"), "{}", denied.1);

    // Un-billed usage refuses the close and lists the payer; nothing changes.
    let refused = post(&close, json!({}));
    assert_eq!(
        code(&refused),
        (409, "period.unbilled_usage"),
        "{}",
        refused.1
    );
    assert_eq!(refused.1["error"]["details"]["accounts"], json!(["ann-1"]));
    let (_, period) = get(&node.url("/v1/periods/2026-10"));
    assert_eq!(period["state"], "open", "{period}");

    // Bob has no usage: his account closes on its own.
    let (status, period) = as_user(
        &closer,
        &close,
        json!({"accounts": ["bob-1"], "reason": "bob done"}),
    );
    assert_eq!(status, 200, "{period}");
    assert_eq!(period["state"], "partially_closed");
    assert_eq!(period["closed"]["accounts"], json!(["bob-1"]));

    // Bill October, then finish the close.
    let (status, run) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2026-10", "key": "oct"}),
    );
    assert_eq!(status, 201, "{run}");
    let id = run["run"]["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, v) = get(&node.url(&format!("/v1/bill-runs/{id}")));
        if v["run"]["state"] == "finished" {
            assert_eq!(v["run"]["billed"], 2, "{v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, page) = get(&node.url("/v1/invoices?payer=ann-1"));
    let invoice = page["items"][0].clone();
    let number = invoice["number"].as_str().unwrap().to_string();
    // 10.00 + 0.27 + VAT 1.90 + 0.05 = 12.22.
    assert_eq!(
        invoice["draft"]["totals"]["gross"]["amount"], "12.22",
        "{invoice}"
    );
    let (status, period) = as_user(&closer, &close, json!({}));
    assert_eq!(status, 200, "{period}");
    assert_eq!(period["state"], "closed");
    let actions: Vec<&str> = period["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["partial_close", "close"]);
    let again = post(&close, json!({}));
    assert_eq!(code(&again), (409, "period.state"), "{}", again.1);

    // Reopening: needs `period.reopen` and a reason; audited.
    let denied = as_user(&closer, &reopen, json!({"reason": "fix"}));
    assert_eq!(code(&denied), (403, "auth.forbidden"), "{}", denied.1);
    let no_reason = post(&reopen, json!({"reason": "  "}));
    assert_eq!(
        code(&no_reason),
        (422, "period.reason_required"),
        "{}",
        no_reason.1
    );
    let (status, period) = post(
        &reopen,
        json!({"reason": "late adjustment from the auditors"}),
    );
    assert_eq!(status, 200, "{period}");
    assert_eq!(period["state"], "open");
    let (_, audit) = get(&node.url("/v1/audit?operation=period.reopen"));
    let record = &audit["items"][0];
    assert_eq!(record["principal"], "bootstrap", "{audit}");
    assert_eq!(record["target"], "period/2026-10");
    assert_eq!(record["before"]["state"], "closed");
    assert_eq!(record["after"]["state"], "open");
    assert_eq!(
        record["after"]["history"][2]["reason"],
        "late adjustment from the auditors"
    );
    let (_, audit) = get(&node.url("/v1/audit?operation=period.partial_close"));
    assert_eq!(audit["items"][0]["principal"], "cleo", "{audit}");
    let (status, period) = as_user(&closer, &close, json!({}));
    assert_eq!(
        (status, &period["state"]),
        (200, &json!("closed")),
        "{period}"
    );

    // September has un-billed usage: a forced close needs a reason and keeps the list.
    let september = node.url("/v1/periods/2026-09/close");
    let refused = post(&september, json!({"force": true}));
    assert_eq!(
        code(&refused),
        (422, "period.reason_required"),
        "{}",
        refused.1
    );
    let (status, forced) = post(
        &september,
        json!({"force": true, "reason": "migrated, billed elsewhere"}),
    );
    assert_eq!(status, 200, "{forced}");
    assert_eq!(forced["history"][0]["forced"], true);
    assert_eq!(forced["history"][0]["unbilled"], json!(["ann-1"]));

    // Rerate October into the closed period after a backdated SMS price correction.
    let before = invoice_bytes(&node, &number);
    let (_, draft) = post(
        &node.url("/v1/catalogue/drafts"),
        json!({"from_version": 1}),
    );
    let draft = draft["id"].as_str().unwrap().to_string();
    let plan_url = node.url(&format!(
        "/v1/catalogue/drafts/{draft}/items/plans/consumer-eur"
    ));
    let (_, mut plan) = get(&plan_url);
    let rules = plan["rules"].as_array_mut().unwrap();
    rules.iter_mut().find(|r| r["id"] == "sms").unwrap()["price"] = json!({"rate": "0.05"});
    let (status, body) = put(&plan_url, plan);
    assert_eq!(status, 200, "{body}");
    let (status, version) = post(
        &node.url(&format!("/v1/catalogue/drafts/{draft}/publish")),
        json!({"effective_from": "2026-10-01T00:00:00Z", "backdate": true, "notes": "SMS price"}),
    );
    assert_eq!(status, 201, "{version}");
    let job = json!({"key": "oct-sms", "subscribers": [ANN],
                     "from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"});
    let (status, answer) = post(&node.url("/v1/rerate"), job.clone());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], 3, "{answer}");
    let notes = answer["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{answer}");
    let note = &notes[0];
    assert_eq!(note["kind"], "credit");
    assert_eq!(note["invoice"], number.as_str());
    assert_eq!(
        note["booked_in"],
        jiff::Timestamp::now().strftime("%Y-%m").to_string()
    );
    assert_eq!(note["lines"][0]["service"], "sms");
    assert_eq!(note["lines"][0]["records"], 3);
    assert_eq!(note["lines"][0]["amount"]["amount"], "-0.12");
    assert_eq!(note["tax"]["amount"], "-0.02");
    assert_eq!(note["gross"]["amount"], "-0.14");
    assert!(
        note["reason"].as_str().unwrap().contains("period closed"),
        "{note}"
    );
    assert_eq!(
        invoice_bytes(&node, &number),
        before,
        "the closed invoice is unchanged"
    );

    // The same job again: the same note, no second one.
    let (status, replay) = post(&node.url("/v1/rerate"), job);
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["notes"][0]["number"], note["number"]);
    let (_, listed) = get(&node.url(&format!("/v1/credit-notes?invoice={number}")));
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // Ann's statement: the invoice and the credit note.
    let (status, statement) = get(&node.url("/v1/accounts/ann-1/statement"));
    assert_eq!(status, 200, "{statement}");
    assert_eq!(
        statement["closing_balance"]["amount"], "12.08",
        "{statement}"
    );
    let kinds: Vec<&str> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["invoice", "credit_note"], "{statement}");
}
