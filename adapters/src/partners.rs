//! Partner-settlement state ([`PartnerStore`]) on the embedded store: partners, versioned
//! agreements, positions with the share of every item counted, statements, reconciliation
//! reports, disputes and settlement runs.
//!
//! Tables (values JSON unless noted; `·` is a zero byte; ids, keys and numbers are UTF-8 text;
//! dates are `YYYY-MM-DD`, so key order is date order):
//! - `partner_counters`: counter name -> value (8 bytes, big-endian);
//! - `partner_meta`: `last_settlement_run` -> last sequence number (8 bytes, big-endian);
//! - `partner_partners`: partner id -> partner record (partner and version);
//! - `partner_agreements`: agreement id -> agreement (every version);
//! - `partner_partner_agreements`: partner `·` agreement id -> agreement id (text);
//! - `partner_positions`: partner `·` period start -> position;
//! - `partner_item_shares`: partner `·` period start `·` item id (record id or invoice number)
//!   -> item share;
//! - `partner_statements`: statement number -> statement;
//! - `partner_partner_statements`: partner `·` period start `·` number -> number (text);
//! - `partner_reconciliations`: report id -> reconciliation report;
//! - `partner_statement_reconciliations`: statement number `·` report id -> report id (text);
//! - `partner_disputes`: dispute id -> dispute;
//! - `partner_partner_disputes`: partner `·` dispute id -> dispute id (text);
//! - `partner_settlement_runs`: run id (`sr-<20 digits>`, so key order is creation order) ->
//!   run;
//! - `partner_settlement_run_keys`: idempotency key -> run id (text);
//! - `partner_settlement_items`: run id `·` partner -> item;
//! - `audit`: the shared audit trail ([`put_audit`]).
//!
//! Every change is one [`WriteBatch`]: a [`PartnerWrite`] with its indexes, its settlement item,
//! the item's run and its audit records is durable together or not at all. Its checks
//! (counters, partner versions, agreement version counts, position counts, unique item shares,
//! numbers and ids, statement stages, a pending item) read the stored state through the
//! changes the write has made so far, and run under one process-wide lock (the store has
//! one process as its writer), so nothing changes between check and write.

use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use jiff::civil::Date;
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::run::RunState;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::ledger::StoreError;
use tollgate_domain::partner::run::{count_item, settlement_run_id};
use tollgate_domain::partner::store::PartnerStoreError;
use tollgate_domain::partner::{
    Agreement, Dispute, ItemShare, PartnerRecord, PartnerStatement, PartnerStore, PartnerWrite,
    Position, ReconciliationReport, SettlementItem, SettlementItemState, SettlementRun,
};

use crate::admin::put_audit;
use crate::embedded::{EmbeddedStore, WriteBatch};
use crate::ledger::convert;
use write::{Tx, stage};

mod write;

const COUNTERS: &str = "partner_counters";
const META: &str = "partner_meta";
const LAST_RUN: &[u8] = b"last_settlement_run";
const PARTNERS: &str = "partner_partners";
const AGREEMENTS: &str = "partner_agreements";
const PARTNER_AGREEMENTS: &str = "partner_partner_agreements";
const POSITIONS: &str = "partner_positions";
const ITEM_SHARES: &str = "partner_item_shares";
const STATEMENTS: &str = "partner_statements";
const PARTNER_STATEMENTS: &str = "partner_partner_statements";
const RECONCILIATIONS: &str = "partner_reconciliations";
const STATEMENT_RECONCILIATIONS: &str = "partner_statement_reconciliations";
const DISPUTES: &str = "partner_disputes";
const PARTNER_DISPUTES: &str = "partner_partner_disputes";
const RUNS: &str = "partner_settlement_runs";
const RUN_KEYS: &str = "partner_settlement_run_keys";
const ITEMS: &str = "partner_settlement_items";
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

/// The key of a partner's position (and the prefix of its statements of that period).
fn period_key(partner: &PartnerId, start: Date) -> Vec<u8> {
    pair(partner.as_str(), start.to_string().as_bytes())
}

/// `period_key(partner, start)`, a zero byte, `last`.
fn in_period(partner: &PartnerId, start: Date, last: &str) -> Vec<u8> {
    let mut key = period_key(partner, start);
    key.push(0);
    key.extend_from_slice(last.as_bytes());
    key
}

/// The `partner_partner_statements` key of a statement numbered `number`.
fn statement_key(statement: &PartnerStatement, number: &str) -> Vec<u8> {
    in_period(&statement.partner, statement.period.start, number)
}

/// Partner-settlement state on the embedded store, sharing its file and writer thread.
pub struct EmbeddedPartnerStore {
    store: Arc<EmbeddedStore>,
}

impl EmbeddedPartnerStore {
    /// Partner state on `store` (typically the node's one store).
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedPartnerStore { store }
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

    /// The values of `table` under `prefix` after `after`, decoded, at most `limit`.
    fn page<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        prefix: &[u8],
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.walk(table, prefix, after, |v| {
            out.push(decode(&v)?);
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The records of `target` named by the values of `index` under `prefix`.
    fn via<T: serde::de::DeserializeOwned>(
        &self,
        index: &str,
        prefix: &[u8],
        target: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.walk(index, prefix, None, |id| {
            if let Some(record) = self.one::<T>(target, &id)? {
                out.push(record);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    fn all_runs(&self) -> Result<Vec<SettlementRun>, StoreError> {
        self.page(RUNS, b"", None, usize::MAX)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.store.commit(batch).map(|_| ()).map_err(convert)
    }
}

impl PartnerStore for EmbeddedPartnerStore {
    fn commit(&self, write: PartnerWrite) -> Result<(), PartnerStoreError> {
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

    fn partner(&self, id: &PartnerId) -> Result<Option<PartnerRecord>, StoreError> {
        self.one(PARTNERS, id.as_str().as_bytes())
    }

    fn partners(
        &self,
        after: Option<&PartnerId>,
        limit: usize,
    ) -> Result<Vec<PartnerRecord>, StoreError> {
        let after = after.map(|a| a.as_str().as_bytes().to_vec());
        self.page(PARTNERS, b"", after, limit)
    }

    fn agreement(&self, id: &str) -> Result<Option<Agreement>, StoreError> {
        self.one(AGREEMENTS, id.as_bytes())
    }

    fn agreements(&self, partner: &PartnerId) -> Result<Vec<Agreement>, StoreError> {
        self.via(PARTNER_AGREEMENTS, &prefix(partner.as_str()), AGREEMENTS)
    }

    fn position(
        &self,
        partner: &PartnerId,
        period_start: Date,
    ) -> Result<Option<Position>, StoreError> {
        self.one(POSITIONS, &period_key(partner, period_start))
    }

    fn item_share(
        &self,
        partner: &PartnerId,
        period_start: Date,
        item: &str,
    ) -> Result<Option<ItemShare>, StoreError> {
        self.one(ITEM_SHARES, &in_period(partner, period_start, item))
    }

    fn item_shares(
        &self,
        partner: &PartnerId,
        period_start: Date,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ItemShare>, StoreError> {
        let prefix = in_period(partner, period_start, "");
        let after = after.map(|item| in_period(partner, period_start, item));
        self.page(ITEM_SHARES, &prefix, after, limit)
    }

    fn statement(&self, number: &str) -> Result<Option<PartnerStatement>, StoreError> {
        self.one(STATEMENTS, number.as_bytes())
    }

    fn statements(
        &self,
        partner: &PartnerId,
        period_start: Option<Date>,
    ) -> Result<Vec<PartnerStatement>, StoreError> {
        let prefix = match period_start {
            Some(start) => in_period(partner, start, ""),
            None => prefix(partner.as_str()),
        };
        self.via(PARTNER_STATEMENTS, &prefix, STATEMENTS)
    }

    fn reconciliations(&self, statement: &str) -> Result<Vec<ReconciliationReport>, StoreError> {
        self.via(
            STATEMENT_RECONCILIATIONS,
            &prefix(statement),
            RECONCILIATIONS,
        )
    }

    fn dispute(&self, id: &str) -> Result<Option<Dispute>, StoreError> {
        self.one(DISPUTES, id.as_bytes())
    }

    fn disputes(&self, partner: &PartnerId) -> Result<Vec<Dispute>, StoreError> {
        self.via(PARTNER_DISPUTES, &prefix(partner.as_str()), DISPUTES)
    }

    fn create_settlement_run(
        &self,
        mut run: SettlementRun,
        partners: &[PartnerId],
        audit: AuditRecord,
    ) -> Result<(SettlementRun, bool), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = self
            .store
            .get(RUN_KEYS, run.key.as_bytes())
            .map_err(convert)?
            && let Some(existing) = self.one::<SettlementRun>(RUNS, &id)?
        {
            return Ok((existing, false));
        }
        let seq = counter(self.store.get(META, LAST_RUN).map_err(convert)?)? + 1;
        run.id = settlement_run_id(seq);
        let mut batch = WriteBatch::default();
        batch.put(META, LAST_RUN, &seq.to_be_bytes());
        batch.put(RUNS, run.id.as_bytes(), &encode(&run)?);
        batch.put(RUN_KEYS, run.key.as_bytes(), run.id.as_bytes());
        for partner in partners {
            let item = SettlementItem {
                run: run.id.clone(),
                partner: partner.clone(),
                state: SettlementItemState::Pending,
                updated_at: run.created_at,
            };
            let key = pair(&run.id, partner.as_str().as_bytes());
            batch.put(ITEMS, &key, &encode(&item)?);
        }
        put_audit(&mut batch, &audit)?;
        self.write(batch)?;
        Ok((run, true))
    }

    fn mark_settlement_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut r) = self.one::<SettlementRun>(RUNS, run.as_bytes())? else {
            return Err(StoreError::Io(format!("no settlement run {run}")));
        };
        if r.state != RunState::Publishing {
            return Ok(());
        }
        r.state = RunState::Running;
        r.published_at = Some(at);
        count_item(&mut r, &SettlementItemState::Pending, at);
        let mut batch = WriteBatch::default();
        batch.put(RUNS, run.as_bytes(), &encode(&r)?);
        self.write(batch)
    }

    fn settlement_run(&self, id: &str) -> Result<Option<SettlementRun>, StoreError> {
        self.one(RUNS, id.as_bytes())
    }

    fn settlement_runs(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SettlementRun>, StoreError> {
        // Runs are few (one a month, plus manual ones): read them all.
        Ok(self
            .all_runs()?
            .into_iter()
            .rev()
            .filter(|r| before.is_none_or(|b| r.id.as_str() < b))
            .take(limit)
            .collect())
    }

    fn unpublished_settlement_runs(&self) -> Result<Vec<SettlementRun>, StoreError> {
        Ok(self
            .all_runs()?
            .into_iter()
            .filter(|r| r.state == RunState::Publishing)
            .collect())
    }

    fn settlement_items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&PartnerId>,
        limit: usize,
    ) -> Result<Vec<SettlementItem>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let after = after.map(|a| pair(run, a.as_str().as_bytes()));
        self.walk(ITEMS, &prefix(run), after, |v| {
            let item: SettlementItem = decode(&v)?;
            if !failed_only || matches!(item.state, SettlementItemState::Failed { .. }) {
                out.push(item);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn settlement_item(
        &self,
        run: &str,
        partner: &PartnerId,
    ) -> Result<Option<SettlementItem>, StoreError> {
        self.one(ITEMS, &pair(run, partner.as_str().as_bytes()))
    }

    fn fail_settlement_item(
        &self,
        run: &str,
        partner: &PartnerId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let key = pair(run, partner.as_str().as_bytes());
        let Some(item) = self.one::<SettlementItem>(ITEMS, &key)? else {
            return Err(StoreError::Io(format!(
                "settlement run {run} has no item for {partner}"
            )));
        };
        if item.state != SettlementItemState::Pending {
            return Ok(());
        }
        let item = SettlementItem {
            state: SettlementItemState::Failed {
                reason: reason.into(),
                message: message.to_string(),
            },
            updated_at: at,
            ..item
        };
        let mut batch = WriteBatch::default();
        if let Some(mut r) = self.one::<SettlementRun>(RUNS, run.as_bytes())? {
            count_item(&mut r, &item.state, at);
            batch.put(RUNS, run.as_bytes(), &encode(&r)?);
        }
        batch.put(ITEMS, &key, &encode(&item)?);
        self.write(batch)
    }
}

#[cfg(test)]
mod tests;
