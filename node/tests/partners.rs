//! Partner settlement end to end on a real node (embedded store and job queue, test clock):
//! partners and agreements through the API, records shared in real time by the partner actors,
//! settlement runs, statements, reconciliation with the partner's own statement and a dispute.
//!
//! Hand-computed: 120 music tracks at 10.288 EUR make 1,234.56 of `music-plus` revenue in March
//! 2026; 30 % of it is 370.368, 370.37 on the statement (half-up, once per line). The partner
//! claims 380.00: the reconciliation shows 9.63, and the dispute is resolved by a credit note
//! of 9.63.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

const CATALOGUE: &str = r#"
[catalogue]
name = "Partner settlement test"
currency = "EUR"
timezone = "UTC"
charge_precision = 4
rounding = "half-up"

[[services]]
id = "content"
unit = "event"
[[services]]
id = "voice"
unit = "second"

[[plans]]
id = "music"
name = "Music tracks"
  [[plans.rules]]
  id = "track"
  service = "content"
  price = { rate = "10.288" }

[[plans]]
id = "talk"
name = "Talk"
  [[plans.rules]]
  id = "call"
  service = "voice"
  increments = "60/60"
  price = { rate = "0.0125" }

[[products]]
id = "music-plus"
name = "Music plus"
plans = ["music"]
partner_shares = [{ partner = "acme", percent = "30" }]

[[products]]
id = "talk"
name = "Talk"
plans = ["talk"]
partner_shares = [{ partner = "carrier-b", amount = "0.002", per = 60, services = ["voice"] }]
"#;

fn subscribers() -> String {
    let mut text = String::new();
    for i in 0..4 {
        text.push_str(&format!(
            "[[subscribers]]\nid = \"m{i}\"\nproducts = [\"music-plus\"]\ncurrency = \"EUR\"\n"
        ));
    }
    for i in 0..5 {
        text.push_str(&format!(
            "[[subscribers]]\nid = \"t{i}\"\nproducts = [\"talk\"]\ncurrency = \"EUR\"\n"
        ));
    }
    text
}

fn node() -> (NodeFiles, support::NodeProcess) {
    let node = NodeFiles::new(&subscribers());
    node.use_catalogue(CATALOGUE);
    node.enable_test_clock();
    let process = node.start();
    (node, process)
}

fn set_clock(node: &NodeFiles, at: &str) {
    let (status, body) = call(
        "PUT",
        &node.url("/v1/test/clock"),
        Some(ADMIN_TOKEN),
        Some(json!({"now": at})),
    );
    assert_eq!(status, 200, "{body}");
}

fn dec(v: &Value) -> Decimal {
    let text = v
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    Decimal::from_str(&text).unwrap_or_else(|_| panic!("not a decimal: {v}"))
}

fn amount(v: &Value) -> Decimal {
    // An `Amount` serialises as {"amount": "...", "currency": ".."} or a decimal string.
    match v.get("amount") {
        Some(a) => dec(a),
        None => dec(v),
    }
}

fn track(id: &str, subscriber: &str, start: &str) -> Value {
    json!({"id": id, "subscriber": subscriber, "service": "content", "direction": "outbound",
           "start": start})
}

fn call_cdr(id: &str, subscriber: &str, start: &str, seconds: u64) -> Value {
    json!({"id": id, "subscriber": subscriber, "service": "voice", "direction": "outbound",
           "callee": "4915112345", "start": start, "units": seconds})
}

fn ingest(node: &NodeFiles, records: &[Value]) -> Value {
    let (status, answer) = post(&node.url("/v1/cdrs"), json!(records));
    assert_eq!(status, 200, "{answer}");
    answer
}

fn wait_run(node: &NodeFiles, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, view) = get(&node.url(&format!("/v1/settlement-runs/{id}")));
        assert_eq!(status, 200, "{view}");
        if view["run"]["state"] == "finished" {
            return view;
        }
        assert!(Instant::now() < deadline, "run not finished: {view}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn create_partner(node: &NodeFiles, id: &str) {
    let (status, body) = post(
        &node.url("/v1/partners"),
        json!({"id": id, "legal_name": format!("{id} GmbH"),
               "contacts": [{"name": "Ada Settle", "email": format!("settle@{id}.example")}],
               "tax_id": "DE123456789", "bank_reference": "DE89 3704 0044 0532 0130 00"}),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn thirty_percent_of_a_month_reconciled_against_the_partners_claim_and_disputed() {
    let (node, _process) = node();
    set_clock(&node, "2026-03-01T08:00:00Z");
    create_partner(&node, "acme");
    let (status, body) = post(
        &node.url("/v1/partners"),
        json!({"id": "acme", "legal_name": "Again"}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("partner.exists")),
        "{body}"
    );
    let (status, body) = post(
        &node.url("/v1/partners"),
        json!({"id": "bad", "legal_name": ""}),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "partner.invalid", "{body}");

    // 20 tracks charged before any agreement exists: they wait in the inbox, nothing is lost.
    set_clock(&node, "2026-04-02T08:00:00Z");
    let mut tracks = Vec::new();
    for i in 0..120 {
        let day = 1 + i % 28;
        tracks.push(track(
            &format!("trk-{i:03}"),
            &format!("m{}", i % 4),
            &format!("2026-03-{day:02}T12:00:00Z"),
        ));
    }
    let answer = ingest(&node, &tracks[..20]);
    assert_eq!(answer["rated"], 20, "{answer}");
    let (status, position) = get(&node.url("/v1/partners/acme/position?period=2026-03"));
    assert_eq!(status, 200, "{position}");
    assert_eq!(position["waiting"], 20, "{position}");
    assert_eq!(position["agreement"], Value::Null, "{position}");

    // Bad agreements: not monthly; then the real one; then an overlapping one; then shares of
    // the same product above 100 % across partners.
    let terms =
        json!({"shares": [{"target": {"product": "music-plus"}, "value": {"percent": "30"}}]});
    let (status, body) = post(
        &node.url("/v1/partners/acme/agreements"),
        json!({"id": "agr-acme", "from": "2026-01-15", "currency": "EUR", "terms": terms}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("agreement.term_not_monthly")),
        "{body}"
    );
    let (status, body) = post(
        &node.url("/v1/partners/acme/agreements"),
        json!({"id": "agr-acme", "from": "2026-01-01", "currency": "EUR", "terms": terms}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &node.url("/v1/partners/acme/agreements"),
        json!({"id": "agr-acme-2", "from": "2026-03-01", "currency": "EUR", "terms": terms}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("partner.overlapping_agreement")),
        "{body}"
    );
    create_partner(&node, "rival");
    let (status, body) = post(
        &node.url("/v1/partners/rival/agreements"),
        json!({"id": "agr-rival", "from": "2026-01-01", "currency": "EUR",
               "terms": {"shares": [{"target": {"product": "music-plus"}, "value": {"percent": "80"}}]}}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("partner.shares_exceed_price")),
        "{body}"
    );

    // The waiting tracks were counted when the agreement came; the other 100 now, in real time.
    let answer = ingest(&node, &tracks[20..]);
    assert_eq!(answer["rated"], 100, "{answer}");
    let answer = ingest(&node, &tracks[..3]);
    assert_eq!(answer["duplicates"], 3, "{answer}");
    let (status, position) = get(&node.url("/v1/partners/acme/position?period=2026-03"));
    assert_eq!(status, 200, "{position}");
    assert_eq!(position["waiting"], 0, "{position}");
    assert_eq!(position["records"], 120, "{position}");
    assert_eq!(position["agreement"], "agr-acme", "{position}");
    let line = &position["lines"][0];
    assert_eq!(line["target"], "product:music-plus", "{position}");
    assert_eq!(
        dec(&line["totals"]["base"]),
        Decimal::from_str("1234.56").unwrap()
    );
    assert_eq!(
        dec(&line["totals"]["share"]),
        Decimal::from_str("370.368").unwrap()
    );
    assert_eq!(amount(&line["share"]), Decimal::from_str("370.37").unwrap());
    assert_eq!(
        amount(&position["preview"]["net"]),
        Decimal::from_str("370.37").unwrap()
    );

    // A settlement run for an open period is refused unless forced with a reason.
    let start = node.url("/v1/settlement-runs");
    let (status, body) = post(&start, json!({"period": "2026-03", "key": "march"}));
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("settlement.period_open")),
        "{body}"
    );
    let (status, body) = post(
        &start,
        json!({"period": "2026-03", "key": "march", "force": true}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("settlement.reason_required")),
        "{body}"
    );
    let request = json!({"period": "2026-03", "key": "march", "partners": ["acme"], "force": true,
                         "reason": "partner payout before the period close"});
    let (status, body) = post(&start, request.clone());
    assert_eq!(status, 201, "{body}");
    let run_id = body["run"]["id"].as_str().unwrap().to_string();
    let view = wait_run(&node, &run_id);
    assert_eq!(
        (
            view["run"]["settled"].clone(),
            view["run"]["failed"].clone()
        ),
        (json!(1), json!(0)),
        "{view}"
    );
    let (status, items) = get(&node.url(&format!("/v1/settlement-runs/{run_id}/items")));
    assert_eq!(status, 200, "{items}");
    let number = items["items"][0]["statement"].as_str().unwrap().to_string();
    assert_eq!(number, "SB-2026-000001");
    // The same key again: the same run, no second statement.
    let (status, body) = post(&start, request);
    assert_eq!(
        (status, body["run"]["id"].as_str()),
        (200, Some(run_id.as_str())),
        "{body}"
    );

    let (status, statement) = get(&node.url(&format!("/v1/partner-statements/{number}")));
    assert_eq!(status, 200, "{statement}");
    let s = statement.get("statement").unwrap_or(&statement);
    assert_eq!(
        amount(&s["net"]),
        Decimal::from_str("370.37").unwrap(),
        "{statement}"
    );
    assert_eq!(
        amount(&s["total"]),
        Decimal::from_str("370.37").unwrap(),
        "{statement}"
    );
    let (status, list) = get(&node.url("/v1/partners/acme/statements?period=2026-03"));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");

    // Their statement: 380.00 for the product, plus a malformed line reported by number.
    let csv = "product,amount\nmusic-plus,380.00\nmusic-plus,abc\n";
    let (status, report) = support::call_raw(
        "POST",
        &node.url(&format!("/v1/partner-statements/{number}/reconciliations")),
        Some(ADMIN_TOKEN),
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        dec(&report["total"]["difference"]),
        Decimal::from_str("9.63").unwrap(),
        "{report}"
    );
    assert_eq!(report["problems"][0]["line"], 3, "{report}");

    // Disputed and resolved by a credit note of the difference.
    let (status, dispute) = post(
        &node.url(&format!("/v1/partner-statements/{number}/disputes")),
        json!({"lines": [{"product": "music-plus"}], "claimed": {"amount": "9.63", "currency": "EUR"},
               "reason": "our March statement says 380.00"}),
    );
    assert_eq!(status, 201, "{dispute}");
    let id = dispute["id"].as_str().unwrap().to_string();
    let (status, body) = post(
        &node.url(&format!("/v1/partner-disputes/{id}/resolve")),
        json!({"reject": {"reason": ""}}),
    );
    assert_eq!(status, 422, "{body}");
    let (status, resolved) = post(
        &node.url(&format!("/v1/partner-disputes/{id}/resolve")),
        json!({"credit_note": {"amount": "9.63"}}),
    );
    assert_eq!(status, 200, "{resolved}");
    let text = resolved.to_string();
    assert!(
        text.contains("9.63") && text.contains("PCN-2026-"),
        "{resolved}"
    );
    let (status, body) = post(
        &node.url(&format!("/v1/partner-disputes/{id}/resolve")),
        json!({"reject": {"reason": "again"}}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("dispute.illegal_transition")),
        "{body}"
    );

    // The credit note is paid with the next statement: April has no shares, only the credit.
    let (status, body) = post(
        &node.url("/v1/settlement-runs"),
        json!({"period": "2026-04", "key": "april", "partners": ["acme"], "force": true,
               "reason": "pay the March dispute"}),
    );
    assert_eq!(status, 201, "{body}");
    let april_run = body["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(wait_run(&node, &april_run)["run"]["settled"], 1);
    let (_, items) = get(&node.url(&format!("/v1/settlement-runs/{april_run}/items")));
    let april = items["items"][0]["statement"].as_str().unwrap().to_string();
    let (_, april_view) = get(&node.url(&format!("/v1/partner-statements/{april}")));
    let a = &april_view["statement"];
    assert_eq!(amount(&a["subtotal"]), Decimal::ZERO, "{april_view}");
    assert_eq!(a["adjustments"][0]["dispute"], json!(id), "{april_view}");
    assert_eq!(
        amount(&a["adjustments"][0]["amount"]),
        Decimal::from_str("9.63").unwrap()
    );
    assert_eq!(
        amount(&a["net"]),
        Decimal::from_str("9.63").unwrap(),
        "{april_view}"
    );
    let (_, dispute) = get(&node.url(&format!("/v1/partner-disputes/{id}")));
    assert_eq!(dispute["dispute"]["carried_in"], json!(april), "{dispute}");
    let (status, document) =
        support::call_text(&node.url(&format!("/v1/partner-statements/{april}/document")));
    assert_eq!(status, 200);
    assert!(document.contains(&format!("Dispute {id}")), "{document}");

    // Approve, then release (mark paid) with a payment reference.
    let approve = node.url(&format!("/v1/partner-statements/{number}/approve"));
    let release = node.url(&format!("/v1/partner-statements/{number}/release"));
    let (status, body) = post(&release, json!({"reference": "PAY-1"}));
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("statement.stage")),
        "{body}"
    );
    let (status, body) = post(&approve, json!({"note": "checked"}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&release, json!({"reference": "PAY-1"}));
    assert_eq!(status, 200, "{body}");
    let (status, audit) = get(&node.url("/v1/audit?limit=1000"));
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["operation"].as_str())
        .collect();
    for action in [
        "partner.create",
        "agreement.create",
        "settlement_run.create",
        "partner_statement.issue",
        "partner_statement.approve",
        "partner_statement.release",
    ] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
}

/// A small deterministic generator (no dependency): xorshift.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[test]
fn the_real_time_position_equals_the_settlement_over_a_generated_month() {
    let (node, _process) = node();
    set_clock(&node, "2026-03-10T08:00:00Z");
    create_partner(&node, "acme");
    create_partner(&node, "carrier-b");
    let (status, body) = post(
        &node.url("/v1/partners/acme/agreements"),
        json!({"id": "agr-acme", "from": "2026-03-01", "to": "2026-05-01", "currency": "EUR",
               "terms": {"shares": [{"target": {"product": "music-plus"}, "value": {"percent": "30"}}]}}),
    );
    assert_eq!(status, 201, "{body}");
    // From the 16th the partner gets 35 % (a new version; the first is kept).
    let (status, body) = post(
        &node.url("/v1/partners/acme/agreements/agr-acme/versions"),
        json!({"valid_from": "2026-03-16",
               "shares": [{"target": {"product": "music-plus"}, "value": {"percent": "35"}}],
               "note": "renegotiated"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["versions"].as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = post(
        &node.url("/v1/partners/acme/agreements/agr-acme/versions"),
        json!({"valid_from": "2026-03-05",
               "shares": [{"target": {"product": "music-plus"}, "value": {"percent": "40"}}]}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("agreement.retroactive")),
        "{body}"
    );
    let (status, body) = post(
        &node.url("/v1/partners/carrier-b/agreements"),
        json!({"id": "agr-b", "from": "2026-01-01", "currency": "EUR",
               "terms": {"shares": [{"target": {"service": "voice"},
                                     "value": {"per_unit": {"amount": "0.002", "unit": 60}}}]}}),
    );
    assert_eq!(status, 201, "{body}");

    // A month of traffic, sent in batches, some batches twice.
    set_clock(&node, "2026-04-02T08:00:00Z");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut records = Vec::new();
    for i in 0..1_500 {
        let day = 1 + rng.next() % 31;
        let hour = rng.next() % 24;
        let start = format!("2026-03-{day:02}T{hour:02}:{:02}:00Z", rng.next() % 60);
        if rng.next().is_multiple_of(3) {
            records.push(track(
                &format!("g-{i}"),
                &format!("m{}", rng.next() % 4),
                &start,
            ));
        } else {
            let seconds = 1 + rng.next() % 900;
            records.push(call_cdr(
                &format!("g-{i}"),
                &format!("t{}", rng.next() % 5),
                &start,
                seconds,
            ));
        }
    }
    let mut rated = 0;
    for (n, chunk) in records.chunks(100).enumerate() {
        rated += ingest(&node, chunk)["rated"].as_u64().unwrap();
        if n.is_multiple_of(4) {
            assert_eq!(ingest(&node, chunk)["duplicates"], json!(chunk.len()));
        }
    }
    assert_eq!(rated, 1_500);

    // A backdated price correction of the tracks, rerated for two subscribers: their partner
    // shares are reversed and counted again at the new price.
    let (_, draft) = post(
        &node.url("/v1/catalogue/drafts"),
        json!({"from_version": 1}),
    );
    let draft = draft["id"].as_str().unwrap().to_string();
    let plan_url = node.url(&format!("/v1/catalogue/drafts/{draft}/items/plans/music"));
    let (_, mut plan) = get(&plan_url);
    plan["rules"][0]["price"] = json!({"rate": "9.50"});
    let (status, body) = call("PUT", &plan_url, Some(ADMIN_TOKEN), Some(plan));
    assert_eq!(status, 200, "{body}");
    let (status, version) = post(
        &node.url(&format!("/v1/catalogue/drafts/{draft}/publish")),
        json!({"effective_from": "2026-03-01T00:00:00Z", "backdate": true, "notes": "track price"}),
    );
    assert_eq!(status, 201, "{version}");
    let (status, answer) = post(
        &node.url("/v1/rerate"),
        json!({"key": "tracks", "subscribers": ["m0", "m1"],
               "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer["changed"].as_u64().unwrap() > 50, "{answer}");

    // The independent path: every record's current charge as the node reports it (the newest
    // usage row of a record), shared by the test.
    let mut acme = Decimal::ZERO;
    let mut carrier = Decimal::ZERO;
    let mut counted = 0;
    for s in ["m0", "m1", "m2", "m3", "t0", "t1", "t2", "t3", "t4"] {
        let (status, usage) = get(&node.url(&format!("/v1/subscribers/{s}/usage?limit=1000")));
        assert_eq!(status, 200, "{usage}");
        let mut seen = std::collections::HashSet::new();
        for r in usage["items"].as_array().unwrap() {
            if !seen.insert(r["cdr_id"].as_str().unwrap().to_string()) {
                continue;
            }
            counted += 1;
            let charge = amount(&r["charge"]);
            let start = r["cdr"]["start"].as_str().unwrap();
            match r["product"].as_str().unwrap() {
                "music-plus" => {
                    let percent = if start >= "2026-03-16" { 35 } else { 30 };
                    acme += charge * Decimal::from(percent) / Decimal::ONE_HUNDRED;
                }
                "talk" => {
                    let units = r["charged_units"].as_u64().unwrap();
                    carrier += Decimal::from_str("0.002").unwrap() * Decimal::from(units)
                        / Decimal::from(60);
                }
                other => panic!("unexpected product {other}"),
            }
        }
    }
    assert_eq!(counted, 1_500);

    // The real-time path.
    let share_of = |partner: &str| -> (Decimal, Decimal, u64) {
        let (status, p) =
            get(&node.url(&format!("/v1/partners/{partner}/position?period=2026-03")));
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["waiting"], 0, "{p}");
        let exact: Decimal = p["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| dec(&l["totals"]["share"]))
            .sum();
        (
            exact,
            amount(&p["preview"]["net"]),
            p["records"].as_u64().unwrap(),
        )
    };
    let (acme_exact, acme_net, acme_records) = share_of("acme");
    let (carrier_exact, carrier_net, carrier_records) = share_of("carrier-b");
    assert_eq!(acme_records + carrier_records, 1_500);
    assert_eq!(acme_exact, acme, "acme exact share");
    assert_eq!(carrier_exact, carrier, "carrier-b exact share");
    assert_eq!(acme_net, round2(acme));
    assert_eq!(carrier_net, round2(carrier));
    assert!(acme_net > Decimal::ZERO && carrier_net > Decimal::ZERO);

    // The settlement path.
    let (status, body) = post(
        &node.url("/v1/settlement-runs"),
        json!({"period": "2026-03", "key": "march", "force": true, "reason": "test month"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["run"]["total"], 2, "{body}");
    let run_id = body["run"]["id"].as_str().unwrap().to_string();
    let view = wait_run(&node, &run_id);
    assert_eq!(view["run"]["settled"], 2, "{view}");
    let (_, items) = get(&node.url(&format!("/v1/settlement-runs/{run_id}/items")));
    for item in items["items"].as_array().unwrap() {
        let number = item["statement"].as_str().unwrap();
        let (status, statement) = get(&node.url(&format!("/v1/partner-statements/{number}")));
        assert_eq!(status, 200, "{statement}");
        let s = statement.get("statement").unwrap_or(&statement);
        let expected = match item["partner"].as_str().unwrap() {
            "acme" => acme_net,
            "carrier-b" => carrier_net,
            other => panic!("unexpected partner {other}"),
        };
        assert_eq!(amount(&s["net"]), expected, "{statement}");
    }
}

#[test]
fn a_share_of_invoice_totals_is_settled_from_the_invoices_of_the_customers_a_partner_brought() {
    let (node, _process) = node();
    set_clock(&node, "2026-02-01T08:00:00Z");
    let (status, body) = call(
        "PUT",
        &node.url("/v1/billing/setup"),
        Some(ADMIN_TOKEN),
        Some(json!({
            "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
            "price_list": {"id": "eur", "items": {
                "fee": {"code": "fee", "name": "Line", "kind": {"recurring": {"timing": "in_arrears"}},
                        "category": "fee", "tax_category": "telecom", "prices": {"EUR": "10.00"}}}},
            "tax_scheme": {"id": "de", "rates": [
                {"category": "telecom", "jurisdiction": "DE", "code": "VAT", "rate": "0.19"}]}
        })),
    );
    assert_eq!(status, 200, "{body}");
    for (customer, custom) in [
        ("shop", json!({"partner": "reseller"})),
        ("walk-in", json!({})),
    ] {
        let (status, body) = post(
            &node.url("/v1/customers"),
            json!({"id": customer, "person": {"type": "juridical", "legal_name": format!("{customer} AG"),
                   "registration_number": "HRB 1"}, "email": format!("ap@{customer}.example"),
                   "registration_address": {"lines": ["Main St 1"], "city": "Berlin", "country": "DE"},
                   "custom": custom}),
        );
        assert_eq!(status, 201, "{body}");
        let account = format!("{customer}-1");
        let (status, body) = post(
            &node.url("/v1/accounts"),
            json!({"id": account, "customer": customer, "currency": "EUR", "bill_cycle": "monthly",
                   "tax_jurisdiction": "DE", "responsibility": "self_paying"}),
        );
        assert_eq!(status, 201, "{body}");
        let sub = format!("{customer}-line");
        let (status, body) = post(
            &node.url("/v1/subscriptions"),
            json!({"id": sub, "account": account, "product": "line", "on": "2026-02-01",
                   "charges": [{"item": "fee"}]}),
        );
        assert_eq!(status, 201, "{body}");
        let (status, body) = post(
            &node.url(&format!("/v1/subscriptions/{sub}/status")),
            json!({"status": "active", "on": "2026-02-01"}),
        );
        assert_eq!(status, 200, "{body}");
    }
    create_partner(&node, "reseller");
    let (status, body) = post(
        &node.url("/v1/partners/reseller/agreements"),
        json!({"id": "agr-reseller", "from": "2026-01-01", "currency": "EUR",
               "terms": {"shares": [{"target": "invoice_total", "value": {"percent": "5"}}]}}),
    );
    assert_eq!(status, 201, "{body}");

    // February is invoiced on March 1st: 10.00 net for each customer.
    set_clock(&node, "2026-03-01T08:00:00Z");
    let (status, started) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2026-02", "key": "feb"}),
    );
    assert_eq!(status, 201, "{started}");
    let bill_run = started["run"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, view) = get(&node.url(&format!("/v1/bill-runs/{bill_run}")));
        if view["run"]["state"] == "finished" {
            break;
        }
        assert!(Instant::now() < deadline, "bill run: {view}");
        std::thread::sleep(Duration::from_millis(20));
    }

    set_clock(&node, "2026-04-02T08:00:00Z");
    let (status, body) = post(
        &node.url("/v1/settlement-runs"),
        json!({"period": "2026-03", "key": "march", "force": true, "reason": "reseller payout"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["run"]["total"], 1,
        "only the reseller has an agreement: {body}"
    );
    let run_id = body["run"]["id"].as_str().unwrap().to_string();
    let view = wait_run(&node, &run_id);
    assert_eq!(view["run"]["settled"], 1, "{view}");
    let (_, items) = get(&node.url(&format!("/v1/settlement-runs/{run_id}/items")));
    let number = items["items"][0]["statement"].as_str().unwrap().to_string();
    let (status, statement) = get(&node.url(&format!("/v1/partner-statements/{number}")));
    assert_eq!(status, 200, "{statement}");
    let s = statement.get("statement").unwrap_or(&statement);
    let line = &s["lines"][0];
    assert_eq!(line["target"], json!("invoice_total"), "{statement}");
    assert_eq!(
        line["records"], 1,
        "the walk-in customer's invoice is not the reseller's: {statement}"
    );
    assert_eq!(
        amount(&line["base"]),
        Decimal::from_str("10.00").unwrap(),
        "{statement}"
    );
    assert_eq!(
        amount(&s["net"]),
        Decimal::from_str("0.50").unwrap(),
        "{statement}"
    );
}
