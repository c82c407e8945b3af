//! [`super::FinanceStore`] in memory: for unit tests and as the reference the contract
//! ([`super::contract`]) is written against. Not durable.
//!
//! A write is checked in full against the stored state (and the earlier parts of the same write)
//! before anything of it is applied, so a refused write leaves no trace.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use smol_str::SmolStr;

use super::collection::{
    CollectionItem, CollectionItemState, CollectionRun, collection_run_id, count_item,
};
use super::credit_note::CreditNote;
use super::dunning::{AccountDunning, DunningCase};
use super::notification::Notification;
use super::payment::{Payment, Refund};
use super::period::FinancialPeriod;
use super::receivable::ArEntry;
use super::store::{FinanceStore, FinanceStoreError, FinanceWrite, NoteFilter};
use crate::admin::AuditRecord;
use crate::billing::run::RunState;
use crate::ids::AccountId;
use crate::ledger::StoreError;

#[derive(Default)]
struct State {
    counters: BTreeMap<SmolStr, u64>,
    /// (account, write sequence) -> entry.
    entries: BTreeMap<(AccountId, u64), ArEntry>,
    /// Entry key -> where the entry is.
    entry_keys: BTreeMap<SmolStr, (AccountId, u64)>,
    last_entry: u64,
    payments: BTreeMap<SmolStr, Payment>,
    payment_keys: BTreeMap<SmolStr, SmolStr>,
    refunds: BTreeMap<SmolStr, Refund>,
    refund_keys: BTreeMap<SmolStr, SmolStr>,
    notes: BTreeMap<SmolStr, CreditNote>,
    note_keys: BTreeMap<SmolStr, SmolStr>,
    cases: BTreeMap<(AccountId, SmolStr), DunningCase>,
    accounts: BTreeMap<AccountId, AccountDunning>,
    notifications: BTreeMap<SmolStr, Notification>,
    periods: BTreeMap<SmolStr, FinancialPeriod>,
    runs: BTreeMap<SmolStr, CollectionRun>,
    run_keys: BTreeMap<SmolStr, SmolStr>,
    last_run: u64,
    items: BTreeMap<(SmolStr, AccountId), CollectionItem>,
    audit: Vec<AuditRecord>,
}

/// Finance state in memory.
#[derive(Default)]
pub struct MemoryFinanceStore {
    state: Mutex<State>,
}

fn conflict(message: String) -> FinanceStoreError {
    FinanceStoreError::Conflict(message)
}

/// Refuses `write` unless every check of [`FinanceStore::commit`] passes; writes nothing.
fn check(s: &State, w: &FinanceWrite) -> Result<(), FinanceStoreError> {
    let mut counters: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, read, new) in &w.counters {
        let current = match counters.get(name.as_str()) {
            Some(v) => *v,
            None => s.counters.get(name).copied().unwrap_or(0),
        };
        if current != *read {
            return Err(conflict(format!(
                "counter {name} is at {current}, not {read}"
            )));
        }
        counters.insert(name.as_str(), *new);
    }
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    for (period, read) in &w.periods {
        let current = match versions.get(period.id.as_str()) {
            Some(v) => *v,
            None => s.periods.get(&period.id).map_or(0, |p| p.version),
        };
        if current != *read {
            return Err(conflict(format!(
                "period {} is at version {current}, not {read}",
                period.id
            )));
        }
        versions.insert(period.id.as_str(), period.version);
    }
    let mut keys = BTreeSet::new();
    for e in &w.entries {
        if s.entry_keys.contains_key(&e.key) || !keys.insert(e.key.as_str()) {
            return Err(conflict(format!("entry key {} is used", e.key)));
        }
    }
    // Payment key -> owning payment id as of the earlier payments of this write (None: freed).
    let mut owners: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut written: BTreeMap<&str, &Payment> = BTreeMap::new();
    for p in &w.payments {
        let owner = match owners.get(p.key.as_str()) {
            Some(o) => *o,
            None => s.payment_keys.get(&p.key).map(SmolStr::as_str),
        };
        if owner.is_some_and(|o| o != p.id) {
            return Err(conflict(format!("payment key {} is used", p.key)));
        }
        let old = match written.get(p.id.as_str()) {
            Some(o) => Some(o.key.as_str()),
            None => s.payments.get(&p.id).map(|o| o.key.as_str()),
        };
        if let Some(old) = old
            && old != p.key
        {
            owners.insert(old, None);
        }
        owners.insert(p.key.as_str(), Some(p.id.as_str()));
        written.insert(p.id.as_str(), p);
    }
    let (mut ids, mut keys) = (BTreeSet::new(), BTreeSet::new());
    for r in &w.refunds {
        if s.refunds.contains_key(&r.id) || !ids.insert(r.id.as_str()) {
            return Err(conflict(format!("refund id {} is used", r.id)));
        }
        if s.refund_keys.contains_key(&r.key) || !keys.insert(r.key.as_str()) {
            return Err(conflict(format!("refund key {} is used", r.key)));
        }
    }
    let (mut numbers, mut keys) = (BTreeSet::new(), BTreeSet::new());
    for n in &w.notes {
        if s.notes.contains_key(&n.number) || !numbers.insert(n.number.as_str()) {
            return Err(conflict(format!("note number {} is used", n.number)));
        }
        if s.note_keys.contains_key(&n.key) || !keys.insert(n.key.as_str()) {
            return Err(conflict(format!("note key {} is used", n.key)));
        }
    }
    let mut ids = BTreeSet::new();
    for n in &w.notifications {
        if s.notifications.contains_key(&n.id) || !ids.insert(n.id.as_str()) {
            return Err(conflict(format!("notification {} exists", n.id)));
        }
    }
    if let Some((item, _)) = &w.collection_item {
        let stored = s.items.get(&(item.run.clone(), item.account.clone()));
        if !stored.is_some_and(|i| i.state == CollectionItemState::Pending) {
            return Err(conflict(format!(
                "collection item {}/{} is not pending",
                item.run, item.account
            )));
        }
    }
    Ok(())
}

/// Applies a checked write.
fn apply(s: &mut State, w: FinanceWrite) {
    for (name, _, new) in w.counters {
        s.counters.insert(name, new);
    }
    for (period, _) in w.periods {
        s.periods.insert(period.id.clone(), period);
    }
    for e in w.entries {
        s.last_entry += 1;
        let at = (e.account.clone(), s.last_entry);
        s.entry_keys.insert(e.key.clone(), at.clone());
        s.entries.insert(at, e);
    }
    for p in w.payments {
        if let Some(old) = s.payments.get(&p.id)
            && old.key != p.key
            && s.payment_keys.get(&old.key) == Some(&p.id)
        {
            let old_key = old.key.clone();
            s.payment_keys.remove(&old_key);
        }
        s.payment_keys.insert(p.key.clone(), p.id.clone());
        s.payments.insert(p.id.clone(), p);
    }
    for r in w.refunds {
        s.refund_keys.insert(r.key.clone(), r.id.clone());
        s.refunds.insert(r.id.clone(), r);
    }
    for n in w.notes {
        s.note_keys.insert(n.key.clone(), n.number.clone());
        s.notes.insert(n.number.clone(), n);
    }
    for c in w.cases {
        s.cases.insert((c.account.clone(), c.invoice.clone()), c);
    }
    for a in w.accounts {
        s.accounts.insert(a.account.clone(), a);
    }
    for n in w.notifications {
        s.notifications.insert(n.id.clone(), n);
    }
    if let Some((item, actions)) = w.collection_item {
        if let Some(run) = s.runs.get_mut(&item.run) {
            count_item(run, &item.state, &actions, item.updated_at);
        }
        s.items
            .insert((item.run.clone(), item.account.clone()), item);
    }
    s.audit.extend(w.audit);
}

impl MemoryFinanceStore {
    /// An empty store.
    pub fn new() -> MemoryFinanceStore {
        MemoryFinanceStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Audit records written so far, in write order.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.state().audit.clone()
    }
}

impl FinanceStore for MemoryFinanceStore {
    fn commit(&self, write: FinanceWrite) -> Result<(), FinanceStoreError> {
        let mut s = self.state();
        check(&s, &write)?;
        apply(&mut s, write);
        Ok(())
    }

    fn counter(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self.state().counters.get(name).copied().unwrap_or(0))
    }

    fn entry(&self, key: &str) -> Result<Option<ArEntry>, StoreError> {
        let s = self.state();
        Ok(s.entry_keys
            .get(key)
            .and_then(|at| s.entries.get(at))
            .cloned())
    }

    fn entries(&self, account: &AccountId) -> Result<Vec<ArEntry>, StoreError> {
        let s = self.state();
        let from = (account.clone(), 0);
        Ok(s.entries
            .range(from..)
            .take_while(|((a, _), _)| a == account)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        Ok(self.state().payments.get(id).cloned())
    }

    fn payment_by_key(&self, key: &str) -> Result<Option<Payment>, StoreError> {
        let s = self.state();
        Ok(s.payment_keys
            .get(key)
            .and_then(|id| s.payments.get(id))
            .cloned())
    }

    fn payments(&self, account: &AccountId) -> Result<Vec<Payment>, StoreError> {
        Ok(self
            .state()
            .payments
            .values()
            .filter(|p| p.account == *account)
            .cloned()
            .collect())
    }

    fn refund_by_key(&self, key: &str) -> Result<Option<Refund>, StoreError> {
        let s = self.state();
        Ok(s.refund_keys
            .get(key)
            .and_then(|id| s.refunds.get(id))
            .cloned())
    }

    fn refunds(&self, payment: &str) -> Result<Vec<Refund>, StoreError> {
        Ok(self
            .state()
            .refunds
            .values()
            .filter(|r| r.payment == payment)
            .cloned()
            .collect())
    }

    fn note(&self, number: &str) -> Result<Option<CreditNote>, StoreError> {
        Ok(self.state().notes.get(number).cloned())
    }

    fn note_by_key(&self, key: &str) -> Result<Option<CreditNote>, StoreError> {
        let s = self.state();
        Ok(s.note_keys.get(key).and_then(|n| s.notes.get(n)).cloned())
    }

    fn notes(
        &self,
        filter: &NoteFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CreditNote>, StoreError> {
        let s = self.state();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(s.notes
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, n)| n)
            .filter(|n| filter.matches(n))
            .take(limit)
            .cloned()
            .collect())
    }

    fn case(&self, account: &AccountId, invoice: &str) -> Result<Option<DunningCase>, StoreError> {
        Ok(self
            .state()
            .cases
            .get(&(account.clone(), SmolStr::new(invoice)))
            .cloned())
    }

    fn cases(&self, account: &AccountId) -> Result<Vec<DunningCase>, StoreError> {
        let s = self.state();
        let from = (account.clone(), SmolStr::default());
        Ok(s.cases
            .range(from..)
            .take_while(|((a, _), _)| a == account)
            .map(|(_, c)| c.clone())
            .collect())
    }

    fn account_dunning(&self, account: &AccountId) -> Result<Option<AccountDunning>, StoreError> {
        Ok(self.state().accounts.get(account).cloned())
    }

    fn unconverged_accounts(&self) -> Result<Vec<AccountDunning>, StoreError> {
        Ok(self
            .state()
            .accounts
            .values()
            .filter(|a| !a.converged)
            .cloned()
            .collect())
    }

    fn notification(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        Ok(self.state().notifications.get(id).cloned())
    }

    fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let s = self.state();
        let mut pending: Vec<&Notification> = s
            .notifications
            .values()
            .filter(|n| n.delivered_at.is_none())
            .collect();
        pending.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(pending.into_iter().take(limit).cloned().collect())
    }

    fn notifications(&self, account: &AccountId) -> Result<Vec<Notification>, StoreError> {
        let s = self.state();
        let mut out: Vec<Notification> = s
            .notifications
            .values()
            .filter(|n| n.account == *account)
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    fn mark_notification(
        &self,
        id: &str,
        delivered_at: Option<Timestamp>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let Some(n) = s.notifications.get_mut(id) else {
            return Err(StoreError::Io(format!("no notification {id}")));
        };
        if n.delivered_at.is_some() {
            return Ok(());
        }
        n.attempts = n.attempts.saturating_add(1);
        match delivered_at {
            Some(at) => n.delivered_at = Some(at),
            None => {
                if let Some(error) = error {
                    n.last_error = Some(error);
                }
            }
        }
        Ok(())
    }

    fn period(&self, id: &str) -> Result<Option<FinancialPeriod>, StoreError> {
        Ok(self.state().periods.get(id).cloned())
    }

    fn periods(&self) -> Result<Vec<FinancialPeriod>, StoreError> {
        Ok(self.state().periods.values().cloned().collect())
    }

    fn create_collection_run(
        &self,
        mut run: CollectionRun,
        accounts: &[AccountId],
        audit: AuditRecord,
    ) -> Result<(CollectionRun, bool), StoreError> {
        let mut s = self.state();
        if let Some(id) = s.run_keys.get(&run.key)
            && let Some(existing) = s.runs.get(id)
        {
            return Ok((existing.clone(), false));
        }
        s.last_run += 1;
        run.id = collection_run_id(s.last_run);
        for account in accounts {
            let item = CollectionItem {
                run: run.id.clone(),
                account: account.clone(),
                state: CollectionItemState::Pending,
                updated_at: run.created_at,
            };
            s.items.insert((run.id.clone(), account.clone()), item);
        }
        s.run_keys.insert(run.key.clone(), run.id.clone());
        s.runs.insert(run.id.clone(), run.clone());
        s.audit.push(audit);
        Ok((run, true))
    }

    fn mark_collection_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut s = self.state();
        let Some(r) = s.runs.get_mut(run) else {
            return Err(StoreError::Io(format!("no collection run {run}")));
        };
        if r.state == RunState::Publishing {
            r.state = RunState::Running;
            r.published_at = Some(at);
            count_item(r, &CollectionItemState::Pending, &[], at);
        }
        Ok(())
    }

    fn collection_run(&self, id: &str) -> Result<Option<CollectionRun>, StoreError> {
        Ok(self.state().runs.get(id).cloned())
    }

    fn collection_runs(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CollectionRun>, StoreError> {
        let s = self.state();
        let end = before.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(s.runs
            .range::<str, _>((Bound::Unbounded, end))
            .rev()
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn unpublished_collection_runs(&self) -> Result<Vec<CollectionRun>, StoreError> {
        Ok(self
            .state()
            .runs
            .values()
            .filter(|r| r.state == RunState::Publishing)
            .cloned()
            .collect())
    }

    fn collection_items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<CollectionItem>, StoreError> {
        let s = self.state();
        let run = SmolStr::new(run);
        let start = match after {
            Some(a) => Bound::Excluded((run.clone(), a.clone())),
            None => Bound::Included((run.clone(), AccountId::new(""))),
        };
        Ok(s.items
            .range((start, Bound::Unbounded))
            .take_while(|((r, _), _)| *r == run)
            .map(|(_, i)| i)
            .filter(|i| !failed_only || matches!(i.state, CollectionItemState::Failed { .. }))
            .take(limit)
            .cloned()
            .collect())
    }

    fn collection_item(
        &self,
        run: &str,
        account: &AccountId,
    ) -> Result<Option<CollectionItem>, StoreError> {
        Ok(self
            .state()
            .items
            .get(&(SmolStr::new(run), account.clone()))
            .cloned())
    }

    fn fail_collection_item(
        &self,
        run: &str,
        account: &AccountId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let key = (SmolStr::new(run), account.clone());
        let Some(item) = s.items.get_mut(&key) else {
            return Err(StoreError::Io(format!(
                "collection run {run} has no item for {account}"
            )));
        };
        if item.state != CollectionItemState::Pending {
            return Ok(());
        }
        item.state = CollectionItemState::Failed {
            reason: reason.into(),
            message: message.to_string(),
        };
        item.updated_at = at;
        let state = item.state.clone();
        if let Some(r) = s.runs.get_mut(run) {
            count_item(r, &state, &[], at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryFinanceStore;

    #[test]
    fn memory_store_keeps_the_finance_contract() {
        let store = MemoryFinanceStore::new();
        super::super::contract::run(&store).unwrap();
        super::super::contract::check_audit(&store.audit()).unwrap();
    }
}
