//! The file as written: serde structs where every key is optional and unknown keys are refused.
//!
//! These types only say what *shape* a value has; ranges, cross-key rules and defaults are
//! applied by [`NodeConfig::from_raw`](crate::NodeConfig::from_raw), which turns a
//! [`RawConfig`] into a [`NodeConfig`](crate::NodeConfig) or lists every problem.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sections::{
    AmqpQueueKind, DuplicateKey, JobsBackend, JwtAlgorithm, LogFormat, LogLevel,
    NotificationsAdapter,
};

/// The whole file: one optional table per section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[node]`.
    pub node: Option<RawNode>,
    /// `[http]`.
    pub http: Option<RawHttp>,
    /// `[auth]`.
    pub auth: Option<RawAuth>,
    /// `[shards]`.
    pub shards: Option<RawShards>,
    /// `[catalogue]`.
    pub catalogue: Option<RawCatalogue>,
    /// `[subscribers]`.
    pub subscribers: Option<RawSubscribers>,
    /// `[storage]`.
    pub storage: Option<RawStorage>,
    /// `[actors]`.
    pub actors: Option<RawActors>,
    /// `[ledger]`.
    pub ledger: Option<RawLedger>,
    /// `[sessions]`.
    pub sessions: Option<RawSessions>,
    /// `[thresholds]`.
    pub thresholds: Option<RawThresholds>,
    /// `[metrics]`.
    pub metrics: Option<RawMetrics>,
    /// `[log]`.
    pub log: Option<RawLog>,
    /// `[kafka]`.
    pub kafka: Option<RawKafka>,
    /// `[files]`.
    pub files: Option<RawFiles>,
    /// `[mediation]`.
    pub mediation: Option<RawMediation>,
    /// `[jobs]`.
    pub jobs: Option<RawJobs>,
    /// `[amqp]`.
    pub amqp: Option<RawAmqp>,
    /// `[billing]`.
    pub billing: Option<RawBilling>,
    /// `[finance]`.
    pub finance: Option<RawFinance>,
}

/// `[node]`: identity and data directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Node id, unique in the cluster.
    pub id: Option<String>,
    /// Directory for the node's durable state.
    pub data_dir: Option<String>,
    /// The node's clock can be set through `PUT /v1/test/clock` (tests only).
    pub test_clock_enabled: Option<bool>,
}

/// `[http]`: the admin, ingest and session API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Socket address to listen on.
    pub listen: Option<String>,
    /// Largest accepted request body.
    pub body_limit_bytes: Option<u64>,
    /// Largest body accepted by bulk upload routes.
    pub upload_limit_bytes: Option<u64>,
    /// HTTP worker threads (0 = one per core).
    pub workers: Option<u64>,
}

/// `[auth]`: API tokens and JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Paths served without a token.
    pub public_paths: Option<Vec<String>>,
    /// SHA-256 (hex) of the bootstrap token's secret.
    pub bootstrap_token_sha256: Option<String>,
    /// Id of the bootstrap token.
    pub bootstrap_token_id: Option<String>,
    /// Default expiry of tokens created through the API.
    pub token_ttl_days_default: Option<u64>,
    /// `[auth.jwt]`.
    pub jwt: Option<RawJwt>,
}

/// `[auth.jwt]`: bearer JWTs from an identity provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// Signature algorithm.
    pub algorithm: Option<JwtAlgorithm>,
    /// Environment variable holding the HMAC secret.
    pub secret_env: Option<String>,
    /// PEM file of the public key.
    pub public_key_path: Option<String>,
    /// Required `iss` claim.
    pub issuer: Option<String>,
    /// Required `aud` claim.
    pub audience: Option<String>,
    /// Claim holding the roles.
    pub roles_claim: Option<String>,
    /// Claim holding the user name.
    pub subject_claim: Option<String>,
    /// Allowed clock skew.
    pub leeway_s: Option<u64>,
}

/// `[shards]`: virtual shards of the subscriber space.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShards {
    /// Number of virtual shards.
    pub count: Option<u64>,
}

/// `[catalogue]`: what is sold and how it is priced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalogue {
    /// Catalogue TOML file to load at start.
    pub path: Option<String>,
}

/// `[subscribers]`: provisioning at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubscribers {
    /// TOML file of subscribers to provision at start.
    pub bootstrap_path: Option<String>,
}

/// `[storage]`: where balances and the ledger live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Storage engine.
    pub engine: Option<StorageEngineName>,
    /// `[storage.embedded]`.
    pub embedded: Option<RawEmbedded>,
    /// `[storage.scylla]`.
    pub scylla: Option<RawScylla>,
    /// `[storage.group_commit]`.
    pub group_commit: Option<RawGroupCommit>,
}

/// Name of a storage engine, as written in `storage.engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngineName {
    /// The embedded durable store (fjall), for a single node with no services.
    Embedded,
    /// A ScyllaDB cluster.
    Scylla,
}

/// `[storage.embedded]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmbedded {
    /// Database file.
    pub path: Option<String>,
}

/// `[storage.scylla]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScylla {
    /// Contact points, `host:port`.
    pub nodes: Option<Vec<String>>,
    /// Keyspace.
    pub keyspace: Option<String>,
}

/// `[storage.group_commit]`: batching of durable writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroupCommit {
    /// Most writes in one durable batch.
    pub batch_len_max: Option<u64>,
    /// Longest wait for a batch to fill (0 = flush immediately).
    pub flush_interval_ms: Option<u64>,
}

/// `[actors]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActors {
    /// Bounded mailbox size of each actor.
    pub mailbox_capacity: Option<u64>,
    /// Idle time before a subscriber actor is passivated.
    pub idle_timeout_s: Option<u64>,
    /// Actor arbiters (threads; 0 = one per core).
    pub arbiters: Option<u64>,
}

/// `[ledger]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// How long idempotency keys are remembered.
    pub dedupe_horizon_days: Option<u64>,
}

/// `[sessions]`: real-time charging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    /// Lifetime of an unconfirmed reservation.
    pub reservation_ttl_s: Option<u64>,
    /// Units granted when a request does not ask for a number.
    pub default_grant_units: Option<u64>,
    /// Most units granted in one reservation.
    pub grant_units_max: Option<u64>,
}

/// `[thresholds]`: prepaid barring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    /// Suspend when the balance falls below this amount.
    pub suspend_below: Option<Amount>,
    /// Resume when the balance is at or above this amount.
    pub resume_at_or_above: Option<Amount>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Serve Prometheus metrics.
    pub enabled: Option<bool>,
    /// HTTP path of the metrics.
    pub path: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// Most verbose level written.
    pub level: Option<LogLevel>,
    /// Line format.
    pub format: Option<LogFormat>,
}

/// `[kafka]`: the Kafka source of raw CDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Consume raw CDRs from Kafka.
    pub enabled: Option<bool>,
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: Option<String>,
    /// Topic of raw CDRs.
    pub topic: Option<String>,
    /// Consumer group.
    pub group_id: Option<String>,
    /// Most records in one batch.
    pub batch_len_max: Option<u64>,
    /// Longest wait for a batch to fill.
    pub batch_wait_ms: Option<u64>,
    /// CDR field-mapping file of Kafka records (instead of `mediation.mapping_path`).
    pub mapping_path: Option<String>,
    /// Publish rated and suspended records (rated output).
    pub output_enabled: Option<bool>,
    /// Topic of rated records.
    pub rated_topic: Option<String>,
    /// Topic of suspended records.
    pub suspense_topic: Option<String>,
    /// Brokers of the rated output (default: `brokers`).
    pub output_brokers: Option<String>,
    /// Most outbox rows waiting before ingestion is refused (backpressure).
    pub output_outbox_len_max: Option<u64>,
}

/// `[files]`: the file-drop source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFiles {
    /// Read CDR files dropped in `dir`.
    pub enabled: Option<bool>,
    /// The watched directory.
    pub dir: Option<String>,
    /// How often the directory is scanned.
    pub poll_interval_ms: Option<u64>,
    /// Most records in one batch.
    pub batch_len_max: Option<u64>,
    /// CDR field-mapping file of dropped files (instead of `mediation.mapping_path`).
    pub mapping_path: Option<String>,
}

/// `[mediation]`: rules applied to every source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMediation {
    /// Oldest accepted start time, in days before now.
    pub past_days: Option<u64>,
    /// Latest accepted start time, in hours after now.
    pub future_hours: Option<u64>,
    /// What makes two records the same record.
    pub duplicate_key: Option<DuplicateKey>,
    /// CDR field-mapping file of every source.
    pub mapping_path: Option<String>,
    /// `[[mediation.filters]]`.
    pub filters: Option<Vec<RawFilter>>,
    /// `[[mediation.enrich]]`.
    pub enrich: Option<Vec<RawEnrich>>,
}

/// `[[mediation.filters]]`: a record dropped on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// Name of the rule.
    pub name: Option<String>,
    /// Field of the record compared.
    pub field: Option<String>,
    /// Drop records whose field starts with this.
    pub prefix: Option<String>,
    /// Drop records whose field is exactly this.
    pub equals: Option<String>,
    /// Reason code recorded with the dropped record.
    pub reason: Option<String>,
}

/// `[[mediation.enrich]]`: an attribute set on matching records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnrich {
    /// Name of the rule.
    pub name: Option<String>,
    /// Field of the record compared.
    pub field: Option<String>,
    /// Match records whose field starts with this.
    pub prefix: Option<String>,
    /// Match records whose field is exactly this.
    pub equals: Option<String>,
    /// Attribute set on matching records.
    pub attribute: Option<String>,
    /// Value of the attribute.
    pub value: Option<String>,
}

/// `[jobs]`: where bill-cycle, collection and settlement jobs are queued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJobs {
    /// Job queue backend.
    pub backend: Option<JobsBackend>,
}

/// `[amqp]`: the RabbitMQ job queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAmqp {
    /// Broker URL.
    pub url: Option<String>,
    /// Prefix of every queue and exchange name.
    pub queue_prefix: Option<String>,
    /// Quorum or classic queues.
    pub queue_type: Option<AmqpQueueKind>,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: Option<u64>,
    /// First reconnection delay.
    pub reconnect_backoff_ms_min: Option<u64>,
    /// Longest reconnection delay.
    pub reconnect_backoff_ms_max: Option<u64>,
    /// How long broker operations keep retrying.
    pub retry_ms_max: Option<u64>,
    /// Longest wait for one connection attempt.
    pub connect_timeout_ms: Option<u64>,
    /// Most publishes awaiting their confirm at once.
    pub publish_window_len_max: Option<u64>,
}

/// `[billing]`: the bill-cycle workers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBilling {
    /// This node consumes bill-cycle jobs.
    pub workers_enabled: Option<bool>,
    /// Most unacked jobs per worker.
    pub prefetch: Option<u64>,
    /// IANA time zone of billing periods.
    pub timezone: Option<String>,
    /// Value of `{series}` in the invoice number template.
    pub series: Option<String>,
    /// Requeues of a job failing with a storage error before it is dead-lettered.
    pub attempts_max: Option<u64>,
    /// How often unpublished jobs of runs are published again.
    pub republish_interval_ms: Option<u64>,
}

/// `[finance]`: payments and collections (dunning).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFinance {
    /// This node consumes collection jobs.
    pub workers_enabled: Option<bool>,
    /// Most unacked collection jobs per worker.
    pub prefetch: Option<u64>,
    /// Requeues of a collection job failing with a storage error before it is dead-lettered.
    pub attempts_max: Option<u64>,
    /// How customer notifications are delivered.
    pub notifications_adapter: Option<NotificationsAdapter>,
    /// File the `file` adapter appends notifications to.
    pub notifications_path: Option<String>,
    /// How often the notification outbox is delivered.
    pub notifications_interval_ms: Option<u64>,
    /// Start a collection run every day by itself.
    pub collection_schedule_enabled: Option<bool>,
    /// Time of day of the daily collection run, `HH:MM`.
    pub collection_time: Option<String>,
    /// How often unpublished jobs of collection runs are published again.
    pub republish_interval_ms: Option<u64>,
}

/// An exact money amount written as a string (`"12.50"`) or an integer (`12`); floats are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub Decimal);

/// Why a float is not a money amount; shown when someone writes `suspend_below = 0.5`.
pub const FLOAT_AMOUNT_REFUSED: &str = "a float is not a money amount: TOML floats are binary \
     floating point and cannot hold most amounts exactly (0.10 would become \
     0.1000000000000000055511151231257827...); write it as a string, e.g. \"0.10\"";

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal amount as a string (\"12.50\") or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
        // `Decimal::from_str` also takes "1e3" and "_"; money in a config file is plain digits.
        let plain = v.strip_prefix('-').unwrap_or(v);
        let digits = plain.split_once('.').map_or((plain, ""), |(i, f)| (i, f));
        let ok = !digits.0.is_empty()
            && digits.0.bytes().all(|b| b.is_ascii_digit())
            && digits.1.bytes().all(|b| b.is_ascii_digit())
            && (!plain.contains('.') || !digits.1.is_empty());
        match Decimal::from_str(v) {
            Ok(d) if ok => Ok(Amount(d)),
            _ => Err(E::custom(format!(
                "{v:?} is not a decimal amount (write digits with an optional sign and decimal \
                 point, e.g. \"-12.50\")"
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
        Ok(Amount(Decimal::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
        Ok(Amount(Decimal::from(v)))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Amount, E> {
        Err(E::custom(FLOAT_AMOUNT_REFUSED))
    }
}
