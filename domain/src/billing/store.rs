//! The storage contract of customer data: customers, accounts, subscriptions and the billing
//! setup, with a change history per customer.
//!
//! Writes are commands ([`CustomerCommand`]). Every backend applies a command the same way:
//! under its write lock it calls [`super::plan::plan`], which reads the current state through
//! this trait and checks the change with the pure domain rules (`Customer::validate`,
//! `Forest::validate_change` against the current forest, `Subscription::transition`,
//! `BillingSetup::validate` and referential checks); only then does it make the new state,
//! the audit record and the history entry durable in **one** transaction. A refused command
//! writes nothing. Serialising the check with the write matters: two concurrent re-parentings
//! that are each fine alone may together form a cycle.
//!
//! Scaling note: [`CustomerStore::forest`] loads every account (a bill run and every account
//! write need the whole forest to check cycles and payers). That is fine for millions of small
//! records on one node; past that, the forest would be kept per root hierarchy.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smol_str::SmolStr;

use super::customer::{Customer, CustomerStatus, FieldError};
use super::error::BillingError;
use super::hierarchy::{Account, Forest};
use super::setup::BillingSetup;
use super::subscription::{Subscription, SubscriptionStatus};
use crate::admin::{AuditId, AuditRecord};
use crate::ids::{AccountId, BillCycleId, CustomerId, SubscriberId, SubscriptionId};
use crate::ledger::StoreError;

/// Who makes a change, when, and through which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteContext {
    /// When (its UTC date is "today" for validation, e.g. of birthdays).
    pub at: Timestamp,
    /// User name, or `system`.
    pub principal: SmolStr,
    /// Token id or identity provider subject (never a secret).
    pub credential: Option<SmolStr>,
    /// Request id.
    pub request_id: SmolStr,
}

impl WriteContext {
    /// A context for changes made by the node itself (demo data, imports).
    pub fn system(at: Timestamp, request_id: &str) -> WriteContext {
        WriteContext {
            at,
            principal: "system".into(),
            credential: None,
            request_id: request_id.into(),
        }
    }

    /// The UTC civil date of `at`.
    pub fn today(&self) -> Date {
        self.at.to_zoned(jiff::tz::TimeZone::UTC).date()
    }
}

/// One entry of a customer's change history (and of the audit trail, under the same id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The audit record's id (time-ordered).
    pub id: AuditId,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub principal: SmolStr,
    /// Token id or identity provider subject.
    #[serde(default)]
    pub credential: Option<SmolStr>,
    /// Request id.
    pub request_id: SmolStr,
    /// What was done (`customer.create`, `account.update`, `subscription.suspend`...).
    pub operation: SmolStr,
    /// What it was done to (`customer/C1`, `account/A1`, `subscription/S1`, `billing/setup`).
    pub target: String,
    /// The customer whose history it belongs to (none for the billing setup).
    #[serde(default)]
    pub customer: Option<CustomerId>,
    /// Why, when the caller said (status changes).
    #[serde(default)]
    pub reason: Option<String>,
    /// State before (absent for creations).
    #[serde(default)]
    pub before: Option<Value>,
    /// State after.
    #[serde(default)]
    pub after: Option<Value>,
}

impl ChangeRecord {
    /// The audit record written with the change (same id, before and after redacted).
    pub fn audit(&self) -> AuditRecord {
        let mut record = AuditRecord::new(
            self.at,
            &self.principal,
            &self.operation,
            self.target.clone(),
            &self.request_id,
            self.before.clone(),
            self.after.clone(),
        );
        record.id = self.id;
        record.credential = self.credential.clone();
        record
    }
}

/// A change to make: checked against the current state, then written with its records.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    /// Create a customer (`customer.exists` if the id is taken).
    CreateCustomer(Customer),
    /// Replace a customer (`customer.not_found` if absent).
    UpdateCustomer(Customer),
    /// Apply a JSON merge patch (RFC 7396) to a customer, atomically with the check.
    PatchCustomer {
        /// Customer.
        id: CustomerId,
        /// The patch: an object whose `null` members remove fields.
        patch: Value,
    },
    /// Create an account (`account.exists` if the id is taken).
    CreateAccount(Account),
    /// Replace an account; its customer cannot change.
    UpdateAccount(Account),
    /// Create a subscription; its history must start with `pending`.
    CreateSubscription(Subscription),
    /// Move a subscription to another status on a date.
    ChangeStatus {
        /// Subscription.
        subscription: SubscriptionId,
        /// New status.
        status: SubscriptionStatus,
        /// Day it applies from.
        on: Date,
        /// Why (kept in the history).
        reason: Option<String>,
    },
    /// Replace the billing setup; `expected_version`, when given, must be the stored version.
    PutSetup {
        /// The new setup (its `version` is ignored: the store sets it).
        setup: BillingSetup,
        /// Optimistic concurrency check.
        expected_version: Option<u64>,
    },
}

/// What a planned command writes: new states, and one history/audit entry per change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerWrite {
    /// Customers to put.
    pub customers: Vec<Customer>,
    /// Accounts to put.
    pub accounts: Vec<Account>,
    /// Subscriptions to put (their account never changes).
    pub subscriptions: Vec<Subscription>,
    /// The setup to store, if it changes (with its new version).
    pub setup: Option<BillingSetup>,
    /// History entries (per customer when `customer` is set) and audit records.
    pub changes: Vec<ChangeRecord>,
}

impl CustomerWrite {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.accounts.is_empty()
            && self.subscriptions.is_empty()
            && self.setup.is_none()
            && self.changes.is_empty()
    }
}

/// Why a command was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CustomerStoreError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The customer, account or subscription named does not exist.
    #[error("{message}")]
    NotFound {
        /// `customer.not_found`, `account.not_found`, `subscription.not_found`.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// The request conflicts with the stored state (id taken, stale setup version, a
    /// definition still in use).
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// A request that cannot be carried out as asked on its own (an immutable field changed,
    /// an unknown customer referenced).
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Field validation failed; every problem is listed.
    #[error("{} invalid field(s)", .problems.len())]
    Invalid {
        /// `customer.invalid`, `account.invalid`, `subscription.invalid`,
        /// `billing.invalid_setup`.
        code: &'static str,
        /// Problems with their paths.
        problems: Vec<FieldError>,
    },
    /// A billing rule refused the change (hierarchy, lifecycle, unknown cycle, ...).
    #[error(transparent)]
    Rule(#[from] BillingError),
}

impl CustomerStoreError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CustomerStoreError::Store(e) => e.code(),
            CustomerStoreError::NotFound { code, .. }
            | CustomerStoreError::Conflict { code, .. }
            | CustomerStoreError::Refused { code, .. }
            | CustomerStoreError::Invalid { code, .. } => code,
            CustomerStoreError::Rule(e) => e.code(),
        }
    }

    /// Whether a rule refusal stems from the stored state of other records (a cycle, a payer
    /// that is not an ancestor, a currency mismatch with the payer, a lifecycle move) rather
    /// than from the request alone: APIs answer 409 for these, 422 for the other rules.
    pub fn is_state_conflict(&self) -> bool {
        matches!(
            self,
            CustomerStoreError::Conflict { .. }
                | CustomerStoreError::Rule(
                    BillingError::Cycle(_)
                        | BillingError::PayerNotAncestor { .. }
                        | BillingError::HierarchyCurrencyMismatch { .. }
                        | BillingError::IllegalTransition { .. }
                        | BillingError::BackdatedTransition { .. }
                )
        )
    }
}

/// Which customers a search wants; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    /// Case-insensitive substring of the display name (or the contact person's name).
    pub name: Option<String>,
    /// Exact tax id.
    pub tax_id: Option<String>,
    /// E-mail, case-insensitive (the customer's or the contact person's).
    pub email: Option<String>,
    /// Exact segment.
    pub segment: Option<String>,
    /// Status.
    pub status: Option<CustomerStatus>,
    /// A custom attribute key, and optionally its value: a string attribute matches its text,
    /// any other value its JSON text (`true`, `42`).
    pub attribute: Option<(String, Option<String>)>,
}

impl CustomerFilter {
    /// Whether `customer` passes.
    pub fn matches(&self, customer: &Customer) -> bool {
        let name_ok = self.name.as_deref().is_none_or(|needle| {
            let needle = needle.to_lowercase();
            customer.display_name().to_lowercase().contains(&needle)
                || customer
                    .contact_person
                    .as_ref()
                    .is_some_and(|c| c.name.to_lowercase().contains(&needle))
        });
        let email_ok = self.email.as_deref().is_none_or(|email| {
            customer
                .email
                .iter()
                .chain(
                    customer
                        .contact_person
                        .iter()
                        .filter_map(|c| c.email.as_ref()),
                )
                .any(|e| e.eq_ignore_ascii_case(email))
        });
        let attribute_ok = self.attribute.as_ref().is_none_or(|(key, value)| {
            customer.custom.get(key).is_some_and(|found| match value {
                None => true,
                Some(wanted) => match found {
                    Value::String(text) => text == wanted,
                    other => serde_json::from_str::<Value>(wanted).is_ok_and(|w| w == *other),
                },
            })
        });
        name_ok
            && email_ok
            && attribute_ok
            && self
                .tax_id
                .as_deref()
                .is_none_or(|t| customer.tax_id.as_deref() == Some(t))
            && self
                .segment
                .as_deref()
                .is_none_or(|s| customer.segment.as_deref() == Some(s))
            && self.status.is_none_or(|s| customer.status == s)
    }
}

/// Which accounts a search wants; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// Owning customer.
    pub customer: Option<CustomerId>,
    /// Direct parent.
    pub parent: Option<AccountId>,
    /// Bill cycle.
    pub cycle: Option<BillCycleId>,
}

impl AccountFilter {
    /// Whether `account` passes.
    pub fn matches(&self, account: &Account) -> bool {
        self.customer
            .as_ref()
            .is_none_or(|c| account.customer == *c)
            && self
                .parent
                .as_ref()
                .is_none_or(|p| account.parent.as_ref() == Some(p))
            && self.cycle.as_ref().is_none_or(|c| account.bill_cycle == *c)
    }
}

/// Which subscriptions a search wants; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// Billed account.
    pub account: Option<AccountId>,
    /// Rating key.
    pub subscriber: Option<SubscriberId>,
    /// Current status.
    pub status: Option<SubscriptionStatus>,
}

impl SubscriptionFilter {
    /// Whether `subscription` passes.
    pub fn matches(&self, subscription: &Subscription) -> bool {
        self.account
            .as_ref()
            .is_none_or(|a| subscription.account == *a)
            && self
                .subscriber
                .as_ref()
                .is_none_or(|s| subscription.subscriber.as_ref() == Some(s))
            && self.status.is_none_or(|s| subscription.status() == s)
    }
}

/// Customer data storage.
///
/// Searches return records in id order, those with an id greater than `after`, at most
/// `limit`: the last id of a page is the cursor of the next.
pub trait CustomerStore: Send + Sync {
    /// One customer.
    fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError>;
    /// One account.
    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;
    /// Every account (see the module's scaling note).
    fn forest(&self) -> Result<Forest, StoreError>;
    /// One subscription.
    fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError>;
    /// The subscriptions billed to `account`, by id.
    fn subscriptions_of(&self, account: &AccountId) -> Result<Vec<Subscription>, StoreError>;
    /// The billing setup (defaults, version 0, when never set).
    fn setup(&self) -> Result<BillingSetup, StoreError>;
    /// Customers matching `filter`.
    fn search_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError>;
    /// Accounts matching `filter`.
    fn search_accounts(
        &self,
        filter: &AccountFilter,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<Account>, StoreError>;
    /// Subscriptions matching `filter`.
    fn search_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        after: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// A customer's change history (its own, its accounts' and their subscriptions'), oldest
    /// first, entries with an id greater than `after`, at most `limit`.
    fn history(
        &self,
        customer: &CustomerId,
        after: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError>;
    /// Checks `command` against the current state and, if it passes, makes the change, its
    /// history entry and its audit record durable in one transaction. Returns the entry (a
    /// replacement identical to the stored record writes nothing and returns an entry whose
    /// `before` equals its `after`).
    fn apply(
        &self,
        command: CustomerCommand,
        by: &WriteContext,
    ) -> Result<ChangeRecord, CustomerStoreError>;
}
