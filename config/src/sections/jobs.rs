//! `[jobs]`, `[amqp]` and `[billing]`: where bill-cycle, collection and settlement jobs are
//! queued, the RabbitMQ client, and the bill-cycle workers. Plain values: the node turns
//! [`AmqpSettings`] into the adapter's `AmqpConfig` (this crate depends on no other).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[jobs]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// Where jobs are queued.
    pub backend: JobsBackend,
}

/// Job queue backend, as written in `jobs.backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobsBackend {
    /// In-process, durable in the node's store: needs no services (default).
    #[default]
    Embedded,
    /// RabbitMQ, configured by `[amqp]`.
    Amqp,
}

impl JobsBackend {
    /// The name as written in the file (`"embedded"`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobsBackend::Embedded => "embedded",
            JobsBackend::Amqp => "amqp",
        }
    }
}

/// `[amqp]`: the RabbitMQ job queue (read when `jobs.backend = "amqp"`, checked always).
///
/// `Debug` hides the password of `url`; see [`AmqpSettings::url_redacted`].
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpSettings {
    /// Broker URL, `amqp://` or `amqps://`, at most 2048 bytes, no spaces or control characters
    /// (`amqp://user:password@host:port/vhost`; vhost `/` is `%2f`). It may hold a password.
    pub url: String,
    /// Prefix of every queue and exchange name: 1 to 200 of `A-Z a-z 0-9 . _ -`.
    pub queue_prefix: String,
    /// Quorum or classic queues.
    pub queue_type: AmqpQueueKind,
    /// Quorum queues: deliveries of one message before the broker dead-letters it, 1 to 1000.
    pub delivery_limit: u32,
    /// First reconnection delay, doubled on each failure: 1 to 60000, at most
    /// `reconnect_backoff_ms_max`.
    pub reconnect_backoff_ms_min: u64,
    /// Longest reconnection delay, 1 to 600000.
    pub reconnect_backoff_ms_max: u64,
    /// How long publish, depth and dead-letter reads keep retrying before they fail, 0 to
    /// 3600000.
    pub retry_ms_max: u64,
    /// Longest wait for one connection attempt, 100 to 600000.
    pub connect_timeout_ms: u64,
    /// Most publishes awaiting their confirm at once, 1 to 65535.
    pub publish_window_len_max: usize,
}

impl AmqpSettings {
    /// `reconnect_backoff_ms_min` as a duration.
    pub fn reconnect_backoff_min(&self) -> Duration {
        Duration::from_millis(self.reconnect_backoff_ms_min)
    }

    /// `reconnect_backoff_ms_max` as a duration.
    pub fn reconnect_backoff_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_backoff_ms_max)
    }

    /// `retry_ms_max` as a duration.
    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_ms_max)
    }

    /// `connect_timeout_ms` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// `url` with its password replaced by `***`, for logs and messages.
    pub fn url_redacted(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("url", &self.url_redacted())
            .field("queue_prefix", &self.queue_prefix)
            .field("queue_type", &self.queue_type)
            .field("delivery_limit", &self.delivery_limit)
            .field("reconnect_backoff_ms_min", &self.reconnect_backoff_ms_min)
            .field("reconnect_backoff_ms_max", &self.reconnect_backoff_ms_max)
            .field("retry_ms_max", &self.retry_ms_max)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("publish_window_len_max", &self.publish_window_len_max)
            .finish()
    }
}

/// `scheme://user:password@host/...` -> `scheme://user:***@host/...`; anything else unchanged.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_len);
    let Some((user_info, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match user_info.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_string(),
    }
}

/// Queue type of the job queues, as written in `amqp.queue_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmqpQueueKind {
    /// Raft-replicated quorum queues, with a delivery limit (default).
    #[default]
    Quorum,
    /// Classic durable queues, for brokers without quorum queues.
    Classic,
}

impl AmqpQueueKind {
    /// The name as written in the file (`"quorum"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AmqpQueueKind::Quorum => "quorum",
            AmqpQueueKind::Classic => "classic",
        }
    }
}

/// `[billing]`: the bill-cycle workers of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingConfig {
    /// This node consumes bill-cycle jobs.
    pub workers_enabled: bool,
    /// Most unacked jobs per worker, 1 to 1000.
    pub prefetch: u16,
    /// IANA time zone (as written; `jiff::tz::TimeZone::get` accepts it): usage is assigned to
    /// billing periods by its start time in this zone.
    pub timezone: String,
    /// Value of `{series}` in the invoice number template: 0 to 16 of `A-Z a-z 0-9 _ -`
    /// (empty: no series code).
    pub series: String,
    /// A job failing with a storage error is requeued up to this many times, then
    /// dead-lettered: 1 to 100.
    pub attempts_max: u32,
    /// How often runs whose jobs were not all published are published again, 100 to 3600000.
    pub republish_interval_ms: u64,
}

impl BillingConfig {
    /// `republish_interval_ms` as a duration.
    pub fn republish_interval(&self) -> Duration {
        Duration::from_millis(self.republish_interval_ms)
    }
}
