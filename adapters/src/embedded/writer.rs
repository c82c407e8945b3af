//! The single writer thread: drains the queue, groups batches, commits each group as one atomic
//! fjall write batch whose journal write is fsynced before anything of it becomes visible, and
//! answers every caller of the group.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use fjall::{Keyspace, PersistMode};

use super::batch::{Operation, SHARD_EPOCHS_TABLE, WriteBatch, add_counters, decode_counters};
use super::completion::{CommitReceipt, CommitResult, Completer};
use super::error::{StoreError, StoreResultExt};
use super::stats::{Counters, GroupOutcome};
use super::tables::Tables;

/// The key of `shard` in the epochs table (big-endian, so shards sort numerically).
pub(crate) fn epoch_key(shard: u32) -> [u8; 4] {
    shard.to_be_bytes()
}

/// Reads an epoch value (a big-endian `u64`).
pub(crate) fn decode_epoch(value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| StoreError::Corrupt {
        message: format!("a shard epoch of {} bytes, not 8", value.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// A message to the writer thread.
pub(crate) enum Request {
    /// Make this batch durable and answer through its completer.
    Commit(Pending),
    /// Commit what is still queued, then stop.
    Shutdown,
}

/// A batch waiting for its group.
pub(crate) struct Pending {
    pub(crate) batch: WriteBatch,
    pub(crate) completer: Completer,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub(crate) tables: Arc<Tables>,
    pub(crate) receiver: Receiver<Request>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) batch_len_max: usize,
    pub(crate) flush_interval: Duration,
    /// Receipts' transaction ids: the number of transactions committed since open.
    pub(crate) transactions_committed: u64,
    /// Failure injection for tests: while set, every commit fails as if the disk refused it.
    pub(crate) failing: Option<Arc<AtomicBool>>,
    /// Set by the first failed commit: the journal may hold part of it and fsync errors are not
    /// retried (the page cache may have dropped the data), so every later group gets this error
    /// until the store is reopened and its journal replayed.
    pub(crate) broken: Option<StoreError>,
}

/// What applying one group produced.
struct Applied {
    /// Per batch, in group order: `Err` for a fenced batch, which applied nothing.
    verdicts: Vec<Result<(), StoreError>>,
    /// `None` when nothing was written (every batch was fenced or empty).
    commit_duration: Option<Duration>,
}

impl Writer {
    /// Runs until a shutdown request or until every sender is gone, then commits what is left.
    pub(crate) fn run(mut self) {
        let mut group = Vec::with_capacity(self.batch_len_max);
        loop {
            let stop = self.collect(&mut group);
            self.commit_group(&mut group);
            if stop {
                break;
            }
        }
        self.drain(&mut group);
    }

    /// Blocks for one batch, then gathers more until the group is full or, after the first
    /// arrival, `flush_interval` has passed (zero: only what is already queued). Returns `true`
    /// when the writer must stop after this group.
    fn collect(&self, group: &mut Vec<Pending>) -> bool {
        match self.receiver.recv() {
            Ok(Request::Commit(pending)) => group.push(pending),
            Ok(Request::Shutdown) | Err(_) => return true,
        }
        let deadline = Instant::now() + self.flush_interval;
        while group.len() < self.batch_len_max {
            let next = if self.flush_interval.is_zero() {
                self.receiver
                    .try_recv()
                    .map_err(|error| error == TryRecvError::Disconnected)
            } else {
                self.receiver
                    .recv_deadline(deadline)
                    .map_err(|error| error == RecvTimeoutError::Disconnected)
            };
            match next {
                Ok(Request::Commit(pending)) => group.push(pending),
                Ok(Request::Shutdown) => return true,
                Err(disconnected) => return disconnected,
            }
        }
        false
    }

    /// Commits everything still queued, in full groups, without waiting for stragglers.
    fn drain(&mut self, group: &mut Vec<Pending>) {
        loop {
            while group.len() < self.batch_len_max {
                match self.receiver.try_recv() {
                    Ok(Request::Commit(pending)) => group.push(pending),
                    Ok(Request::Shutdown) => {}
                    Err(_) => break,
                }
            }
            if group.is_empty() {
                return;
            }
            self.commit_group(group);
        }
    }

    /// Commits `group` in one transaction and answers each caller; leaves `group` empty.
    fn commit_group(&mut self, group: &mut Vec<Pending>) {
        if group.is_empty() {
            return;
        }
        let group_len = group.len();
        let batch_count = u64::try_from(group_len).unwrap_or(u64::MAX);
        let mut outcome = GroupOutcome {
            group_len,
            ..GroupOutcome::default()
        };
        let applied = match &self.broken {
            Some(error) => Err(StoreError::io(format!(
                "the store stopped taking writes after a failed commit ({error}); restart the node"
            ))),
            None => apply_group(
                &self.tables,
                group.iter().map(|pending| &pending.batch),
                self.failing.as_deref(),
            ),
        };
        if let Err(error) = &applied
            && self.broken.is_none()
            && matches!(error, StoreError::Io { .. })
        {
            self.broken = Some(error.clone());
        }
        let verdicts: Vec<CommitResult> = match applied {
            Ok(applied) => {
                outcome.commit_duration = applied.commit_duration;
                if applied.commit_duration.is_some() {
                    self.transactions_committed += 1;
                }
                let receipt = CommitReceipt {
                    transaction_id: self.transactions_committed,
                    group_len,
                };
                outcome.fenced = applied
                    .verdicts
                    .iter()
                    .filter(|verdict| verdict.is_err())
                    .count()
                    .try_into()
                    .unwrap_or(u64::MAX);
                outcome.committed = batch_count - outcome.fenced;
                applied
                    .verdicts
                    .into_iter()
                    .map(|verdict| verdict.map(|()| receipt))
                    .collect()
            }
            Err(error) => {
                outcome.transaction_failed = true;
                outcome.failed = batch_count;
                vec![Err(error); group_len]
            }
        };
        // Counters first, so that whoever sees an answer also sees it counted.
        self.counters.record(&outcome);
        for (pending, verdict) in group.drain(..).zip(verdicts) {
            pending.completer.complete(verdict);
        }
    }
}

/// A write to a user table (epoch raises are handled apart).
enum Write<'b> {
    Put(&'b [u8]),
    Delete,
    AddCounters(&'b [i64]),
}

/// One write of a group, resolved against the writes before it: the final value of the key.
struct Resolved<'b> {
    table: usize,
    key: &'b [u8],
    /// Borrowed from the batch for a put (copied once, into the engine), owned for counters.
    value: Option<Cow<'b, [u8]>>,
}

/// Applies the non-fenced batches of a group, in order, as one atomic fjall write batch, and
/// fsyncs its journal write before it is applied (and so before any reader can see it).
///
/// A fenced batch is skipped whole; any other error fails the whole group.
fn apply_group<'b>(
    tables: &Tables,
    batches: impl ExactSizeIterator<Item = &'b WriteBatch>,
    failing: Option<&AtomicBool>,
) -> Result<Applied, StoreError> {
    let epochs = tables.create(SHARD_EPOCHS_TABLE)?;
    // Epochs as raised by earlier batches of this group (not yet in the database).
    let mut raised: HashMap<u32, u64> = HashMap::new();
    let mut verdicts = Vec::with_capacity(batches.len());
    // The user tables the group writes to, in order of first use.
    let mut names: Vec<&'b str> = Vec::new();
    // (table, key, write) of every write of the accepted batches, in batch order.
    let mut writes: Vec<(usize, &'b [u8], Write<'b>)> = Vec::new();
    for batch in batches {
        if let Err(fenced) = check_epochs(&epochs, &raised, batch) {
            verdicts.push(Err(fenced));
            continue;
        }
        for operation in &batch.operations {
            let (table, key, write) = match operation {
                Operation::SetEpoch { shard, epoch } => {
                    let stored = current_epoch(&epochs, &raised, *shard)?;
                    if *epoch > stored {
                        raised.insert(*shard, *epoch);
                    }
                    continue;
                }
                Operation::Put { table, key, value } => (table, key, Write::Put(value)),
                Operation::Delete { table, key } => (table, key, Write::Delete),
                Operation::AddCounters { table, key, deltas } => {
                    (table, key, Write::AddCounters(deltas))
                }
            };
            let table = table.as_str();
            let index = match names.iter().position(|name| *name == table) {
                Some(index) => index,
                None => {
                    names.push(table);
                    names.len() - 1
                }
            };
            writes.push((index, key, write));
        }
        verdicts.push(Ok(()));
    }
    let keyspaces: Vec<Keyspace> = names
        .iter()
        .map(|name| tables.create(name))
        .collect::<Result<_, _>>()?;
    // Key order (the order of writes to one key kept): the final value of each key, with
    // counter additions folded onto what the key held before them.
    writes.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut resolved: Vec<Resolved<'b>> = Vec::with_capacity(writes.len());
    for (table, key, write) in writes {
        let same_key = resolved
            .last()
            .is_some_and(|last| last.table == table && last.key == key);
        let before = if same_key {
            resolved.pop().map(|last| last.value)
        } else {
            None
        };
        let value = match write {
            Write::Put(value) => Some(Cow::Borrowed(value)),
            Write::Delete => None,
            Write::AddCounters(deltas) => {
                let stored = match before {
                    Some(value) => value,
                    None => keyspaces[table]
                        .get(key)
                        .store()?
                        .map(|value| Cow::Owned(value.to_vec())),
                };
                let stored = match stored {
                    None => Vec::new(),
                    Some(value) => decode_counters(&value).ok_or_else(|| StoreError::Corrupt {
                        message: format!("counters of {} bytes, not a multiple of 8", value.len()),
                    })?,
                };
                Some(Cow::Owned(add_counters(&stored, deltas)))
            }
        };
        resolved.push(Resolved { table, key, value });
    }
    if resolved.is_empty() && raised.is_empty() {
        return Ok(Applied {
            verdicts,
            commit_duration: None,
        });
    }
    let mut write = tables
        .database
        .batch()
        .durability(Some(PersistMode::SyncAll));
    for Resolved { table, key, value } in resolved {
        match value {
            Some(value) => write.insert(&keyspaces[table], key, value.as_ref()),
            None => write.remove(&keyspaces[table], key),
        }
    }
    for (shard, epoch) in raised {
        write.insert(&epochs, epoch_key(shard), epoch.to_be_bytes());
    }
    if failing.is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst)) {
        return Err(StoreError::io("injected disk failure"));
    }
    let started = Instant::now();
    write.commit().store()?;
    Ok(Applied {
        verdicts,
        commit_duration: Some(started.elapsed()),
    })
}

/// `Err(Fenced)` if any epoch check of `batch` fails against the durable epochs and the raises
/// of earlier batches of the group.
fn check_epochs(
    epochs: &Keyspace,
    raised: &HashMap<u32, u64>,
    batch: &WriteBatch,
) -> Result<(), StoreError> {
    for check in &batch.epoch_checks {
        let stored = current_epoch(epochs, raised, check.shard)?;
        if stored > check.epoch {
            return Err(StoreError::Fenced {
                shard: check.shard,
                stored,
                given: check.epoch,
            });
        }
    }
    Ok(())
}

fn current_epoch(
    epochs: &Keyspace,
    raised: &HashMap<u32, u64>,
    shard: u32,
) -> Result<u64, StoreError> {
    match raised.get(&shard) {
        Some(epoch) => Ok(*epoch),
        None => stored_epoch(epochs, shard),
    }
}

/// The durable epoch of `shard` in the epochs table (0 if never set).
pub(crate) fn stored_epoch(epochs: &Keyspace, shard: u32) -> Result<u64, StoreError> {
    match epochs.get(epoch_key(shard)).store()? {
        None => Ok(0),
        Some(value) => decode_epoch(&value),
    }
}
