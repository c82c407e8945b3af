//! The embedded durable store: the default backend, so `tollgate run` needs no services.
//!
//! One redb file, one writer thread doing group commit: callers on any thread hand a
//! [`WriteBatch`] to [`EmbeddedStore::commit`]; the writer merges the queued batches into one
//! write transaction, fsyncs it once and answers every caller. A batch is acknowledged only once
//! it is durable (invariant 2, nothing is lost), and a batch carrying a stale ownership epoch is
//! refused alone (invariant 5, fencing). Design and guarantees: `docs/storage.md`.

mod batch;
mod completion;
mod error;
mod fsync;
mod stats;
mod store;
mod writer;

#[cfg(test)]
mod failure_tests;

pub use batch::{SHARD_EPOCHS_TABLE, WriteBatch, decode_counters};
pub use completion::{CommitHandle, CommitReceipt, CommitResult};
pub use error::StoreError;
pub use fsync::measure_fsync_latency;
pub use stats::{GROUP_LEN_BUCKET_BOUNDS, GROUP_LEN_BUCKET_COUNT, StoreStats};
pub use store::{EmbeddedStore, KeyValue, StoreConfig};
