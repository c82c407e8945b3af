//! One [`PartnerWrite`] checked and turned into one [`WriteBatch`] (see [`super`]).

use std::collections::BTreeMap;

use tollgate_domain::partner::store::position_count;

use super::*;

fn conflict(message: String) -> PartnerStoreError {
    PartnerStoreError::Conflict(message)
}

/// The changes of one write, read through to the store: the checks of a write see what its
/// earlier parts did, and nothing reaches the store unless every check passes.
pub(super) struct Tx<'a> {
    store: &'a EmbeddedStore,
    changes: BTreeMap<(&'static str, Vec<u8>), Option<Vec<u8>>>,
}

impl<'a> Tx<'a> {
    pub(super) fn new(store: &'a EmbeddedStore) -> Self {
        Tx {
            store,
            changes: BTreeMap::new(),
        }
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.changes.get(&(table, key.to_vec())) {
            Some(value) => Ok(value.clone()),
            None => self.store.get(table, key).map_err(convert),
        }
    }

    fn one<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.get(table, key)?.map(|b| decode(&b)).transpose()
    }

    fn put(&mut self, table: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.changes.insert((table, key), Some(value));
    }

    fn delete(&mut self, table: &'static str, key: Vec<u8>) {
        self.changes.insert((table, key), None);
    }

    pub(super) fn into_batch(self) -> WriteBatch {
        let mut batch = WriteBatch::default();
        for ((table, key), value) in self.changes {
            match value {
                Some(v) => batch.put(table, &key, &v),
                None => batch.delete(table, &key),
            };
        }
        batch
    }
}

/// Checks `w` and stages its changes in `tx` (refused as a conflict as soon as a check fails).
pub(super) fn stage(tx: &mut Tx<'_>, w: &PartnerWrite) -> Result<(), PartnerStoreError> {
    for (name, read, new) in &w.counters {
        let current = counter(tx.get(COUNTERS, name.as_bytes())?)?;
        if current != *read {
            return Err(conflict(format!(
                "counter {name} is at {current}, not {read}"
            )));
        }
        tx.put(
            COUNTERS,
            name.as_bytes().to_vec(),
            new.to_be_bytes().to_vec(),
        );
    }
    for (record, read) in &w.partners {
        let id = &record.partner.id;
        let key = id.as_str().as_bytes().to_vec();
        let stored: Option<PartnerRecord> = tx.one(PARTNERS, &key)?;
        let current = stored.map_or(0, |p| p.version);
        if current != *read {
            return Err(conflict(format!(
                "partner {id} is at version {current}, not {read}"
            )));
        }
        tx.put(PARTNERS, key, encode(record)?);
    }
    for (agreement, read) in &w.agreements {
        let id = agreement.id.as_bytes().to_vec();
        let stored: Option<Agreement> = tx.one(AGREEMENTS, &id)?;
        let current = stored.as_ref().map_or(0, |a| a.versions.len() as u64);
        if current != *read {
            return Err(conflict(format!(
                "agreement {} has {current} versions, not {read}",
                agreement.id
            )));
        }
        if let Some(old) = stored
            && old.partner != agreement.partner
        {
            tx.delete(PARTNER_AGREEMENTS, pair(old.partner.as_str(), &id));
        }
        tx.put(
            PARTNER_AGREEMENTS,
            pair(agreement.partner.as_str(), &id),
            id.clone(),
        );
        tx.put(AGREEMENTS, id, encode(agreement)?);
    }
    for (position, read) in &w.positions {
        let key = period_key(&position.partner, position.period.start);
        let stored: Option<Position> = tx.one(POSITIONS, &key)?;
        let current = stored.as_ref().map_or(0, position_count);
        // A settled period's position stays as it was settled (late records go to a later
        // period); the write that issues the statement checks the position it was built from.
        let settled = tx
            .store
            .scan_prefix(
                PARTNER_STATEMENTS,
                &in_period(&position.partner, position.period.start, ""),
                1,
            )
            .map_err(convert)?;
        if let Some((_, number)) = settled.first() {
            return Err(conflict(format!(
                "position {}/{} is settled (statement {})",
                position.partner,
                position.period.start,
                String::from_utf8_lossy(number)
            )));
        }
        if current != *read {
            return Err(conflict(format!(
                "position {}/{} counts {current} items, not {read}",
                position.partner, position.period.start
            )));
        }
        tx.put(POSITIONS, key, encode(&position.stored())?);
    }
    for x in &w.items {
        let key = in_period(&x.partner, x.period_start, &x.share.item);
        if tx.get(ITEM_SHARES, &key)?.is_some() {
            return Err(conflict(format!(
                "item {} of {}/{} is counted",
                x.share.item, x.partner, x.period_start
            )));
        }
        tx.put(ITEM_SHARES, key, encode(&x.share)?);
    }
    for statement in &w.statements {
        let Some(number) = statement.number.as_deref() else {
            return Err(conflict(format!(
                "a statement of {} has no number",
                statement.partner
            )));
        };
        if tx.get(STATEMENTS, number.as_bytes())?.is_some() {
            return Err(conflict(format!("statement number {number} is used")));
        }
        let value = number.as_bytes().to_vec();
        tx.put(
            PARTNER_STATEMENTS,
            statement_key(statement, number),
            value.clone(),
        );
        tx.put(STATEMENTS, value, encode(statement)?);
    }
    for (statement, read) in &w.statement_updates {
        let Some(number) = statement.number.as_deref() else {
            return Err(conflict(format!(
                "a statement update of {} has no number",
                statement.partner
            )));
        };
        let Some(stored) = tx.one::<PartnerStatement>(STATEMENTS, number.as_bytes())? else {
            return Err(conflict(format!("statement {number} is not stored")));
        };
        let current = stored.stage();
        if current != *read {
            return Err(conflict(format!(
                "statement {number} is {current}, not {read}"
            )));
        }
        let old = statement_key(&stored, number);
        let new = statement_key(statement, number);
        if old != new {
            tx.delete(PARTNER_STATEMENTS, old);
        }
        let value = number.as_bytes().to_vec();
        tx.put(PARTNER_STATEMENTS, new, value.clone());
        tx.put(STATEMENTS, value, encode(statement)?);
    }
    for r in &w.reconciliations {
        let id = r.id.as_bytes().to_vec();
        if tx.get(RECONCILIATIONS, &id)?.is_some() {
            return Err(conflict(format!("reconciliation {} exists", r.id)));
        }
        tx.put(
            STATEMENT_RECONCILIATIONS,
            pair(&r.statement, &id),
            id.clone(),
        );
        tx.put(RECONCILIATIONS, id, encode(r)?);
    }
    for d in &w.disputes {
        let id = d.id.as_bytes().to_vec();
        if let Some(old) = tx.one::<Dispute>(DISPUTES, &id)?
            && old.partner != d.partner
        {
            tx.delete(PARTNER_DISPUTES, pair(old.partner.as_str(), &id));
        }
        tx.put(PARTNER_DISPUTES, pair(d.partner.as_str(), &id), id.clone());
        tx.put(DISPUTES, id, encode(d)?);
    }
    if let Some(item) = &w.settlement_item {
        let key = pair(&item.run, item.partner.as_str().as_bytes());
        let stored: Option<SettlementItem> = tx.one(ITEMS, &key)?;
        if !stored.is_some_and(|i| i.state == SettlementItemState::Pending) {
            return Err(conflict(format!(
                "settlement item {}/{} is not pending",
                item.run, item.partner
            )));
        }
        if let Some(mut run) = tx.one::<SettlementRun>(RUNS, item.run.as_bytes())? {
            count_item(&mut run, &item.state, item.updated_at);
            tx.put(RUNS, run.id.as_bytes().to_vec(), encode(&run)?);
        }
        tx.put(ITEMS, key, encode(item)?);
    }
    Ok(())
}
