//! `[finance]`: payments and collections (dunning): the collection workers, the delivery of
//! customer notifications from the outbox, and the daily collection run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::defaults;

/// `[finance]`: the collection workers and customer notifications of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinanceConfig {
    /// This node consumes collection jobs.
    pub workers_enabled: bool,
    /// Most unacked collection jobs per worker, 1 to 1000.
    pub prefetch: u16,
    /// A collection job failing with a storage error is requeued up to this many times, then
    /// dead-lettered: 1 to 100.
    pub attempts_max: u32,
    /// How customer notifications are delivered.
    pub notifications_adapter: NotificationsAdapter,
    /// File the [`NotificationsAdapter::File`] adapter appends notifications to, one JSON
    /// object per line; `None`: `<node.data_dir>/notifications.jsonl` (see
    /// [`FinanceConfig::notifications_path`]). Opened by the node, not checked here.
    pub notifications_path: Option<PathBuf>,
    /// How often the notification outbox is delivered, 100 to 3600000.
    pub notifications_interval_ms: u64,
    /// Start a collection run every day by itself, at `collection_time`.
    pub collection_schedule_enabled: bool,
    /// Time of day the daily collection run starts, `HH:MM` (24-hour, two digits each) in the
    /// billing time zone (`billing.timezone`); see [`FinanceConfig::collection_time_of_day`].
    pub collection_time: String,
    /// How often collection runs whose jobs were not all published are published again, 100 to
    /// 3600000.
    pub republish_interval_ms: u64,
}

impl FinanceConfig {
    /// The file the file adapter appends to: `notifications_path`, else
    /// `<data_dir>/notifications.jsonl` (pass [`NodeSettings::data_dir`](crate::NodeSettings)).
    pub fn notifications_path(&self, data_dir: &Path) -> PathBuf {
        match &self.notifications_path {
            Some(path) => path.clone(),
            None => data_dir.join(defaults::FINANCE_NOTIFICATIONS_FILE_NAME),
        }
    }

    /// `notifications_interval_ms` as a duration.
    pub fn notifications_interval(&self) -> Duration {
        Duration::from_millis(self.notifications_interval_ms)
    }

    /// `republish_interval_ms` as a duration.
    pub fn republish_interval(&self) -> Duration {
        Duration::from_millis(self.republish_interval_ms)
    }

    /// `collection_time` as a time of day (seconds zero). `None` only for a value that did not
    /// pass validation (a `FinanceConfig` built in code).
    pub fn collection_time_of_day(&self) -> Option<jiff::civil::Time> {
        let (hour, minute) = parse_time_of_day(&self.collection_time).ok()?;
        jiff::civil::Time::new(hour, minute, 0, 0).ok()
    }
}

/// How customer notifications are delivered, as written in `finance.notifications_adapter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationsAdapter {
    /// Append one JSON object per line to a file (default).
    #[default]
    File,
    /// Write each notification to the node's log.
    Log,
}

impl NotificationsAdapter {
    /// Every adapter, in the order the documentation lists them.
    pub const ALL: [NotificationsAdapter; 2] =
        [NotificationsAdapter::File, NotificationsAdapter::Log];

    /// The name as written in the file (`"file"`).
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationsAdapter::File => "file",
            NotificationsAdapter::Log => "log",
        }
    }
}

/// `HH:MM` (24-hour, two digits each) -> `(hour, minute)`, or why it is not one.
pub(crate) fn parse_time_of_day(text: &str) -> Result<(i8, i8), String> {
    let format = || format!("{text:?} is not a time of day: write HH:MM, 24-hour, e.g. \"06:00\"");
    let bytes = text.as_bytes();
    let [h1, h2, b':', m1, m2] = bytes else {
        return Err(format());
    };
    if ![h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) {
        return Err(format());
    }
    let digits = |a: u8, b: u8| (a - b'0') * 10 + (b - b'0');
    let (hour, minute) = (digits(*h1, *h2), digits(*m1, *m2));
    if hour > 23 || minute > 59 {
        return Err(format!(
            "{text:?} is not a time of day: hours are 00 to 23 and minutes 00 to 59"
        ));
    }
    // Both are at most 59, so they fit.
    Ok((hour as i8, minute as i8))
}
