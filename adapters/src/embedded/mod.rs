//! The embedded durable store: the default backend, so `tollgate run` needs no services.
//!
//! One fjall database (a journal and one LSM tree per table, in a directory), one writer thread
//! doing group commit: callers on any thread hand a [`WriteBatch`] to [`EmbeddedStore::commit`];
//! the writer merges the queued batches into one atomic write, fsyncs its journal record once
//! and answers every caller. A batch is acknowledged only once
//! it is durable (invariant 2, nothing is lost), and a batch carrying a stale ownership epoch is
//! refused alone (invariant 5, fencing). Design and guarantees: `docs/storage.md`.

mod batch;
mod completion;
mod error;
mod fsync;
mod migrate;
mod stats;
mod store;
mod tables;
mod writer;

#[cfg(test)]
mod failure_tests;

pub use batch::{SHARD_EPOCHS_TABLE, WriteBatch, decode_counters};
pub use completion::{CommitHandle, CommitReceipt, CommitResult};
pub use error::StoreError;
pub use fsync::measure_fsync_latency;
pub use stats::{GROUP_LEN_BUCKET_BOUNDS, GROUP_LEN_BUCKET_COUNT, StoreStats};
pub use store::{EmbeddedStore, KeyValue, StoreConfig};
