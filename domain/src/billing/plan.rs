//! The one place where a [`CustomerCommand`] is checked and turned into a [`CustomerWrite`]:
//! every backend calls [`plan`] under its write lock, so all of them refuse exactly the same
//! changes with exactly the same codes.

use serde::Serialize;
use serde_json::Value;

use super::customer::{Customer, FieldError};
use super::error::BillingError;
use super::hierarchy::Account;
use super::setup::BillingSetup;
use super::store::{
    ChangeRecord, CustomerCommand, CustomerStore, CustomerStoreError, CustomerWrite,
    SubscriptionFilter, WriteContext,
};
use super::subscription::{Subscription, SubscriptionStatus};
use crate::admin::AuditId;
use crate::admin::audit::redact;
use crate::ids::{CustomerId, SubscriptionId};
use crate::ledger::StoreError;

/// Rows read per page when a check walks every subscription.
const SCAN_CHUNK: usize = 1_000;

fn json<T: Serialize>(value: &T) -> Option<Value> {
    serde_json::to_value(value).ok().map(redact)
}

fn record(
    by: &WriteContext,
    operation: &str,
    target: String,
    customer: Option<CustomerId>,
    before: Option<Value>,
    after: Option<Value>,
) -> ChangeRecord {
    ChangeRecord {
        id: AuditId::next(by.at),
        at: by.at,
        principal: by.principal.clone(),
        credential: by.credential.clone(),
        request_id: by.request_id.clone(),
        operation: operation.into(),
        target,
        customer,
        reason: None,
        before,
        after,
    }
}

fn invalid(code: &'static str, path: &str, message: impl Into<String>) -> CustomerStoreError {
    CustomerStoreError::Invalid {
        code,
        problems: vec![FieldError {
            path: path.into(),
            code,
            message: message.into(),
        }],
    }
}

/// Longest id of a customer, account or subscription.
pub const ID_LEN_MAX: usize = 64;

/// Ids are 1..=64 of `A-Z a-z 0-9 . _ : -`, so they are safe in URLs and storage keys.
fn check_id(code: &'static str, id: &str) -> Result<(), CustomerStoreError> {
    let valid = !id.is_empty()
        && id.len() <= ID_LEN_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            code,
            "id",
            format!("{id:?}: ids are 1..={ID_LEN_MAX} of A-Z a-z 0-9 . _ : -"),
        ))
    }
}

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(fields) = target {
        for (key, value) in members {
            if value.is_null() {
                fields.remove(key);
            } else {
                merge_patch(fields.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Checks `command` against the state `store` reads and returns what to write, with the
/// history entry (also the audit record) of the change. A replacement identical to the stored
/// record gives an empty write and an entry whose `before` equals its `after`.
pub fn plan<S: CustomerStore + ?Sized>(
    store: &S,
    command: CustomerCommand,
    by: &WriteContext,
) -> Result<(CustomerWrite, ChangeRecord), CustomerStoreError> {
    let mut write = CustomerWrite::default();
    let entry = match command {
        CustomerCommand::CreateCustomer(customer) => {
            check_id("customer.invalid", customer.id.as_str())?;
            customer
                .validate(by.today())
                .map_err(|problems| CustomerStoreError::Invalid {
                    code: "customer.invalid",
                    problems,
                })?;
            if store.customer(&customer.id)?.is_some() {
                return Err(CustomerStoreError::Conflict {
                    code: "customer.exists",
                    message: format!("customer {} exists", customer.id),
                });
            }
            let entry = record(
                by,
                "customer.create",
                format!("customer/{}", customer.id),
                Some(customer.id.clone()),
                None,
                json(&customer),
            );
            write.customers.push(customer);
            entry
        }
        CustomerCommand::PatchCustomer { id, patch } => {
            let before = store
                .customer(&id)?
                .ok_or_else(|| customer_not_found(&id))?;
            if !patch.is_object() {
                return Err(invalid(
                    "customer.invalid",
                    "",
                    "a merge patch is a JSON object",
                ));
            }
            let mut value =
                serde_json::to_value(&before).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            merge_patch(&mut value, &patch);
            if value.get("id") != Some(&Value::String(id.to_string())) {
                return Err(CustomerStoreError::Refused {
                    code: "customer.id_immutable",
                    message: "a customer's id cannot change".into(),
                });
            }
            let customer: Customer = serde_path_to_error::deserialize(value).map_err(|e| {
                invalid(
                    "customer.invalid",
                    &e.path().to_string(),
                    e.inner().to_string(),
                )
            })?;
            return plan(store, CustomerCommand::UpdateCustomer(customer), by);
        }
        CustomerCommand::UpdateCustomer(customer) => {
            let before = store
                .customer(&customer.id)?
                .ok_or_else(|| customer_not_found(&customer.id))?;
            customer
                .validate(by.today())
                .map_err(|problems| CustomerStoreError::Invalid {
                    code: "customer.invalid",
                    problems,
                })?;
            let entry = record(
                by,
                "customer.update",
                format!("customer/{}", customer.id),
                Some(customer.id.clone()),
                json(&before),
                json(&customer),
            );
            if before == customer {
                return Ok((CustomerWrite::default(), entry));
            }
            write.customers.push(customer);
            entry
        }
        CustomerCommand::CreateAccount(account) => {
            check_id("account.invalid", account.id.as_str())?;
            if store.account(&account.id)?.is_some() {
                return Err(CustomerStoreError::Conflict {
                    code: "account.exists",
                    message: format!("account {} exists", account.id),
                });
            }
            check_account(store, &account)?;
            let entry = record(
                by,
                "account.create",
                format!("account/{}", account.id),
                Some(account.customer.clone()),
                None,
                json(&account),
            );
            write.accounts.push(account);
            entry
        }
        CustomerCommand::UpdateAccount(account) => {
            let before =
                store
                    .account(&account.id)?
                    .ok_or_else(|| CustomerStoreError::NotFound {
                        code: "account.not_found",
                        message: format!("no account {}", account.id),
                    })?;
            if before.customer != account.customer {
                return Err(CustomerStoreError::Refused {
                    code: "account.customer_immutable",
                    message: format!(
                        "account {} belongs to customer {}; create a new account instead",
                        account.id, before.customer
                    ),
                });
            }
            let entry = record(
                by,
                "account.update",
                format!("account/{}", account.id),
                Some(account.customer.clone()),
                json(&before),
                json(&account),
            );
            if before == account {
                return Ok((CustomerWrite::default(), entry));
            }
            check_account(store, &account)?;
            write.accounts.push(account);
            entry
        }
        CustomerCommand::CreateSubscription(subscription) => {
            check_id("subscription.invalid", subscription.id.as_str())?;
            if store.subscription(&subscription.id)?.is_some() {
                return Err(CustomerStoreError::Conflict {
                    code: "subscription.exists",
                    message: format!("subscription {} exists", subscription.id),
                });
            }
            let customer = check_subscription(store, &subscription)?;
            let entry = record(
                by,
                "subscription.create",
                format!("subscription/{}", subscription.id),
                Some(customer),
                None,
                json(&subscription),
            );
            write.subscriptions.push(subscription);
            entry
        }
        CustomerCommand::ChangeStatus {
            subscription,
            status,
            on,
            reason,
        } => {
            let before = store
                .subscription(&subscription)?
                .ok_or_else(|| subscription_not_found(&subscription))?;
            let mut after = before.clone();
            after.transition(status, on)?;
            let customer = store
                .account(&after.account)?
                .map(|a| a.customer)
                .ok_or_else(|| BillingError::UnknownAccount(after.account.clone()))?;
            let operation = match (before.status(), status) {
                (_, SubscriptionStatus::Pending) => "subscription.pending",
                (SubscriptionStatus::Suspended, SubscriptionStatus::Active) => {
                    "subscription.resume"
                }
                (_, SubscriptionStatus::Active) => "subscription.activate",
                (_, SubscriptionStatus::Suspended) => "subscription.suspend",
                (_, SubscriptionStatus::Deactivated) => "subscription.deactivate",
            };
            let mut entry = record(
                by,
                operation,
                format!("subscription/{}", after.id),
                Some(customer),
                json(&before),
                json(&after),
            );
            entry.reason = reason;
            write.subscriptions.push(after);
            entry
        }
        CustomerCommand::PutSetup {
            mut setup,
            expected_version,
        } => {
            let before = store.setup()?;
            if let Some(expected) = expected_version
                && expected != before.version
            {
                return Err(CustomerStoreError::Conflict {
                    code: "billing.setup_version_conflict",
                    message: format!(
                        "the setup is at version {}, not {expected}; reload and retry",
                        before.version
                    ),
                });
            }
            setup
                .validate()
                .map_err(|problems| CustomerStoreError::Invalid {
                    code: "billing.invalid_setup",
                    problems,
                })?;
            check_setup_in_use(store, &setup)?;
            setup.version = before.version.saturating_add(1);
            let entry = record(
                by,
                "billing.setup.update",
                "billing/setup".into(),
                None,
                json(&before),
                json(&setup),
            );
            write.setup = Some(setup);
            entry
        }
    };
    write.changes.push(entry.clone());
    Ok((write, entry))
}

fn customer_not_found(id: &CustomerId) -> CustomerStoreError {
    CustomerStoreError::NotFound {
        code: "customer.not_found",
        message: format!("no customer {id}"),
    }
}

fn subscription_not_found(id: &SubscriptionId) -> CustomerStoreError {
    CustomerStoreError::NotFound {
        code: "subscription.not_found",
        message: format!("no subscription {id}"),
    }
}

/// Fields, references (customer, cycle, discounts) and the hierarchy rules of an account.
fn check_account<S: CustomerStore + ?Sized>(
    store: &S,
    account: &Account,
) -> Result<(), CustomerStoreError> {
    if account.tax_jurisdiction.trim().is_empty() {
        return Err(invalid(
            "account.invalid",
            "tax_jurisdiction",
            "must not be empty",
        ));
    }
    if store.customer(&account.customer)?.is_none() {
        return Err(CustomerStoreError::Refused {
            code: "account.unknown_customer",
            message: format!("no customer {}", account.customer),
        });
    }
    let setup = store.setup()?;
    if setup.cycle(&account.bill_cycle).is_none() {
        return Err(BillingError::UnknownCycle(account.bill_cycle.clone()).into());
    }
    if let Some(missing) = account
        .discounts
        .iter()
        .find(|d| setup.discount(d).is_none())
    {
        return Err(BillingError::UnknownDiscount(missing.clone()).into());
    }
    store.forest()?.validate_change(account)?;
    Ok(())
}

/// Fields, history and references of a new subscription; returns the owning customer.
fn check_subscription<S: CustomerStore + ?Sized>(
    store: &S,
    subscription: &Subscription,
) -> Result<CustomerId, CustomerStoreError> {
    if subscription.product.trim().is_empty() {
        return Err(invalid(
            "subscription.invalid",
            "product",
            "must not be empty",
        ));
    }
    // Replay the history through the lifecycle rules.
    let Some(first) = subscription.history.first() else {
        return Err(invalid(
            "subscription.invalid",
            "history",
            "starts with pending",
        ));
    };
    if first.status != SubscriptionStatus::Pending {
        return Err(invalid(
            "subscription.invalid",
            "history[0].status",
            "a subscription starts pending",
        ));
    }
    let mut replay = subscription.clone();
    replay.history.truncate(1);
    for change in &subscription.history[1..] {
        replay.transition(change.status, change.on)?;
    }
    if let Some(i) = subscription.charges.iter().position(|c| c.quantity == 0) {
        return Err(invalid(
            "subscription.invalid",
            &format!("charges[{i}].quantity"),
            "at least 1",
        ));
    }
    let account = store
        .account(&subscription.account)?
        .ok_or_else(|| BillingError::UnknownAccount(subscription.account.clone()))?;
    let setup = store.setup()?;
    for charge in &subscription.charges {
        // The item must exist and have a price in the account's currency.
        setup.price_list.price(&charge.item, account.currency)?;
    }
    if let Some(missing) = subscription
        .discounts
        .iter()
        .find(|d| setup.discount(d).is_none())
    {
        return Err(BillingError::UnknownDiscount(missing.clone()).into());
    }
    Ok(account.customer)
}

/// A new setup must keep defining every cycle, discount and item that accounts and
/// subscriptions refer to.
fn check_setup_in_use<S: CustomerStore + ?Sized>(
    store: &S,
    setup: &BillingSetup,
) -> Result<(), CustomerStoreError> {
    let in_use = |code: &'static str, what: String| CustomerStoreError::Conflict {
        code,
        message: format!("{what}; change those first"),
    };
    for account in store.forest()?.accounts() {
        if setup.cycle(&account.bill_cycle).is_none() {
            return Err(in_use(
                "billing.cycle_in_use",
                format!(
                    "cycle {} is used by account {}",
                    account.bill_cycle, account.id
                ),
            ));
        }
        if let Some(d) = account
            .discounts
            .iter()
            .find(|d| setup.discount(d).is_none())
        {
            return Err(in_use(
                "billing.discount_in_use",
                format!("discount {d} is attached to account {}", account.id),
            ));
        }
    }
    let mut after = None;
    loop {
        let page = store.search_subscriptions(
            &SubscriptionFilter::default(),
            after.as_ref(),
            SCAN_CHUNK,
        )?;
        for subscription in &page {
            if let Some(c) = subscription
                .charges
                .iter()
                .find(|c| !setup.price_list.items.contains_key(&c.item))
            {
                return Err(in_use(
                    "billing.item_in_use",
                    format!(
                        "item {} is charged on subscription {}",
                        c.item, subscription.id
                    ),
                ));
            }
            if let Some(d) = subscription
                .discounts
                .iter()
                .find(|d| setup.discount(d).is_none())
            {
                return Err(in_use(
                    "billing.discount_in_use",
                    format!(
                        "discount {d} is attached to subscription {}",
                        subscription.id
                    ),
                ));
            }
        }
        if page.len() < SCAN_CHUNK {
            return Ok(());
        }
        after = page.last().map(|s| s.id.clone());
    }
}
