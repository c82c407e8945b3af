//! [`EmbeddedStore`]: the handle callers share; reads run on the caller's thread, writes go
//! through the group-commit writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use redb::{Database, ReadableTable, TableError};

use super::batch::{WriteBatch, validate_table_name};
use super::completion::{self, CommitHandle, CommitReceipt};
use super::error::{StoreError, StoreResultExt};
use super::stats::{Counters, StoreStats};
use super::writer::{EPOCHS, Pending, Request, Writer, user_table};

/// One entry of a scan: `(key, value)`.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Where the database lives and the limits of the group-commit writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The redb database file (created if absent; its directory must exist).
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

/// The embedded durable store: a redb file written by one group-commit thread.
///
/// Share it across threads by reference or `Arc`; dropping it (or [`EmbeddedStore::close`])
/// commits everything already queued before the file is released.
pub struct EmbeddedStore {
    database: Arc<Database>,
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
    /// Opens (or creates) the database file, recovering from an unclean shutdown if needed, and
    /// starts the writer thread.
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let database = Database::builder().create(&config.path).store()?;
        Self::start(database, config)
    }

    /// Starts the writer over an already opened database (tests use an in-memory backend).
    pub(crate) fn start(database: Database, config: StoreConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let database = Arc::new(database);
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_capacity);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            database: Arc::clone(&database),
            receiver,
            counters: Arc::clone(&counters),
            batch_len_max: config.batch_len_max,
            flush_interval: config.flush_interval,
            transactions_committed: 0,
        };
        let writer = std::thread::Builder::new()
            .name("tollgate-store-writer".to_owned())
            .spawn(move || writer.run())?;
        Ok(Self {
            database,
            sender,
            counters,
            writer: Some(writer),
            path: config.path,
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `batch` durable, blocking until its group has been fsynced.
    ///
    /// `Ok` means the batch survives any crash from now on; `Err(Fenced)` means nothing of it
    /// was written; `storage.io`/`storage.corrupt` mean nothing of its group was written;
    /// `storage.closed` leaves it unknown (the writer stopped), so retry with the same
    /// idempotency keys.
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

    /// The value of `key` in `table`, as of the last durable commit.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        validate_table_name(table)?;
        let transaction = self.database.begin_read().store()?;
        let table = match transaction.open_table(user_table(table)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(error).store(),
        };
        Ok(table.get(key).store()?.map(|guard| guard.value().to_vec()))
    }

    /// Reads up to `limit` rows of `table` in key order, starting after `after` (from the first
    /// row when `None`): a cursor for walking a whole table in chunks.
    pub fn scan_after(
        &self,
        table: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        validate_table_name(table)?;
        let transaction = self.database.begin_read().store()?;
        let table = match transaction.open_table(user_table(table)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(error).store(),
        };
        let start = match after {
            Some(key) => std::ops::Bound::Excluded(key),
            None => std::ops::Bound::Unbounded,
        };
        let mut entries = Vec::new();
        for entry in table
            .range::<&[u8]>((start, std::ops::Bound::Unbounded))
            .store()?
        {
            if entries.len() >= limit {
                break;
            }
            let (key, value) = entry.store()?;
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(entries)
    }

    /// The entry of `table` with the greatest key, as of the last durable commit.
    pub fn last(&self, table: &str) -> Result<Option<KeyValue>, StoreError> {
        validate_table_name(table)?;
        let transaction = self.database.begin_read().store()?;
        let table = match transaction.open_table(user_table(table)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(error).store(),
        };
        Ok(table
            .last()
            .store()?
            .map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
    }

    /// Up to `limit` entries of `table` whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        validate_table_name(table)?;
        let transaction = self.database.begin_read().store()?;
        let table = match transaction.open_table(user_table(table)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(error).store(),
        };
        let mut entries = Vec::new();
        for entry in table.range::<&[u8]>(prefix..).store()? {
            if entries.len() >= limit {
                break;
            }
            let (key, value) = entry.store()?;
            if !key.value().starts_with(prefix) {
                break;
            }
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(entries)
    }

    /// The durable ownership epoch of `shard` (0 if never set).
    pub fn shard_epoch(&self, shard: u32) -> Result<u64, StoreError> {
        let transaction = self.database.begin_read().store()?;
        let epochs = match transaction.open_table(EPOCHS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(error) => return Err(error).store(),
        };
        Ok(epochs.get(shard).store()?.map_or(0, |guard| guard.value()))
    }

    /// A snapshot of the writer's counters.
    #[must_use]
    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot(self.sender.len())
    }

    /// Stops accepting commits, commits everything already queued, stops the writer and
    /// releases the file.
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
