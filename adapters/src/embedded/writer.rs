//! The single writer thread: drains the queue, groups batches, commits each group in one redb
//! write transaction with an fsync, and answers every caller of the group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use redb::{Database, Durability, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::batch::{Operation, SHARD_EPOCHS_TABLE, WriteBatch, add_counters, decode_counters};
use super::completion::{CommitReceipt, CommitResult, Completer};
use super::error::{StoreError, StoreResultExt};
use super::stats::{Counters, GroupOutcome};

/// The internal table of durable shard epochs: shard -> epoch.
pub(crate) const EPOCHS: TableDefinition<'static, u32, u64> =
    TableDefinition::new(SHARD_EPOCHS_TABLE);

/// A user table: raw byte keys (ordered bytewise) to raw byte values.
pub(crate) fn user_table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
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
    pub(crate) database: Arc<Database>,
    pub(crate) receiver: Receiver<Request>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) batch_len_max: usize,
    pub(crate) flush_interval: Duration,
    /// Receipts' transaction ids: the number of transactions committed since open.
    pub(crate) transactions_committed: u64,
}

/// What applying one group inside a transaction produced.
struct Applied {
    /// Per batch, in group order: `Err` for a fenced batch, which applied nothing.
    verdicts: Vec<Result<(), StoreError>>,
    /// `None` when no redb commit was needed (every batch was fenced).
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
        let verdicts: Vec<CommitResult> =
            match apply_group(&self.database, group.iter().map(|pending| &pending.batch)) {
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

/// Applies the batches in order inside one write transaction and commits it with an fsync.
///
/// A fenced batch is skipped whole; any other error aborts the transaction, so the group is
/// all-or-nothing apart from fencing.
fn apply_group<'b>(
    database: &Database,
    batches: impl ExactSizeIterator<Item = &'b WriteBatch>,
) -> Result<Applied, StoreError> {
    let mut transaction = database.begin_write().store()?;
    transaction.set_durability(Durability::Immediate);
    let mut verdicts = Vec::with_capacity(batches.len());
    {
        let mut epochs = transaction.open_table(EPOCHS).store()?;
        let mut tables = UserTables::new();
        for batch in batches {
            if let Err(fenced) = check_epochs(&epochs, batch) {
                verdicts.push(Err(fenced));
                continue;
            }
            apply_batch(&transaction, &mut epochs, &mut tables, batch)?;
            verdicts.push(Ok(()));
        }
    }
    if verdicts.iter().all(Result::is_err) {
        // Nothing was written: skip the fsync.
        transaction.abort().store()?;
        return Ok(Applied {
            verdicts,
            commit_duration: None,
        });
    }
    let started = Instant::now();
    transaction.commit().store()?;
    Ok(Applied {
        verdicts,
        commit_duration: Some(started.elapsed()),
    })
}

/// `Err(Fenced)` if any epoch check of `batch` fails against the current (in-transaction) state.
fn check_epochs(epochs: &Table<'_, u32, u64>, batch: &WriteBatch) -> Result<(), StoreError> {
    for check in &batch.epoch_checks {
        let stored = stored_epoch(epochs, check.shard)?;
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

fn stored_epoch(epochs: &Table<'_, u32, u64>, shard: u32) -> Result<u64, StoreError> {
    Ok(epochs.get(shard).store()?.map_or(0, |guard| guard.value()))
}

/// The user tables opened in a transaction, by name: a handful, so a list searched in order is
/// cheaper than hashing the name of every operation.
type UserTables<'txn> = Vec<(String, Table<'txn, &'static [u8], &'static [u8]>)>;

fn apply_batch<'txn>(
    transaction: &'txn WriteTransaction,
    epochs: &mut Table<'txn, u32, u64>,
    tables: &mut UserTables<'txn>,
    batch: &WriteBatch,
) -> Result<(), StoreError> {
    // Writes to different keys commute, and a stable sort keeps the order of the writes to one
    // key: applying them in key order gives the same result, with consecutive inserts landing
    // on the same B-tree pages (a large batch touches each page once, in order).
    let mut ordered: Vec<&Operation> = batch.operations.iter().collect();
    ordered.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    for operation in ordered {
        match operation {
            Operation::Put { table, key, value } => {
                open_cached(transaction, tables, table)?
                    .insert(key.as_slice(), value.as_slice())
                    .store()?;
            }
            Operation::Delete { table, key } => {
                open_cached(transaction, tables, table)?
                    .remove(key.as_slice())
                    .store()?;
            }
            Operation::AddCounters { table, key, deltas } => {
                let table = open_cached(transaction, tables, table)?;
                let stored = match table.get(key.as_slice()).store()? {
                    None => Vec::new(),
                    Some(guard) => {
                        decode_counters(guard.value()).ok_or_else(|| StoreError::Corrupt {
                            message: format!(
                                "counters of {} bytes, not a multiple of 8",
                                guard.value().len()
                            ),
                        })?
                    }
                };
                let value = add_counters(&stored, deltas);
                table.insert(key.as_slice(), value.as_slice()).store()?;
            }
            Operation::SetEpoch { shard, epoch } => {
                if *epoch > stored_epoch(epochs, *shard)? {
                    epochs.insert(*shard, *epoch).store()?;
                }
            }
        }
    }
    Ok(())
}

/// Where an operation goes in a batch's application order: epoch raises first (they touch no
/// user table), then by table and key.
fn sort_key(operation: &Operation) -> Option<(&str, &[u8])> {
    match operation {
        Operation::SetEpoch { .. } => None,
        Operation::Put { table, key, .. }
        | Operation::Delete { table, key }
        | Operation::AddCounters { table, key, .. } => Some((table.as_str(), key.as_slice())),
    }
}

/// Opens each user table once per transaction (redb refuses to open a table twice at once).
fn open_cached<'t, 'txn>(
    transaction: &'txn WriteTransaction,
    tables: &'t mut UserTables<'txn>,
    name: &str,
) -> Result<&'t mut Table<'txn, &'static [u8], &'static [u8]>, StoreError> {
    let index = match tables.iter().position(|(open, _)| open == name) {
        Some(index) => index,
        None => {
            let table = transaction.open_table(user_table(name)).store()?;
            tables.push((name.to_owned(), table));
            tables.len() - 1
        }
    };
    tables
        .get_mut(index)
        .map(|(_, table)| table)
        .ok_or_else(|| StoreError::io(format!("table `{name}` vanished from the cache")))
}
