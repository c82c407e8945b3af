//! Bill runs and issued invoices: the durable records a bill run leaves, and the storage
//! contract ([`BillRunStore`]) both backends keep.
//!
//! A run is created once per idempotency key, with one item per top-level payer of its cycle.
//! Workers bill items in any order and any number of times (a job queue redelivers); the store
//! makes the effect exactly-once:
//! - an item already billed by this run answers with its invoice (a redelivered job);
//! - a payer already invoiced for the period by any run is marked `already_billed` with that
//!   invoice (a second run for the same period, under another key, bills nothing twice);
//! - otherwise the invoice gets the next number of its series (no gaps: the counter moves in
//!   the same write as the invoice), and the item and the run's counters move with it.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::cycle::Period;
use super::invoice::InvoiceDraft;
use crate::admin::AuditRecord;
use crate::ids::{AccountId, BillCycleId, CustomerId};
use crate::ledger::StoreError;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Created; its jobs are being published (a node restarting here publishes them again).
    Publishing,
    /// Every job is published; items are being billed.
    Running,
    /// Every item is billed, already billed or failed.
    Finished,
}

/// A bill run: one cycle, one period, one idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillRun {
    /// Run id (`br-<n>`).
    pub id: SmolStr,
    /// The caller's idempotency key.
    pub key: SmolStr,
    /// Bill cycle.
    pub cycle: BillCycleId,
    /// Period billed.
    pub period: Period,
    /// State.
    pub state: RunState,
    /// Who started it.
    pub created_by: SmolStr,
    /// When.
    pub created_at: Timestamp,
    /// When the last job was published.
    pub published_at: Option<Timestamp>,
    /// When the last item was resolved.
    pub finished_at: Option<Timestamp>,
    /// Items (top-level payers of the cycle).
    pub total: u64,
    /// Items invoiced by this run.
    pub billed: u64,
    /// Items already invoiced for the period by an earlier run.
    pub already_billed: u64,
    /// Items that could not be billed (dead-lettered with a reason).
    pub failed: u64,
}

impl BillRun {
    /// Items resolved one way or another.
    pub fn done(&self) -> u64 {
        self.billed + self.already_billed + self.failed
    }
}

/// What happened to one payer of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ItemState {
    /// Not billed yet.
    Pending,
    /// Invoiced by this run.
    Billed {
        /// The invoice.
        invoice: SmolStr,
    },
    /// Invoiced for the period by another run.
    AlreadyBilled {
        /// The invoice.
        invoice: SmolStr,
    },
    /// Not billable: the reason travels with the dead-lettered job.
    Failed {
        /// Stable reason code (`billing.no_tax_rate`, ...).
        reason: SmolStr,
        /// What went wrong.
        message: String,
    },
}

/// One payer of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunItem {
    /// Run.
    pub run: SmolStr,
    /// Paying account.
    pub payer: AccountId,
    /// State.
    #[serde(flatten)]
    pub state: ItemState,
    /// Last change.
    pub updated_at: Timestamp,
}

/// An issued invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Invoice number, also its id (`INV-2026-000001`).
    pub number: SmolStr,
    /// The numbering series (`INV-2026`).
    pub series: SmolStr,
    /// Sequence in the series.
    pub seq: u64,
    /// Issue date.
    pub issued_on: Date,
    /// Pay-by date (invoices issued before pay-by dates existed have none: the default payment
    /// term applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_on: Option<Date>,
    /// When it was written.
    pub issued_at: Timestamp,
    /// The run that issued it.
    pub run: SmolStr,
    /// Payer.
    pub payer: AccountId,
    /// Payer's customer.
    pub customer: CustomerId,
    /// Period.
    pub period: Period,
    /// Content.
    pub draft: InvoiceDraft,
}

/// The answer to [`BillRunStore::commit_invoice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceCommit {
    /// Written now.
    Issued(Box<Invoice>),
    /// This run had billed the payer already (a redelivered job): nothing written.
    Existing(SmolStr),
    /// Another run invoiced the payer for the period: the item is marked so.
    AlreadyBilled(SmolStr),
}

/// A new invoice as the worker hands it to the store, before numbering.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    /// The run.
    pub run: SmolStr,
    /// Content.
    pub draft: InvoiceDraft,
    /// Issue date (renders `{yyyy}` etc.).
    pub issued_on: Date,
    /// Pay-by date (issue date plus the payer's payment term).
    pub due_on: Option<Date>,
    /// When.
    pub issued_at: Timestamp,
    /// The number template, parsed and checked.
    pub template: super::numbering::NumberTemplate,
    /// Template `{series}` value.
    pub series: String,
}

/// Filters for [`BillRunStore::invoices`].
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    /// Only this payer.
    pub payer: Option<AccountId>,
    /// Only this customer.
    pub customer: Option<CustomerId>,
    /// Only this run.
    pub run: Option<SmolStr>,
    /// Only periods starting on this date.
    pub period_start: Option<Date>,
}

impl InvoiceFilter {
    /// Whether `invoice` passes.
    pub fn matches(&self, invoice: &Invoice) -> bool {
        self.payer.as_ref().is_none_or(|p| *p == invoice.payer)
            && self
                .customer
                .as_ref()
                .is_none_or(|c| *c == invoice.customer)
            && self.run.as_ref().is_none_or(|r| *r == invoice.run)
            && self.period_start.is_none_or(|d| d == invoice.period.start)
    }
}

/// Durable bill runs and invoices.
pub trait BillRunStore: Send + Sync {
    /// Creates `run` with one pending item per payer and its audit record, in one write, under
    /// the next run id ([`run_id`] of 1, 2, ...; `run.id` is ignored); when a run with the same
    /// key exists, returns it and writes nothing (`false`).
    fn create_run(
        &self,
        run: BillRun,
        payers: &[AccountId],
        audit: AuditRecord,
    ) -> Result<(BillRun, bool), StoreError>;
    /// Marks a run's jobs as published.
    fn mark_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError>;
    /// A run.
    fn run(&self, id: &str) -> Result<Option<BillRun>, StoreError>;
    /// Runs, newest first, with an id below `before` (cursor), at most `limit`.
    fn runs(&self, before: Option<&str>, limit: usize) -> Result<Vec<BillRun>, StoreError>;
    /// Runs still publishing (to finish after a restart).
    fn unpublished_runs(&self) -> Result<Vec<BillRun>, StoreError>;
    /// Items of a run in payer order after `after`, at most `limit`; only failed ones if asked.
    fn items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<RunItem>, StoreError>;
    /// One item.
    fn item(&self, run: &str, payer: &AccountId) -> Result<Option<RunItem>, StoreError>;
    /// Writes an invoice exactly once per (run, payer) and per (payer, period) (see the module
    /// docs), numbering it without gaps.
    fn commit_invoice(&self, invoice: NewInvoice) -> Result<InvoiceCommit, StoreError>;
    /// Marks a pending item failed (a billed item stays billed).
    fn fail_item(
        &self,
        run: &str,
        payer: &AccountId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// An invoice by number.
    fn invoice(&self, number: &str) -> Result<Option<Invoice>, StoreError>;
    /// Invoices matching `filter` in number order after `after`, at most `limit`.
    fn invoices(
        &self,
        filter: &InvoiceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Invoice>, StoreError>;
}

/// The key of a run id for ordering (`br-<20 digits>` sorts by creation).
pub fn run_id(seq: u64) -> SmolStr {
    smol_str::format_smolstr!("br-{seq:020}")
}

/// Applies an item's new state to its run's counters (and finishes the run when all are done).
pub fn count_item(run: &mut BillRun, state: &ItemState, at: Timestamp) {
    match state {
        ItemState::Pending => {}
        ItemState::Billed { .. } => run.billed += 1,
        ItemState::AlreadyBilled { .. } => run.already_billed += 1,
        ItemState::Failed { .. } => run.failed += 1,
    }
    if run.done() >= run.total && run.state != RunState::Publishing {
        run.state = RunState::Finished;
        run.finished_at.get_or_insert(at);
    }
}

/// What a backend writes for a [`NewInvoice`], decided from what it has stored: the same rules
/// for every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitPlan {
    /// The item was resolved before: write nothing, answer with this.
    Done(InvoiceCommit),
    /// Mark the item already billed by `invoice` (and count it).
    AlreadyBilled {
        /// The item's new state.
        item: RunItem,
        /// The other run's invoice.
        invoice: SmolStr,
    },
    /// Write the invoice, the series counter (`invoice.seq`), the (payer, period) index and the
    /// item, and count it.
    Issue {
        /// The item's new state.
        item: RunItem,
        /// The invoice.
        invoice: Box<Invoice>,
    },
}

/// Decides what committing `new` does, given the stored item of (run, payer), the invoice
/// already stored for (payer, period) if any, and the last sequence number of the series.
pub fn plan_commit(
    new: &NewInvoice,
    item: Option<&RunItem>,
    period_invoice: Option<SmolStr>,
    series_last: u64,
) -> Result<CommitPlan, StoreError> {
    let payer = &new.draft.payer;
    let Some(item) = item else {
        return Err(StoreError::Io(format!(
            "run {} has no item for payer {payer}",
            new.run
        )));
    };
    match &item.state {
        ItemState::Billed { invoice } => {
            return Ok(CommitPlan::Done(InvoiceCommit::Existing(invoice.clone())));
        }
        ItemState::AlreadyBilled { invoice } => {
            return Ok(CommitPlan::Done(InvoiceCommit::AlreadyBilled(
                invoice.clone(),
            )));
        }
        ItemState::Pending | ItemState::Failed { .. } => {}
    }
    if let Some(invoice) = period_invoice {
        return Ok(CommitPlan::AlreadyBilled {
            item: RunItem {
                state: ItemState::AlreadyBilled {
                    invoice: invoice.clone(),
                },
                updated_at: new.issued_at,
                ..item.clone()
            },
            invoice,
        });
    }
    let bad = |e: super::BillingError| StoreError::Io(format!("invoice numbering: {e}"));
    let seq = series_last + 1;
    let number = SmolStr::new(
        new.template
            .render(new.issued_on, &new.series, seq)
            .map_err(bad)?,
    );
    let series = SmolStr::new(
        new.template
            .series_key(new.issued_on, &new.series)
            .map_err(bad)?,
    );
    Ok(CommitPlan::Issue {
        item: RunItem {
            state: ItemState::Billed {
                invoice: number.clone(),
            },
            updated_at: new.issued_at,
            ..item.clone()
        },
        invoice: Box::new(Invoice {
            number,
            series,
            seq,
            issued_on: new.issued_on,
            due_on: new.due_on,
            issued_at: new.issued_at,
            run: new.run.clone(),
            payer: payer.clone(),
            customer: new.draft.customer.clone(),
            period: new.draft.period,
            draft: new.draft.clone(),
        }),
    })
}

/// The series a new invoice would be numbered in (backends read its counter first).
pub fn series_of(new: &NewInvoice) -> Result<SmolStr, StoreError> {
    new.template
        .series_key(new.issued_on, &new.series)
        .map(SmolStr::new)
        .map_err(|e| StoreError::Io(format!("invoice numbering: {e}")))
}

/// Whether a failure may be recorded on an item in this state (a billed item stays billed).
pub fn may_fail(item: &RunItem) -> bool {
    matches!(item.state, ItemState::Pending | ItemState::Failed { .. })
}
