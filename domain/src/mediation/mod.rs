//! Mediation: where records come from (sources with positions, e.g. Kafka partitions and
//! offsets), what became of each (exact per-source accounting), and the records that could not
//! be rated (suspense).
//!
//! Invariant 2 (nothing is lost) and 3 (nothing counted twice) meet here: an [`IngestWrite`]
//! carries the ledger writes of a batch, its suspended records, the source positions it
//! consumed and the source counters, and the store makes them durable as one transaction. A
//! source restarts from its stored position; anything redelivered is a duplicate by key.

pub mod contract;
pub mod memory;
pub mod suspense;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ledger::{AccountWrite, CommitFuture, StoreError};
pub use memory::MemoryIngestStore;
pub use suspense::{SuspenseFilter, SuspenseRecord, SuspenseState};

/// How far a source has been consumed: the next offset to read of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Source name, e.g. `kafka:cdr.raw`, `files:/srv/drop`.
    pub source: SmolStr,
    /// Partition (0 for unpartitioned sources).
    pub partition: u32,
    /// The next offset to read.
    pub next_offset: u64,
}

/// What became of every record of a source. Always `ingested == rated + suspended + duplicates
/// + filtered`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Records received.
    pub ingested: u64,
    /// Rated and charged.
    pub rated: u64,
    /// Put in suspense.
    pub suspended: u64,
    /// Seen before: charged nothing again.
    pub duplicates: u64,
    /// Dropped by a mediation filter, with a reason (e.g. test calls).
    pub filtered: u64,
}

impl SourceStats {
    /// Whether the counts add up.
    pub fn balanced(&self) -> bool {
        self.ingested == self.rated + self.suspended + self.duplicates + self.filtered
    }

    /// Adds `other`.
    pub fn add(&mut self, other: &SourceStats) {
        self.ingested += other.ingested;
        self.rated += other.rated;
        self.suspended += other.suspended;
        self.duplicates += other.duplicates;
        self.filtered += other.filtered;
    }
}

/// A change of a source's counters: recycling moves a record from `suspended` to `rated`, so
/// changes can be negative. Stores add changes inside the write transaction, so batches
/// committed concurrently never lose one another's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsDelta {
    /// Change of `ingested`.
    pub ingested: i64,
    /// Change of `rated`.
    pub rated: i64,
    /// Change of `suspended`.
    pub suspended: i64,
    /// Change of `duplicates`.
    pub duplicates: i64,
    /// Change of `filtered`.
    pub filtered: i64,
}

impl StatsDelta {
    /// The five changes in the order of [`SourceStats`]'s fields.
    pub fn to_array(&self) -> [i64; 5] {
        [
            self.ingested,
            self.rated,
            self.suspended,
            self.duplicates,
            self.filtered,
        ]
    }

    /// Whether it changes nothing.
    pub fn is_zero(&self) -> bool {
        self.to_array() == [0; 5]
    }

    /// Adds `other`.
    pub fn add(&mut self, other: &StatsDelta) {
        self.ingested += other.ingested;
        self.rated += other.rated;
        self.suspended += other.suspended;
        self.duplicates += other.duplicates;
        self.filtered += other.filtered;
    }
}

impl SourceStats {
    /// Counters from the five values of [`StatsDelta::to_array`] (negative values read as 0).
    pub fn from_array(values: &[i64]) -> SourceStats {
        let at = |i: usize| values.get(i).copied().unwrap_or(0).max(0) as u64;
        SourceStats {
            ingested: at(0),
            rated: at(1),
            suspended: at(2),
            duplicates: at(3),
            filtered: at(4),
        }
    }

    /// Applies `delta` (saturating at zero).
    pub fn apply(&mut self, delta: &StatsDelta) {
        let f = |v: u64, d: i64| (v as i64).saturating_add(d).max(0) as u64;
        self.ingested = f(self.ingested, delta.ingested);
        self.rated = f(self.rated, delta.rated);
        self.suspended = f(self.suspended, delta.suspended);
        self.duplicates = f(self.duplicates, delta.duplicates);
        self.filtered = f(self.filtered, delta.filtered);
    }
}

/// One durable transaction of ingestion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestWrite {
    /// Ledger changes of the batch (one per subscriber).
    pub accounts: Vec<AccountWrite>,
    /// Records put in (or updated in) suspense.
    pub suspense: Vec<SuspenseRecord>,
    /// Positions consumed.
    pub positions: Vec<SourcePosition>,
    /// Changes of the sources' counters.
    pub stats: Vec<(SmolStr, StatsDelta)>,
    /// Audit records of the change (recycling is asked for by a person).
    pub audit: Vec<crate::admin::AuditRecord>,
    /// Messages for downstream systems (rated output), made durable with the effects they
    /// describe and published later (the transactional outbox; see [`OutboxRow`]).
    pub outbox: Vec<OutboxRow>,
}

/// One message waiting in the outbox: written in the same transaction as the effect it
/// describes, published by the outbox publisher and deleted once the broker acknowledged it.
/// Delivery is at least once (a crash between publishing and deleting publishes again), so
/// consumers deduplicate by the id in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// Destination topic.
    pub topic: SmolStr,
    /// Message key (partitioning).
    pub key: Vec<u8>,
    /// Message payload.
    pub payload: Vec<u8>,
}

/// An outbox row with its sequence number: the store gives every row a number greater than
/// every row already stored, in commit order, and never reuses one still stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Sequence number (the row's key).
    pub seq: u64,
    /// The message.
    pub row: OutboxRow,
}

/// Storage of ingestion: positions, counters and suspense, committed together with ledger
/// writes.
pub trait IngestStore: Send + Sync + 'static {
    /// Makes the whole write durable as one transaction (all or nothing; a fenced account
    /// write refuses all of it).
    fn commit_ingest(&self, write: IngestWrite) -> CommitFuture;
    /// The stored position of a source partition.
    fn position(&self, source: &str, partition: u32) -> Result<Option<u64>, StoreError>;
    /// Every source's counters.
    fn stats(&self) -> Result<Vec<(SmolStr, SourceStats)>, StoreError>;
    /// Suspended records matching `filter`, after the cursor `after` (a record id), in id order.
    fn suspense(
        &self,
        filter: &SuspenseFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SuspenseRecord>, StoreError>;
    /// One suspended record.
    fn suspense_record(&self, id: &str) -> Result<Option<SuspenseRecord>, StoreError>;
    /// Up to `limit` outbox rows with a sequence number above `after` (from the first when
    /// `None`), in sequence order.
    fn outbox(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Removes delivered rows, in one durable write. `seqs` are rows read from
    /// [`IngestStore::outbox`] and not removed since (one publisher per store).
    fn delete_outbox(&self, seqs: &[u64]) -> CommitFuture;
    /// How many rows wait in the outbox.
    fn outbox_len(&self) -> Result<u64, StoreError>;
}
