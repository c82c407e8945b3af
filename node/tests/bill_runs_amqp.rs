//! A bill run over the real RabbitMQ: many payers, the broker restarted in the middle of the
//! run (the test stops and starts it) and the worker node killed (SIGKILL) mid-run and started
//! again. Every payer is invoiced exactly once, none is missing, the numbers have no gaps, and a
//! re-triggered run with the same key creates nothing new.
//!
//! Holds the exclusive RabbitMQ test lock (see adapters/tests/support/rabbitmq.rs): it stops the
//! broker, which would break any other RabbitMQ test running meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../adapters/tests/support/rabbitmq.rs"]
mod rabbitmq;
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

const PAYERS: usize = 400;

/// Starts the broker again if the test ends (or panics) while it is down.
struct LeaveRunning;

impl Drop for LeaveRunning {
    fn drop(&mut self) {
        rabbitmq::ensure_running();
    }
}

fn await_broker() {
    let started = Instant::now();
    loop {
        let up = rabbitmq::port_open()
            && Command::new("rabbitmqctl")
                .args(["-q", "await_startup", "--timeout", "10"])
                .output()
                .is_ok_and(|o| o.status.success());
        if up {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "RabbitMQ not back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_view(node: &NodeFiles, id: &str) -> Value {
    let (status, view) = get(&node.url(&format!("/v1/bill-runs/{id}")));
    assert_eq!(status, 200, "{view}");
    view
}

fn wait_until(node: &NodeFiles, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        // The node may be restarting: retry until it answers.
        if let Ok(r) = ureq::get(&node.url(&format!("/v1/bill-runs/{id}")))
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .timeout(Duration::from_secs(5))
            .call()
        {
            let view: Value = r.into_json().unwrap();
            if done(&view) {
                return view;
            }
            assert!(Instant::now() < deadline, "{what}: {view}");
        }
        assert!(Instant::now() < deadline, "{what}: node not answering");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn done(view: &Value) -> u64 {
    view["done"].as_u64().unwrap()
}

#[test]
fn a_bill_run_survives_a_broker_restart_and_a_killed_worker_and_bills_each_payer_once() {
    let _lock = rabbitmq::exclusive_lock();
    rabbitmq::ensure_running();
    let _leave_running = LeaveRunning;
    let prefix = rabbitmq::unique_prefix("bill-runs");
    let node = NodeFiles::new("");
    node.append_config(&format!(
        "[jobs]\nbackend = \"amqp\"\n[amqp]\nurl = {url:?}\nqueue_prefix = {prefix:?}\n\
         reconnect_backoff_ms_min = 50\nreconnect_backoff_ms_max = 1000\n\
         [billing]\nprefetch = 2\n",
        url = rabbitmq::url(),
    ));
    let mut process = node.start();
    let (status, body) = call(
        "PUT",
        &node.url("/v1/billing/setup"),
        Some(ADMIN_TOKEN),
        Some(json!({
            "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
            "price_list": {"id": "eur", "items": {
                "fee": {"code": "fee", "name": "Line", "kind": {"recurring": {"timing": "in_arrears"}},
                        "category": "fee", "tax_category": "telecom", "prices": {"EUR": "10.00"}}}},
            "tax_scheme": {"id": "vat", "rates": [
                {"category": "telecom", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"}]}
        })),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &node.url("/v1/customers"),
        json!({"id": "corp", "person": {"type": "juridical", "legal_name": "Corp AG", "registration_number": "HRB 2"},
               "registration_address": {"lines": ["Main St 1"], "city": "Berlin", "country": "DE"}}),
    );
    assert_eq!(status, 201, "{body}");
    for i in 0..PAYERS {
        let account = format!("a{i:04}");
        let (status, body) = post(
            &node.url("/v1/accounts"),
            json!({"id": account, "customer": "corp", "currency": "EUR", "bill_cycle": "monthly",
                   "tax_jurisdiction": "DE", "responsibility": "self_paying"}),
        );
        assert_eq!(status, 201, "{body}");
        let sub = format!("s{i:04}");
        let (status, body) = post(
            &node.url("/v1/subscriptions"),
            json!({"id": sub, "account": account, "product": "line", "on": "2026-09-01",
                   "charges": [{"item": "fee"}]}),
        );
        assert_eq!(status, 201, "{body}");
        let (status, body) = post(
            &node.url(&format!("/v1/subscriptions/{sub}/status")),
            json!({"status": "active", "on": "2026-09-01"}),
        );
        assert_eq!(status, 200, "{body}");
    }

    let request = json!({"cycle": "monthly", "period": "2026-10", "key": "oct-amqp"});
    let (status, started) = post(&node.url("/v1/bill-runs"), request.clone());
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["run"]["total"], PAYERS as u64);
    let id = started["run"]["id"].as_str().unwrap().to_string();

    // Restart the broker in the middle of the run.
    let before_stop = wait_until(&node, &id, "first invoices", |v| done(v) >= 20);
    rabbitmq::rabbitmqctl(&["stop"]);
    assert!(
        !rabbitmq::port_open(),
        "the broker still listens after stop"
    );
    let during = done(&run_view(&node, &id));
    std::thread::sleep(Duration::from_secs(1));
    let status = Command::new("rabbitmq-server")
        .arg("-detached")
        .status()
        .unwrap();
    assert!(status.success());
    await_broker();
    assert!(
        done(&before_stop) < PAYERS as u64,
        "the run must still be going when the broker stops: {before_stop}"
    );

    // Kill the worker node once billing has resumed, then start it again.
    let resumed = wait_until(&node, &id, "billing after the broker restart", |v| {
        done(v) >= during + 20 || v["run"]["state"] == "finished"
    });
    let killed_at = done(&resumed);
    Command::new("kill")
        .args(["-9", &process.id().to_string()])
        .status()
        .unwrap();
    process.wait().unwrap();
    let _process = node.start();

    let view = wait_until(&node, &id, "run finished", |v| {
        v["run"]["state"] == "finished"
    });
    assert_eq!(
        (
            &view["run"]["billed"],
            &view["run"]["failed"],
            &view["run"]["already_billed"]
        ),
        (&json!(PAYERS), &json!(0), &json!(0)),
        "every payer billed by this run: {view}"
    );
    let mut payers = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/v1/invoices?limit=1000&cursor={c}"),
            None => "/v1/invoices?limit=1000".to_string(),
        };
        let (status, page) = get(&node.url(&query));
        assert_eq!(status, 200, "{page}");
        for inv in page["items"].as_array().unwrap() {
            assert!(
                payers.insert(inv["payer"].as_str().unwrap().to_string()),
                "payer invoiced twice"
            );
            numbers.insert(inv["seq"].as_u64().unwrap());
            assert_eq!(
                inv["draft"]["totals"]["gross"]["minor"], 1190,
                "10.00 + 19 %"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(payers.len(), PAYERS, "every payer invoiced, none missing");
    assert_eq!(
        numbers,
        (1..=PAYERS as u64).collect::<BTreeSet<_>>(),
        "numbers without gaps"
    );

    // The same key again: the same run, nothing new.
    let (status, again) = post(&node.url("/v1/bill-runs"), request);
    assert_eq!(
        (status, again["run"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let (_, page) = get(&node.url("/v1/invoices?limit=1000&cursor=INV-2026-000400"));
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "no invoice after the 400th"
    );
    eprintln!(
        "bill run over RabbitMQ: {PAYERS} payers; broker stopped after {} done, node killed after \
         {killed_at} done; every payer billed once",
        done(&before_stop)
    );
}
