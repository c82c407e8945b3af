//! The contract every [`JobQueue`] keeps; each backend's tests run every [`Check`] on a fresh,
//! empty queue (for AMQP: a queue prefix of its own).
//!
//! ```ignore
//! for check in Check::ALL {
//!     let queue: Arc<dyn JobQueue> = fresh_queue();
//!     check.run(queue, Timing::default()).await.map_err(|e| format!("{check:?}: {e}"))?;
//! }
//! ```

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Consumer, Delivery, Job, JobError, JobKind, JobQueue, QueueDepth};

/// How long the checks wait.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long "nothing more is delivered" is watched for.
    pub quiet: Duration,
    /// The longest wait for a delivery that must come.
    pub patience: Duration,
}

impl Default for Timing {
    /// 300 ms of quiet, 15 s of patience (a broker requeues a closed channel's messages
    /// asynchronously).
    fn default() -> Timing {
        Timing {
            quiet: Duration::from_millis(300),
            patience: Duration::from_secs(15),
        }
    }
}

/// One promise of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Published jobs are all delivered, once each when acked, and depth follows.
    PublishThenConsumeExactlyOnce,
    /// A consumer never holds more than its prefetch of unacked deliveries.
    PrefetchBound,
    /// A delivery not acked when its consumer goes away comes back; settling it through the
    /// old consumer is refused as stale.
    UnackedComesBackAfterConsumerDropped,
    /// Requeue puts the job back with `attempt + 1`.
    RequeueIncrementsAttempt,
    /// Dead-lettering keeps the job and the reason, takes it off the main queue, and reading
    /// dead letters does not consume them.
    DeadLetterKeepsJobAndReason,
    /// Each kind is its own queue, with its own depth.
    KindsAreSeparate,
}

impl Check {
    /// Every check.
    pub const ALL: [Check; 6] = [
        Check::PublishThenConsumeExactlyOnce,
        Check::PrefetchBound,
        Check::UnackedComesBackAfterConsumerDropped,
        Check::RequeueIncrementsAttempt,
        Check::DeadLetterKeepsJobAndReason,
        Check::KindsAreSeparate,
    ];

    /// Runs this check on `queue`, which must be empty; returns the broken promise, if any.
    pub async fn run(self, queue: Arc<dyn JobQueue>, timing: Timing) -> Result<(), String> {
        let queue = queue.as_ref();
        match self {
            Check::PublishThenConsumeExactlyOnce => publish_then_consume(queue, timing).await,
            Check::PrefetchBound => prefetch_bound(queue, timing).await,
            Check::UnackedComesBackAfterConsumerDropped => comes_back(queue, timing).await,
            Check::RequeueIncrementsAttempt => requeue(queue, timing).await,
            Check::DeadLetterKeepsJobAndReason => dead_letter(queue, timing).await,
            Check::KindsAreSeparate => kinds(queue, timing).await,
        }
    }
}

/// Runs every check, each on a queue made by `make` (which must make a fresh, empty one).
pub async fn run_all<F, Fut>(mut make: F, timing: Timing) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Arc<dyn JobQueue>, String>>,
{
    for check in Check::ALL {
        let queue = make().await?;
        check
            .run(queue, timing)
            .await
            .map_err(|error| format!("{check:?}: {error}"))?;
    }
    Ok(())
}

fn job(kind: JobKind, run: &str, item: &str) -> Job {
    let payload = format!("{{\"run\":\"{run}\",\"item\":\"{item}\"}}").into_bytes();
    Job::new(kind, run, item, payload)
}

fn text(error: JobError) -> String {
    format!("{error} ({})", error.code())
}

/// The next delivery within `patience`, or why there is none.
async fn expect_delivery(
    consumer: &mut Consumer,
    timing: Timing,
    what: &str,
) -> Result<Delivery, String> {
    match tokio::time::timeout(timing.patience, consumer.next()).await {
        Ok(Ok(delivery)) => Ok(delivery),
        Ok(Err(error)) => Err(format!("{what}: {}", text(error))),
        Err(_) => Err(format!(
            "{what}: nothing delivered within {:?}",
            timing.patience
        )),
    }
}

/// `Ok` if nothing is delivered for `quiet`.
async fn expect_quiet(consumer: &mut Consumer, timing: Timing, what: &str) -> Result<(), String> {
    match tokio::time::timeout(timing.quiet, consumer.next()).await {
        Err(_) => Ok(()),
        Ok(Ok(delivery)) => Err(format!(
            "{what}: unexpected delivery of {:?}",
            delivery.job()
        )),
        Ok(Err(error)) => Err(format!("{what}: {}", text(error))),
    }
}

async fn depth(queue: &dyn JobQueue, kind: JobKind) -> Result<QueueDepth, String> {
    queue.queue_depth(kind).await.map_err(text)
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

async fn publish_then_consume(queue: &dyn JobQueue, timing: Timing) -> Result<(), String> {
    let kind = JobKind::BillCycle;
    let count = 50;
    let jobs: Vec<Job> = (0..count)
        .map(|i| job(kind, "run-a", &format!("acct-{i:03}")))
        .collect();
    let expected: BTreeSet<String> = jobs.iter().map(|job| job.item_key.clone()).collect();
    queue.publish(Vec::new()).await.map_err(text)?;
    queue.publish(jobs.clone()).await.map_err(text)?;
    let before = depth(queue, kind).await?;
    ensure(before.ready == count, || {
        format!("depth after publishing {count}: {before:?}")
    })?;
    let mut consumer = queue.consume(kind, 8).await.map_err(text)?;
    let mut seen = BTreeSet::new();
    for _ in 0..count {
        let delivery =
            expect_delivery(&mut consumer, timing, "consuming the published jobs").await?;
        let got = delivery.job().clone();
        let sent = jobs.iter().find(|job| job.item_key == got.item_key);
        ensure(sent == Some(&got), || {
            format!("delivered {got:?}, not as published")
        })?;
        ensure(seen.insert(got.item_key.clone()), || {
            format!("{} delivered twice though acked", got.item_key)
        })?;
        delivery.ack().await.map_err(text)?;
    }
    ensure(seen == expected, || {
        "not every published job was delivered".to_owned()
    })?;
    expect_quiet(&mut consumer, timing, "after acking everything").await?;
    drop(consumer);
    // Acked jobs stay gone for a new consumer too.
    let mut consumer = queue.consume(kind, 8).await.map_err(text)?;
    expect_quiet(
        &mut consumer,
        timing,
        "a new consumer after acking everything",
    )
    .await?;
    let after = depth(queue, kind).await?;
    ensure(after == QueueDepth::default(), || {
        format!("depth after acking all: {after:?}")
    })
}

async fn prefetch_bound(queue: &dyn JobQueue, timing: Timing) -> Result<(), String> {
    let kind = JobKind::Collection;
    let count = 10;
    let prefetch = 3;
    let jobs = (0..count)
        .map(|i| job(kind, "run-p", &format!("acct-{i}")))
        .collect();
    queue.publish(jobs).await.map_err(text)?;
    let mut consumer = queue.consume(kind, prefetch).await.map_err(text)?;
    ensure(consumer.prefetch() == prefetch, || {
        "consumer reports another prefetch".to_owned()
    })?;
    let mut held = Vec::new();
    for _ in 0..prefetch {
        held.push(expect_delivery(&mut consumer, timing, "filling the prefetch").await?);
    }
    let mut settled = 0;
    while settled < count {
        ensure(held.len() <= usize::from(prefetch), || {
            format!("{} unacked deliveries with prefetch {prefetch}", held.len())
        })?;
        if held.len() == usize::from(prefetch) {
            expect_quiet(&mut consumer, timing, "a full prefetch").await?;
        }
        // Settle the oldest; exactly one more may arrive (if any remain).
        let oldest = held.remove(0);
        oldest.ack().await.map_err(text)?;
        settled += 1;
        if settled + held.len() < count {
            held.push(expect_delivery(&mut consumer, timing, "after an ack freed a slot").await?);
        }
    }
    expect_quiet(&mut consumer, timing, "after settling all").await
}

async fn comes_back(queue: &dyn JobQueue, timing: Timing) -> Result<(), String> {
    let kind = JobKind::Settlement;
    let sent = job(kind, "run-c", "partner-1");
    queue.publish(vec![sent.clone()]).await.map_err(text)?;
    let mut consumer = queue.consume(kind, 4).await.map_err(text)?;
    let first = expect_delivery(&mut consumer, timing, "the first delivery").await?;
    ensure(first.job() == &sent, || {
        format!("delivered {:?}", first.job())
    })?;
    ensure(!first.redelivered(), || {
        "a first delivery flagged as redelivered".to_owned()
    })?;
    // The worker "dies": its consumer goes away without acking.
    drop(consumer);
    let mut consumer = queue.consume(kind, 4).await.map_err(text)?;
    let again = expect_delivery(
        &mut consumer,
        timing,
        "the unacked job after its consumer went",
    )
    .await?;
    ensure(again.job() == &sent, || {
        format!("redelivered {:?}", again.job())
    })?;
    ensure(again.redelivered(), || {
        "a redelivery not flagged as such".to_owned()
    })?;
    match first.ack().await {
        Err(JobError::DeliveryStale) => {}
        other => {
            return Err(format!(
                "acking through a dropped consumer answered {other:?}"
            ));
        }
    }
    again.ack().await.map_err(text)?;
    expect_quiet(&mut consumer, timing, "after acking the redelivery").await
}

async fn requeue(queue: &dyn JobQueue, timing: Timing) -> Result<(), String> {
    let kind = JobKind::BillCycle;
    let sent = job(kind, "run-r", "acct-r");
    queue.publish(vec![sent.clone()]).await.map_err(text)?;
    let mut consumer = queue.consume(kind, 2).await.map_err(text)?;
    for attempt in 0..3 {
        let delivery = expect_delivery(&mut consumer, timing, "a requeued job").await?;
        let got = delivery.job();
        ensure(got.attempt == attempt, || {
            format!("attempt {} where {attempt} was due", got.attempt)
        })?;
        ensure(
            got.item_key == sent.item_key && got.payload == sent.payload,
            || format!("requeued as {got:?}"),
        )?;
        if attempt < 2 {
            delivery.requeue().await.map_err(text)?;
        } else {
            delivery.ack().await.map_err(text)?;
        }
    }
    expect_quiet(&mut consumer, timing, "after acking the last attempt").await?;
    let after = depth(queue, kind).await?;
    ensure(after == QueueDepth::default(), || {
        format!("depth after requeues and ack: {after:?}")
    })
}

async fn dead_letter(queue: &dyn JobQueue, timing: Timing) -> Result<(), String> {
    let kind = JobKind::BillCycle;
    let before = jiff::Timestamp::now();
    let poison = job(kind, "run-d", "acct-poison");
    let good = job(kind, "run-d", "acct-good");
    let other = job(kind, "run-e", "acct-other");
    queue
        .publish(vec![poison.clone(), good.clone(), other.clone()])
        .await
        .map_err(text)?;
    let mut consumer = queue.consume(kind, 8).await.map_err(text)?;
    for _ in 0..3 {
        let delivery = expect_delivery(&mut consumer, timing, "a job to dead-letter").await?;
        let item = delivery.job().item_key.clone();
        if item == poison.item_key {
            delivery
                .dead_letter("billing.no_tariff", "no tariff for plan p-1")
                .await
                .map_err(text)?;
        } else if item == other.item_key {
            delivery
                .dead_letter("billing.closed_account", "closed")
                .await
                .map_err(text)?;
        } else {
            delivery.ack().await.map_err(text)?;
        }
    }
    expect_quiet(&mut consumer, timing, "dead letters are off the main queue").await?;
    let of_run = queue
        .dead_letters(kind, Some("run-d"))
        .await
        .map_err(text)?;
    let [letter] = of_run.as_slice() else {
        return Err(format!("{} dead letters of run-d, not 1", of_run.len()));
    };
    ensure(letter.job == poison, || {
        format!("the dead letter's job is {:?}", letter.job)
    })?;
    ensure(
        letter.reason_code == "billing.no_tariff" && letter.message == "no tariff for plan p-1",
        || {
            format!(
                "the reason became {}: {}",
                letter.reason_code, letter.message
            )
        },
    )?;
    // Stored with a precision of at least a second.
    let slack = jiff::SignedDuration::from_secs(2);
    ensure(
        letter.at >= before - slack && letter.at <= jiff::Timestamp::now() + slack,
        || format!("dead-lettered at {}", letter.at),
    )?;
    for _ in 0..2 {
        let all = queue.dead_letters(kind, None).await.map_err(text)?;
        let mut items: Vec<&str> = all
            .iter()
            .map(|letter| letter.job.item_key.as_str())
            .collect();
        items.sort_unstable();
        ensure(items == ["acct-other", "acct-poison"], || {
            format!("dead letters {items:?}")
        })?;
    }
    let none = queue
        .dead_letters(JobKind::Collection, None)
        .await
        .map_err(text)?;
    ensure(none.is_empty(), || {
        "dead letters of another kind".to_owned()
    })?;
    let after = depth(queue, kind).await?;
    ensure(
        after
            == QueueDepth {
                ready: 0,
                dead_lettered: 2,
            },
        || format!("depth after dead-lettering 2 of 3: {after:?}"),
    )
}

async fn kinds(queue: &dyn JobQueue, timing: Timing) -> Result<(), String> {
    let mut jobs: Vec<Job> = (0..5)
        .map(|i| job(JobKind::BillCycle, "run-k", &format!("b{i}")))
        .collect();
    jobs.extend((0..3).map(|i| job(JobKind::Collection, "run-k", &format!("c{i}"))));
    queue.publish(jobs).await.map_err(text)?;
    for (kind, ready) in [
        (JobKind::BillCycle, 5),
        (JobKind::Collection, 3),
        (JobKind::Settlement, 0),
    ] {
        let got = depth(queue, kind).await?;
        ensure(
            got == QueueDepth {
                ready,
                dead_lettered: 0,
            },
            || format!("depth of {kind}: {got:?}, {ready} ready expected"),
        )?;
    }
    let mut consumer = queue.consume(JobKind::Collection, 16).await.map_err(text)?;
    for _ in 0..3 {
        let delivery = expect_delivery(&mut consumer, timing, "collection jobs").await?;
        ensure(delivery.job().kind == JobKind::Collection, || {
            format!("a {} job from the collection queue", delivery.job().kind)
        })?;
        delivery.ack().await.map_err(text)?;
    }
    expect_quiet(
        &mut consumer,
        timing,
        "only collection jobs in the collection queue",
    )
    .await?;
    let bills = depth(queue, JobKind::BillCycle).await?;
    ensure(bills.ready == 5, || {
        format!("bill-cycle depth after consuming collections: {bills:?}")
    })
}
