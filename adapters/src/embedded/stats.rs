//! Counters kept by the writer and read by [`super::EmbeddedStore::stats`].
//!
//! Plain atomics, no metrics library: the node maps [`StoreStats`] onto its prometheus registry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (inclusive) of the group-length histogram buckets; one more bucket counts
/// groups longer than the last bound.
pub const GROUP_LEN_BUCKET_BOUNDS: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// Number of buckets in [`StoreStats::group_len_buckets`].
pub const GROUP_LEN_BUCKET_COUNT: usize = GROUP_LEN_BUCKET_BOUNDS.len() + 1;

/// A snapshot of the store's counters since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// redb write transactions committed (each one fsync).
    pub transactions_total: u64,
    /// redb write transactions that failed (every batch of the group got the error).
    pub transactions_failed_total: u64,
    /// Batches made durable and acknowledged.
    pub batches_committed_total: u64,
    /// Batches refused by an epoch check.
    pub batches_fenced_total: u64,
    /// Batches answered with an error other than fencing.
    pub batches_failed_total: u64,
    /// Groups by length: bucket `i` counts groups with length `<= GROUP_LEN_BUCKET_BOUNDS[i]`
    /// (and above the previous bound); the last bucket counts longer groups.
    pub group_len_buckets: [u64; GROUP_LEN_BUCKET_COUNT],
    /// Duration of the last redb commit call, which is dominated by its fsync.
    pub commit_fsync_duration_last: Duration,
    /// Longest redb commit call so far.
    pub commit_fsync_duration_max: Duration,
    /// Batches waiting in the queue when the snapshot was taken.
    pub queue_depth: usize,
}

/// The live counters, shared between the writer thread and readers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    transactions_total: AtomicU64,
    transactions_failed_total: AtomicU64,
    batches_committed_total: AtomicU64,
    batches_fenced_total: AtomicU64,
    batches_failed_total: AtomicU64,
    group_len_buckets: [AtomicU64; GROUP_LEN_BUCKET_COUNT],
    commit_fsync_nanos_last: AtomicU64,
    commit_fsync_nanos_max: AtomicU64,
}

/// The outcome of one group, as recorded by the writer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GroupOutcome {
    pub(crate) group_len: usize,
    pub(crate) committed: u64,
    pub(crate) fenced: u64,
    pub(crate) failed: u64,
    /// `Some` when a redb commit ran (successfully or not).
    pub(crate) commit_duration: Option<Duration>,
    pub(crate) transaction_failed: bool,
}

impl Counters {
    pub(crate) fn record(&self, outcome: &GroupOutcome) {
        let relaxed = Ordering::Relaxed;
        if outcome.transaction_failed {
            self.transactions_failed_total.fetch_add(1, relaxed);
        } else if outcome.commit_duration.is_some() {
            self.transactions_total.fetch_add(1, relaxed);
        }
        self.batches_committed_total
            .fetch_add(outcome.committed, relaxed);
        self.batches_fenced_total.fetch_add(outcome.fenced, relaxed);
        self.batches_failed_total.fetch_add(outcome.failed, relaxed);
        self.group_len_buckets[bucket_index(outcome.group_len)].fetch_add(1, relaxed);
        if let Some(duration) = outcome.commit_duration {
            let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
            self.commit_fsync_nanos_last.store(nanos, relaxed);
            self.commit_fsync_nanos_max.fetch_max(nanos, relaxed);
        }
    }

    pub(crate) fn snapshot(&self, queue_depth: usize) -> StoreStats {
        let relaxed = Ordering::Relaxed;
        StoreStats {
            transactions_total: self.transactions_total.load(relaxed),
            transactions_failed_total: self.transactions_failed_total.load(relaxed),
            batches_committed_total: self.batches_committed_total.load(relaxed),
            batches_fenced_total: self.batches_fenced_total.load(relaxed),
            batches_failed_total: self.batches_failed_total.load(relaxed),
            group_len_buckets: std::array::from_fn(|i| self.group_len_buckets[i].load(relaxed)),
            commit_fsync_duration_last: Duration::from_nanos(
                self.commit_fsync_nanos_last.load(relaxed),
            ),
            commit_fsync_duration_max: Duration::from_nanos(
                self.commit_fsync_nanos_max.load(relaxed),
            ),
            queue_depth,
        }
    }
}

/// The histogram bucket a group of `group_len` batches falls in.
fn bucket_index(group_len: usize) -> usize {
    GROUP_LEN_BUCKET_BOUNDS
        .iter()
        .position(|&bound| group_len <= bound)
        .unwrap_or(GROUP_LEN_BUCKET_BOUNDS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(bucket_index(1), 0);
        assert_eq!(bucket_index(2), 1);
        assert_eq!(bucket_index(3), 2);
        assert_eq!(bucket_index(256), 8);
        assert_eq!(bucket_index(257), 9);
    }

    #[test]
    fn record_accumulates() {
        let counters = Counters::default();
        counters.record(&GroupOutcome {
            group_len: 3,
            committed: 2,
            fenced: 1,
            failed: 0,
            commit_duration: Some(Duration::from_millis(2)),
            transaction_failed: false,
        });
        counters.record(&GroupOutcome {
            group_len: 1,
            committed: 0,
            fenced: 0,
            failed: 1,
            commit_duration: Some(Duration::from_millis(1)),
            transaction_failed: true,
        });
        let stats = counters.snapshot(4);
        assert_eq!(stats.transactions_total, 1);
        assert_eq!(stats.transactions_failed_total, 1);
        assert_eq!(stats.batches_committed_total, 2);
        assert_eq!(stats.batches_fenced_total, 1);
        assert_eq!(stats.batches_failed_total, 1);
        assert_eq!(stats.group_len_buckets[2], 1);
        assert_eq!(stats.group_len_buckets[0], 1);
        assert_eq!(stats.commit_fsync_duration_last, Duration::from_millis(1));
        assert_eq!(stats.commit_fsync_duration_max, Duration::from_millis(2));
        assert_eq!(stats.queue_depth, 4);
    }
}
