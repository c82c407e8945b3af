//! Finance state ([`FinanceStore`]) on the embedded store: periods, payments, refunds,
//! receivable entries, credit and debit notes, dunning, the notification outbox and collection
//! runs.
//!
//! Tables (values JSON unless noted; `·` is a zero byte; ids and keys are UTF-8 text):
//! - `finance_counters`: counter name -> value (8 bytes, big-endian);
//! - `finance_meta`: `last_entry`, `last_collection_run` -> last sequence number (8 bytes,
//!   big-endian);
//! - `finance_entries`: account `·` write sequence (20 digits) -> entry: an account's entries
//!   in write order;
//! - `finance_entry_keys`: entry key -> its `finance_entries` key;
//! - `finance_payments`: payment id -> payment;
//! - `finance_payment_keys`: payment key -> payment id (text);
//! - `finance_account_payments`: account `·` payment id -> payment id (text);
//! - `finance_refunds`: refund id -> refund;
//! - `finance_refund_keys`: refund key -> refund id (text);
//! - `finance_payment_refunds`: payment id `·` refund id -> refund id (text);
//! - `finance_notes`: note number -> note;
//! - `finance_note_keys`: note key -> note number (text);
//! - `finance_account_notes`, `finance_invoice_notes`: account (invoice) `·` note number ->
//!   note number (text);
//! - `finance_cases`: account `·` invoice -> dunning case;
//! - `finance_dunning`: account -> account dunning state;
//! - `finance_suspended`: account -> account (text), while its dunning state is not converged;
//! - `finance_notifications`: notification id -> notification;
//! - `finance_outbox`: creation time (16 bytes: nanoseconds, sign bit flipped, big-endian) and
//!   id -> id (text), while undelivered: the pending notifications oldest first;
//! - `finance_account_notifications`: account `·` creation time (16 bytes) and id -> id (text);
//! - `finance_periods`: period id (`YYYY-MM`) -> period;
//! - `finance_collection_runs`: run id (`cr-<20 digits>`, so key order is creation order) ->
//!   run;
//! - `finance_collection_run_keys`: idempotency key -> run id (text);
//! - `finance_collection_items`: run id `·` account -> item;
//! - `audit`: the shared audit trail ([`put_audit`]).
//!
//! Every change is one [`WriteBatch`]: a [`FinanceWrite`] with its indexes, its collection item,
//! the item's run and its audit records is durable together or not at all. Its checks (counters,
//! period versions, unique keys, a pending item) read the stored state through the changes the
//! write has made so far, and run under one process-wide lock (the store has one process as
//! its writer), so nothing changes between check and write.

use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::run::RunState;
use tollgate_domain::finance::collection::{collection_run_id, count_item};
use tollgate_domain::finance::store::{FinanceStoreError, NoteFilter};
use tollgate_domain::finance::{
    AccountDunning, ArEntry, CollectionItem, CollectionItemState, CollectionRun, CreditNote,
    DunningCase, FinanceStore, FinanceWrite, FinancialPeriod, Notification, Payment, Refund,
};
use tollgate_domain::ids::AccountId;
use tollgate_domain::ledger::StoreError;

use crate::admin::put_audit;
use crate::embedded::{EmbeddedStore, WriteBatch};
use crate::ledger::convert;
use write::{Tx, stage};

mod write;

const COUNTERS: &str = "finance_counters";
const META: &str = "finance_meta";
const LAST_ENTRY: &[u8] = b"last_entry";
const LAST_RUN: &[u8] = b"last_collection_run";
const ENTRIES: &str = "finance_entries";
const ENTRY_KEYS: &str = "finance_entry_keys";
const PAYMENTS: &str = "finance_payments";
const PAYMENT_KEYS: &str = "finance_payment_keys";
const ACCOUNT_PAYMENTS: &str = "finance_account_payments";
const REFUNDS: &str = "finance_refunds";
const REFUND_KEYS: &str = "finance_refund_keys";
const PAYMENT_REFUNDS: &str = "finance_payment_refunds";
const NOTES: &str = "finance_notes";
const NOTE_KEYS: &str = "finance_note_keys";
const ACCOUNT_NOTES: &str = "finance_account_notes";
const INVOICE_NOTES: &str = "finance_invoice_notes";
const CASES: &str = "finance_cases";
const DUNNING: &str = "finance_dunning";
const SUSPENDED: &str = "finance_suspended";
const NOTIFICATIONS: &str = "finance_notifications";
const OUTBOX: &str = "finance_outbox";
const ACCOUNT_NOTIFICATIONS: &str = "finance_account_notifications";
const PERIODS: &str = "finance_periods";
const RUNS: &str = "finance_collection_runs";
const RUN_KEYS: &str = "finance_collection_run_keys";
const ITEMS: &str = "finance_collection_items";
/// Rows read per scan.
const CHUNK: usize = 1_000;

static COMMIT_LOCK: Mutex<()> = Mutex::new(());

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn counter(bytes: Option<Vec<u8>>) -> Result<u64, StoreError> {
    match bytes {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("counter is not 8 bytes".into())),
    }
}

/// `first`, a zero byte (the prefix of every key under `first`).
fn prefix(first: &str) -> Vec<u8> {
    let mut key = first.as_bytes().to_vec();
    key.push(0);
    key
}

/// `first`, a zero byte, `second`.
fn pair(first: &str, second: &[u8]) -> Vec<u8> {
    let mut key = prefix(first);
    key.extend_from_slice(second);
    key
}

fn entry_key(account: &AccountId, seq: u64) -> Vec<u8> {
    pair(account.as_str(), format!("{seq:020}").as_bytes())
}

/// A timestamp as 16 bytes that sort like it (nanoseconds, sign bit flipped, big-endian),
/// followed by `id`.
fn time_key(at: Timestamp, id: &str) -> Vec<u8> {
    let sortable = at.as_nanosecond().cast_unsigned() ^ (1u128 << 127);
    let mut key = sortable.to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// Finance state on the embedded store, sharing its file and writer thread.
pub struct EmbeddedFinanceStore {
    store: Arc<EmbeddedStore>,
}

impl EmbeddedFinanceStore {
    /// Finance state on `store` (typically the node's one store).
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedFinanceStore { store }
    }

    fn one<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.store
            .get(table, key)
            .map_err(convert)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Calls `visit` on the rows of `table` whose key starts with `prefix`, in key order, after
    /// the key `after` if given, until it answers `false`.
    fn walk(
        &self,
        table: &str,
        prefix: &[u8],
        after: Option<Vec<u8>>,
        mut visit: impl FnMut(Vec<u8>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut cursor = after;
        loop {
            let rows = match &cursor {
                None => self.store.scan_prefix(table, prefix, CHUNK),
                Some(last) => self.store.scan_after(table, Some(last), CHUNK),
            }
            .map_err(convert)?;
            let full = rows.len() == CHUNK;
            for (k, v) in rows {
                if !k.starts_with(prefix) {
                    return Ok(());
                }
                cursor = Some(k);
                if !visit(v)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The values of `table` under `prefix`, decoded.
    fn all<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.walk(table, prefix, None, |v| {
            out.push(decode(&v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The records of `target` named by the values of `index` under `prefix` (after `after`),
    /// those passing `keep`, at most `limit`.
    fn via<T: serde::de::DeserializeOwned>(
        &self,
        index: &str,
        prefix: &[u8],
        after: Option<Vec<u8>>,
        target: &str,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.walk(index, prefix, after, |id| {
            if let Some(record) = self.one::<T>(target, &id)?
                && keep(&record)
            {
                out.push(record);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn all_runs(&self) -> Result<Vec<CollectionRun>, StoreError> {
        self.all(RUNS, b"")
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.store.commit(batch).map(|_| ()).map_err(convert)
    }
}

impl FinanceStore for EmbeddedFinanceStore {
    fn commit(&self, write: FinanceWrite) -> Result<(), FinanceStoreError> {
        if write.is_empty() {
            return Ok(());
        }
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tx = Tx::new(&self.store);
        stage(&mut tx, &write)?;
        let mut batch = tx.into_batch();
        for record in &write.audit {
            put_audit(&mut batch, record)?;
        }
        Ok(self.write(batch)?)
    }

    fn counter(&self, name: &str) -> Result<u64, StoreError> {
        counter(self.store.get(COUNTERS, name.as_bytes()).map_err(convert)?)
    }

    fn entry(&self, key: &str) -> Result<Option<ArEntry>, StoreError> {
        match self
            .store
            .get(ENTRY_KEYS, key.as_bytes())
            .map_err(convert)?
        {
            Some(row) => self.one(ENTRIES, &row),
            None => Ok(None),
        }
    }

    fn entries(&self, account: &AccountId) -> Result<Vec<ArEntry>, StoreError> {
        self.all(ENTRIES, &prefix(account.as_str()))
    }

    fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        self.one(PAYMENTS, id.as_bytes())
    }

    fn payment_by_key(&self, key: &str) -> Result<Option<Payment>, StoreError> {
        match self
            .store
            .get(PAYMENT_KEYS, key.as_bytes())
            .map_err(convert)?
        {
            Some(id) => self.one(PAYMENTS, &id),
            None => Ok(None),
        }
    }

    fn payments(&self, account: &AccountId) -> Result<Vec<Payment>, StoreError> {
        let prefix = prefix(account.as_str());
        self.via(
            ACCOUNT_PAYMENTS,
            &prefix,
            None,
            PAYMENTS,
            usize::MAX,
            |_| true,
        )
    }

    fn refund_by_key(&self, key: &str) -> Result<Option<Refund>, StoreError> {
        match self
            .store
            .get(REFUND_KEYS, key.as_bytes())
            .map_err(convert)?
        {
            Some(id) => self.one(REFUNDS, &id),
            None => Ok(None),
        }
    }

    fn refunds(&self, payment: &str) -> Result<Vec<Refund>, StoreError> {
        self.via(
            PAYMENT_REFUNDS,
            &prefix(payment),
            None,
            REFUNDS,
            usize::MAX,
            |_| true,
        )
    }

    fn note(&self, number: &str) -> Result<Option<CreditNote>, StoreError> {
        self.one(NOTES, number.as_bytes())
    }

    fn note_by_key(&self, key: &str) -> Result<Option<CreditNote>, StoreError> {
        match self.store.get(NOTE_KEYS, key.as_bytes()).map_err(convert)? {
            Some(number) => self.one(NOTES, &number),
            None => Ok(None),
        }
    }

    fn notes(
        &self,
        filter: &NoteFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CreditNote>, StoreError> {
        let keep = |n: &CreditNote| filter.matches(n);
        // Through the narrowest index; every note otherwise (each row is its own index entry).
        let (index, prefix) = match (&filter.account, &filter.invoice) {
            (Some(account), _) => (ACCOUNT_NOTES, prefix(account.as_str())),
            (None, Some(invoice)) => (INVOICE_NOTES, prefix(invoice)),
            (None, None) => {
                let mut out = Vec::new();
                if limit == 0 {
                    return Ok(out);
                }
                let after = after.map(|a| a.as_bytes().to_vec());
                self.walk(NOTES, b"", after, |v| {
                    out.push(decode(&v)?);
                    Ok(out.len() < limit)
                })?;
                return Ok(out);
            }
        };
        let after = after.map(|a| {
            let mut key = prefix.clone();
            key.extend_from_slice(a.as_bytes());
            key
        });
        self.via(index, &prefix, after, NOTES, limit, keep)
    }

    fn case(&self, account: &AccountId, invoice: &str) -> Result<Option<DunningCase>, StoreError> {
        self.one(CASES, &pair(account.as_str(), invoice.as_bytes()))
    }

    fn cases(&self, account: &AccountId) -> Result<Vec<DunningCase>, StoreError> {
        self.all(CASES, &prefix(account.as_str()))
    }

    fn account_dunning(&self, account: &AccountId) -> Result<Option<AccountDunning>, StoreError> {
        self.one(DUNNING, account.as_str().as_bytes())
    }

    fn unconverged_accounts(&self) -> Result<Vec<AccountDunning>, StoreError> {
        self.via(
            SUSPENDED,
            b"",
            None,
            DUNNING,
            usize::MAX,
            |a: &AccountDunning| !a.converged,
        )
    }

    fn notification(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        self.one(NOTIFICATIONS, id.as_bytes())
    }

    fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError> {
        self.via(
            OUTBOX,
            b"",
            None,
            NOTIFICATIONS,
            limit,
            |n: &Notification| n.delivered_at.is_none(),
        )
    }

    fn notifications(&self, account: &AccountId) -> Result<Vec<Notification>, StoreError> {
        let prefix = prefix(account.as_str());
        self.via(
            ACCOUNT_NOTIFICATIONS,
            &prefix,
            None,
            NOTIFICATIONS,
            usize::MAX,
            |_| true,
        )
    }

    fn mark_notification(
        &self,
        id: &str,
        delivered_at: Option<Timestamp>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut n) = self.one::<Notification>(NOTIFICATIONS, id.as_bytes())? else {
            return Err(StoreError::Io(format!("no notification {id}")));
        };
        if n.delivered_at.is_some() {
            return Ok(());
        }
        n.attempts = n.attempts.saturating_add(1);
        let mut batch = WriteBatch::default();
        match delivered_at {
            Some(at) => {
                n.delivered_at = Some(at);
                batch.delete(OUTBOX, &time_key(n.created_at, &n.id));
            }
            None => {
                if let Some(error) = error {
                    n.last_error = Some(error);
                }
            }
        }
        batch.put(NOTIFICATIONS, id.as_bytes(), &encode(&n)?);
        self.write(batch)
    }

    fn period(&self, id: &str) -> Result<Option<FinancialPeriod>, StoreError> {
        self.one(PERIODS, id.as_bytes())
    }

    fn periods(&self) -> Result<Vec<FinancialPeriod>, StoreError> {
        self.all(PERIODS, b"")
    }

    fn create_collection_run(
        &self,
        mut run: CollectionRun,
        accounts: &[AccountId],
        audit: AuditRecord,
    ) -> Result<(CollectionRun, bool), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = self
            .store
            .get(RUN_KEYS, run.key.as_bytes())
            .map_err(convert)?
            && let Some(existing) = self.one::<CollectionRun>(RUNS, &id)?
        {
            return Ok((existing, false));
        }
        let seq = counter(self.store.get(META, LAST_RUN).map_err(convert)?)? + 1;
        run.id = collection_run_id(seq);
        let mut batch = WriteBatch::default();
        batch.put(META, LAST_RUN, &seq.to_be_bytes());
        batch.put(RUNS, run.id.as_bytes(), &encode(&run)?);
        batch.put(RUN_KEYS, run.key.as_bytes(), run.id.as_bytes());
        for account in accounts {
            let item = CollectionItem {
                run: run.id.clone(),
                account: account.clone(),
                state: CollectionItemState::Pending,
                updated_at: run.created_at,
            };
            let key = pair(&run.id, account.as_str().as_bytes());
            batch.put(ITEMS, &key, &encode(&item)?);
        }
        put_audit(&mut batch, &audit)?;
        self.write(batch)?;
        Ok((run, true))
    }

    fn mark_collection_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut r) = self.one::<CollectionRun>(RUNS, run.as_bytes())? else {
            return Err(StoreError::Io(format!("no collection run {run}")));
        };
        if r.state != RunState::Publishing {
            return Ok(());
        }
        r.state = RunState::Running;
        r.published_at = Some(at);
        count_item(&mut r, &CollectionItemState::Pending, &[], at);
        let mut batch = WriteBatch::default();
        batch.put(RUNS, run.as_bytes(), &encode(&r)?);
        self.write(batch)
    }

    fn collection_run(&self, id: &str) -> Result<Option<CollectionRun>, StoreError> {
        self.one(RUNS, id.as_bytes())
    }

    fn collection_runs(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CollectionRun>, StoreError> {
        // Runs are few (one a day, plus manual ones): read them all.
        Ok(self
            .all_runs()?
            .into_iter()
            .rev()
            .filter(|r| before.is_none_or(|b| r.id.as_str() < b))
            .take(limit)
            .collect())
    }

    fn unpublished_collection_runs(&self) -> Result<Vec<CollectionRun>, StoreError> {
        Ok(self
            .all_runs()?
            .into_iter()
            .filter(|r| r.state == RunState::Publishing)
            .collect())
    }

    fn collection_items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<CollectionItem>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let after = after.map(|a| pair(run, a.as_str().as_bytes()));
        self.walk(ITEMS, &prefix(run), after, |v| {
            let item: CollectionItem = decode(&v)?;
            if !failed_only || matches!(item.state, CollectionItemState::Failed { .. }) {
                out.push(item);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn collection_item(
        &self,
        run: &str,
        account: &AccountId,
    ) -> Result<Option<CollectionItem>, StoreError> {
        self.one(ITEMS, &pair(run, account.as_str().as_bytes()))
    }

    fn fail_collection_item(
        &self,
        run: &str,
        account: &AccountId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let key = pair(run, account.as_str().as_bytes());
        let Some(item) = self.one::<CollectionItem>(ITEMS, &key)? else {
            return Err(StoreError::Io(format!(
                "collection run {run} has no item for {account}"
            )));
        };
        if item.state != CollectionItemState::Pending {
            return Ok(());
        }
        let item = CollectionItem {
            state: CollectionItemState::Failed {
                reason: reason.into(),
                message: message.to_string(),
            },
            updated_at: at,
            ..item
        };
        let mut batch = WriteBatch::default();
        if let Some(mut r) = self.one::<CollectionRun>(RUNS, run.as_bytes())? {
            count_item(&mut r, &item.state, &[], at);
            batch.put(RUNS, run.as_bytes(), &encode(&r)?);
        }
        batch.put(ITEMS, &key, &encode(&item)?);
        self.write(batch)
    }
}

#[cfg(test)]
mod tests;
