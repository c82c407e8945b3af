//! One [`FinanceWrite`] checked and turned into one [`WriteBatch`] (see [`super`]).

use std::collections::BTreeMap;

use super::*;

fn conflict(message: String) -> FinanceStoreError {
    FinanceStoreError::Conflict(message)
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
pub(super) fn stage(tx: &mut Tx<'_>, w: &FinanceWrite) -> Result<(), FinanceStoreError> {
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
    for (period, read) in &w.periods {
        let stored: Option<FinancialPeriod> = tx.one(PERIODS, period.id.as_bytes())?;
        let current = stored.map_or(0, |p| p.version);
        if current != *read {
            return Err(conflict(format!(
                "period {} is at version {current}, not {read}",
                period.id
            )));
        }
        tx.put(PERIODS, period.id.as_bytes().to_vec(), encode(period)?);
    }
    if !w.entries.is_empty() {
        let mut seq = counter(tx.get(META, LAST_ENTRY)?)?;
        for x in &w.entries {
            if tx.get(ENTRY_KEYS, x.key.as_bytes())?.is_some() {
                return Err(conflict(format!("entry key {} is used", x.key)));
            }
            seq += 1;
            let row = entry_key(&x.account, seq);
            tx.put(ENTRY_KEYS, x.key.as_bytes().to_vec(), row.clone());
            tx.put(ENTRIES, row, encode(x)?);
        }
        tx.put(META, LAST_ENTRY.to_vec(), seq.to_be_bytes().to_vec());
    }
    for p in &w.payments {
        if let Some(owner) = tx.get(PAYMENT_KEYS, p.key.as_bytes())?
            && owner != p.id.as_bytes()
        {
            return Err(conflict(format!("payment key {} is used", p.key)));
        }
        if let Some(old) = tx.one::<Payment>(PAYMENTS, p.id.as_bytes())? {
            if old.key != p.key {
                tx.delete(PAYMENT_KEYS, old.key.as_bytes().to_vec());
            }
            if old.account != p.account {
                tx.delete(
                    ACCOUNT_PAYMENTS,
                    pair(old.account.as_str(), p.id.as_bytes()),
                );
            }
        }
        let id = p.id.as_bytes().to_vec();
        tx.put(PAYMENT_KEYS, p.key.as_bytes().to_vec(), id.clone());
        tx.put(ACCOUNT_PAYMENTS, pair(p.account.as_str(), &id), id.clone());
        tx.put(PAYMENTS, id, encode(p)?);
    }
    for r in &w.refunds {
        if tx.get(REFUNDS, r.id.as_bytes())?.is_some() {
            return Err(conflict(format!("refund id {} is used", r.id)));
        }
        if tx.get(REFUND_KEYS, r.key.as_bytes())?.is_some() {
            return Err(conflict(format!("refund key {} is used", r.key)));
        }
        let id = r.id.as_bytes().to_vec();
        tx.put(REFUND_KEYS, r.key.as_bytes().to_vec(), id.clone());
        tx.put(PAYMENT_REFUNDS, pair(&r.payment, &id), id.clone());
        tx.put(REFUNDS, id, encode(r)?);
    }
    for n in &w.notes {
        if tx.get(NOTES, n.number.as_bytes())?.is_some() {
            return Err(conflict(format!("note number {} is used", n.number)));
        }
        if tx.get(NOTE_KEYS, n.key.as_bytes())?.is_some() {
            return Err(conflict(format!("note key {} is used", n.key)));
        }
        let number = n.number.as_bytes().to_vec();
        tx.put(NOTE_KEYS, n.key.as_bytes().to_vec(), number.clone());
        tx.put(
            ACCOUNT_NOTES,
            pair(n.account.as_str(), &number),
            number.clone(),
        );
        tx.put(INVOICE_NOTES, pair(&n.invoice, &number), number.clone());
        tx.put(NOTES, number, encode(n)?);
    }
    for c in &w.cases {
        let key = pair(c.account.as_str(), c.invoice.as_bytes());
        tx.put(CASES, key, encode(c)?);
    }
    for a in &w.accounts {
        let key = a.account.as_str().as_bytes().to_vec();
        if !a.converged {
            tx.put(SUSPENDED, key.clone(), key.clone());
        } else {
            tx.delete(SUSPENDED, key.clone());
        }
        tx.put(DUNNING, key, encode(a)?);
    }
    for n in &w.notifications {
        if tx.get(NOTIFICATIONS, n.id.as_bytes())?.is_some() {
            return Err(conflict(format!("notification {} exists", n.id)));
        }
        let id = n.id.as_bytes().to_vec();
        let time = time_key(n.created_at, &n.id);
        if n.delivered_at.is_none() {
            tx.put(OUTBOX, time.clone(), id.clone());
        }
        tx.put(
            ACCOUNT_NOTIFICATIONS,
            pair(n.account.as_str(), &time),
            id.clone(),
        );
        tx.put(NOTIFICATIONS, id, encode(n)?);
    }
    if let Some((item, actions)) = &w.collection_item {
        let key = pair(&item.run, item.account.as_str().as_bytes());
        let stored: Option<CollectionItem> = tx.one(ITEMS, &key)?;
        if !stored.is_some_and(|i| i.state == CollectionItemState::Pending) {
            return Err(conflict(format!(
                "collection item {}/{} is not pending",
                item.run, item.account
            )));
        }
        if let Some(mut run) = tx.one::<CollectionRun>(RUNS, item.run.as_bytes())? {
            count_item(&mut run, &item.state, actions, item.updated_at);
            tx.put(RUNS, run.id.as_bytes().to_vec(), encode(&run)?);
        }
        tx.put(ITEMS, key, encode(item)?);
    }
    Ok(())
}
