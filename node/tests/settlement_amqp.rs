//! A settlement run over the real RabbitMQ, triggered through the admin API, re-triggered with
//! the same key, with the worker node killed (SIGKILL) mid-run and started again: every partner
//! is settled exactly once (one statement per partner and month, numbered without gaps), and
//! each statement is what the partner's records make.
//!
//! 150 partners, each sharing 10 % of its own product `prod-NNN`; partner NNN's subscriber
//! charged NNN + 1 tracks of 10.00 EUR in March 2026, so its statement is (NNN + 1) x 1.00.
//!
//! Holds the shared RabbitMQ test lock (it does not stop the broker).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../adapters/tests/support/rabbitmq.rs"]
mod rabbitmq;
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

const PARTNERS: usize = 150;

fn catalogue() -> String {
    let mut text = String::from(
        "[catalogue]\nname = \"Settlement over AMQP\"\ncurrency = \"EUR\"\ntimezone = \"UTC\"\n\
         charge_precision = 4\nrounding = \"half-up\"\n\
         [[services]]\nid = \"content\"\nunit = \"event\"\n\
         [[plans]]\nid = \"music\"\nname = \"Tracks\"\n  [[plans.rules]]\n  id = \"track\"\n  \
         service = \"content\"\n  price = { rate = \"10.00\" }\n",
    );
    for i in 0..PARTNERS {
        text.push_str(&format!(
            "[[products]]\nid = \"prod-{i:03}\"\nname = \"Product {i}\"\nplans = [\"music\"]\n\
             partner_shares = [{{ partner = \"p-{i:03}\", percent = \"10\" }}]\n"
        ));
    }
    text
}

fn subscribers() -> String {
    (0..PARTNERS)
        .map(|i| {
            format!(
                "[[subscribers]]\nid = \"s-{i:03}\"\nproducts = [\"prod-{i:03}\"]\ncurrency = \"EUR\"\n"
            )
        })
        .collect()
}

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
        std::thread::sleep(Duration::from_millis(5));
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
fn a_settlement_run_with_a_killed_worker_settles_every_partner_once() {
    let _lock = rabbitmq::shared_lock();
    rabbitmq::ensure_running();
    let prefix = rabbitmq::unique_prefix("settlement");
    let node = NodeFiles::new(&subscribers());
    node.use_catalogue(&catalogue());
    node.enable_test_clock();
    node.append_config(&format!(
        "[jobs]\nbackend = \"amqp\"\n[amqp]\nurl = {url:?}\nqueue_prefix = {prefix:?}\n\
         reconnect_backoff_ms_min = 50\nreconnect_backoff_ms_max = 1000\n\
         [finance]\nprefetch = 1\n",
        url = rabbitmq::url(),
    ));
    let mut process = node.start();
    set_clock(&node, "2026-04-02T08:00:00Z");
    for i in 0..PARTNERS {
        let id = format!("p-{i:03}");
        let (status, body) = post(
            &node.url("/v1/partners"),
            json!({"id": id, "legal_name": format!("Partner {i} Ltd")}),
        );
        assert_eq!(status, 201, "{body}");
        let (status, body) = post(
            &node.url(&format!("/v1/partners/{id}/agreements")),
            json!({"id": format!("agr-{i:03}"), "from": "2026-01-01", "currency": "EUR",
                   "terms": {"shares": [{"target": {"product": format!("prod-{i:03}")},
                                         "value": {"percent": "10"}}]}}),
        );
        assert_eq!(status, 201, "{body}");
        let tracks: Vec<Value> = (0..=i)
            .map(|n| {
                json!({"id": format!("t-{i:03}-{n:03}"), "subscriber": format!("s-{i:03}"),
                       "service": "content", "direction": "outbound",
                       "start": format!("2026-03-{:02}T12:00:00Z", 1 + n % 28)})
            })
            .collect();
        let (status, answer) = post(&node.url("/v1/cdrs"), json!(tracks));
        assert_eq!((status, &answer["rated"]), (200, &json!(i + 1)), "{answer}");
    }

    let request = json!({"period": "2026-03", "key": "march-payout", "force": true,
                         "reason": "settle before the close"});
    let (status, started) = post(&node.url("/v1/settlement-runs"), request.clone());
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["run"]["total"], PARTNERS as u64, "{started}");
    let id = started["run"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/settlement-runs/{id}");
    // Re-triggered with the same key while it runs: the same run.
    let (status, again) = post(&node.url("/v1/settlement-runs"), request.clone());
    assert_eq!(
        (status, again["run"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );

    // Kill the worker node in the middle of the run, then start it again.
    let before = wait_until(&node, &path, "first partners", |v| {
        v["done"].as_u64().unwrap() >= 10
    });
    let killed_at = before["done"].as_u64().unwrap();
    assert!(
        killed_at < PARTNERS as u64,
        "still running when killed: {before}"
    );
    Command::new("kill")
        .args(["-9", &process.id().to_string()])
        .status()
        .unwrap();
    process.wait().unwrap();
    let _process = node.start();
    set_clock(&node, "2026-04-02T08:05:00Z");

    let view = wait_until(&node, &path, "run finished", |v| {
        v["run"]["state"] == "finished"
    });
    assert_eq!(view["run"]["settled"], PARTNERS as u64, "{view}");
    assert_eq!(view["run"]["failed"], 0, "{view}");

    // Every partner once: one statement for March, worth exactly its records' share.
    let mut numbers = BTreeSet::new();
    for i in 0..PARTNERS {
        let (status, list) =
            get(&node.url(&format!("/v1/partners/p-{i:03}/statements?period=2026-03")));
        assert_eq!(status, 200, "{list}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "one statement for p-{i:03}: {list}");
        let statement = &items[0]["statement"];
        let net = &statement["net"];
        let net = net
            .get("amount")
            .unwrap_or(net)
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(net, format!("{}.00", i + 1), "{statement}");
        numbers.insert(statement["number"].as_str().unwrap().to_string());
    }
    let expected: BTreeSet<String> = (1..=PARTNERS).map(|n| format!("SB-2026-{n:06}")).collect();
    assert_eq!(numbers, expected, "numbered without gaps or repeats");

    // The same key after the end: the same run; nothing new.
    let (status, again) = post(&node.url("/v1/settlement-runs"), request);
    assert_eq!(
        (status, again["run"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    // A second run for the month (another key) finds every partner settled: no new statement.
    let (status, second) = post(
        &node.url("/v1/settlement-runs"),
        json!({"period": "2026-03", "key": "march-again", "force": true, "reason": "rerun"}),
    );
    assert_eq!(status, 201, "{second}");
    let second_id = second["run"]["id"].as_str().unwrap().to_string();
    let view = wait_until(
        &node,
        &format!("/v1/settlement-runs/{second_id}"),
        "second run",
        |v| v["run"]["state"] == "finished",
    );
    assert_eq!(view["run"]["settled"], PARTNERS as u64, "{view}");
    let (_, list) = get(&node.url("/v1/partners/p-007/statements?period=2026-03"));
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    eprintln!(
        "settlement run over RabbitMQ: {PARTNERS} partners, node killed after {killed_at} done; \
         each settled once"
    );
}
