//! Sources of raw records other than the HTTP API: Kafka partitions and dropped files. Each
//! reads on its own thread and hands batches to the [`crate::ingest::Ingestor`] through an
//! [`IngestBridge`], which makes their effects durable together with the source's position.

pub mod files;
pub mod kafka;

use std::sync::Arc;

use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};
use tollgate_actors::CdrOutcome;

use crate::ingest::{Batch, Ingestor};

/// Called with a batch's outcomes once it is durable, or with why it is not.
pub type OnDone = Box<dyn FnOnce(Result<Vec<CdrOutcome>, String>) + Send>;

struct Job {
    batch: Batch,
    done: OnDone,
}

/// Carries batches from a source's own thread into the actor system and waits until each is
/// durable: a slow store slows the source, nothing is dropped.
#[derive(Clone)]
pub struct IngestBridge {
    jobs: mpsc::Sender<Job>,
}

impl IngestBridge {
    /// Starts the ingest task. Must be called inside the actor system.
    ///
    /// Batches are pipelined: while one batch is being committed, the next one is decoded and
    /// rated (its subscribers offer their writes), so the store, the actors and decoding work
    /// at the same time. Commits stay strictly in submission order and are chained: a batch is
    /// committed only after the one before it is durable, and fails (uncommitted) when that one
    /// failed, so a source's stored position never passes over records that are not durable.
    /// The source resubmits the failed batches in order.
    pub fn spawn(ingestor: Arc<Ingestor>) -> IngestBridge {
        let (jobs, mut queue) = mpsc::channel::<Job>(1);
        actix::spawn(async move {
            // Completes with whether the previous batch became durable.
            let mut previous: Option<oneshot::Receiver<bool>> = None;
            while let Some(job) = queue.recv().await {
                let (durable, next) = oneshot::channel::<bool>();
                // Chained only to a batch still in flight: one that already finished has told
                // its source, which resubmits in order after a failure (a resubmitted batch is
                // not held to the failure it is repairing).
                let earlier = previous.replace(next).and_then(|mut earlier| {
                    matches!(earlier.try_recv(), Err(TryRecvError::Empty)).then_some(earlier)
                });
                match ingestor.prepare(job.batch).await {
                    Ok(prepared) => {
                        let ingestor = ingestor.clone();
                        actix::spawn(async move {
                            let earlier_durable = match earlier {
                                None => true,
                                Some(earlier) => earlier.await.unwrap_or(false),
                            };
                            let result = ingestor
                                .finish(prepared, earlier_durable)
                                .await
                                .map_err(|e| e.to_string());
                            let _ = durable.send(result.is_ok());
                            (job.done)(result);
                        });
                    }
                    Err(e) => {
                        // Nothing of it was written; the batches after it must not be either.
                        let _ = durable.send(false);
                        (job.done)(Err(e.to_string()));
                    }
                }
            }
        });
        IngestBridge { jobs }
    }

    /// Hands `batch` to the ingest task, blocking the calling (non-actor) thread only while
    /// the task is still preparing an earlier batch; the answer arrives once it is durable.
    /// Batches become durable in the order they were submitted; a batch submitted while an
    /// earlier one is in flight fails if the earlier one fails (resubmit both, in order).
    pub fn submit(&self, batch: Batch, done: OnDone) {
        if let Err(e) = self.jobs.blocking_send(Job { batch, done }) {
            (e.0.done)(Err("the node is stopping".to_string()));
        }
    }

    /// Ingests `batch` and blocks the calling (non-actor) thread until it is durable.
    pub fn ingest(&self, batch: Batch) -> Result<Vec<CdrOutcome>, String> {
        let (tx, answer) = std::sync::mpsc::channel();
        self.submit(
            batch,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        answer
            .recv()
            .map_err(|_| "the node stopped before the batch was durable".to_string())?
    }
}
