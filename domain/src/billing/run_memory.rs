//! [`BillRunStore`] in memory: for unit tests and as the reference the contract is written
//! against. Not durable.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use smol_str::SmolStr;

use super::run::{
    BillRun, BillRunStore, CommitPlan, Invoice, InvoiceCommit, InvoiceFilter, ItemState,
    NewInvoice, RunItem, RunState, count_item, may_fail, plan_commit, series_of,
};
use crate::admin::AuditRecord;
use crate::ids::AccountId;
use crate::ledger::StoreError;

#[derive(Default)]
struct State {
    runs: BTreeMap<SmolStr, BillRun>,
    keys: BTreeMap<SmolStr, SmolStr>,
    items: BTreeMap<(SmolStr, AccountId), RunItem>,
    invoices: BTreeMap<SmolStr, Invoice>,
    by_period: BTreeMap<(AccountId, jiff::civil::Date), SmolStr>,
    series: BTreeMap<SmolStr, u64>,
    audit: Vec<AuditRecord>,
}

/// Bill runs and invoices in memory.
#[derive(Default)]
pub struct MemoryBillRunStore {
    state: Mutex<State>,
}

impl MemoryBillRunStore {
    /// An empty store.
    pub fn new() -> MemoryBillRunStore {
        MemoryBillRunStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Audit records written with runs.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.state().audit.clone()
    }
}

impl BillRunStore for MemoryBillRunStore {
    fn create_run(
        &self,
        mut run: BillRun,
        payers: &[AccountId],
        audit: AuditRecord,
    ) -> Result<(BillRun, bool), StoreError> {
        let mut s = self.state();
        if let Some(id) = s.keys.get(&run.key)
            && let Some(existing) = s.runs.get(id)
        {
            return Ok((existing.clone(), false));
        }
        run.id = super::run::run_id(s.runs.len() as u64 + 1);
        for payer in payers {
            let item = RunItem {
                run: run.id.clone(),
                payer: payer.clone(),
                state: ItemState::Pending,
                updated_at: run.created_at,
            };
            s.items.insert((run.id.clone(), payer.clone()), item);
        }
        s.keys.insert(run.key.clone(), run.id.clone());
        s.runs.insert(run.id.clone(), run.clone());
        s.audit.push(audit);
        Ok((run, true))
    }

    fn mark_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut s = self.state();
        let Some(r) = s.runs.get_mut(run) else {
            return Err(StoreError::Io(format!("no run {run}")));
        };
        if r.state == RunState::Publishing {
            r.state = RunState::Running;
            r.published_at = Some(at);
            count_item(r, &ItemState::Pending, at);
        }
        Ok(())
    }

    fn run(&self, id: &str) -> Result<Option<BillRun>, StoreError> {
        Ok(self.state().runs.get(id).cloned())
    }

    fn runs(&self, before: Option<&str>, limit: usize) -> Result<Vec<BillRun>, StoreError> {
        let s = self.state();
        Ok(s.runs
            .values()
            .rev()
            .filter(|r| before.is_none_or(|b| r.id.as_str() < b))
            .take(limit)
            .cloned()
            .collect())
    }

    fn unpublished_runs(&self) -> Result<Vec<BillRun>, StoreError> {
        let s = self.state();
        Ok(s.runs
            .values()
            .filter(|r| r.state == RunState::Publishing)
            .cloned()
            .collect())
    }

    fn items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<RunItem>, StoreError> {
        let s = self.state();
        Ok(s.items
            .values()
            .filter(|i| i.run == run)
            .filter(|i| after.is_none_or(|a| i.payer > *a))
            .filter(|i| !failed_only || matches!(i.state, ItemState::Failed { .. }))
            .take(limit)
            .cloned()
            .collect())
    }

    fn item(&self, run: &str, payer: &AccountId) -> Result<Option<RunItem>, StoreError> {
        Ok(self
            .state()
            .items
            .get(&(SmolStr::new(run), payer.clone()))
            .cloned())
    }

    fn commit_invoice(&self, new: NewInvoice) -> Result<InvoiceCommit, StoreError> {
        let mut s = self.state();
        let payer = new.draft.payer.clone();
        let key = (new.run.clone(), payer.clone());
        let series = series_of(&new)?;
        let plan = plan_commit(
            &new,
            s.items.get(&key),
            s.by_period
                .get(&(payer.clone(), new.draft.period.start))
                .cloned(),
            s.series.get(&series).copied().unwrap_or(0),
        )?;
        let was_failed = s
            .items
            .get(&key)
            .is_some_and(|i| matches!(i.state, ItemState::Failed { .. }));
        let (item, answer) = match plan {
            CommitPlan::Done(answer) => return Ok(answer),
            CommitPlan::AlreadyBilled { item, invoice } => {
                (item, InvoiceCommit::AlreadyBilled(invoice))
            }
            CommitPlan::Issue { item, invoice } => {
                s.series.insert(invoice.series.clone(), invoice.seq);
                s.by_period.insert(
                    (payer.clone(), invoice.period.start),
                    invoice.number.clone(),
                );
                s.invoices
                    .insert(invoice.number.clone(), (*invoice).clone());
                (item, InvoiceCommit::Issued(invoice))
            }
        };
        if let Some(run) = s.runs.get_mut(&new.run) {
            if was_failed {
                run.failed = run.failed.saturating_sub(1);
            }
            count_item(run, &item.state, new.issued_at);
        }
        s.items.insert(key, item);
        Ok(answer)
    }

    fn fail_item(
        &self,
        run: &str,
        payer: &AccountId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let key = (SmolStr::new(run), payer.clone());
        let Some(item) = s.items.get(&key).cloned() else {
            return Err(StoreError::Io(format!("run {run} has no item for {payer}")));
        };
        if !may_fail(&item) {
            return Ok(());
        }
        let first = matches!(item.state, ItemState::Pending);
        let state = ItemState::Failed {
            reason: reason.into(),
            message: message.to_string(),
        };
        if first && let Some(r) = s.runs.get_mut(run) {
            count_item(r, &state, at);
        }
        s.items.insert(
            key,
            RunItem {
                state,
                updated_at: at,
                ..item
            },
        );
        Ok(())
    }

    fn invoice(&self, number: &str) -> Result<Option<Invoice>, StoreError> {
        Ok(self.state().invoices.get(number).cloned())
    }

    fn invoices(
        &self,
        filter: &InvoiceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Invoice>, StoreError> {
        let s = self.state();
        Ok(s.invoices
            .values()
            .filter(|i| after.is_none_or(|a| i.number.as_str() > a))
            .filter(|i| filter.matches(i))
            .take(limit)
            .cloned()
            .collect())
    }
}
