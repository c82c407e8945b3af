//! Sources of raw records other than the HTTP API: Kafka partitions and dropped files. Each
//! reads on its own thread and hands batches to the [`crate::ingest::Ingestor`] through an
//! [`IngestBridge`], which makes their effects durable together with the source's position.

pub mod files;
pub mod kafka;

use std::sync::Arc;

use tokio::sync::mpsc;
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
    /// Starts the ingest task (one batch at a time). Must be called inside the actor system.
    pub fn spawn(ingestor: Arc<Ingestor>) -> IngestBridge {
        let (jobs, mut queue) = mpsc::channel::<Job>(1);
        actix::spawn(async move {
            while let Some(job) = queue.recv().await {
                let result = ingestor.ingest(job.batch).await.map_err(|e| e.to_string());
                (job.done)(result);
            }
        });
        IngestBridge { jobs }
    }

    /// Hands `batch` to the ingest task, blocking the calling (non-actor) thread only while
    /// the task is still busy with an earlier batch; the answer arrives once it is durable.
    /// Batches are ingested one at a time, in the order they were submitted.
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
