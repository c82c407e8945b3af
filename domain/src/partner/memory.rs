//! [`super::PartnerStore`] in memory: for unit tests and as the reference the contract
//! ([`super::contract`]) is written against. Not durable.
//!
//! A write is checked in full against the stored state (and the earlier parts of the same write)
//! before anything of it is applied, so a refused write leaves no trace.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use jiff::civil::Date;
use smol_str::SmolStr;

use super::agreement::Agreement;
use super::dispute::Dispute;
use super::run::{
    SettlementItem, SettlementItemState, SettlementRun, count_item, settlement_run_id,
};
use super::share::{ItemShare, Position};
use super::statement::{PartnerStatement, StatementStage};
use super::store::{
    PartnerRecord, PartnerStore, PartnerStoreError, PartnerWrite, ReconciliationReport,
    position_count,
};
use crate::admin::AuditRecord;
use crate::billing::run::RunState;
use crate::ids::PartnerId;
use crate::ledger::StoreError;

#[derive(Default)]
struct State {
    counters: BTreeMap<SmolStr, u64>,
    partners: BTreeMap<PartnerId, PartnerRecord>,
    agreements: BTreeMap<SmolStr, Agreement>,
    positions: BTreeMap<(PartnerId, Date), Position>,
    item_shares: BTreeMap<(PartnerId, Date, SmolStr), ItemShare>,
    statements: BTreeMap<SmolStr, PartnerStatement>,
    reconciliations: BTreeMap<SmolStr, ReconciliationReport>,
    disputes: BTreeMap<SmolStr, Dispute>,
    runs: BTreeMap<SmolStr, SettlementRun>,
    run_keys: BTreeMap<SmolStr, SmolStr>,
    last_run: u64,
    items: BTreeMap<(SmolStr, PartnerId), SettlementItem>,
    audit: Vec<AuditRecord>,
}

/// Partner-settlement state in memory.
#[derive(Default)]
pub struct MemoryPartnerStore {
    state: Mutex<State>,
}

fn conflict(message: String) -> PartnerStoreError {
    PartnerStoreError::Conflict(message)
}

/// Refuses `write` unless every check of [`PartnerStore::commit`] passes; writes nothing.
fn check(s: &State, w: &PartnerWrite) -> Result<(), PartnerStoreError> {
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
    let mut versions: BTreeMap<&PartnerId, u64> = BTreeMap::new();
    for (record, read) in &w.partners {
        let id = &record.partner.id;
        let current = match versions.get(id) {
            Some(v) => *v,
            None => s.partners.get(id).map_or(0, |p| p.version),
        };
        if current != *read {
            return Err(conflict(format!(
                "partner {id} is at version {current}, not {read}"
            )));
        }
        versions.insert(id, record.version);
    }
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    for (agreement, read) in &w.agreements {
        let id = agreement.id.as_str();
        let current = match versions.get(id) {
            Some(v) => *v,
            None => s.agreements.get(id).map_or(0, |a| a.versions.len() as u64),
        };
        if current != *read {
            return Err(conflict(format!(
                "agreement {id} has {current} versions, not {read}"
            )));
        }
        versions.insert(id, agreement.versions.len() as u64);
    }
    let mut counts: BTreeMap<(&PartnerId, Date), u64> = BTreeMap::new();
    for (position, read) in &w.positions {
        let key = (&position.partner, position.period.start);
        let current = match counts.get(&key) {
            Some(v) => *v,
            None => s
                .positions
                .get(&(position.partner.clone(), position.period.start))
                .map_or(0, position_count),
        };
        if let Some(number) = s.statements.values().find_map(|st| {
            (st.partner == position.partner && st.period.start == position.period.start)
                .then(|| st.number.clone().unwrap_or_default())
        }) {
            return Err(conflict(format!(
                "position {}/{} is settled (statement {number})",
                position.partner, position.period.start
            )));
        }
        if current != *read {
            return Err(conflict(format!(
                "position {}/{} counts {current} items, not {read}",
                position.partner, position.period.start
            )));
        }
        counts.insert(key, position_count(position));
    }
    let mut items = BTreeSet::new();
    for x in &w.items {
        let key = (x.partner.clone(), x.period_start, x.share.item.clone());
        if s.item_shares.contains_key(&key) || !items.insert(key) {
            return Err(conflict(format!(
                "item {} of {}/{} is counted",
                x.share.item, x.partner, x.period_start
            )));
        }
    }
    // Stage of each statement as the write has left it so far.
    let mut stages: BTreeMap<&str, StatementStage> = BTreeMap::new();
    for statement in &w.statements {
        let Some(number) = statement.number.as_deref() else {
            return Err(conflict(format!(
                "a statement of {} has no number",
                statement.partner
            )));
        };
        if s.statements.contains_key(number) || stages.contains_key(number) {
            return Err(conflict(format!("statement number {number} is used")));
        }
        stages.insert(number, statement.stage());
    }
    for (statement, read) in &w.statement_updates {
        let Some(number) = statement.number.as_deref() else {
            return Err(conflict(format!(
                "a statement update of {} has no number",
                statement.partner
            )));
        };
        let current = match stages.get(number) {
            Some(stage) => Some(*stage),
            None => s.statements.get(number).map(PartnerStatement::stage),
        };
        let Some(current) = current else {
            return Err(conflict(format!("statement {number} is not stored")));
        };
        if current != *read {
            return Err(conflict(format!(
                "statement {number} is {current}, not {read}"
            )));
        }
        stages.insert(number, statement.stage());
    }
    let mut ids = BTreeSet::new();
    for r in &w.reconciliations {
        if s.reconciliations.contains_key(&r.id) || !ids.insert(r.id.as_str()) {
            return Err(conflict(format!("reconciliation {} exists", r.id)));
        }
    }
    if let Some(item) = &w.settlement_item {
        let stored = s.items.get(&(item.run.clone(), item.partner.clone()));
        if !stored.is_some_and(|i| i.state == SettlementItemState::Pending) {
            return Err(conflict(format!(
                "settlement item {}/{} is not pending",
                item.run, item.partner
            )));
        }
    }
    Ok(())
}

/// Applies a checked write.
fn apply(s: &mut State, w: PartnerWrite) {
    for (name, _, new) in w.counters {
        s.counters.insert(name, new);
    }
    for (record, _) in w.partners {
        s.partners.insert(record.partner.id.clone(), record);
    }
    for (agreement, _) in w.agreements {
        s.agreements.insert(agreement.id.clone(), agreement);
    }
    for (position, _) in w.positions {
        let key = (position.partner.clone(), position.period.start);
        s.positions.insert(key, position.stored());
    }
    for x in w.items {
        let key = (x.partner, x.period_start, x.share.item.clone());
        s.item_shares.insert(key, x.share);
    }
    let updates = w
        .statement_updates
        .into_iter()
        .map(|(statement, _)| statement);
    for statement in w.statements.into_iter().chain(updates) {
        if let Some(number) = statement.number.clone() {
            s.statements.insert(number.into(), statement);
        }
    }
    for r in w.reconciliations {
        s.reconciliations.insert(r.id.clone(), r);
    }
    for d in w.disputes {
        s.disputes.insert(d.id.clone(), d);
    }
    if let Some(item) = w.settlement_item {
        if let Some(run) = s.runs.get_mut(&item.run) {
            count_item(run, &item.state, item.updated_at);
        }
        s.items
            .insert((item.run.clone(), item.partner.clone()), item);
    }
    s.audit.extend(w.audit);
}

impl MemoryPartnerStore {
    /// An empty store.
    pub fn new() -> MemoryPartnerStore {
        MemoryPartnerStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Audit records written so far, in write order.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.state().audit.clone()
    }
}

impl PartnerStore for MemoryPartnerStore {
    fn commit(&self, write: PartnerWrite) -> Result<(), PartnerStoreError> {
        let mut s = self.state();
        check(&s, &write)?;
        apply(&mut s, write);
        Ok(())
    }

    fn counter(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self.state().counters.get(name).copied().unwrap_or(0))
    }

    fn partner(&self, id: &PartnerId) -> Result<Option<PartnerRecord>, StoreError> {
        Ok(self.state().partners.get(id).cloned())
    }

    fn partners(
        &self,
        after: Option<&PartnerId>,
        limit: usize,
    ) -> Result<Vec<PartnerRecord>, StoreError> {
        let s = self.state();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(s.partners
            .range::<PartnerId, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect())
    }

    fn agreement(&self, id: &str) -> Result<Option<Agreement>, StoreError> {
        Ok(self.state().agreements.get(id).cloned())
    }

    fn agreements(&self, partner: &PartnerId) -> Result<Vec<Agreement>, StoreError> {
        Ok(self
            .state()
            .agreements
            .values()
            .filter(|a| a.partner == *partner)
            .cloned()
            .collect())
    }

    fn position(
        &self,
        partner: &PartnerId,
        period_start: Date,
    ) -> Result<Option<Position>, StoreError> {
        Ok(self
            .state()
            .positions
            .get(&(partner.clone(), period_start))
            .cloned())
    }

    fn item_share(
        &self,
        partner: &PartnerId,
        period_start: Date,
        item: &str,
    ) -> Result<Option<ItemShare>, StoreError> {
        Ok(self
            .state()
            .item_shares
            .get(&(partner.clone(), period_start, SmolStr::new(item)))
            .cloned())
    }

    fn item_shares(
        &self,
        partner: &PartnerId,
        period_start: Date,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ItemShare>, StoreError> {
        let s = self.state();
        let key = |item: &str| (partner.clone(), period_start, SmolStr::new(item));
        let start = match after {
            Some(item) => Bound::Excluded(key(item)),
            None => Bound::Included(key("")),
        };
        Ok(s.item_shares
            .range((start, Bound::Unbounded))
            .take_while(|((p, d, _), _)| p == partner && *d == period_start)
            .take(limit)
            .map(|(_, share)| share.clone())
            .collect())
    }

    fn statement(&self, number: &str) -> Result<Option<PartnerStatement>, StoreError> {
        Ok(self.state().statements.get(number).cloned())
    }

    fn statements(
        &self,
        partner: &PartnerId,
        period_start: Option<Date>,
    ) -> Result<Vec<PartnerStatement>, StoreError> {
        let s = self.state();
        let mut out: Vec<PartnerStatement> = s
            .statements
            .values()
            .filter(|st| {
                st.partner == *partner && period_start.is_none_or(|p| st.period.start == p)
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.period.start, &a.number).cmp(&(b.period.start, &b.number)));
        Ok(out)
    }

    fn reconciliations(&self, statement: &str) -> Result<Vec<ReconciliationReport>, StoreError> {
        Ok(self
            .state()
            .reconciliations
            .values()
            .filter(|r| r.statement == statement)
            .cloned()
            .collect())
    }

    fn dispute(&self, id: &str) -> Result<Option<Dispute>, StoreError> {
        Ok(self.state().disputes.get(id).cloned())
    }

    fn disputes(&self, partner: &PartnerId) -> Result<Vec<Dispute>, StoreError> {
        Ok(self
            .state()
            .disputes
            .values()
            .filter(|d| d.partner == *partner)
            .cloned()
            .collect())
    }

    fn create_settlement_run(
        &self,
        mut run: SettlementRun,
        partners: &[PartnerId],
        audit: AuditRecord,
    ) -> Result<(SettlementRun, bool), StoreError> {
        let mut s = self.state();
        if let Some(id) = s.run_keys.get(&run.key)
            && let Some(existing) = s.runs.get(id)
        {
            return Ok((existing.clone(), false));
        }
        s.last_run += 1;
        run.id = settlement_run_id(s.last_run);
        for partner in partners {
            let item = SettlementItem {
                run: run.id.clone(),
                partner: partner.clone(),
                state: SettlementItemState::Pending,
                updated_at: run.created_at,
            };
            s.items.insert((run.id.clone(), partner.clone()), item);
        }
        s.run_keys.insert(run.key.clone(), run.id.clone());
        s.runs.insert(run.id.clone(), run.clone());
        s.audit.push(audit);
        Ok((run, true))
    }

    fn mark_settlement_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut s = self.state();
        let Some(r) = s.runs.get_mut(run) else {
            return Err(StoreError::Io(format!("no settlement run {run}")));
        };
        if r.state == RunState::Publishing {
            r.state = RunState::Running;
            r.published_at = Some(at);
            count_item(r, &SettlementItemState::Pending, at);
        }
        Ok(())
    }

    fn settlement_run(&self, id: &str) -> Result<Option<SettlementRun>, StoreError> {
        Ok(self.state().runs.get(id).cloned())
    }

    fn settlement_runs(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SettlementRun>, StoreError> {
        let s = self.state();
        let end = before.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(s.runs
            .range::<str, _>((Bound::Unbounded, end))
            .rev()
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn unpublished_settlement_runs(&self) -> Result<Vec<SettlementRun>, StoreError> {
        Ok(self
            .state()
            .runs
            .values()
            .filter(|r| r.state == RunState::Publishing)
            .cloned()
            .collect())
    }

    fn settlement_items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&PartnerId>,
        limit: usize,
    ) -> Result<Vec<SettlementItem>, StoreError> {
        let s = self.state();
        let run = SmolStr::new(run);
        let start = match after {
            Some(p) => Bound::Excluded((run.clone(), p.clone())),
            None => Bound::Included((run.clone(), PartnerId::new(""))),
        };
        Ok(s.items
            .range((start, Bound::Unbounded))
            .take_while(|((r, _), _)| *r == run)
            .map(|(_, i)| i)
            .filter(|i| !failed_only || matches!(i.state, SettlementItemState::Failed { .. }))
            .take(limit)
            .cloned()
            .collect())
    }

    fn settlement_item(
        &self,
        run: &str,
        partner: &PartnerId,
    ) -> Result<Option<SettlementItem>, StoreError> {
        Ok(self
            .state()
            .items
            .get(&(SmolStr::new(run), partner.clone()))
            .cloned())
    }

    fn fail_settlement_item(
        &self,
        run: &str,
        partner: &PartnerId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let key = (SmolStr::new(run), partner.clone());
        let Some(item) = s.items.get_mut(&key) else {
            return Err(StoreError::Io(format!(
                "settlement run {run} has no item for {partner}"
            )));
        };
        if item.state != SettlementItemState::Pending {
            return Ok(());
        }
        item.state = SettlementItemState::Failed {
            reason: reason.into(),
            message: message.to_string(),
        };
        item.updated_at = at;
        let state = item.state.clone();
        if let Some(r) = s.runs.get_mut(run) {
            count_item(r, &state, at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryPartnerStore;

    #[test]
    fn memory_store_keeps_the_partner_contract() {
        let store = MemoryPartnerStore::new();
        super::super::contract::run(&store).unwrap();
        super::super::contract::check_audit(&store.audit()).unwrap();
    }
}
