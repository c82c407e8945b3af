//! The ingestion storage contract ([`IngestStore`]) on the embedded store.
//!
//! Tables:
//! - `source_positions`: source, a zero byte, partition (4 bytes, big-endian) -> next offset
//!   (8 bytes, big-endian);
//! - `source_stats`: source -> five big-endian `i64` counters (ingested, rated, suspended,
//!   duplicates, filtered), added to inside the write transaction;
//! - `suspense`: record id -> suspended record (JSON).
//!
//! A commit is one [`WriteBatch`] holding the ledger rows of the batch (see [`crate::ledger`]),
//! the suspense rows, the positions, the counter changes and audit records: the records' effects
//! and the position that says they were consumed are durable together or not at all.

use std::sync::Arc;

use smol_str::SmolStr;
use tollgate_domain::ledger::{CommitFuture, StoreError};
use tollgate_domain::mediation::{
    IngestStore, IngestWrite, SourceStats, SuspenseFilter, SuspenseRecord,
};

use crate::admin::put_audit;
use crate::embedded::{EmbeddedStore, WriteBatch, decode_counters};
use crate::ledger::{convert, put_accounts};

const POSITIONS: &str = "source_positions";
const STATS: &str = "source_stats";
const SUSPENSE: &str = "suspense";
/// Rows read per scan when walking a table.
const CHUNK: usize = 1_000;

/// Ingestion storage on the embedded (redb) store; shares the store (one file, one writer
/// thread) with the ledger and the admin store.
pub struct EmbeddedIngestStore {
    store: Arc<EmbeddedStore>,
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
        EmbeddedIngestStore { store }
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
        match Self::batch(&write) {
            Ok(batch) if batch.is_empty() => Box::pin(std::future::ready(Ok(()))),
            Ok(batch) => {
                let handle = self.store.commit_async(batch);
                Box::pin(async move { handle.await.map(|_| ()).map_err(convert) })
            }
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
}
