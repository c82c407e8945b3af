//! [`EmbeddedJobQueue`]: the job queue in the node's own embedded store, for `tollgate demo` and
//! single nodes without RabbitMQ.
//!
//! Durable state is two tables of the [`EmbeddedStore`]: `jobs_queue` (jobs not yet settled)
//! and `jobs_dead` (dead letters), keyed `kind \0 sequence` so that each kind is read in
//! publishing order. Every change is one group-committed, fsynced [`WriteBatch`]: publish puts
//! all jobs at once; ack deletes; requeue deletes and puts the next attempt under a new
//! sequence; dead-letter deletes and puts the dead letter. Which jobs are handed out is memory
//! only, so after a restart (reopen of the file) every job not acked is ready again; likewise a
//! dropped consumer's unacked jobs return at once. Only sequence numbers are kept in memory; a
//! job is read from the store when it is delivered.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::{
    BoxFuture, Consumer, DeadLetter, Delivery, DeliverySource, Job, JobError, JobKind, JobQueue,
    QueueDepth, Settle,
};
use crate::embedded::{EmbeddedStore, WriteBatch};

/// The table of jobs not yet settled.
pub const QUEUE_TABLE: &str = "jobs_queue";
/// The table of dead letters.
pub const DEAD_TABLE: &str = "jobs_dead";

/// Rows read per step when the queue is rebuilt at open.
const SCAN_CHUNK_LEN: usize = 4096;
/// Version byte at the front of each stored record.
const RECORD_VERSION: u8 = 1;

/// The job queue on the embedded store. Cheap to clone; all clones share one queue.
#[derive(Clone)]
pub struct EmbeddedJobQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedJobQueue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmbeddedJobQueue")
            .field("store", &self.inner.store.path())
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<EmbeddedStore>,
    state: Mutex<State>,
    /// Woken whenever a job becomes ready or a prefetch slot frees up.
    wakeup: Notify,
    next_sequence: AtomicU64,
}

#[derive(Default)]
struct State {
    kinds: HashMap<JobKind, KindState>,
    next_consumer: u64,
}

#[derive(Default)]
struct KindState {
    ready: BTreeSet<u64>,
    /// Sequence -> the consumer holding it.
    in_flight: HashMap<u64, u64>,
    /// Unacked deliveries per consumer, for the prefetch bound.
    outstanding: HashMap<u64, usize>,
    /// Ready jobs that may have been delivered before.
    redelivered: HashSet<u64>,
    dead: u64,
}

impl KindState {
    /// Ends `consumer`'s hold on `sequence`; false if it did not hold it (its consumer was
    /// dropped and the job went back to the queue).
    fn release(&mut self, sequence: u64, consumer: u64) -> bool {
        if self.in_flight.get(&sequence) != Some(&consumer) {
            return false;
        }
        self.in_flight.remove(&sequence);
        if let Some(count) = self.outstanding.get_mut(&consumer) {
            *count = count.saturating_sub(1);
        }
        true
    }
}

impl EmbeddedJobQueue {
    /// The queue kept in `store`, with every job not acked before ready again.
    pub fn open(store: Arc<EmbeddedStore>) -> Result<EmbeddedJobQueue, JobError> {
        let mut state = State::default();
        let mut last_sequence = 0;
        for (table, dead) in [(QUEUE_TABLE, false), (DEAD_TABLE, true)] {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let rows = store.scan_after(table, after.as_deref(), SCAN_CHUNK_LEN)?;
                for (key, _) in &rows {
                    let (kind, sequence) = decode_key(key).ok_or_else(|| {
                        JobError::unavailable(format!("a malformed key in table {table}"))
                    })?;
                    last_sequence = last_sequence.max(sequence);
                    let kind_state = state.kinds.entry(kind).or_default();
                    if dead {
                        kind_state.dead += 1;
                    } else {
                        kind_state.ready.insert(sequence);
                        // Whether it was handed out before the restart is not recorded.
                        kind_state.redelivered.insert(sequence);
                    }
                }
                match rows.last() {
                    Some((key, _)) if rows.len() == SCAN_CHUNK_LEN => after = Some(key.clone()),
                    _ => break,
                }
            }
        }
        Ok(EmbeddedJobQueue {
            inner: Arc::new(Inner {
                store,
                state: Mutex::new(state),
                wakeup: Notify::new(),
                next_sequence: AtomicU64::new(last_sequence + 1),
            }),
        })
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // loses a job (the durable tables are the truth), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sequence(&self) -> u64 {
        self.next_sequence.fetch_add(1, Ordering::Relaxed)
    }

    async fn commit(&self, batch: WriteBatch) -> Result<(), JobError> {
        self.store.commit_async(batch).await?;
        Ok(())
    }

    async fn publish(&self, jobs: Vec<Job>) -> Result<(), JobError> {
        for job in &jobs {
            job.validate()?;
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        let mut added = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let sequence = self.sequence();
            batch.put(
                QUEUE_TABLE,
                &encode_key(job.kind, sequence),
                &encode_job(job),
            );
            added.push((job.kind, sequence));
        }
        self.commit(batch).await?;
        {
            let mut state = self.state();
            for (kind, sequence) in added {
                state.kinds.entry(kind).or_default().ready.insert(sequence);
            }
        }
        self.wakeup.notify_waiters();
        Ok(())
    }

    fn dead_letters(
        &self,
        kind: JobKind,
        run_id: Option<&str>,
    ) -> Result<Vec<DeadLetter>, JobError> {
        let rows = self
            .store
            .scan_prefix(DEAD_TABLE, &kind_prefix(kind), usize::MAX)?;
        let mut letters = Vec::with_capacity(rows.len());
        for (_, value) in rows {
            let letter = decode_dead(kind, &value)
                .ok_or_else(|| JobError::unavailable("a malformed dead letter"))?;
            if run_id.is_none_or(|run| run == letter.job.run_id) {
                letters.push(letter);
            }
        }
        Ok(letters)
    }

    fn queue_depth(&self, kind: JobKind) -> QueueDepth {
        let state = self.state();
        state
            .kinds
            .get(&kind)
            .map_or_else(QueueDepth::default, |kind_state| QueueDepth {
                ready: kind_state.ready.len() as u64,
                dead_lettered: kind_state.dead,
            })
    }
}

impl JobQueue for EmbeddedJobQueue {
    fn publish(&self, jobs: Vec<Job>) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.inner.publish(jobs))
    }

    fn consume(&self, kind: JobKind, prefetch: u16) -> BoxFuture<'_, Result<Consumer, JobError>> {
        Box::pin(async move {
            if prefetch == 0 {
                return Err(JobError::invalid("prefetch must be at least 1"));
            }
            let id = {
                let mut state = self.inner.state();
                state.next_consumer += 1;
                state.next_consumer
            };
            let source = EmbeddedSource {
                inner: Arc::clone(&self.inner),
                kind,
                prefetch: usize::from(prefetch),
                id,
            };
            Ok(Consumer::new(kind, prefetch, Box::new(source)))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        kind: JobKind,
        run_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, JobError>> {
        Box::pin(async move { self.inner.dead_letters(kind, run_id) })
    }

    fn queue_depth(&self, kind: JobKind) -> BoxFuture<'_, Result<QueueDepth, JobError>> {
        Box::pin(async move { Ok(self.inner.queue_depth(kind)) })
    }
}

/// One consumer: hands out ready jobs of its kind while it holds fewer than `prefetch`.
struct EmbeddedSource {
    inner: Arc<Inner>,
    kind: JobKind,
    prefetch: usize,
    id: u64,
}

impl EmbeddedSource {
    /// Takes the first ready job if a prefetch slot is free.
    fn take(&self) -> Option<(u64, bool)> {
        let mut state = self.inner.state();
        let kind_state = state.kinds.entry(self.kind).or_default();
        if kind_state.outstanding.get(&self.id).copied().unwrap_or(0) >= self.prefetch {
            return None;
        }
        let sequence = kind_state.ready.pop_first()?;
        kind_state.in_flight.insert(sequence, self.id);
        *kind_state.outstanding.entry(self.id).or_default() += 1;
        let redelivered = kind_state.redelivered.remove(&sequence);
        Some((sequence, redelivered))
    }

    /// Gives `sequence` back to the ready set (its record could not be read).
    fn untake(&self, sequence: u64) {
        let mut state = self.inner.state();
        let kind_state = state.kinds.entry(self.kind).or_default();
        if kind_state.release(sequence, self.id) {
            kind_state.ready.insert(sequence);
            kind_state.redelivered.insert(sequence);
        }
    }

    async fn next_delivery(&mut self) -> Result<Delivery, JobError> {
        loop {
            // Registered before looking, so a wakeup between the look and the wait is not lost.
            let notified = self.inner.wakeup.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some((sequence, redelivered)) = self.take() {
                let key = encode_key(self.kind, sequence);
                let record = match self.inner.store.get(QUEUE_TABLE, &key) {
                    Ok(record) => record,
                    Err(error) => {
                        self.untake(sequence);
                        return Err(error.into());
                    }
                };
                let Some(job) = record.and_then(|value| decode_job(self.kind, &value)) else {
                    // Settled through a stale delivery meanwhile (gone), or unreadable: either
                    // way there is nothing to hand out under this sequence.
                    let mut state = self.inner.state();
                    if let Some(kind_state) = state.kinds.get_mut(&self.kind) {
                        kind_state.release(sequence, self.id);
                    }
                    continue;
                };
                let settle = EmbeddedSettle {
                    inner: Arc::clone(&self.inner),
                    kind: self.kind,
                    sequence,
                    consumer: self.id,
                };
                return Ok(Delivery::new(job, redelivered, Box::new(settle)));
            }
            notified.await;
        }
    }
}

impl DeliverySource for EmbeddedSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, JobError>> {
        Box::pin(self.next_delivery())
    }
}

impl Drop for EmbeddedSource {
    fn drop(&mut self) {
        {
            let mut state = self.inner.state();
            if let Some(kind_state) = state.kinds.get_mut(&self.kind) {
                let held: Vec<u64> = kind_state
                    .in_flight
                    .iter()
                    .filter(|(_, consumer)| **consumer == self.id)
                    .map(|(sequence, _)| *sequence)
                    .collect();
                for sequence in held {
                    kind_state.in_flight.remove(&sequence);
                    kind_state.ready.insert(sequence);
                    kind_state.redelivered.insert(sequence);
                }
                kind_state.outstanding.remove(&self.id);
            }
        }
        self.inner.wakeup.notify_waiters();
    }
}

/// Settles one delivery: checks the consumer still holds it, commits, then updates memory.
struct EmbeddedSettle {
    inner: Arc<Inner>,
    kind: JobKind,
    sequence: u64,
    consumer: u64,
}

impl EmbeddedSettle {
    fn still_held(&self) -> bool {
        let state = self.inner.state();
        state
            .kinds
            .get(&self.kind)
            .and_then(|kind_state| kind_state.in_flight.get(&self.sequence))
            == Some(&self.consumer)
    }

    /// Commits `batch` (which removes the delivered job) and releases the delivery; `ready`
    /// is a new sequence to make ready, `dead` counts a dead letter.
    async fn settle(
        self,
        mut batch: WriteBatch,
        ready: Option<u64>,
        dead: bool,
    ) -> Result<(), JobError> {
        if !self.still_held() {
            return Err(JobError::DeliveryStale);
        }
        batch.delete(QUEUE_TABLE, &encode_key(self.kind, self.sequence));
        self.inner.commit(batch).await?;
        {
            let mut state = self.inner.state();
            let kind_state = state.kinds.entry(self.kind).or_default();
            kind_state.release(self.sequence, self.consumer);
            // Had the consumer been dropped during the commit, the job went back to ready:
            // it is durably gone now, so it must not be handed out again.
            kind_state.ready.remove(&self.sequence);
            kind_state.redelivered.remove(&self.sequence);
            if let Some(sequence) = ready {
                kind_state.ready.insert(sequence);
            }
            if dead {
                kind_state.dead += 1;
            }
        }
        self.inner.wakeup.notify_waiters();
        Ok(())
    }
}

impl Settle for EmbeddedSettle {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), JobError>> {
        Box::pin(self.settle(WriteBatch::new(), None, false))
    }

    fn requeue(self: Box<Self>, next: Job) -> BoxFuture<'static, Result<(), JobError>> {
        let sequence = self.inner.sequence();
        let mut batch = WriteBatch::new();
        batch.put(
            QUEUE_TABLE,
            &encode_key(self.kind, sequence),
            &encode_job(&next),
        );
        Box::pin(self.settle(batch, Some(sequence), false))
    }

    fn dead_letter(self: Box<Self>, dead: DeadLetter) -> BoxFuture<'static, Result<(), JobError>> {
        let sequence = self.inner.sequence();
        let mut batch = WriteBatch::new();
        batch.put(
            DEAD_TABLE,
            &encode_key(self.kind, sequence),
            &encode_dead(&dead),
        );
        Box::pin(self.settle(batch, None, true))
    }
}

// Records: a version byte, then fields; strings are u32-length-prefixed, the payload is last.

fn kind_prefix(kind: JobKind) -> Vec<u8> {
    let mut prefix = kind.as_str().as_bytes().to_vec();
    prefix.push(0);
    prefix
}

fn encode_key(kind: JobKind, sequence: u64) -> Vec<u8> {
    let mut key = kind_prefix(kind);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn decode_key(key: &[u8]) -> Option<(JobKind, u64)> {
    let split = key.iter().position(|byte| *byte == 0)?;
    let kind = JobKind::parse(std::str::from_utf8(&key[..split]).ok()?)?;
    let sequence = u64::from_be_bytes(key.get(split + 1..)?.try_into().ok()?);
    Some((kind, sequence))
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Reads fields off the front of a record.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.take(len)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

fn encode_job(job: &Job) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + job.run_id.len() + job.item_key.len() + job.payload.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&job.attempt.to_be_bytes());
    put_bytes(&mut out, job.run_id.as_bytes());
    put_bytes(&mut out, job.item_key.as_bytes());
    out.extend_from_slice(&job.payload);
    out
}

fn decode_job(kind: JobKind, record: &[u8]) -> Option<Job> {
    let mut reader = Reader(record);
    if reader.take(1)? != [RECORD_VERSION] {
        return None;
    }
    let attempt = reader.u32()?;
    let run_id = reader.string()?;
    let item_key = reader.string()?;
    Some(Job {
        kind,
        run_id,
        item_key,
        payload: reader.0.to_vec(),
        attempt,
    })
}

fn encode_dead(dead: &DeadLetter) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    out.extend_from_slice(&dead.at.as_nanosecond().to_be_bytes());
    put_bytes(&mut out, dead.reason_code.as_bytes());
    put_bytes(&mut out, dead.message.as_bytes());
    put_bytes(&mut out, &encode_job(&dead.job));
    out
}

fn decode_dead(kind: JobKind, record: &[u8]) -> Option<DeadLetter> {
    let mut reader = Reader(record);
    if reader.take(1)? != [RECORD_VERSION] {
        return None;
    }
    let nanoseconds = i128::from_be_bytes(reader.take(16)?.try_into().ok()?);
    let at = jiff::Timestamp::from_nanosecond(nanoseconds).ok()?;
    let reason_code = reader.string()?;
    let message = reader.string()?;
    let job = decode_job(kind, reader.bytes()?)?;
    Some(DeadLetter {
        job,
        reason_code,
        message,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut job = Job::new(
            JobKind::Settlement,
            "run-1",
            "partner-ä",
            b"{\"a\":1}".to_vec(),
        );
        job.attempt = 7;
        assert_eq!(decode_job(job.kind, &encode_job(&job)), Some(job.clone()));
        let dead = DeadLetter {
            job,
            reason_code: "settlement.no_contract".to_owned(),
            message: "no contract in force".to_owned(),
            at: jiff::Timestamp::from_second(1_700_000_000).unwrap_or_default(),
        };
        assert_eq!(
            decode_dead(JobKind::Settlement, &encode_dead(&dead)),
            Some(dead)
        );
        assert_eq!(decode_job(JobKind::Settlement, b"\x02"), None);
        assert_eq!(decode_job(JobKind::Settlement, b"\x01\x00"), None);
    }

    #[test]
    fn keys_order_by_sequence_within_a_kind() {
        let low = encode_key(JobKind::BillCycle, 9);
        let high = encode_key(JobKind::BillCycle, 300);
        assert!(low < high);
        assert_eq!(decode_key(&high), Some((JobKind::BillCycle, 300)));
        assert!(high.starts_with(&kind_prefix(JobKind::BillCycle)));
        assert!(!high.starts_with(&kind_prefix(JobKind::Collection)));
        assert_eq!(decode_key(b"payroll\0\0\0\0\0\0\0\0\x01"), None);
    }
}
