//! Demo customer data: a corporate hierarchy (head office -> two regions -> locations) with
//! subscriptions for some demo subscribers, a monthly cycle, a EUR price list and a tax
//! scheme, written through the same checked, audited path as the API (as `system`).

use serde_json::{Value, json};
use tollgate_domain::billing::{CustomerCommand, CustomerStore, WriteContext};

fn from<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("demo data: {e}"))
}

/// Writes the demo customers; returns a one-line summary.
pub fn seed(store: &dyn CustomerStore, subscribers: &[String]) -> Result<String, String> {
    let by = WriteContext::system(jiff::Timestamp::now(), "demo");
    let apply = |command: CustomerCommand| {
        store
            .apply(command, &by)
            .map(|_| ())
            .map_err(|e| format!("demo data: {} ({e})", e.code()))
    };
    apply(CustomerCommand::PutSetup {
        expected_version: None,
        setup: from(json!({
            "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
            "price_list": {"id": "eur-2026", "items": {
                "office-fee": {"code": "office-fee", "name": "Office line", "kind": {"recurring": {"timing": "in_advance"}},
                               "category": "fee", "tax_category": "telecom", "prices": {"EUR": "19.90"}},
                "router": {"code": "router", "name": "Router rental", "kind": {"recurring": {"timing": "in_advance"}},
                           "category": "rental", "tax_category": "equipment", "prices": {"EUR": "4.50"}},
                "setup": {"code": "setup", "name": "Installation", "kind": "one_off",
                          "category": "setup", "tax_category": "telecom", "prices": {"EUR": "49.00"}}
            }},
            "discounts": [{"id": "corporate-10", "name": "Corporate 10 %",
                           "value": {"percentage": {"percent": "10"}}, "scope": "invoice"}],
            "tax_scheme": {"id": "de", "rates": [
                {"category": "telecom", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"},
                {"category": "equipment", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"}
            ]}
        }))?,
    })?;
    apply(CustomerCommand::CreateCustomer(from(json!({
        "id": "globex",
        "person": {"type": "juridical", "legal_name": "Globex Logistics GmbH", "registration_number": "HRB 4711"},
        "tax_id": "DE811234567", "email": "billing@globex.example",
        "contact_person": {"name": "Hank Scorpio", "role": "CFO", "phone": "+4930555000"},
        "registration_address": {"lines": ["Friedrichstr. 1"], "city": "Berlin", "postcode": "10117", "country": "DE"},
        "segment": "enterprise", "credit_class": "a",
        "custom": {"account_manager": "ann", "sla": "gold"}
    }))?))?;
    let accounts = [
        (
            "globex-hq",
            None,
            json!("self_paying"),
            vec!["corporate-10"],
        ),
        (
            "globex-north",
            Some("globex-hq"),
            json!("paid_by_parent"),
            vec![],
        ),
        (
            "globex-south",
            Some("globex-hq"),
            json!("self_paying"),
            vec![],
        ),
        (
            "globex-hamburg",
            Some("globex-north"),
            json!("paid_by_parent"),
            vec![],
        ),
        (
            "globex-bremen",
            Some("globex-north"),
            json!("paid_by_parent"),
            vec![],
        ),
        (
            "globex-munich",
            Some("globex-south"),
            json!("paid_by_parent"),
            vec![],
        ),
    ];
    for (id, parent, responsibility, discounts) in &accounts {
        apply(CustomerCommand::CreateAccount(from(json!({
            "id": id, "customer": "globex", "parent": parent, "currency": "EUR",
            "bill_cycle": "monthly", "tax_jurisdiction": "DE",
            "responsibility": responsibility, "discounts": discounts
        }))?))?;
    }
    let locations = ["globex-hamburg", "globex-bremen", "globex-munich"];
    let mut count = 0;
    for (i, subscriber) in subscribers.iter().enumerate() {
        let id = format!("sub-{subscriber}");
        apply(CustomerCommand::CreateSubscription(from(json!({
            "id": id, "account": locations[i % locations.len()], "product": "office",
            "subscriber": subscriber,
            "history": [{"status": "pending", "on": "2026-01-05"}, {"status": "active", "on": "2026-01-06"}],
            "charges": [{"item": "office-fee"}, {"item": "router"}, {"item": "setup"}]
        }))?))?;
        count += 1;
    }
    Ok(format!(
        "customers: globex with {} accounts (head office -> 2 regions -> 3 locations), {count} subscriptions",
        accounts.len()
    ))
}
