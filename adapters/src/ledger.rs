//! The ledger's storage contract ([`LedgerStore`]) on the embedded store.
//!
//! Tables (keys start with the subscriber id and a zero byte, so one subscriber's rows are one
//! prefix):
//! - `accounts`: subscriber -> account snapshot (JSON);
//! - `entries`: subscriber, sequence (big-endian) -> entry (JSON), append-only;
//! - `answers`: subscriber, idempotency key -> the answer given (the durable dedupe index);
//! - `usage`: subscriber, inverted sequence -> rated usage (JSON), newest first in a scan;
//! - `partner_inbox`: partner, zero byte, item key -> rated record a partner shares (JSON),
//!   written with the charge and removed when the partner's actor has counted it.
//!
//! Every commit carries the writer's shard epoch and raises the stored one: a stale owner's
//! writes are refused whole.
//!
//! The audit records an [`AccountWrite`] carries (admin changes made through an actor, such as
//! top-ups) go into the shared `audit` table in the same batch (see [`crate::admin`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use smol_str::SmolStr;
use tollgate_domain::ids::{PartnerId, SubscriberId};
use tollgate_domain::ledger::{
    Account, AccountWrite, CommitFuture, Entry, LedgerStore, StoreError,
};

use crate::admin::put_audit;
use crate::embedded::{self, EmbeddedStore, StoreConfig, WriteBatch};

const ACCOUNTS: &str = "accounts";
const ENTRIES: &str = "entries";
const ANSWERS: &str = "answers";
const USAGE: &str = "usage";
const PARTNER_INBOX: &str = "partner_inbox";
/// Most rows one subscriber prefix scan reads.
const SCAN_LIMIT: usize = 1_000_000;

/// Ledger storage on the embedded store with group commit.
pub struct EmbeddedLedgerStore {
    store: Arc<EmbeddedStore>,
}

/// The ledger's view of an embedded store error.
pub(crate) fn convert(e: embedded::StoreError) -> StoreError {
    match e {
        embedded::StoreError::Fenced {
            shard,
            stored,
            given,
        } => StoreError::Fenced {
            shard,
            stored,
            given,
        },
        embedded::StoreError::Corrupt { message } => StoreError::Corrupt(message),
        other => StoreError::Io(format!("{} ({})", other, other.code())),
    }
}

fn prefix(subscriber: &SubscriberId) -> Vec<u8> {
    let mut key = Vec::with_capacity(subscriber.as_str().len() + 1);
    key.extend_from_slice(subscriber.as_str().as_bytes());
    key.push(0);
    key
}

fn key(subscriber: &SubscriberId, tail: &[u8]) -> Vec<u8> {
    let mut k = prefix(subscriber);
    k.extend_from_slice(tail);
    k
}

fn inbox_key(partner: &PartnerId, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(partner.as_str().len() + 1 + key.len());
    k.extend_from_slice(partner.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl EmbeddedLedgerStore {
    /// Opens (or creates) the store file with the given group-commit limits.
    pub fn open(
        path: &Path,
        batch_len_max: usize,
        flush_interval: Duration,
    ) -> Result<Self, StoreError> {
        let mut config = StoreConfig::new(path);
        config.batch_len_max = batch_len_max.max(1);
        config.flush_interval = flush_interval;
        Ok(EmbeddedLedgerStore {
            store: Arc::new(EmbeddedStore::open(config).map_err(convert)?),
        })
    }

    /// Ledger storage on an already opened store, shared with other stores (the admin store)
    /// so that one file has one writer thread.
    pub fn with_store(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedLedgerStore { store }
    }

    /// The underlying store, to share it with other stores.
    pub fn shared_store(&self) -> Arc<EmbeddedStore> {
        Arc::clone(&self.store)
    }

    /// The underlying store's statistics.
    pub fn stats(&self) -> embedded::StoreStats {
        self.store.stats()
    }
}

impl LedgerStore for EmbeddedLedgerStore {
    fn load_account(&self, subscriber: &SubscriberId) -> Result<Option<Account>, StoreError> {
        match self
            .store
            .get(ACCOUNTS, subscriber.as_str().as_bytes())
            .map_err(convert)?
        {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
        }
    }

    fn entries(&self, subscriber: &SubscriberId) -> Result<Vec<Entry>, StoreError> {
        let rows = self
            .store
            .scan_prefix(ENTRIES, &prefix(subscriber), SCAN_LIMIT)
            .map_err(convert)?;
        rows.iter()
            .map(|(_, v)| serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    fn answer(
        &self,
        subscriber: &SubscriberId,
        idempotency_key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self
            .store
            .get(ANSWERS, &key(subscriber, idempotency_key.as_bytes()))
            .map_err(convert)?;
        match stored {
            None => Ok(None),
            // Stored as 8 bytes of the time given (seconds, big-endian), then the answer.
            Some(v) if v.len() >= 8 => Ok(Some(v[8..].to_vec())),
            Some(_) => Err(StoreError::Corrupt(
                "answer shorter than its timestamp".into(),
            )),
        }
    }

    fn purge_answers(&self, before: jiff::Timestamp) -> Result<u64, StoreError> {
        const CHUNK: usize = 10_000;
        let limit = before.as_second();
        let mut purged = 0u64;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self
                .store
                .scan_after(ANSWERS, after.as_deref(), CHUNK)
                .map_err(convert)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            let mut batch = WriteBatch::new();
            for (k, v) in &rows {
                let at = v
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(i64::from_be_bytes);
                if at.is_some_and(|at| at < limit) {
                    batch.delete(ANSWERS, k);
                    purged += 1;
                }
            }
            if !batch.is_empty() {
                self.store.commit(batch).map_err(convert)?;
            }
            if rows.len() < CHUNK {
                break;
            }
        }
        Ok(purged)
    }

    fn recent_usage(
        &self,
        subscriber: &SubscriberId,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = self
            .store
            .scan_prefix(USAGE, &prefix(subscriber), limit)
            .map_err(convert)?;
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }

    fn partner_inbox(
        &self,
        partner: &PartnerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(SmolStr, Vec<u8>)>, StoreError> {
        let start = inbox_key(partner, after.unwrap_or(""));
        let prefix_len = partner.as_str().len() + 1;
        let rows = self
            .store
            .scan_after(PARTNER_INBOX, Some(&start), limit)
            .map_err(convert)?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            if k.len() < prefix_len || k[..prefix_len] != start[..prefix_len] {
                break;
            }
            let key = std::str::from_utf8(&k[prefix_len..])
                .map_err(|e| StoreError::Corrupt(format!("partner inbox key: {e}")))?;
            out.push((SmolStr::new(key), v));
        }
        Ok(out)
    }

    fn ack_partner_inbox(&self, partner: &PartnerId, keys: &[SmolStr]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for key in keys {
            batch.delete(PARTNER_INBOX, &inbox_key(partner, key));
        }
        self.store.commit(batch).map(|_| ()).map_err(convert)
    }

    fn commit(&self, writes: Vec<AccountWrite>) -> Result<(), StoreError> {
        let batch = batch(&writes)?;
        self.store.commit(batch).map(|_| ()).map_err(convert)
    }

    fn commit_async(&self, writes: Vec<AccountWrite>) -> CommitFuture {
        match batch(&writes) {
            Ok(batch) => {
                let handle = self.store.commit_async(batch);
                Box::pin(async move { handle.await.map(|_| ()).map_err(convert) })
            }
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// Encodes writes into one batch: fencing first, then every row.
fn batch(writes: &[AccountWrite]) -> Result<WriteBatch, StoreError> {
    let mut batch = WriteBatch::new();
    put_accounts(&mut batch, writes)?;
    Ok(batch)
}

/// Adds the fencing and every row of `writes` to `batch` (shared with the ingest store, whose
/// batches carry ledger writes together with suspense rows and source positions).
pub(crate) fn put_accounts(
    batch: &mut WriteBatch,
    writes: &[AccountWrite],
) -> Result<(), StoreError> {
    for w in writes {
        let id = &w.account.subscriber;
        batch
            .expect_epoch(w.fence.shard, w.fence.epoch)
            .set_epoch(w.fence.shard, w.fence.epoch);
        batch.put_owned(
            ACCOUNTS,
            id.as_str().as_bytes().to_vec(),
            encode(&w.account)?,
        );
        for (i, entry) in w.entries.iter().enumerate() {
            let seq = w.first_seq + i as u64;
            batch.put_owned(ENTRIES, key(id, &seq.to_be_bytes()), encode(entry)?);
        }
        let given = w.at.as_second().to_be_bytes();
        for (k, answer) in &w.answers {
            let mut value = Vec::with_capacity(8 + answer.len());
            value.extend_from_slice(&given);
            value.extend_from_slice(answer);
            batch.put_owned(ANSWERS, key(id, k.as_bytes()), value);
        }
        for (i, (_, record)) in w.usage.iter().enumerate() {
            let seq = u64::MAX - (w.first_seq + i as u64);
            batch.put(USAGE, &key(id, &seq.to_be_bytes()), record);
        }
        for record in &w.audit {
            put_audit(batch, record)?;
        }
        for row in &w.partner_inbox {
            batch.put(
                PARTNER_INBOX,
                &inbox_key(&row.partner, &row.key),
                &row.record,
            );
        }
    }
    Ok(())
}
