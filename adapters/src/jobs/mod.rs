//! Durable job queues for bill-cycle, collection and settlement runs, behind one trait.
//!
//! Finance creates a run through the admin API; the node publishes one [`Job`] per item (payer
//! account, partner) with [`JobQueue::publish`], and worker actors take them from a [`Consumer`]
//! with a bounded prefetch, do the work, make the result durable, and only then
//! [`Delivery::ack`] it.
//!
//! Guarantees every backend keeps (checked by [`contract`]):
//! - `publish` returns `Ok` only once every job is durable (AMQP: persistent messages and
//!   publisher confirms; embedded: one fsynced store write);
//! - delivery is **at least once**: a delivery that is not acked (worker crash, consumer dropped,
//!   connection lost, node restart) comes back, flagged [`Delivery::redelivered`]; idempotency on
//!   `(run_id, item_key)` is the consumer's storage's job;
//! - a consumer never holds more than its prefetch of unacked deliveries;
//! - [`Delivery::requeue`] puts the job back at the tail with `attempt + 1`;
//! - [`Delivery::dead_letter`] moves the job to the kind's dead-letter queue **with its reason**
//!   and takes it off the main queue; [`JobQueue::dead_letters`] reads them back.
//!
//! Backends: [`amqp::AmqpJobQueue`] (RabbitMQ, for clusters) and
//! [`embedded::EmbeddedJobQueue`] (embedded store, for `tollgate demo` and single nodes). Semantics, queue
//! names and reconnection: `docs/jobs.md`.

pub mod amqp;
pub mod contract;
pub mod embedded;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that [`JobQueue`] can be used as `Arc<dyn JobQueue>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job is for; each kind has its own queue (and dead-letter queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum JobKind {
    /// One payer account of a bill run: rate the period, build the invoice.
    BillCycle,
    /// One account of a collection run: dunning step, payment request.
    Collection,
    /// One partner of a settlement run: statement of shares.
    Settlement,
}

impl JobKind {
    /// Every kind, in a stable order.
    pub const ALL: [JobKind; 3] = [JobKind::BillCycle, JobKind::Collection, JobKind::Settlement];

    /// The stable name, used in queue names, storage keys and metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::BillCycle => "bill_cycle",
            JobKind::Collection => "collection",
            JobKind::Settlement => "settlement",
        }
    }

    /// The kind named `name` ([`JobKind::as_str`]), if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One item of a run: the unit of work, of acknowledgement and of idempotency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Which queue it goes to.
    pub kind: JobKind,
    /// The run (bill run, collection run, settlement run) it belongs to.
    pub run_id: String,
    /// The item within the run (payer account, partner); `(run_id, item_key)` is the
    /// idempotency key the worker's storage enforces.
    pub item_key: String,
    /// The work description, JSON by convention; the queue never looks inside.
    pub payload: Vec<u8>,
    /// How many times the job was requeued by a worker ([`Delivery::requeue`]); 0 when
    /// published. Redeliveries after a crash do not count (see [`Delivery::redelivered`]).
    pub attempt: u32,
}

impl Job {
    /// A first attempt of `item_key` in `run_id`.
    #[must_use]
    pub fn new(
        kind: JobKind,
        run_id: impl Into<String>,
        item_key: impl Into<String>,
        payload: Vec<u8>,
    ) -> Job {
        Job {
            kind,
            run_id: run_id.into(),
            item_key: item_key.into(),
            payload,
            attempt: 0,
        }
    }

    /// Refuses jobs that could not be told apart: an empty run id or item key.
    pub(crate) fn validate(&self) -> Result<(), JobError> {
        if self.run_id.is_empty() {
            return Err(JobError::invalid("a job needs a run id"));
        }
        if self.item_key.is_empty() {
            return Err(JobError::invalid("a job needs an item key"));
        }
        Ok(())
    }
}

/// A job that a worker gave up on, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The job as it was last delivered.
    pub job: Job,
    /// A stable reason code (e.g. `billing.no_tariff`, or `jobs.delivery_limit` when the broker
    /// dead-lettered a message that kept coming back unacked).
    pub reason_code: String,
    /// A readable explanation.
    pub message: String,
    /// When it was dead-lettered.
    pub at: jiff::Timestamp,
}

/// How many jobs of a kind wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Jobs waiting for a consumer. Deliveries handed out and not yet settled are not counted
    /// (AMQP's queue.declare-ok reports ready messages only).
    pub ready: u64,
    /// Jobs in the dead-letter queue.
    pub dead_lettered: u64,
}

/// Everything that can go wrong with a job queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The broker or store could not be reached or failed, even after retrying.
    #[error("job queue unavailable: {message}")]
    Unavailable {
        /// What failed last.
        message: String,
    },
    /// The broker refused the request for good (wrong credentials, a queue declared with other
    /// arguments, a publish it nacked repeatedly).
    #[error("job queue refused the request: {message}")]
    Refused {
        /// The broker's or store's explanation.
        message: String,
    },
    /// The delivery's channel (AMQP) or consumer (embedded) is gone, or an AMQP ack could not be
    /// handed to a dying connection in time, so it is not known to be settled; the job may be
    /// delivered again, which is harmless for idempotent workers.
    #[error("the delivery is stale: its consumer or channel was closed; it will be redelivered")]
    DeliveryStale,
    /// The request itself is malformed (empty run id, zero prefetch, bad configuration).
    #[error("invalid job queue request: {reason}")]
    Invalid {
        /// Why the request was refused.
        reason: String,
    },
}

impl JobError {
    /// The stable, machine-readable code of this error (`jobs.*`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            JobError::Unavailable { .. } => "jobs.unavailable",
            JobError::Refused { .. } => "jobs.refused",
            JobError::DeliveryStale => "jobs.delivery_stale",
            JobError::Invalid { .. } => "jobs.invalid",
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> JobError {
        JobError::Unavailable {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> JobError {
        JobError::Invalid {
            reason: reason.into(),
        }
    }
}

impl From<crate::embedded::StoreError> for JobError {
    fn from(error: crate::embedded::StoreError) -> JobError {
        JobError::unavailable(format!("{} ({})", error, error.code()))
    }
}

/// A durable job queue. Use it as `Arc<dyn JobQueue>`; every method is cancel-safe in the
/// sense that dropping its future loses no job (at worst a publish is repeated).
pub trait JobQueue: Send + Sync {
    /// Makes every job durable in its kind's queue; returns `Ok` only when all of them are
    /// (so a caller that gets `Err` publishes the same jobs again: duplicates are allowed,
    /// losses are not). Jobs may be of several kinds.
    fn publish(&self, jobs: Vec<Job>) -> BoxFuture<'_, Result<(), JobError>>;

    /// Starts consuming `kind` with at most `prefetch` (at least 1) unacked deliveries.
    fn consume(&self, kind: JobKind, prefetch: u16) -> BoxFuture<'_, Result<Consumer, JobError>>;

    /// The dead letters of `kind`, of one run if `run_id` is given, oldest first. They stay in
    /// the dead-letter queue (reading is not consuming).
    fn dead_letters<'a>(
        &'a self,
        kind: JobKind,
        run_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, JobError>>;

    /// How many jobs of `kind` wait, for progress and metrics.
    fn queue_depth(&self, kind: JobKind) -> BoxFuture<'_, Result<QueueDepth, JobError>>;
}

/// A backend's source of deliveries; wrapped by [`Consumer`].
pub trait DeliverySource: Send {
    /// The next delivery, waiting as long as needed (reconnecting if the backend can).
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, JobError>>;

    /// How many times this source lost its connection and re-established it by itself.
    fn reconnects(&self) -> u64 {
        0
    }
}

/// A backend's way to settle one delivery; wrapped by [`Delivery`].
pub trait Settle: Send {
    /// Removes the job for good.
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), JobError>>;

    /// Puts `next` (the job with `attempt + 1`) at the tail of the queue, then removes the
    /// delivered job.
    fn requeue(self: Box<Self>, next: Job) -> BoxFuture<'static, Result<(), JobError>>;

    /// Moves `dead` to the dead-letter queue, then removes the delivered job.
    fn dead_letter(self: Box<Self>, dead: DeadLetter) -> BoxFuture<'static, Result<(), JobError>>;
}

/// Deliveries of one kind, at most `prefetch` of them unacked at a time.
///
/// Dropping the consumer gives its unacked deliveries back to the queue (AMQP: its channel
/// closes); settling them afterwards answers [`JobError::DeliveryStale`].
pub struct Consumer {
    kind: JobKind,
    prefetch: u16,
    source: Box<dyn DeliverySource>,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Consumer")
            .field("kind", &self.kind)
            .field("prefetch", &self.prefetch)
            .field("reconnects", &self.source.reconnects())
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Wraps a backend's source.
    #[must_use]
    pub fn new(kind: JobKind, prefetch: u16, source: Box<dyn DeliverySource>) -> Consumer {
        Consumer {
            kind,
            prefetch,
            source,
        }
    }

    /// The next delivery; waits while the queue is empty or `prefetch` deliveries are unacked.
    /// Cancel-safe: use it in `select!` or under a timeout.
    pub async fn next(&mut self) -> Result<Delivery, JobError> {
        self.source.next().await
    }

    /// The kind consumed.
    #[must_use]
    pub fn kind(&self) -> JobKind {
        self.kind
    }

    /// The most unacked deliveries at a time.
    #[must_use]
    pub fn prefetch(&self) -> u16 {
        self.prefetch
    }

    /// How many times the consumer reconnected by itself (AMQP; 0 for the embedded queue).
    #[must_use]
    pub fn reconnects(&self) -> u64 {
        self.source.reconnects()
    }
}

/// One job handed to a worker; settle it exactly once with `ack`, `requeue` or `dead_letter`.
///
/// A delivery dropped unsettled stays unacked (it counts against the prefetch) until its
/// consumer is dropped, and then comes back.
pub struct Delivery {
    job: Job,
    redelivered: bool,
    settle: Box<dyn Settle>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Delivery")
            .field("job", &self.job)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Wraps a job and the backend's way to settle it.
    #[must_use]
    pub fn new(job: Job, redelivered: bool, settle: Box<dyn Settle>) -> Delivery {
        Delivery {
            job,
            redelivered,
            settle,
        }
    }

    /// The job.
    #[must_use]
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// True when the job may have been delivered before (a consumer died holding it): the
    /// worker's idempotency check on `(run_id, item_key)` matters most then.
    #[must_use]
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// Done: call only once the job's result is durable.
    pub async fn ack(self) -> Result<(), JobError> {
        self.settle.ack().await
    }

    /// Retry later: the job goes to the tail of its queue with `attempt + 1`.
    pub async fn requeue(self) -> Result<(), JobError> {
        let mut next = self.job;
        next.attempt = next.attempt.saturating_add(1);
        self.settle.requeue(next).await
    }

    /// Give up: the job goes to the dead-letter queue with `reason_code` and `message`.
    pub async fn dead_letter(self, reason_code: &str, message: &str) -> Result<(), JobError> {
        let dead = DeadLetter {
            job: self.job,
            reason_code: reason_code.to_owned(),
            message: message.to_owned(),
            at: jiff::Timestamp::now(),
        };
        self.settle.dead_letter(dead).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::parse("payroll"), None);
        assert_eq!(JobKind::BillCycle.to_string(), "bill_cycle");
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(JobError::unavailable("x").code(), "jobs.unavailable");
        let refused = JobError::Refused {
            message: String::new(),
        };
        assert_eq!(refused.code(), "jobs.refused");
        assert_eq!(JobError::DeliveryStale.code(), "jobs.delivery_stale");
        assert_eq!(JobError::invalid("x").code(), "jobs.invalid");
    }

    #[test]
    fn jobs_need_a_run_and_an_item() {
        assert!(
            Job::new(JobKind::Collection, "r", "i", Vec::new())
                .validate()
                .is_ok()
        );
        let no_run = Job::new(JobKind::Collection, "", "i", Vec::new());
        assert_eq!(no_run.validate().map_err(|e| e.code()), Err("jobs.invalid"));
        let no_item = Job::new(JobKind::Collection, "r", "", Vec::new());
        assert_eq!(
            no_item.validate().map_err(|e| e.code()),
            Err("jobs.invalid")
        );
    }
}
