//! Suspense: records that could not be rated, kept with their reason code, source, raw bytes
//! and time, until they are recycled (after the catalogue or customer data was fixed) or
//! written off.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// Where a suspended record stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SuspenseState {
    /// Waiting for a fix and a recycle.
    Open,
    /// Recycled: rated (or found a duplicate) at `at`; it is never recycled again.
    Recycled {
        /// When.
        at: Timestamp,
        /// Who asked.
        by: SmolStr,
        /// `rated` or `duplicate`.
        outcome: SmolStr,
    },
}

/// A record that could not be rated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspenseRecord {
    /// Unique and stable for the same input: `<source>/<partition>/<offset>` for partitioned
    /// sources, `<source>/<file>/<line>` for files, `<source>/<request id>/<index>` for HTTP.
    /// Writing the same id again replaces the record (redelivery is idempotent).
    pub id: String,
    /// Source name.
    pub source: SmolStr,
    /// Reason code (`cdr.bad_timestamp`, `rating.unknown_subscriber`, ...).
    pub reason: SmolStr,
    /// Message for a person.
    pub message: String,
    /// The raw bytes as received.
    pub raw: Vec<u8>,
    /// Content type of `raw` (`application/json`, `text/csv; header=...`), to decode it again.
    pub format: SmolStr,
    /// When it was first received.
    pub received_at: Timestamp,
    /// When it was last tried (received or recycled).
    pub last_tried_at: Timestamp,
    /// Attempts so far (1 on arrival).
    pub attempts: u32,
    /// Record id, when it could be read.
    #[serde(default)]
    pub cdr_id: Option<SmolStr>,
    /// Subscriber, when it could be read.
    #[serde(default)]
    pub subscriber: Option<SmolStr>,
    /// State.
    #[serde(flatten)]
    pub state: SuspenseState,
}

/// Which suspended records a query wants. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuspenseFilter {
    /// Exact reason code, or a prefix ending in `.` (`rating.`).
    pub reason: Option<String>,
    /// Exact source.
    pub source: Option<String>,
    /// Received at or after.
    pub from: Option<Timestamp>,
    /// Received before.
    pub to: Option<Timestamp>,
    /// Only open (true) or only recycled (false) records.
    pub open: Option<bool>,
}

impl SuspenseFilter {
    /// Whether `record` passes.
    pub fn matches(&self, record: &SuspenseRecord) -> bool {
        self.reason.as_deref().is_none_or(|r| {
            if r.ends_with('.') {
                record.reason.starts_with(r)
            } else {
                record.reason == r
            }
        }) && self.source.as_deref().is_none_or(|s| record.source == s)
            && self.from.is_none_or(|f| record.received_at >= f)
            && self.to.is_none_or(|t| record.received_at < t)
            && self
                .open
                .is_none_or(|o| matches!(record.state, SuspenseState::Open) == o)
    }
}
