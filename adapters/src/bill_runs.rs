//! Bill runs and invoices ([`BillRunStore`]) on the embedded store.
//!
//! Tables (values JSON unless noted):
//! - `bill_runs`: run id (`br-<20 digits>`, so key order is creation order) -> run;
//! - `bill_run_keys`: idempotency key -> run id (text);
//! - `bill_run_items`: run id, a zero byte, payer -> item;
//! - `invoices`: number -> invoice;
//! - `invoice_periods`: payer, a zero byte, period start (`YYYY-MM-DD`) -> number (text): at
//!   most one invoice per payer and period, and the payer's invoices in period order;
//! - `invoice_series`: series key -> last sequence number (8 bytes, big-endian);
//! - `bill_run_meta`: `last_run` -> last run sequence number (8 bytes, big-endian).
//!
//! Every change is one [`WriteBatch`]: an invoice, its series counter, its period index, its
//! run item and the run's counters are durable together or not at all. Check-then-write runs
//! under one process-wide lock (the store has one process as its writer).

use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use smol_str::SmolStr;
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::run::{
    BillRun, BillRunStore, CommitPlan, Invoice, InvoiceCommit, InvoiceFilter, ItemState,
    NewInvoice, RunItem, RunState, count_item, may_fail, plan_commit, run_id, series_of,
};
use tollgate_domain::ids::AccountId;
use tollgate_domain::ledger::StoreError;

use crate::admin::put_audit;
use crate::embedded::{EmbeddedStore, KeyValue, WriteBatch};
use crate::ledger::convert;

const RUNS: &str = "bill_runs";
const KEYS: &str = "bill_run_keys";
const ITEMS: &str = "bill_run_items";
const INVOICES: &str = "invoices";
const PERIODS: &str = "invoice_periods";
const SERIES: &str = "invoice_series";
const META: &str = "bill_run_meta";
const LAST_RUN: &[u8] = b"last_run";
/// Rows read per scan.
const CHUNK: usize = 1_000;

static COMMIT_LOCK: Mutex<()> = Mutex::new(());

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn item_key(run: &str, payer: &AccountId) -> Vec<u8> {
    let mut key = item_prefix(run);
    key.extend_from_slice(payer.as_str().as_bytes());
    key
}

fn item_prefix(run: &str) -> Vec<u8> {
    let mut key = run.as_bytes().to_vec();
    key.push(0);
    key
}

fn period_key(payer: &AccountId, start: jiff::civil::Date) -> Vec<u8> {
    let mut key = payer.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(start.to_string().as_bytes());
    key
}

fn counter(bytes: Option<Vec<u8>>) -> Result<u64, StoreError> {
    match bytes {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("counter is not 8 bytes".into())),
    }
}

/// Bill runs and invoices on the embedded store, sharing its file and writer thread.
pub struct EmbeddedBillRunStore {
    store: Arc<EmbeddedStore>,
}

impl EmbeddedBillRunStore {
    /// Bill runs on `store` (typically the node's one store).
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedBillRunStore { store }
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

    fn text(&self, table: &str, key: &[u8]) -> Result<Option<SmolStr>, StoreError> {
        Ok(self
            .store
            .get(table, key)
            .map_err(convert)?
            .map(|b| SmolStr::new(String::from_utf8_lossy(&b))))
    }

    /// Rows of `table` after `after` whose key starts with `prefix`, up to `limit`.
    fn rows_with_prefix(
        &self,
        table: &str,
        prefix: &[u8],
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let rows = match &after {
            None => self.store.scan_prefix(table, prefix, limit),
            Some(last) => self.store.scan_after(table, Some(last), limit),
        }
        .map_err(convert)?;
        Ok(rows
            .into_iter()
            .take_while(|(k, _)| k.starts_with(prefix))
            .collect())
    }

    fn all_runs(&self) -> Result<Vec<BillRun>, StoreError> {
        let mut runs = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self
                .store
                .scan_after(RUNS, after.as_deref(), CHUNK)
                .map_err(convert)?;
            for (_, v) in &rows {
                runs.push(decode::<BillRun>(v)?);
            }
            match rows.last() {
                Some((k, _)) if rows.len() == CHUNK => after = Some(k.clone()),
                _ => return Ok(runs),
            }
        }
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.store.commit(batch).map(|_| ()).map_err(convert)
    }
}

impl BillRunStore for EmbeddedBillRunStore {
    fn create_run(
        &self,
        mut run: BillRun,
        payers: &[AccountId],
        audit: AuditRecord,
    ) -> Result<(BillRun, bool), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = self.text(KEYS, run.key.as_bytes())?
            && let Some(existing) = self.one::<BillRun>(RUNS, id.as_bytes())?
        {
            return Ok((existing, false));
        }
        let seq = counter(self.store.get(META, LAST_RUN).map_err(convert)?)? + 1;
        run.id = run_id(seq);
        let mut batch = WriteBatch::default();
        batch.put(META, LAST_RUN, &seq.to_be_bytes());
        batch.put(RUNS, run.id.as_bytes(), &encode(&run)?);
        batch.put(KEYS, run.key.as_bytes(), run.id.as_bytes());
        for payer in payers {
            let item = RunItem {
                run: run.id.clone(),
                payer: payer.clone(),
                state: ItemState::Pending,
                updated_at: run.created_at,
            };
            batch.put(ITEMS, &item_key(&run.id, payer), &encode(&item)?);
        }
        put_audit(&mut batch, &audit)?;
        self.commit(batch)?;
        Ok((run, true))
    }

    fn mark_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut r) = self.one::<BillRun>(RUNS, run.as_bytes())? else {
            return Err(StoreError::Io(format!("no run {run}")));
        };
        if r.state != RunState::Publishing {
            return Ok(());
        }
        r.state = RunState::Running;
        r.published_at = Some(at);
        count_item(&mut r, &ItemState::Pending, at);
        let mut batch = WriteBatch::default();
        batch.put(RUNS, run.as_bytes(), &encode(&r)?);
        self.commit(batch)
    }

    fn run(&self, id: &str) -> Result<Option<BillRun>, StoreError> {
        self.one(RUNS, id.as_bytes())
    }

    fn runs(&self, before: Option<&str>, limit: usize) -> Result<Vec<BillRun>, StoreError> {
        // Runs are few (one per cycle and period, plus retries): read them all.
        Ok(self
            .all_runs()?
            .into_iter()
            .rev()
            .filter(|r| before.is_none_or(|b| r.id.as_str() < b))
            .take(limit)
            .collect())
    }

    fn unpublished_runs(&self) -> Result<Vec<BillRun>, StoreError> {
        Ok(self
            .all_runs()?
            .into_iter()
            .filter(|r| r.state == RunState::Publishing)
            .collect())
    }

    fn items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<RunItem>, StoreError> {
        let prefix = item_prefix(run);
        let mut cursor = after.map(|a| item_key(run, a));
        let mut out = Vec::new();
        loop {
            let rows = self.rows_with_prefix(ITEMS, &prefix, cursor.clone(), CHUNK)?;
            let full = rows.len() == CHUNK;
            for (k, v) in rows {
                let item: RunItem = decode(&v)?;
                cursor = Some(k);
                if !failed_only || matches!(item.state, ItemState::Failed { .. }) {
                    out.push(item);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    fn item(&self, run: &str, payer: &AccountId) -> Result<Option<RunItem>, StoreError> {
        self.one(ITEMS, &item_key(run, payer))
    }

    fn commit_invoice(&self, new: NewInvoice) -> Result<InvoiceCommit, StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let payer = new.draft.payer.clone();
        let ikey = item_key(&new.run, &payer);
        let item: Option<RunItem> = self.one(ITEMS, &ikey)?;
        let pkey = period_key(&payer, new.draft.period.start);
        let series = series_of(&new)?;
        let last = counter(self.store.get(SERIES, series.as_bytes()).map_err(convert)?)?;
        let plan = plan_commit(&new, item.as_ref(), self.text(PERIODS, &pkey)?, last)?;
        let was_failed = item
            .as_ref()
            .is_some_and(|i| matches!(i.state, ItemState::Failed { .. }));
        let mut batch = WriteBatch::default();
        let (item, answer) = match plan {
            CommitPlan::Done(answer) => return Ok(answer),
            CommitPlan::AlreadyBilled { item, invoice } => {
                (item, InvoiceCommit::AlreadyBilled(invoice))
            }
            CommitPlan::Issue { item, invoice } => {
                batch.put(
                    SERIES,
                    invoice.series.as_bytes(),
                    &invoice.seq.to_be_bytes(),
                );
                batch.put(PERIODS, &pkey, invoice.number.as_bytes());
                batch.put(INVOICES, invoice.number.as_bytes(), &encode(&*invoice)?);
                (item, InvoiceCommit::Issued(invoice))
            }
        };
        if let Some(mut run) = self.one::<BillRun>(RUNS, new.run.as_bytes())? {
            if was_failed {
                run.failed = run.failed.saturating_sub(1);
            }
            count_item(&mut run, &item.state, new.issued_at);
            batch.put(RUNS, run.id.as_bytes(), &encode(&run)?);
        }
        batch.put(ITEMS, &ikey, &encode(&item)?);
        self.commit(batch)?;
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
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let key = item_key(run, payer);
        let Some(item) = self.one::<RunItem>(ITEMS, &key)? else {
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
        let mut batch = WriteBatch::default();
        if first && let Some(mut r) = self.one::<BillRun>(RUNS, run.as_bytes())? {
            count_item(&mut r, &state, at);
            batch.put(RUNS, run.as_bytes(), &encode(&r)?);
        }
        let item = RunItem {
            state,
            updated_at: at,
            ..item
        };
        batch.put(ITEMS, &key, &encode(&item)?);
        self.commit(batch)
    }

    fn invoice(&self, number: &str) -> Result<Option<Invoice>, StoreError> {
        self.one(INVOICES, number.as_bytes())
    }

    fn invoices(
        &self,
        filter: &InvoiceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Invoice>, StoreError> {
        let mut out = Vec::new();
        if let Some(payer) = &filter.payer {
            // A payer's invoices through the period index (few per payer).
            let mut prefix = payer.as_str().as_bytes().to_vec();
            prefix.push(0);
            let mut numbers = Vec::new();
            let mut cursor = None;
            loop {
                let rows = self.rows_with_prefix(PERIODS, &prefix, cursor.clone(), CHUNK)?;
                let full = rows.len() == CHUNK;
                for (k, v) in rows {
                    numbers.push(String::from_utf8_lossy(&v).into_owned());
                    cursor = Some(k);
                }
                if !full {
                    break;
                }
            }
            numbers.sort();
            for n in numbers {
                if after.is_some_and(|a| n.as_str() <= a) {
                    continue;
                }
                if let Some(inv) = self.invoice(&n)?
                    && filter.matches(&inv)
                {
                    out.push(inv);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            return Ok(out);
        }
        let mut cursor = after.map(|a| a.as_bytes().to_vec());
        loop {
            let rows = self
                .store
                .scan_after(INVOICES, cursor.as_deref(), CHUNK)
                .map_err(convert)?;
            let full = rows.len() == CHUNK;
            for (k, v) in rows {
                let inv: Invoice = decode(&v)?;
                cursor = Some(k);
                if filter.matches(&inv) {
                    out.push(inv);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_store_keeps_the_bill_run_contract() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::embedded::StoreConfig::new(dir.path().join("t.redb"));
        let store = Arc::new(EmbeddedStore::open(config).unwrap());
        tollgate_domain::billing::run_contract::run(&EmbeddedBillRunStore::new(store)).unwrap();
    }
}
