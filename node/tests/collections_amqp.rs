//! A collection run over the real RabbitMQ with the worker node killed (SIGKILL) mid-run and
//! started again: every account's due dunning steps are applied exactly once.
//!
//! 300 accounts each owe one invoice of 10.00 EUR (no tax), issued on 2026-01-01 and due on
//! 2026-01-11. The collection run is as of 2026-01-31 (20 days overdue), so three steps are due
//! for every account: an e-mail reminder (+1 day), a fixed penalty of 1.50 EUR (+5 days) and a
//! suspension (+10 days). After the kill and the restart: 300 reminders, 300 penalties and 300
//! suspensions in the run's counts; every account owes exactly 11.50 (one penalty, not two),
//! has exactly one notification, and its subscription is suspended; the same key again answers
//! with the same run.
//!
//! Holds the shared RabbitMQ test lock (it does not stop the broker).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../adapters/tests/support/rabbitmq.rs"]
mod rabbitmq;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

const ACCOUNTS: usize = 300;

fn wait_until(node: &NodeFiles, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        // The node may be restarting: retry until it answers.
        if let Ok(r) = ureq::get(&node.url(path))
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

fn set_clock(node: &NodeFiles, at: &str) {
    let (status, body) = call(
        "PUT",
        &node.url("/v1/test/clock"),
        Some(ADMIN_TOKEN),
        Some(json!({"now": at})),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_collection_run_with_a_killed_worker_applies_every_due_step_once() {
    let _lock = rabbitmq::shared_lock();
    rabbitmq::ensure_running();
    let prefix = rabbitmq::unique_prefix("collections");
    let node = NodeFiles::new("");
    node.enable_test_clock();
    node.append_config(&format!(
        "[jobs]\nbackend = \"amqp\"\n[amqp]\nurl = {url:?}\nqueue_prefix = {prefix:?}\n\
         reconnect_backoff_ms_min = 50\nreconnect_backoff_ms_max = 1000\n\
         [billing]\nprefetch = 8\n[finance]\nprefetch = 2\nnotifications_interval_ms = 200\n",
        url = rabbitmq::url(),
    ));
    let mut process = node.start();
    set_clock(&node, "2026-01-01T08:00:00Z");
    let (status, body) = call(
        "PUT",
        &node.url("/v1/billing/setup"),
        Some(ADMIN_TOKEN),
        Some(json!({
            "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
            "price_list": {"id": "eur", "items": {
                "fee": {"code": "fee", "name": "Line", "kind": {"recurring": {"timing": "in_arrears"}},
                        "category": "fee", "tax_category": "telecom", "prices": {"EUR": "10.00"}}}},
            "tax_scheme": {"id": "none", "rates": [
                {"category": "telecom", "jurisdiction": "DE", "code": "EX", "rate": "0"}]},
            "dunning_policies": [{"id": "corp", "pay_by_days": 10, "steps": [
                {"id": "mail", "after_days": 1, "action": {"type": "notify", "channel": "email",
                 "template": "Invoice {invoice}: {amount} {currency} overdue by {days_overdue} days"}},
                {"id": "fee", "after_days": 5, "action": {"type": "penalty", "value": {"fixed": {"EUR": "1.50"}}}},
                {"id": "bar", "after_days": 10, "action": {"type": "suspend"}}
            ]}]
        })),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &node.url("/v1/customers"),
        json!({"id": "corp", "person": {"type": "juridical", "legal_name": "Corp AG", "registration_number": "HRB 2"},
               "email": "ap@corp.example",
               "registration_address": {"lines": ["Main St 1"], "city": "Berlin", "country": "DE"}}),
    );
    assert_eq!(status, 201, "{body}");
    for i in 0..ACCOUNTS {
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
            json!({"id": sub, "account": account, "product": "line", "on": "2025-12-01",
                   "charges": [{"item": "fee"}]}),
        );
        assert_eq!(status, 201, "{body}");
        let (status, body) = post(
            &node.url(&format!("/v1/subscriptions/{sub}/status")),
            json!({"status": "active", "on": "2025-12-01"}),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, started) = post(
        &node.url("/v1/bill-runs"),
        json!({"cycle": "monthly", "period": "2025-12", "key": "dec"}),
    );
    assert_eq!(status, 201, "{started}");
    let bill_run = started["run"]["id"].as_str().unwrap().to_string();
    wait_until(
        &node,
        &format!("/v1/bill-runs/{bill_run}"),
        "bill run",
        |v| v["run"]["state"] == "finished",
    );

    set_clock(&node, "2026-01-31T08:00:00Z");
    let request = json!({"key": "jan-31"});
    let (status, started) = post(&node.url("/v1/collection-runs"), request.clone());
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["run"]["total"], ACCOUNTS as u64, "{started}");
    let id = started["run"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/collection-runs/{id}");

    // Kill the worker node in the middle of the run, then start it again.
    let before = wait_until(&node, &path, "first accounts", |v| {
        v["done"].as_u64().unwrap() >= 40
    });
    let killed_at = before["done"].as_u64().unwrap();
    assert!(
        killed_at < ACCOUNTS as u64,
        "still running when killed: {before}"
    );
    Command::new("kill")
        .args(["-9", &process.id().to_string()])
        .status()
        .unwrap();
    process.wait().unwrap();
    let _process = node.start();
    // The clock is the node's: a restarted node reads the system clock until set again.
    set_clock(&node, "2026-01-31T08:05:00Z");

    let view = wait_until(&node, &path, "run finished", |v| {
        v["run"]["state"] == "finished"
    });
    let n = ACCOUNTS as u64;
    assert_eq!(view["run"]["processed"], n, "{view}");
    assert_eq!(view["run"]["failed"], 0, "{view}");
    assert_eq!(
        view["run"]["steps"],
        json!({"notify": n, "penalty": n, "suspend": n}),
        "each step once per account: {view}"
    );
    for i in 0..ACCOUNTS {
        let account = format!("a{i:04}");
        let (status, r) = get(&node.url(&format!("/v1/accounts/{account}/receivables")));
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["outstanding"]["amount"], "11.50", "one penalty only: {r}");
        let applied: Vec<&str> = r["cases"][0]["applied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["step"].as_str().unwrap())
            .collect();
        assert_eq!(applied, ["mail", "fee", "bar"], "{r}");
        assert_eq!(r["service"]["suspended"], true, "{r}");
        let (_, notes) = get(&node.url(&format!("/v1/accounts/{account}/notifications")));
        assert_eq!(notes.as_array().unwrap().len(), 1, "{notes}");
        // Service follows an item's durable decision (converge), a moment after the item is
        // counted done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, sub) = get(&node.url(&format!("/v1/subscriptions/s{i:04}")));
            if sub["status"] == "suspended" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{sub}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    // The same key again: the same run, nothing new.
    let (status, again) = post(&node.url("/v1/collection-runs"), request);
    assert_eq!(
        (status, again["run"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    eprintln!(
        "collection run over RabbitMQ: {ACCOUNTS} accounts, node killed after {killed_at} done; \
         every step applied once"
    );
}
