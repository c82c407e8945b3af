//! [`EmbeddedStore`]: the handle callers share; reads run on the caller's thread, writes go
//! through the group-commit writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use fjall::{Database, Keyspace};

use super::batch::{SHARD_EPOCHS_TABLE, WriteBatch, validate_table_name};
use super::completion::{self, CommitHandle, CommitReceipt};
use super::error::{StoreError, StoreResultExt};
use super::stats::{Counters, StoreStats};
use super::tables::Tables;
use super::writer::{Pending, Request, Writer, stored_epoch};

/// One entry of a scan: `(key, value)`.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Where the database lives and the limits of the group-commit writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The database directory (created if absent; its parent must exist). A database of an
    /// earlier version (one redb file) at this path, or at `<path>.redb` when the path does not
    /// exist, is migrated into it on open.
    pub path: PathBuf,
    /// Most batches merged into one transaction.
    pub batch_len_max: usize,
    /// How long the writer keeps gathering after the first batch of a group arrives; zero takes
    /// only what queued up during the previous fsync (natural batching, no added latency).
    pub flush_interval: Duration,
    /// Most batches waiting for the writer; `commit` blocks while the queue is full.
    pub queue_capacity: usize,
}

impl StoreConfig {
    /// Defaults sized for a laptop: 512 batches per group, no added wait, 4096 queued batches.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            batch_len_max: 512,
            flush_interval: Duration::ZERO,
            queue_capacity: 4096,
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        if self.batch_len_max == 0 {
            return Err(StoreError::invalid("batch_len_max must be at least 1"));
        }
        if self.queue_capacity == 0 {
            return Err(StoreError::invalid("queue_capacity must be at least 1"));
        }
        Ok(())
    }
}

/// The embedded durable store: an fjall database (a journal and one LSM tree per table) written
/// by one group-commit thread.
///
/// Share it across threads by reference or `Arc`; dropping it (or [`EmbeddedStore::close`])
/// commits everything already queued before the directory is released.
pub struct EmbeddedStore {
    tables: Arc<Tables>,
    sender: Sender<Request>,
    counters: Arc<Counters>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("writer_running", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the database directory, replaying its journal after an unclean
    /// shutdown, and starts the writer thread. A redb file of an earlier version at the path is
    /// migrated first (see [`super::migrate`]).
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        Self::open_with(config, None)
    }

    /// Like [`EmbeddedStore::open`], with a writer whose commits fail while `failing` is set,
    /// as if the disk refused them (tests of storage failures).
    #[cfg(test)]
    pub(crate) fn open_with_failures(
        config: StoreConfig,
        failing: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Self, StoreError> {
        Self::open_with(config, Some(failing))
    }

    fn open_with(
        config: StoreConfig,
        failing: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<Self, StoreError> {
        config.validate()?;
        super::migrate::finish_interrupted(&config.path)?;
        if let Some(file) = super::migrate::legacy_file(&config.path) {
            super::migrate::from_redb(&file, &config.path)?;
        }
        let database = open_database(&config.path)?;
        let tables = Arc::new(Tables::new(database));
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_capacity);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            tables: Arc::clone(&tables),
            receiver,
            counters: Arc::clone(&counters),
            batch_len_max: config.batch_len_max,
            flush_interval: config.flush_interval,
            transactions_committed: 0,
            failing,
            broken: None,
        };
        let writer = std::thread::Builder::new()
            .name("tollgate-store-writer".to_owned())
            .spawn(move || writer.run())?;
        Ok(Self {
            tables,
            sender,
            counters,
            writer: Some(writer),
            path: config.path,
        })
    }

    /// The database directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `batch` durable, blocking until its group has been fsynced.
    ///
    /// `Ok` means the batch survives any crash from now on; `Err(Fenced)` means nothing of it
    /// was written; `storage.io`/`storage.corrupt`/`storage.closed` leave it unknown (the
    /// journal write of its group may have reached the disk before the failure), so retry with
    /// the same idempotency keys.
    pub fn commit(&self, batch: WriteBatch) -> Result<CommitReceipt, StoreError> {
        self.commit_async(batch).wait()
    }

    /// Queues `batch` and returns at once with a handle to wait on or `.await` (no runtime
    /// needed). Blocks only while the queue is full, which is the store's backpressure.
    pub fn commit_async(&self, batch: WriteBatch) -> CommitHandle {
        if let Err(error) = batch.validate() {
            return CommitHandle::ready(Err(error));
        }
        let (completer, handle) = completion::pair();
        // If the writer is gone the request comes back inside the error and is dropped here;
        // its completer then answers `Closed`.
        let _refused = self
            .sender
            .send(Request::Commit(Pending { batch, completer }));
        handle
    }

    fn table(&self, table: &str) -> Result<Option<Keyspace>, StoreError> {
        validate_table_name(table)?;
        self.tables.existing(table)
    }

    /// The value of `key` in `table`, as of the last durable commit.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(keyspace) = self.table(table)? else {
            return Ok(None);
        };
        Ok(keyspace.get(key).store()?.map(|value| value.to_vec()))
    }

    /// Reads up to `limit` rows of `table` in key order, starting after `after` (from the first
    /// row when `None`): a cursor for walking a whole table in chunks.
    pub fn scan_after(
        &self,
        table: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let Some(keyspace) = self.table(table)? else {
            return Ok(Vec::new());
        };
        let start = match after {
            Some(key) => std::ops::Bound::Excluded(key),
            None => std::ops::Bound::Unbounded,
        };
        collect(
            keyspace.range::<&[u8], _>((start, std::ops::Bound::Unbounded)),
            limit,
        )
    }

    /// The entry of `table` with the greatest key, as of the last durable commit.
    pub fn last(&self, table: &str) -> Result<Option<KeyValue>, StoreError> {
        let Some(keyspace) = self.table(table)? else {
            return Ok(None);
        };
        match keyspace.last_key_value() {
            None => Ok(None),
            Some(guard) => {
                let (key, value) = guard.into_inner().store()?;
                Ok(Some((key.to_vec(), value.to_vec())))
            }
        }
    }

    /// Up to `limit` entries of `table` whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let Some(keyspace) = self.table(table)? else {
            return Ok(Vec::new());
        };
        collect(keyspace.prefix(prefix), limit)
    }

    /// The durable ownership epoch of `shard` (0 if never set).
    pub fn shard_epoch(&self, shard: u32) -> Result<u64, StoreError> {
        match self.tables.existing(SHARD_EPOCHS_TABLE)? {
            None => Ok(0),
            Some(epochs) => stored_epoch(&epochs, shard),
        }
    }

    /// A snapshot of the writer's counters.
    #[must_use]
    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot(self.sender.len())
    }

    /// Stops accepting commits, commits everything already queued, stops the writer and
    /// releases the directory.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        // `close`/`drop` hold the store exclusively, so no commit can race this message: it is
        // queued behind every batch already accepted, which are committed first. It fails only
        // if the writer already stopped.
        let _gone = self.sender.send(Request::Shutdown);
        writer
            .join()
            .map_err(|_| StoreError::io("the store writer thread panicked"))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `close` reports them.
        let _ignored = self.shutdown();
    }
}

/// Opens the fjall database at `path`: its journal holds every acknowledged batch (each group is
/// fsynced before it is answered), so an unclean shutdown loses nothing acknowledged.
fn open_database(path: &Path) -> Result<Database, StoreError> {
    Database::builder(path)
        // Commits persist the journal themselves (`SyncAll` per group, in the writer).
        .manual_journal_persist(true)
        // One background worker for memtable flushes and compaction. With more, fjall 3.1's
        // first worker hands every compaction request back to the queue while another worker
        // compacts, and spins doing so (a third of a core in the Kafka load test).
        .worker_threads(1)
        .open()
        .store()
}

/// The first `limit` rows of a scan, copied out.
fn collect(rows: fjall::Iter, limit: usize) -> Result<Vec<KeyValue>, StoreError> {
    let mut entries = Vec::new();
    for guard in rows {
        if entries.len() >= limit {
            break;
        }
        let (key, value) = guard.into_inner().store()?;
        entries.push((key.to_vec(), value.to_vec()));
    }
    Ok(entries)
}
