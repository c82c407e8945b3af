//! The ingestion storage contract ([`IngestStore`]) on the embedded store.
//!
//! Tables:
//! - `source_positions`: source, a zero byte, partition (4 bytes, big-endian) -> next offset
//!   (8 bytes, big-endian);
//! - `source_stats`: source -> five big-endian `i64` counters (ingested, rated, suspended,
//!   duplicates, filtered), added to inside the write transaction;
//! - `suspense`: record id -> suspended record (JSON);
//! - `output_outbox`: sequence number (8 bytes, big-endian) -> outbox row (JSON: topic, key,
//!   payload), the rated output waiting to be published;
//! - `output_outbox_meta`: `rows` -> one big-endian `i64`, the number of outbox rows, added to
//!   inside the same transactions that add and delete rows (so its length needs no scan).
//!
//! Sequence numbers are handed out by the store handle (one per node; it starts after the
//! greatest stored number, read on the first write) when a write is queued; the writer
//! commits queued writes in order, so numbers grow in commit order.
//!
//! A commit is one [`WriteBatch`] holding the ledger rows of the batch (see [`crate::ledger`]),
//! the suspense rows, the positions, the counter changes and audit records: the records' effects
//! and the position that says they were consumed are durable together or not at all.

use std::sync::{Arc, Mutex};

use smol_str::SmolStr;
use tollgate_domain::ledger::{CommitFuture, StoreError};
use tollgate_domain::mediation::{
    IngestStore, IngestWrite, OutboxEntry, OutboxRow, SourceStats, SuspenseFilter, SuspenseRecord,
};

use crate::admin::put_audit;
use crate::embedded::{EmbeddedStore, WriteBatch, decode_counters};
use crate::ledger::{convert, put_accounts};

const POSITIONS: &str = "source_positions";
const STATS: &str = "source_stats";
const SUSPENSE: &str = "suspense";
const OUTBOX: &str = "output_outbox";
const OUTBOX_META: &str = "output_outbox_meta";
const OUTBOX_ROWS: &[u8] = b"rows";
/// Rows read per scan when walking a table.
const CHUNK: usize = 1_000;

/// Ingestion storage on the embedded store; shares the store (one file, one writer
/// thread) with the ledger and the admin store.
pub struct EmbeddedIngestStore {
    store: Arc<EmbeddedStore>,
    /// The next outbox sequence number; `None` until read from the store. The lock is held
    /// from numbering a write until it is queued, so numbers reach the writer in order.
    next_seq: Mutex<Option<u64>>,
}

fn position_key(source: &str, partition: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.len() + 5);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl EmbeddedIngestStore {
    /// Ingestion storage on an already opened store (shared with the ledger).
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedIngestStore {
            store,
            next_seq: Mutex::new(None),
        }
    }

    fn stored_next_seq(&self) -> Result<u64, StoreError> {
        match self.store.last(OUTBOX).map_err(convert)? {
            None => Ok(0),
            Some((k, _)) => seq_of(&k).map(|s| s + 1),
        }
    }

    /// Numbers the write's outbox rows and queues it, under the numbering lock.
    fn queue(
        &self,
        write: &IngestWrite,
    ) -> Result<Option<crate::embedded::CommitHandle>, StoreError> {
        let mut batch = Self::batch(write)?;
        if write.outbox.is_empty() {
            return Ok((!batch.is_empty()).then(|| self.store.commit_async(batch)));
        }
        let mut next = self
            .next_seq
            .lock()
            .map_err(|_| StoreError::Io("outbox numbering lock poisoned".into()))?;
        let mut seq = match *next {
            Some(s) => s,
            None => self.stored_next_seq()?,
        };
        for row in &write.outbox {
            batch.put(OUTBOX, &seq.to_be_bytes(), &encode(row)?);
            seq += 1;
        }
        batch.add_counters(OUTBOX_META, OUTBOX_ROWS, &[write.outbox.len() as i64]);
        // Numbers of a write that fails are skipped, never reused.
        *next = Some(seq);
        Ok(Some(self.store.commit_async(batch)))
    }

    fn batch(write: &IngestWrite) -> Result<WriteBatch, StoreError> {
        let mut batch = WriteBatch::new();
        put_accounts(&mut batch, &write.accounts)?;
        for row in &write.suspense {
            batch.put(SUSPENSE, row.id.as_bytes(), &encode(row)?);
        }
        for p in &write.positions {
            batch.put(
                POSITIONS,
                &position_key(&p.source, p.partition),
                &p.next_offset.to_be_bytes(),
            );
        }
        for (source, delta) in &write.stats {
            if !delta.is_zero() {
                batch.add_counters(STATS, source.as_bytes(), &delta.to_array());
            }
        }
        for record in &write.audit {
            put_audit(&mut batch, record)?;
        }
        Ok(batch)
    }
}

impl IngestStore for EmbeddedIngestStore {
    fn commit_ingest(&self, write: IngestWrite) -> CommitFuture {
        match self.queue(&write) {
            Ok(None) => Box::pin(std::future::ready(Ok(()))),
            Ok(Some(handle)) => Box::pin(async move { handle.await.map(|_| ()).map_err(convert) }),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn position(&self, source: &str, partition: u32) -> Result<Option<u64>, StoreError> {
        match self
            .store
            .get(POSITIONS, &position_key(source, partition))
            .map_err(convert)?
        {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(|b| Some(u64::from_be_bytes(b)))
                .map_err(|_| StoreError::Corrupt(format!("position of {} bytes", v.len()))),
        }
    }

    fn stats(&self) -> Result<Vec<(SmolStr, SourceStats)>, StoreError> {
        let mut all = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self
                .store
                .scan_after(STATS, after.as_deref(), CHUNK)
                .map_err(convert)?;
            for (k, v) in &rows {
                let values = decode_counters(v)
                    .ok_or_else(|| StoreError::Corrupt(format!("counters of {} bytes", v.len())))?;
                all.push((
                    SmolStr::new(String::from_utf8_lossy(k)),
                    SourceStats::from_array(&values),
                ));
            }
            match rows.last() {
                Some((k, _)) if rows.len() == CHUNK => after = Some(k.clone()),
                _ => break,
            }
        }
        Ok(all)
    }

    fn suspense(
        &self,
        filter: &SuspenseFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SuspenseRecord>, StoreError> {
        let mut found = Vec::new();
        let mut cursor: Option<Vec<u8>> = after.map(|a| a.as_bytes().to_vec());
        while found.len() < limit {
            let rows = self
                .store
                .scan_after(SUSPENSE, cursor.as_deref(), CHUNK)
                .map_err(convert)?;
            for (_, v) in &rows {
                let record: SuspenseRecord = decode(v)?;
                if filter.matches(&record) {
                    found.push(record);
                    if found.len() == limit {
                        break;
                    }
                }
            }
            match rows.last() {
                Some((k, _)) if rows.len() == CHUNK => cursor = Some(k.clone()),
                _ => break,
            }
        }
        Ok(found)
    }

    fn suspense_record(&self, id: &str) -> Result<Option<SuspenseRecord>, StoreError> {
        self.store
            .get(SUSPENSE, id.as_bytes())
            .map_err(convert)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn outbox(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let cursor = after.map(u64::to_be_bytes);
        let rows = self
            .store
            .scan_after(OUTBOX, cursor.as_ref().map(|c| c.as_slice()), limit)
            .map_err(convert)?;
        rows.iter()
            .map(|(k, v)| {
                Ok(OutboxEntry {
                    seq: seq_of(k)?,
                    row: decode::<OutboxRow>(v)?,
                })
            })
            .collect()
    }

    fn delete_outbox(&self, seqs: &[u64]) -> CommitFuture {
        if seqs.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let mut batch = WriteBatch::new();
        for seq in seqs {
            batch.delete(OUTBOX, &seq.to_be_bytes());
        }
        batch.add_counters(OUTBOX_META, OUTBOX_ROWS, &[-(seqs.len() as i64)]);
        let handle = self.store.commit_async(batch);
        Box::pin(async move { handle.await.map(|_| ()).map_err(convert) })
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        match self.store.get(OUTBOX_META, OUTBOX_ROWS).map_err(convert)? {
            None => Ok(0),
            Some(v) => decode_counters(&v)
                .and_then(|c| c.first().copied())
                .map(|n| n.max(0) as u64)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox length of {} bytes", v.len()))),
        }
    }
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("outbox key of {} bytes", key.len())))
}
