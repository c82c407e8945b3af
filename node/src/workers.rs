//! What every job worker actor shares (bill cycles, collections, settlements): the consumer loop
//! (open a consumer of one job kind with a bounded prefetch, hand each delivery to its own
//! task, reopen the consumer with a capped backoff when the queue fails) and the settling of a
//! handled job (ack, dead-letter, requeue, give up after the last attempt).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tollgate_adapters::jobs::{Delivery, JobKind, JobQueue};

/// Consumes `kind` jobs from `queue` forever, at most `prefetch` unacknowledged at a time,
/// spawning `handle(delivery)` for each.
pub async fn consume_forever<F, Fut>(
    queue: Arc<dyn JobQueue>,
    kind: JobKind,
    prefetch: u16,
    handle: F,
) where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let name = kind.as_str();
    let mut wait = Duration::from_millis(200);
    loop {
        let mut consumer = match queue.consume(kind, prefetch).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("jobs: cannot consume {name} jobs, retrying in {wait:?}: {e}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        wait = Duration::from_millis(200);
        loop {
            match consumer.next().await {
                Ok(delivery) => {
                    actix::spawn(handle(delivery));
                }
                Err(e) => {
                    eprintln!("jobs: {name} consumer failed, reopening: {e}");
                    tokio::time::sleep(wait).await;
                    break;
                }
            }
        }
    }
}

/// How a worker's job ended, as the queue needs to know it.
pub enum JobEnd {
    /// Done, now or before (a redelivery): acknowledge.
    Done,
    /// Cannot be done (already recorded on its run): dead-letter with the reason.
    Failed {
        /// Reason code.
        reason: String,
        /// Message.
        message: String,
    },
    /// Storage failure or conflict: requeue, up to the attempts allowed.
    Retry(String),
}

/// Settles `delivery` by `end`: ack, dead-letter, or requeue. A retry at the last of
/// `attempts_max` attempts is recorded as failed on its run by `give_up(reason, message)` (on a
/// blocking thread) and dead-lettered, or requeued when that record fails. `what` names the job
/// in the log (`billing: run R payer P`); a job that cannot be settled is delivered again, and
/// its store answers it with what is already durable.
pub async fn settle<E>(
    delivery: Delivery,
    end: JobEnd,
    attempts_max: u32,
    what: &str,
    give_up: impl FnOnce(&'static str, &str) -> Result<(), E> + Send + 'static,
) where
    E: Send + 'static,
{
    let attempt = delivery.job().attempt + 1;
    let settled = match end {
        JobEnd::Done => delivery.ack().await,
        JobEnd::Failed { reason, message } => delivery.dead_letter(&reason, &message).await,
        JobEnd::Retry(why) if attempt >= attempts_max => {
            let reason = "storage.io";
            let message = format!("gave up after {attempt} attempts: {why}");
            let m = message.clone();
            let recorded = tokio::task::spawn_blocking(move || give_up(reason, &m)).await;
            match recorded {
                Ok(Ok(())) => delivery.dead_letter(reason, &message).await,
                _ => delivery.requeue().await,
            }
        }
        JobEnd::Retry(why) => {
            eprintln!("{what}: {why}; requeued (attempt {attempt})");
            delivery.requeue().await
        }
    };
    if let Err(e) = settled {
        eprintln!("{what}: job not settled ({e}); it will be delivered again");
    }
}
