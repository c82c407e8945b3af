//! The consumer loop every job worker actor runs (bill cycles, collections): open a consumer of
//! one job kind with a bounded prefetch, hand each delivery to its own task, and reopen the
//! consumer with a capped backoff when the queue fails (a broker restart).

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
