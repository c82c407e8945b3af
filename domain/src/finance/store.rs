//! Durable finance state behind one trait, [`FinanceStore`], kept by every backend with the
//! same contract ([`super::contract`]).
//!
//! Reads are plain lookups. Every mutation is one [`FinanceWrite`], applied atomically: all of
//! it or nothing. Two things are checked inside the write, so a caller that decided from stale
//! reads is refused (`FinanceStoreError::Conflict`) and retries from fresh reads:
//! - counters (payment, refund and note sequences) move only from the value the caller read;
//! - periods are replaced only from the version the caller read.
//!
//! Idempotency keys are unique: a write that adds an entry, payment, refund, note or
//! notification whose key is already stored is refused as a conflict, so a retry after a crash
//! never writes a second one.

use jiff::Timestamp;
use smol_str::SmolStr;

use super::collection::{CollectionItem, CollectionRun};
use super::credit_note::CreditNote;
use super::dunning::{AccountDunning, DunningCase};
use super::notification::Notification;
use super::payment::{Payment, Refund};
use super::period::FinancialPeriod;
use super::receivable::ArEntry;
use crate::admin::AuditRecord;
use crate::ids::AccountId;
use crate::ledger::StoreError;

/// Why a finance write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinanceStoreError {
    /// What the write was decided from changed: re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One atomic change of finance state.
#[derive(Debug, Clone, Default)]
pub struct FinanceWrite {
    /// Receivable entries to add (keys unique).
    pub entries: Vec<ArEntry>,
    /// Payments to add or replace (by id; keys unique across payments).
    pub payments: Vec<Payment>,
    /// Refunds to add (ids and keys unique).
    pub refunds: Vec<Refund>,
    /// Credit and debit notes to add (numbers and keys unique).
    pub notes: Vec<CreditNote>,
    /// Dunning cases to add or replace (by account and invoice).
    pub cases: Vec<DunningCase>,
    /// Account dunning states to add or replace.
    pub accounts: Vec<AccountDunning>,
    /// Notifications to add to the outbox (ids unique).
    pub notifications: Vec<Notification>,
    /// Periods to add or replace: (period, the version read; 0 when it was not stored).
    pub periods: Vec<(FinancialPeriod, u64)>,
    /// Sequence counters to move: (name, value read, new value).
    pub counters: Vec<(SmolStr, u64, u64)>,
    /// A collection item resolved, with the actions it applied (counted on its run). Refused as
    /// a conflict unless the stored item is pending.
    pub collection_item: Option<(CollectionItem, Vec<SmolStr>)>,
    /// Audit records.
    pub audit: Vec<AuditRecord>,
}

impl FinanceWrite {
    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.payments.is_empty()
            && self.refunds.is_empty()
            && self.notes.is_empty()
            && self.cases.is_empty()
            && self.accounts.is_empty()
            && self.notifications.is_empty()
            && self.periods.is_empty()
            && self.counters.is_empty()
            && self.collection_item.is_none()
            && self.audit.is_empty()
    }
}

/// Filters for [`FinanceStore::notes`].
#[derive(Debug, Clone, Default)]
pub struct NoteFilter {
    /// Only this account.
    pub account: Option<AccountId>,
    /// Only notes on this invoice.
    pub invoice: Option<SmolStr>,
}

impl NoteFilter {
    /// Whether `note` passes.
    pub fn matches(&self, note: &CreditNote) -> bool {
        self.account.as_ref().is_none_or(|a| *a == note.account)
            && self.invoice.as_ref().is_none_or(|i| *i == note.invoice)
    }
}

/// Durable finance state.
pub trait FinanceStore: Send + Sync {
    /// Applies `write` atomically (see the module docs for what is checked).
    fn commit(&self, write: FinanceWrite) -> Result<(), FinanceStoreError>;

    /// A sequence counter (0 when never moved).
    fn counter(&self, name: &str) -> Result<u64, StoreError>;

    /// A receivable entry by key.
    fn entry(&self, key: &str) -> Result<Option<ArEntry>, StoreError>;
    /// An account's receivable entries in the order written.
    fn entries(&self, account: &AccountId) -> Result<Vec<ArEntry>, StoreError>;

    /// A payment by id.
    fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError>;
    /// A payment by idempotency key.
    fn payment_by_key(&self, key: &str) -> Result<Option<Payment>, StoreError>;
    /// An account's payments in id order.
    fn payments(&self, account: &AccountId) -> Result<Vec<Payment>, StoreError>;
    /// A refund by idempotency key.
    fn refund_by_key(&self, key: &str) -> Result<Option<Refund>, StoreError>;
    /// Refunds of a payment in id order.
    fn refunds(&self, payment: &str) -> Result<Vec<Refund>, StoreError>;

    /// A note by number.
    fn note(&self, number: &str) -> Result<Option<CreditNote>, StoreError>;
    /// A note by idempotency key.
    fn note_by_key(&self, key: &str) -> Result<Option<CreditNote>, StoreError>;
    /// Notes matching `filter` in number order after `after`, at most `limit`.
    fn notes(
        &self,
        filter: &NoteFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CreditNote>, StoreError>;

    /// The dunning case of an invoice.
    fn case(&self, account: &AccountId, invoice: &str) -> Result<Option<DunningCase>, StoreError>;
    /// An account's dunning cases in invoice order.
    fn cases(&self, account: &AccountId) -> Result<Vec<DunningCase>, StoreError>;
    /// An account's dunning state.
    fn account_dunning(&self, account: &AccountId) -> Result<Option<AccountDunning>, StoreError>;
    /// Every account whose dunning state is not known to be followed by service yet
    /// (`converged == false`), to converge after a crash.
    fn unconverged_accounts(&self) -> Result<Vec<AccountDunning>, StoreError>;

    /// A notification.
    fn notification(&self, id: &str) -> Result<Option<Notification>, StoreError>;
    /// Undelivered notifications, oldest first, at most `limit`.
    fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError>;
    /// An account's notifications, oldest first.
    fn notifications(&self, account: &AccountId) -> Result<Vec<Notification>, StoreError>;
    /// Records a delivery attempt: delivered at `delivered_at`, or failed with `error`.
    fn mark_notification(
        &self,
        id: &str,
        delivered_at: Option<Timestamp>,
        error: Option<String>,
    ) -> Result<(), StoreError>;

    /// A period.
    fn period(&self, id: &str) -> Result<Option<FinancialPeriod>, StoreError>;
    /// Every stored period in id order (periods never touched are open and not stored).
    fn periods(&self) -> Result<Vec<FinancialPeriod>, StoreError>;

    /// Creates `run` with one pending item per account and its audit record in one write, under
    /// the next id ([`super::collection::collection_run_id`]; `run.id` is ignored); when a run
    /// with the same key exists, returns it and writes nothing (`false`).
    fn create_collection_run(
        &self,
        run: CollectionRun,
        accounts: &[AccountId],
        audit: AuditRecord,
    ) -> Result<(CollectionRun, bool), StoreError>;
    /// Marks a run's jobs published (and finishes it when every item is already resolved).
    fn mark_collection_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError>;
    /// A run.
    fn collection_run(&self, id: &str) -> Result<Option<CollectionRun>, StoreError>;
    /// Runs, newest first, with an id below `before`, at most `limit`.
    fn collection_runs(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CollectionRun>, StoreError>;
    /// Runs still publishing.
    fn unpublished_collection_runs(&self) -> Result<Vec<CollectionRun>, StoreError>;
    /// Items of a run in account order after `after`, at most `limit`; only failed ones if asked.
    fn collection_items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<CollectionItem>, StoreError>;
    /// One item.
    fn collection_item(
        &self,
        run: &str,
        account: &AccountId,
    ) -> Result<Option<CollectionItem>, StoreError>;
    /// Marks a pending item failed and counts it (a processed item stays processed).
    fn fail_collection_item(
        &self,
        run: &str,
        account: &AccountId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}
