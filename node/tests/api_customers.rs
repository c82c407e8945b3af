//! Customers, accounts, subscriptions and the billing setup against a real node process:
//! CRUD, search, history with before and after, hierarchy refusals that change nothing, the
//! subscription lifecycle, setup validation and versions, and durability across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, get, post};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4915100000001"
products = ["consumer"]
currency = "EUR"
"#;

fn put(url: &str, body: Value) -> (u16, Value) {
    call("PUT", url, Some(ADMIN_TOKEN), Some(body))
}

fn patch(url: &str, body: Value) -> (u16, Value) {
    call("PATCH", url, Some(ADMIN_TOKEN), Some(body))
}

fn setup() -> Value {
    json!({
        "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
        "price_list": {"id": "eur", "items": {
            "fee": {"code": "fee", "name": "Monthly fee", "kind": {"recurring": {"timing": "in_advance"}},
                    "category": "fee", "tax_category": "telecom", "prices": {"EUR": "10.00"}}
        }},
        "discounts": [],
        "tax_scheme": {"id": "de", "rates": [
            {"category": "telecom", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"}
        ]}
    })
}

fn account(id: &str, parent: Option<&str>, responsibility: Value) -> Value {
    json!({
        "id": id, "customer": "acme", "parent": parent, "currency": "EUR",
        "bill_cycle": "monthly", "tax_jurisdiction": "DE", "responsibility": responsibility
    })
}

fn refused(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(
        (answer.0, answer.1["error"]["code"].as_str()),
        (status, Some(code)),
        "{}",
        answer.1
    );
}

fn history(node: &NodeFiles, customer: &str) -> Vec<Value> {
    let (status, page) = get(&node.url(&format!("/v1/customers/{customer}/history?limit=1000")));
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[test]
fn customers_accounts_subscriptions_and_setup_through_the_api() {
    let files = NodeFiles::new(SUBSCRIBERS);
    let mut node = files.start();
    let url = |p: &str| files.url(p);

    // Setup: defaults, validation (every problem listed), versions.
    let (status, default) = get(&url("/v1/billing/setup"));
    assert_eq!(status, 200, "{default}");
    assert_eq!(default["version"], 0);
    assert_eq!(default["invoice_number_template"], "INV-{yyyy}-{seq:06}");
    let mut bad = setup();
    bad["invoice_number_template"] = json!("INV");
    bad["tax_scheme"]["rates"][0]["rate"] = json!("7");
    let (status, body) = put(&url("/v1/billing/setup"), bad);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("billing.invalid_setup"))
    );
    assert_eq!(
        body["error"]["details"]["problems"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{body}"
    );
    let (status, stored) = put(&url("/v1/billing/setup"), setup());
    assert_eq!(
        (status, stored["version"].as_u64()),
        (200, Some(1)),
        "{stored}"
    );
    let mut stale = setup();
    stale["version"] = json!(0);
    refused(
        put(&url("/v1/billing/setup"), stale),
        409,
        "billing.setup_version_conflict",
    );

    // Customers: create, validation, read, put, patch, search.
    let acme = json!({
        "id": "acme",
        "person": {"type": "juridical", "legal_name": "ACME Holding GmbH", "registration_number": "HRB 1"},
        "tax_id": "DE123", "email": "billing@acme.example",
        "registration_address": {"lines": ["Main St 1"], "city": "Berlin", "country": "DE"},
        "segment": "enterprise", "custom": {"tier": "gold", "vip": true}
    });
    let (status, body) = post(&url("/v1/customers"), acme.clone());
    assert_eq!(status, 201, "{body}");
    refused(
        post(&url("/v1/customers"), acme.clone()),
        409,
        "customer.exists",
    );
    let (status, body) = post(
        &url("/v1/customers"),
        json!({"id": "p1", "person": {"type": "physical", "first_name": "", "last_name": "X"},
               "email": "nope", "phone": "12"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("customer.invalid"))
    );
    let paths: Vec<&str> = body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["person.first_name", "email", "phone"], "{body}");
    refused(
        post(&url("/v1/customers"), json!({"id": "x", "persn": {}})),
        422,
        "request.invalid_field",
    );
    let (status, body) = post(
        &url("/v1/customers"),
        json!({"id": "carla", "person": {"type": "physical", "first_name": "Carla", "last_name": "Rossi"},
               "email": "carla@example.org", "segment": "residential"}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = get(&url("/v1/customers/acme"));
    assert_eq!((status, body["tax_id"].as_str()), (200, Some("DE123")));
    refused(get(&url("/v1/customers/ghost")), 404, "customer.not_found");
    let mut renamed = acme.clone();
    renamed["person"]["legal_name"] = json!("ACME Group GmbH");
    renamed.as_object_mut().unwrap().remove("id");
    let (status, body) = put(&url("/v1/customers/acme"), renamed);
    assert_eq!(
        (status, body["person"]["legal_name"].as_str()),
        (200, Some("ACME Group GmbH"))
    );
    refused(
        put(&url("/v1/customers/acme"), json!({"id": "other"})),
        422,
        "customer.id_immutable",
    );
    let (status, body) = patch(
        &url("/v1/customers/acme"),
        json!({"phone": "+49301234567", "custom": {"tier": null, "employees": 250}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["custom"], json!({"vip": true, "employees": 250}));
    assert_eq!(body["segment"], "enterprise");
    refused(
        patch(&url("/v1/customers/acme"), json!({"email": "bad"})),
        422,
        "customer.invalid",
    );
    for (query, expected) in [
        ("name=group", vec!["acme"]),
        ("tax_id=DE123", vec!["acme"]),
        ("email=CARLA@example.org", vec!["carla"]),
        ("segment=residential", vec!["carla"]),
        ("attribute=vip=true", vec!["acme"]),
        ("attribute=employees", vec!["acme"]),
        ("status=active", vec!["acme", "carla"]),
    ] {
        let (status, page) = get(&url(&format!("/v1/customers?{query}")));
        assert_eq!(status, 200, "{page}");
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "{query}");
    }
    let (_, first) = get(&url("/v1/customers?limit=1"));
    assert_eq!(first["next_cursor"], "acme");
    let (_, second) = get(&url("/v1/customers?limit=1&cursor=acme"));
    assert_eq!(
        (second["items"][0]["id"].as_str(), &second["next_cursor"]),
        (Some("carla"), &Value::Null)
    );
    refused(
        get(&url("/v1/customers?status=nope")),
        400,
        "request.bad_query",
    );

    // Accounts: head office -> two regions -> locations.
    for (id, parent, responsibility) in [
        ("hq", None, json!("self_paying")),
        ("north", Some("hq"), json!("paid_by_parent")),
        ("south", Some("hq"), json!("self_paying")),
        ("north-1", Some("north"), json!("paid_by_parent")),
        (
            "south-1",
            Some("south"),
            json!({"paid_by": {"account": "hq"}}),
        ),
        ("south-2", Some("south"), json!("paid_by_parent")),
    ] {
        let (status, body) = post(&url("/v1/accounts"), account(id, parent, responsibility));
        assert_eq!(status, 201, "{id}: {body}");
    }
    let (status, tree) = get(&url("/v1/accounts/north-1/subtree"));
    assert_eq!(status, 200, "{tree}");
    assert_eq!(tree["payer"], "hq");
    let billed: Vec<(String, u64)> = tree["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account"].as_str().unwrap().to_string(),
                a["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        billed,
        [
            ("hq".into(), 0),
            ("north".into(), 1),
            ("north-1".into(), 2),
            ("south-1".into(), 2)
        ]
    );
    let (_, tree) = get(&url("/v1/accounts/south-2/subtree"));
    assert_eq!(tree["payer"], "south");

    // Hierarchy refusals: a clear 4xx with the domain code, and nothing changed.
    let forest_before = get(&url("/v1/accounts?customer=acme")).1;
    let history_before = history(&files, "acme").len();
    refused(
        put(
            &url("/v1/accounts/hq"),
            account("hq", Some("north-1"), json!("self_paying")),
        ),
        409,
        "hierarchy.cycle",
    );
    refused(
        put(
            &url("/v1/accounts/south"),
            account(
                "south",
                Some("hq"),
                json!({"paid_by": {"account": "south-2"}}),
            ),
        ),
        409,
        "hierarchy.payer_not_ancestor",
    );
    let mut dollars = account("north-1", Some("north"), json!("paid_by_parent"));
    dollars["currency"] = json!("USD");
    refused(
        put(&url("/v1/accounts/north-1"), dollars),
        409,
        "hierarchy.currency_mismatch",
    );
    refused(
        post(
            &url("/v1/accounts"),
            account("x", None, json!("paid_by_parent")),
        ),
        422,
        "hierarchy.root_paid_by_parent",
    );
    let mut weekly = account("x", Some("hq"), json!("paid_by_parent"));
    weekly["bill_cycle"] = json!("weekly");
    refused(
        post(&url("/v1/accounts"), weekly),
        422,
        "billing.unknown_cycle",
    );
    refused(
        post(
            &url("/v1/accounts"),
            account("hq", None, json!("self_paying")),
        ),
        409,
        "account.exists",
    );
    refused(get(&url("/v1/accounts/nowhere")), 404, "account.not_found");
    assert_eq!(
        get(&url("/v1/accounts?customer=acme")).1,
        forest_before,
        "refusals changed accounts"
    );
    assert_eq!(
        history(&files, "acme").len(),
        history_before,
        "refusals wrote history"
    );
    let (_, children) = get(&url("/v1/accounts?parent=south"));
    assert_eq!(children["items"].as_array().unwrap().len(), 2);

    // Subscriptions and their lifecycle.
    let (status, body) = post(
        &url("/v1/subscriptions"),
        json!({"id": "s1", "account": "north-1", "product": "office", "subscriber": "4915100000001",
               "on": "2026-10-01", "charges": [{"item": "fee"}]}),
    );
    assert_eq!(
        (status, body["status"].as_str()),
        (201, Some("pending")),
        "{body}"
    );
    refused(
        post(
            &url("/v1/subscriptions"),
            json!({"id": "s2", "account": "north-1", "product": "x", "charges": [{"item": "nope"}]}),
        ),
        422,
        "billing.unknown_item",
    );
    let status_url = url("/v1/subscriptions/s1/status");
    for (to, on, reason) in [
        ("active", "2026-10-05", None),
        ("suspended", "2026-11-01", Some("unpaid invoice")),
        ("active", "2026-11-10", None),
    ] {
        let (status, body) = post(
            &status_url,
            json!({"status": to, "on": on, "reason": reason}),
        );
        assert_eq!((status, body["status"].as_str()), (200, Some(to)), "{body}");
    }
    refused(
        post(
            &status_url,
            json!({"status": "suspended", "on": "2026-10-20"}),
        ),
        409,
        "subscription.backdated_transition",
    );
    let (status, body) = post(
        &status_url,
        json!({"status": "deactivated", "on": "2026-12-31"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["history"].as_array().unwrap().len(), 5);
    refused(
        post(&status_url, json!({"status": "active", "on": "2027-01-02"})),
        409,
        "subscription.illegal_transition",
    );
    refused(
        post(
            &url("/v1/subscriptions/ghost/status"),
            json!({"status": "active", "on": "2027-01-02"}),
        ),
        404,
        "subscription.not_found",
    );
    let (_, found) = get(&url(
        "/v1/subscriptions?subscriber=4915100000001&status=deactivated",
    ));
    assert_eq!(found["items"][0]["id"], "s1", "{found}");
    let (_, none) = get(&url("/v1/subscriptions?account=south-1"));
    assert!(none["items"].as_array().unwrap().is_empty());

    // Setup changes that would orphan references are refused.
    let mut no_cycle = setup();
    no_cycle["cycles"] = json!([]);
    refused(
        put(&url("/v1/billing/setup"), no_cycle),
        409,
        "billing.cycle_in_use",
    );

    // History: every change, attributed, with before and after; also in the audit trail.
    let changes = history(&files, "acme");
    let ops: Vec<&str> = changes
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "customer.create",
            "customer.update",
            "customer.update",
            "account.create",
            "account.create",
            "account.create",
            "account.create",
            "account.create",
            "account.create",
            "subscription.create",
            "subscription.activate",
            "subscription.suspend",
            "subscription.resume",
            "subscription.deactivate",
        ]
    );
    let rename = &changes[1];
    assert_eq!(
        rename["before"]["person"]["legal_name"],
        "ACME Holding GmbH"
    );
    assert_eq!(rename["after"]["person"]["legal_name"], "ACME Group GmbH");
    assert_eq!(rename["principal"], "bootstrap");
    assert!(rename["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(changes[11]["reason"], "unpaid invoice");
    let (_, page) = get(&url(&format!(
        "/v1/customers/acme/history?limit=2&cursor={}",
        changes[0]["id"].as_str().unwrap()
    )));
    assert_eq!(page["items"][0]["id"], changes[1]["id"]);
    refused(
        get(&url("/v1/customers/ghost/history")),
        404,
        "customer.not_found",
    );
    let (_, audit) = get(&url("/v1/audit?target=account/&limit=1000"));
    assert_eq!(audit["items"].as_array().unwrap().len(), 6, "{audit}");
    let (_, audit) = get(&url("/v1/audit?operation=billing.setup.update"));
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["after"]["version"], 1);

    // Durable: everything is back after a restart.
    support::terminate(&mut node);
    let _node = files.start();
    assert_eq!(history(&files, "acme").len(), changes.len());
    let (_, sub) = get(&url("/v1/subscriptions/s1"));
    assert_eq!(sub["status"], "deactivated");
    assert_eq!(get(&url("/v1/billing/setup")).1["version"], 1);
}
