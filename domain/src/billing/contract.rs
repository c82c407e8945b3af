//! The contract every [`CustomerStore`] must keep; run it against each backend, on a fresh
//! store. Like the admin and ledger contracts it returns the first broken promise instead of
//! panicking, so it lives in the library and any crate's tests can call it.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::customer::Customer;
use super::hierarchy::Account;
use super::setup::BillingSetup;
use super::store::{
    AccountFilter, ChangeRecord, CustomerCommand, CustomerFilter, CustomerStore,
    CustomerStoreError, SubscriptionFilter, WriteContext,
};
use super::subscription::{Subscription, SubscriptionStatus};
use crate::admin::AuditRecord;
use crate::ids::{AccountId, BillCycleId, CustomerId, SubscriberId, SubscriptionId};
use crate::ledger::StoreError;

fn ensure(condition: bool, what: &str) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn from<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("fixture: {e}"))
}

const AT: Timestamp = Timestamp::constant(1_800_000_000, 0);

fn by(request: &str) -> WriteContext {
    WriteContext {
        at: AT,
        principal: "care-1".into(),
        credential: Some("tok1".into()),
        request_id: request.into(),
    }
}

/// A setup with a monthly cycle, a EUR price list, a discount and a tax scheme.
pub fn sample_setup() -> Result<BillingSetup, String> {
    from(json!({
        "cycles": [{"id": "monthly", "frequency": {"monthly": {"bill_day": 1}}}],
        "price_list": {"id": "eur-2026", "items": {
            "fee": {"code": "fee", "name": "Monthly fee", "kind": {"recurring": {"timing": "in_advance"}},
                    "category": "fee", "tax_category": "telecom", "prices": {"EUR": "10.00"}},
            "setup": {"code": "setup", "name": "Setup", "kind": "one_off",
                      "category": "setup", "tax_category": "telecom", "prices": {"EUR": "25.00"}}
        }},
        "discounts": [{"id": "d10", "name": "10 %", "value": {"percentage": {"percent": "10"}},
                       "scope": "account"}],
        "tax_scheme": {"id": "de", "rates": [
            {"category": "telecom", "jurisdiction": "DE", "code": "VAT19", "rate": "0.19"}
        ]}
    }))
}

fn company(id: &str, name: &str) -> Result<Customer, String> {
    from(json!({
        "id": id,
        "person": {"type": "juridical", "legal_name": name, "registration_number": "HRB 1"},
        "tax_id": format!("DE-{id}"),
        "email": format!("billing@{id}.example"),
        "registration_address": {"lines": ["Main St 1"], "city": "Berlin", "country": "DE"},
        "segment": "enterprise",
        "custom": {"vip": true, "tier": "gold"}
    }))
}

fn account(id: &str, customer: &str, parent: Option<&str>, responsibility: Value) -> Account {
    Account {
        id: AccountId::new(id),
        customer: CustomerId::new(customer),
        parent: parent.map(AccountId::new),
        currency: crate::money::Currency::EUR,
        bill_cycle: BillCycleId::new("monthly"),
        tax_jurisdiction: "DE".into(),
        responsibility: serde_json::from_value(responsibility)
            .unwrap_or(super::hierarchy::Responsibility::SelfPaying),
        discounts: Vec::new(),
    }
}

fn refused(
    result: Result<ChangeRecord, CustomerStoreError>,
    code: &str,
    what: &str,
) -> Result<(), String> {
    match result {
        Err(e) if e.code() == code => Ok(()),
        Err(e) => Err(format!("{what}: expected {code}, got {} ({e})", e.code())),
        Ok(_) => Err(format!("{what}: expected {code}, was accepted")),
    }
}

fn ok<T>(result: Result<T, CustomerStoreError>, what: &str) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {} ({e})", e.code()))
}

fn io<T>(result: Result<T, StoreError>) -> Result<T, String> {
    result.map_err(|e| e.to_string())
}

/// Runs the contract on a fresh `store`; `audit` reads the audit trail the store writes to.
pub fn run(
    store: &dyn CustomerStore,
    audit: &dyn Fn() -> Result<Vec<AuditRecord>, StoreError>,
) -> Result<(), String> {
    setup_defaults_and_versions(store)?;
    customers(store)?;
    hierarchy(store)?;
    subscriptions(store)?;
    history_and_audit(store, audit)?;
    setup_in_use(store)
}

fn setup_defaults_and_versions(store: &dyn CustomerStore) -> Result<(), String> {
    let empty = io(store.setup())?;
    ensure(
        empty == BillingSetup::default(),
        "a fresh store has the default setup",
    )?;
    ensure(
        empty.invoice_number_template == "INV-{yyyy}-{seq:06}" && empty.version == 0,
        "default template and version 0",
    )?;
    ensure(
        io(store.forest())?.is_empty(),
        "a fresh store has no account",
    )?;
    let put = |setup: BillingSetup, expected: Option<u64>| {
        store.apply(
            CustomerCommand::PutSetup {
                setup,
                expected_version: expected,
            },
            &by("r-setup"),
        )
    };
    let mut bad = sample_setup()?;
    bad.invoice_number_template = "INV-{yyyy}".into();
    refused(put(bad, None), "billing.invalid_setup", "bad template")?;
    ensure(
        io(store.setup())?.version == 0,
        "a refused setup wrote nothing",
    )?;
    let entry = ok(put(sample_setup()?, Some(0)), "first setup")?;
    ensure(entry.target == "billing/setup", "setup target")?;
    let stored = io(store.setup())?;
    ensure(stored.version == 1, "the first setup is version 1")?;
    ensure(stored.cycles.len() == 1, "setup stored as given")?;
    refused(
        put(sample_setup()?, Some(0)),
        "billing.setup_version_conflict",
        "stale version",
    )?;
    ok(put(sample_setup()?, Some(1)), "second setup")?;
    ensure(io(store.setup())?.version == 2, "each change increments")?;
    Ok(())
}

fn customers(store: &dyn CustomerStore) -> Result<(), String> {
    let create = |c: Customer| store.apply(CustomerCommand::CreateCustomer(c), &by("r-c"));
    ok(create(company("acme", "ACME Holding GmbH")?), "create acme")?;
    ok(create(company("bolt", "Bolt AG")?), "create bolt")?;
    let person: Customer = from(json!({
        "id": "carla",
        "person": {"type": "physical", "first_name": "Carla", "last_name": "Acme-Rossi"},
        "email": "Carla@Example.org",
        "segment": "residential",
        "custom": {"tier": "silver"}
    }))?;
    ok(create(person.clone()), "create carla")?;
    refused(
        create(company("acme", "Other")?),
        "customer.exists",
        "duplicate",
    )?;
    let mut broken = company("dora", "Dora")?;
    broken.email = Some("not-an-email".into());
    refused(create(broken), "customer.invalid", "bad e-mail")?;
    ensure(
        io(store.customer(&CustomerId::new("dora")))?.is_none(),
        "a refused customer is not stored",
    )?;
    ensure(
        io(store.customer(&CustomerId::new("carla")))? == Some(person.clone()),
        "read back",
    )?;
    let search =
        |f: CustomerFilter, after: Option<&str>, limit: usize| -> Result<Vec<String>, String> {
            let after = after.map(CustomerId::new);
            Ok(io(store.search_customers(&f, after.as_ref(), limit))?
                .into_iter()
                .map(|c| c.id.to_string())
                .collect())
        };
    let name = CustomerFilter {
        name: Some("acme".into()),
        ..Default::default()
    };
    ensure(
        search(name.clone(), None, 10)? == ["acme", "carla"],
        "by name",
    )?;
    ensure(search(name.clone(), None, 1)? == ["acme"], "page 1")?;
    ensure(search(name, Some("acme"), 1)? == ["carla"], "page 2")?;
    let f = |f: CustomerFilter| search(f, None, 10);
    ensure(
        f(CustomerFilter {
            tax_id: Some("DE-bolt".into()),
            ..Default::default()
        })? == ["bolt"],
        "by tax id",
    )?;
    ensure(
        f(CustomerFilter {
            email: Some("carla@example.ORG".into()),
            ..Default::default()
        })? == ["carla"],
        "by e-mail, case-insensitive",
    )?;
    ensure(
        f(CustomerFilter {
            segment: Some("enterprise".into()),
            ..Default::default()
        })? == ["acme", "bolt"],
        "by segment",
    )?;
    ensure(
        f(CustomerFilter {
            attribute: Some(("tier".into(), Some("silver".into()))),
            ..Default::default()
        })? == ["carla"],
        "by string attribute",
    )?;
    ensure(
        f(CustomerFilter {
            attribute: Some(("vip".into(), Some("true".into()))),
            ..Default::default()
        })? == ["acme", "bolt"],
        "by boolean attribute",
    )?;
    ensure(
        f(CustomerFilter {
            attribute: Some(("vip".into(), None)),
            ..Default::default()
        })?
        .len()
            == 2,
        "by attribute key",
    )?;
    // An update records before and after; an identical one writes nothing.
    let mut changed = person.clone();
    changed.segment = Some("smb".into());
    let entry = ok(
        store.apply(CustomerCommand::UpdateCustomer(changed.clone()), &by("r-u")),
        "update",
    )?;
    ensure(
        entry.before.as_ref().and_then(|b| b["segment"].as_str()) == Some("residential")
            && entry.after.as_ref().and_then(|a| a["segment"].as_str()) == Some("smb"),
        "update entry has before and after",
    )?;
    let count = io(store.history(&CustomerId::new("carla"), None, 100))?.len();
    ok(
        store.apply(CustomerCommand::UpdateCustomer(changed), &by("r-u2")),
        "same update",
    )?;
    ensure(
        io(store.history(&CustomerId::new("carla"), None, 100))?.len() == count,
        "an identical update writes no history",
    )?;
    let patched = ok(
        store.apply(
            CustomerCommand::PatchCustomer {
                id: CustomerId::new("carla"),
                patch: json!({"phone": "+4930123456", "custom": {"tier": null, "pets": 2}}),
            },
            &by("r-p"),
        ),
        "patch",
    )?;
    let carla = io(store.customer(&CustomerId::new("carla")))?.ok_or("carla")?;
    ensure(
        carla.phone.as_deref() == Some("+4930123456")
            && !carla.custom.contains_key("tier")
            && carla.custom.get("pets") == Some(&json!(2))
            && carla.segment.as_deref() == Some("smb")
            && patched.operation == "customer.update",
        "a merge patch changes only what it names",
    )?;
    refused(
        store.apply(
            CustomerCommand::PatchCustomer {
                id: CustomerId::new("carla"),
                patch: json!({"email": "nope"}),
            },
            &by("r-p"),
        ),
        "customer.invalid",
        "a patch is validated",
    )?;
    refused(
        store.apply(
            CustomerCommand::PatchCustomer {
                id: CustomerId::new("carla"),
                patch: json!({"id": "other"}),
            },
            &by("r-p"),
        ),
        "customer.id_immutable",
        "a patch cannot change the id",
    )?;
    refused(
        create(company("bad id", "Spaces")?),
        "customer.invalid",
        "ids are URL-safe",
    )?;
    refused(
        store.apply(
            CustomerCommand::UpdateCustomer(company("ghost", "Ghost")?),
            &by("r-g"),
        ),
        "customer.not_found",
        "update of an unknown customer",
    )
}

fn hierarchy(store: &dyn CustomerStore) -> Result<(), String> {
    let create = |a: Account| store.apply(CustomerCommand::CreateAccount(a), &by("r-a"));
    let update = |a: Account| store.apply(CustomerCommand::UpdateAccount(a), &by("r-a"));
    let paid_by_parent = json!("paid_by_parent");
    ok(
        create(account("hq", "acme", None, json!("self_paying"))),
        "hq",
    )?;
    ok(
        create(account("r1", "acme", Some("hq"), paid_by_parent.clone())),
        "r1",
    )?;
    ok(
        create(account("r2", "acme", Some("hq"), json!("self_paying"))),
        "r2",
    )?;
    ok(
        create(account(
            "l1",
            "acme",
            Some("r1"),
            json!({"paid_by": {"account": "hq"}}),
        )),
        "l1",
    )?;
    ok(
        create(account("l2", "acme", Some("r2"), paid_by_parent.clone())),
        "l2",
    )?;
    ok(
        create(account("b1", "bolt", None, json!("self_paying"))),
        "b1",
    )?;
    let before = io(store.forest())?;

    refused(
        create(account("hq", "acme", None, json!("self_paying"))),
        "account.exists",
        "duplicate account",
    )?;
    let mut unknown_cycle = account("x1", "acme", Some("hq"), paid_by_parent.clone());
    unknown_cycle.bill_cycle = BillCycleId::new("weekly");
    refused(
        create(unknown_cycle),
        "billing.unknown_cycle",
        "unknown cycle",
    )?;
    refused(
        create(account("x2", "acme", None, paid_by_parent.clone())),
        "hierarchy.root_paid_by_parent",
        "root paid by parent",
    )?;
    refused(
        create(account("x3", "ghost", None, json!("self_paying"))),
        "account.unknown_customer",
        "unknown customer",
    )?;
    refused(
        create(account(
            "x4",
            "acme",
            Some("nowhere"),
            paid_by_parent.clone(),
        )),
        "hierarchy.unknown_parent",
        "unknown parent",
    )?;
    refused(
        update(account("hq", "acme", Some("l1"), json!("self_paying"))),
        "hierarchy.cycle",
        "cycle",
    )?;
    refused(
        update(account(
            "r2",
            "acme",
            Some("hq"),
            json!({"paid_by": {"account": "l2"}}),
        )),
        "hierarchy.payer_not_ancestor",
        "a child paying for its parent",
    )?;
    let mut dollars = account(
        "l1",
        "acme",
        Some("r1"),
        json!({"paid_by": {"account": "hq"}}),
    );
    dollars.currency = crate::money::Currency::USD;
    refused(
        update(dollars),
        "hierarchy.currency_mismatch",
        "currency mismatch",
    )?;
    refused(
        update(account("l1", "bolt", Some("r1"), paid_by_parent.clone())),
        "account.customer_immutable",
        "moving an account to another customer",
    )?;
    ensure(
        io(store.forest())? == before,
        "refused changes changed nothing",
    )?;

    let forest = io(store.forest())?;
    ensure(forest.len() == 6, "six accounts")?;
    let billed: Vec<(String, u32)> = forest
        .billed_subtree(&AccountId::new("hq"))
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|b| (b.account.to_string(), b.depth))
        .collect();
    ensure(
        billed == [("hq".into(), 0), ("r1".into(), 1), ("l1".into(), 2)],
        "hq pays for r1 and l1",
    )?;
    ensure(
        forest.payer_of(&AccountId::new("l2")).ok() == Some(AccountId::new("r2")),
        "r2 pays for l2",
    )?;
    // A legal re-parenting is stored.
    ok(
        update(account("l2", "acme", Some("r1"), paid_by_parent)),
        "move l2",
    )?;
    ensure(
        io(store.account(&AccountId::new("l2")))?.and_then(|a| a.parent)
            == Some(AccountId::new("r1")),
        "moved",
    )?;
    let ids =
        |f: AccountFilter, after: Option<&str>, limit: usize| -> Result<Vec<String>, String> {
            let after = after.map(AccountId::new);
            Ok(io(store.search_accounts(&f, after.as_ref(), limit))?
                .into_iter()
                .map(|a| a.id.to_string())
                .collect())
        };
    let acme = AccountFilter {
        customer: Some(CustomerId::new("acme")),
        ..Default::default()
    };
    ensure(
        ids(acme.clone(), None, 10)? == ["hq", "l1", "l2", "r1", "r2"],
        "by customer",
    )?;
    ensure(
        ids(acme, Some("l2"), 2)? == ["r1", "r2"],
        "by customer, page 2",
    )?;
    ensure(
        ids(
            AccountFilter {
                parent: Some(AccountId::new("r1")),
                ..Default::default()
            },
            None,
            10,
        )? == ["l1", "l2"],
        "by parent",
    )?;
    ensure(
        ids(
            AccountFilter {
                cycle: Some(BillCycleId::new("monthly")),
                ..Default::default()
            },
            None,
            10,
        )?
        .len()
            == 6,
        "by cycle",
    )
}

fn subscriptions(store: &dyn CustomerStore) -> Result<(), String> {
    let sub = |id: &str, account: &str, subscriber: &str| -> Result<Subscription, String> {
        from(json!({
            "id": id, "account": account, "product": "office",
            "subscriber": subscriber,
            "history": [{"status": "pending", "on": "2026-10-01"}],
            "charges": [{"item": "fee"}]
        }))
    };
    let create = |s: Subscription| store.apply(CustomerCommand::CreateSubscription(s), &by("r-s"));
    ok(create(sub("s1", "l1", "4930000001")?), "s1")?;
    ok(create(sub("s2", "l1", "4930000002")?), "s2")?;
    ok(create(sub("s3", "r2", "4930000003")?), "s3")?;
    refused(
        create(sub("s1", "l1", "x")?),
        "subscription.exists",
        "duplicate",
    )?;
    refused(
        create(sub("s9", "nowhere", "x")?),
        "hierarchy.unknown_account",
        "unknown account",
    )?;
    let mut unknown_item = sub("s9", "l1", "x")?;
    unknown_item.charges[0].item = "nope".into();
    refused(create(unknown_item), "billing.unknown_item", "unknown item")?;
    let mut active_first = sub("s9", "l1", "x")?;
    active_first.history[0].status = SubscriptionStatus::Active;
    refused(
        create(active_first),
        "subscription.invalid",
        "must start pending",
    )?;
    ensure(
        io(store.subscription(&SubscriptionId::new("s9")))?.is_none(),
        "refused subscriptions are not stored",
    )?;

    let on = |d: &str| d.parse::<jiff::civil::Date>().unwrap_or_default();
    let change = |status: SubscriptionStatus, day: &str, reason: Option<&str>| {
        store.apply(
            CustomerCommand::ChangeStatus {
                subscription: SubscriptionId::new("s1"),
                status,
                on: on(day),
                reason: reason.map(str::to_string),
            },
            &by("r-st"),
        )
    };
    use SubscriptionStatus::*;
    ok(change(Active, "2026-10-05", None), "activate")?;
    let suspend = ok(
        change(Suspended, "2026-11-01", Some("fraud check")),
        "suspend",
    )?;
    ensure(
        suspend.operation == "subscription.suspend"
            && suspend.reason.as_deref() == Some("fraud check"),
        "the suspension keeps its reason",
    )?;
    refused(
        change(Active, "2026-10-20", None),
        "subscription.backdated_transition",
        "backdated",
    )?;
    ok(change(Active, "2026-11-10", None), "resume")?;
    ok(change(Deactivated, "2026-12-31", None), "deactivate")?;
    refused(
        change(Active, "2027-01-01", None),
        "subscription.illegal_transition",
        "deactivated is final",
    )?;
    refused(
        store.apply(
            CustomerCommand::ChangeStatus {
                subscription: SubscriptionId::new("ghost"),
                status: Active,
                on: on("2026-10-01"),
                reason: None,
            },
            &by("r-st"),
        ),
        "subscription.not_found",
        "unknown subscription",
    )?;
    let s1 = io(store.subscription(&SubscriptionId::new("s1")))?.ok_or("s1 is stored")?;
    let statuses: Vec<SubscriptionStatus> = s1.history.iter().map(|c| c.status).collect();
    ensure(
        statuses == [Pending, Active, Suspended, Active, Deactivated],
        "the dated history is kept",
    )?;
    let of: Vec<String> = io(store.subscriptions_of(&AccountId::new("l1")))?
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    ensure(of == ["s1", "s2"], "subscriptions_of")?;
    ensure(
        io(store.subscriptions_of(&AccountId::new("hq")))?.is_empty(),
        "none on hq",
    )?;
    let ids = |f: SubscriptionFilter, after: Option<&str>| -> Result<Vec<String>, String> {
        let after = after.map(SubscriptionId::new);
        Ok(io(store.search_subscriptions(&f, after.as_ref(), 10))?
            .into_iter()
            .map(|s| s.id.to_string())
            .collect())
    };
    ensure(
        ids(
            SubscriptionFilter {
                status: Some(Pending),
                ..Default::default()
            },
            None,
        )? == ["s2", "s3"],
        "by status",
    )?;
    ensure(
        ids(
            SubscriptionFilter {
                subscriber: Some(SubscriberId::new("4930000003")),
                ..Default::default()
            },
            None,
        )? == ["s3"],
        "by subscriber",
    )?;
    ensure(
        ids(
            SubscriptionFilter {
                account: Some(AccountId::new("l1")),
                ..Default::default()
            },
            Some("s1"),
        )? == ["s2"],
        "by account, after a cursor",
    )
}

fn history_and_audit(
    store: &dyn CustomerStore,
    audit: &dyn Fn() -> Result<Vec<AuditRecord>, StoreError>,
) -> Result<(), String> {
    let acme = CustomerId::new("acme");
    let history = io(store.history(&acme, None, 1_000))?;
    let ops: Vec<&str> = history.iter().map(|r| r.operation.as_str()).collect();
    ensure(
        ops == [
            "customer.create",
            "account.create",
            "account.create",
            "account.create",
            "account.create",
            "account.create",
            "account.update",
            "subscription.create",
            "subscription.create",
            "subscription.create",
            "subscription.activate",
            "subscription.suspend",
            "subscription.resume",
            "subscription.deactivate",
        ],
        &format!("acme's history in order, refusals absent: {ops:?}"),
    )?;
    ensure(
        history.windows(2).all(|w| w[0].id < w[1].id),
        "history is ordered by id",
    )?;
    let moved = &history[6];
    ensure(
        moved.target == "account/l2"
            && moved.before.as_ref().map(|b| b["parent"].clone()) == Some(json!("r2"))
            && moved.after.as_ref().map(|a| a["parent"].clone()) == Some(json!("r1")),
        "an account change keeps before and after",
    )?;
    ensure(
        history
            .iter()
            .all(|r| r.principal == "care-1" && r.customer.as_ref() == Some(&acme)),
        "attributed and filed under the customer",
    )?;
    let page = io(store.history(&acme, Some(history[1].id), 2))?;
    ensure(
        page.iter().map(|r| r.id).collect::<Vec<_>>() == [history[2].id, history[3].id],
        "history pages after a cursor",
    )?;
    ensure(
        io(store.history(&CustomerId::new("bolt"), None, 100))?
            .iter()
            .map(|r| r.operation.as_str())
            .collect::<Vec<_>>()
            == ["customer.create", "account.create"],
        "bolt's history is its own",
    )?;
    let trail = io(audit())?;
    for entry in &history {
        let record = trail
            .iter()
            .find(|r| r.id == entry.id)
            .ok_or_else(|| format!("no audit record for {}", entry.operation))?;
        ensure(
            record.operation == entry.operation
                && record.target == entry.target
                && record.request_id == entry.request_id
                && record.after == entry.after
                && record.credential.as_deref() == Some("tok1"),
            "the audit record matches the history entry",
        )?;
    }
    ensure(
        trail
            .iter()
            .filter(|r| r.operation == "billing.setup.update")
            .count()
            == 2,
        "setup changes are audited",
    )
}

fn setup_in_use(store: &dyn CustomerStore) -> Result<(), String> {
    let put = |setup: BillingSetup| {
        store.apply(
            CustomerCommand::PutSetup {
                setup,
                expected_version: None,
            },
            &by("r-setup"),
        )
    };
    let mut no_cycle = sample_setup()?;
    no_cycle.cycles.clear();
    refused(
        put(no_cycle),
        "billing.cycle_in_use",
        "removing a cycle in use",
    )?;
    let mut no_fee = sample_setup()?;
    no_fee.price_list.items.remove("fee");
    refused(
        put(no_fee),
        "billing.item_in_use",
        "removing an item in use",
    )?;
    ensure(
        io(store.setup())?.version == 2,
        "refused setups wrote nothing",
    )?;
    let mut more = sample_setup()?;
    more.invoice_number_template = "TG/{yy}{mm}/{seq:05}".into();
    ok(put(more), "a compatible change")?;
    let stored = io(store.setup())?;
    ensure(
        stored.version == 3 && stored.invoice_number_template == "TG/{yy}{mm}/{seq:05}",
        "stored with the next version",
    )
}
