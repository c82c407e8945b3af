//! An in-memory [`IngestStore`] over a [`MemoryLedgerStore`], for unit tests of the layers
//! above. Not durable: the node never uses it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use smol_str::SmolStr;

use super::{
    IngestStore, IngestWrite, OutboxEntry, OutboxRow, SourceStats, SuspenseFilter, SuspenseRecord,
};
use crate::admin::AuditRecord;
use crate::ledger::{CommitFuture, LedgerStore, MemoryLedgerStore, StoreError};

#[derive(Default)]
struct Data {
    positions: HashMap<(SmolStr, u32), u64>,
    stats: BTreeMap<SmolStr, SourceStats>,
    suspense: BTreeMap<String, SuspenseRecord>,
    audit: Vec<AuditRecord>,
    outbox: BTreeMap<u64, OutboxRow>,
    next_seq: u64,
}

/// In-memory ingestion storage; account writes go to the wrapped ledger store.
pub struct MemoryIngestStore {
    ledger: Arc<MemoryLedgerStore>,
    data: Mutex<Data>,
}

impl MemoryIngestStore {
    /// Ingestion storage writing accounts into `ledger`.
    pub fn new(ledger: Arc<MemoryLedgerStore>) -> Self {
        MemoryIngestStore {
            ledger,
            data: Mutex::new(Data::default()),
        }
    }

    /// Audit records committed with ingest writes, in commit order.
    pub fn audit_records(&self) -> Vec<AuditRecord> {
        self.lock().map(|d| d.audit.clone()).unwrap_or_default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Data>, StoreError> {
        self.data
            .lock()
            .map_err(|_| StoreError::Io("store lock poisoned".into()))
    }

    fn commit_now(&self, write: IngestWrite) -> Result<(), StoreError> {
        let mut data = self.lock()?;
        if !write.accounts.is_empty() {
            self.ledger.commit(write.accounts)?;
        }
        for row in write.suspense {
            data.suspense.insert(row.id.clone(), row);
        }
        for p in write.positions {
            data.positions
                .insert((p.source, p.partition), p.next_offset);
        }
        for (source, delta) in write.stats {
            data.stats.entry(source).or_default().apply(&delta);
        }
        data.audit.extend(write.audit);
        for row in write.outbox {
            let seq = data.next_seq;
            data.next_seq += 1;
            data.outbox.insert(seq, row);
        }
        Ok(())
    }
}

impl IngestStore for MemoryIngestStore {
    fn commit_ingest(&self, write: IngestWrite) -> CommitFuture {
        Box::pin(std::future::ready(self.commit_now(write)))
    }

    fn position(&self, source: &str, partition: u32) -> Result<Option<u64>, StoreError> {
        Ok(self
            .lock()?
            .positions
            .get(&(SmolStr::new(source), partition))
            .copied())
    }

    fn stats(&self) -> Result<Vec<(SmolStr, SourceStats)>, StoreError> {
        Ok(self
            .lock()?
            .stats
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }

    fn suspense(
        &self,
        filter: &SuspenseFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SuspenseRecord>, StoreError> {
        let data = self.lock()?;
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(data
            .suspense
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, r)| r)
            .filter(|r| filter.matches(r))
            .take(limit)
            .cloned()
            .collect())
    }

    fn suspense_record(&self, id: &str) -> Result<Option<SuspenseRecord>, StoreError> {
        Ok(self.lock()?.suspense.get(id).cloned())
    }

    fn outbox(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        Ok(self
            .lock()?
            .outbox
            .range((start, std::ops::Bound::Unbounded))
            .take(limit)
            .map(|(seq, row)| OutboxEntry {
                seq: *seq,
                row: row.clone(),
            })
            .collect())
    }

    fn delete_outbox(&self, seqs: &[u64]) -> CommitFuture {
        let result = self.lock().map(|mut data| {
            for seq in seqs {
                data.outbox.remove(seq);
            }
        });
        Box::pin(std::future::ready(result))
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        Ok(self.lock()?.outbox.len() as u64)
    }
}
