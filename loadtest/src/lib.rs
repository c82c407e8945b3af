//! Load generator for Tollgate.
//!
//! Job: drive real-time sessions (open loop, at a fixed rate) and CDR batches (closed loop, as
//! fast as the node acknowledges them) against a running node over its HTTP API, measure the
//! disk's fsync floor, and report throughput and latency percentiles (hdrhistogram) as text and
//! JSON.
//!
//! Invariants of the tool itself:
//! - It only ever talks to `127.0.0.1` ([`client::Target`] refuses anything else).
//! - Everything is bounded: duration, rate, concurrency, batch length and request count have
//!   limits in [`limits`].
//! - Session latency is measured from the *intended* start of each request on a fixed schedule
//!   ([`schedule::Schedule`]), so a slow node cannot hide its stalls by slowing the generator
//!   down (coordinated omission).
//! - Blocking IO on a pool of worker threads (`ureq`), no async runtime.

pub mod cdrs;
pub mod client;
pub mod error;
pub mod fsync;
pub mod generate;
pub mod kafka;
pub mod machine;
pub mod prepare;
pub mod report;
pub mod schedule;
pub mod sessions;
pub mod subscribers;

pub use error::LoadError;

/// Limits on every knob, with units in the names.
pub mod limits {
    /// Longest run of `sessions` or `cdrs`.
    pub const DURATION_S_MAX: u64 = 3600;
    /// Highest session rate.
    pub const RATE_PER_S_MAX: u64 = 200_000;
    /// Most requests one `sessions` run may schedule (rate × duration).
    pub const REQUESTS_MAX: u64 = 10_000_000;
    /// Most worker threads.
    pub const CONCURRENCY_MAX: usize = 1024;
    /// Longest CDR batch.
    pub const BATCH_LEN_MAX: usize = 100_000;
    /// Most subscribers of each kind that `prepare` writes.
    pub const SUBSCRIBERS_MAX: u64 = 1_000_000;
    /// Most fsync samples.
    pub const FSYNC_SAMPLES_MAX: usize = 1_000_000;
    /// Time allowed after the schedule ends for late requests to finish, in seconds.
    pub const DRAIN_S: u64 = 10;
    /// Timeout of one HTTP request, in seconds.
    pub const REQUEST_TIMEOUT_S: u64 = 30;
}

/// Runs `work(worker_index)` on `count` scoped threads and collects their results in order.
/// The first error wins; a panicking worker (a bug) is reported as [`LoadError::Worker`].
pub fn run_workers<T, F>(count: usize, work: F) -> Result<Vec<T>, LoadError>
where
    T: Send,
    F: Fn(usize) -> Result<T, LoadError> + Sync,
{
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..count).map(|i| scope.spawn(move || work(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| LoadError::Worker)?)
            .collect()
    })
}
