//! Validated sections of a [`NodeConfig`](crate::NodeConfig). Every value here has passed its
//! checks: ranges hold, addresses parse, cross-key rules are met.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub(crate) mod finance;
pub(crate) mod jobs;

pub use finance::*;
pub use jobs::*;

/// `[node]`: identity and data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    /// Node id, unique in the cluster: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// Directory for the node's durable state (relative paths are taken from the working
    /// directory of the process).
    pub data_dir: PathBuf,
    /// The node's clock can be set through `PUT /v1/test/clock`, for end-to-end tests of
    /// time-driven work (daily collection runs). Never enable it in production.
    pub test_clock_enabled: bool,
}

/// `[http]`: the admin, ingest and session API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Socket address to listen on.
    pub listen: SocketAddr,
    /// Largest accepted request body, 1 byte to 1 GiB.
    pub body_limit_bytes: usize,
    /// Largest body accepted by bulk upload routes (such as the prefix-table CSV upload),
    /// `body_limit_bytes` to 1 GiB.
    pub upload_limit_bytes: usize,
    /// HTTP worker threads.
    pub workers: ThreadCount,
}

/// `[auth]`: who may call the API. Tokens are stored only as SHA-256 hashes, so nothing here is
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Paths served without a token; each starts with `/`, at most 64 of them.
    pub public_paths: Vec<String>,
    /// SHA-256 of the bootstrap token's secret, 64 lower-case hex characters. When set, the
    /// node registers it on start as token `bootstrap_token_id` of user `bootstrap` with the
    /// `admin` role, unless a token with that id exists already.
    pub bootstrap_token_sha256: Option<String>,
    /// Id of the bootstrap token: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub bootstrap_token_id: String,
    /// Expiry of tokens created through the API when the request sets none, 1 to 3650 days
    /// (`None`: such tokens do not expire).
    pub token_ttl_days_default: Option<u32>,
    /// Bearer JWTs, when `[auth.jwt]` is written.
    pub jwt: Option<JwtConfig>,
}

impl AuthConfig {
    /// `token_ttl_days_default` as a duration (days of 86400 s).
    pub fn token_ttl_default(&self) -> Option<Duration> {
        self.token_ttl_days_default
            .map(|days| Duration::from_secs(u64::from(days) * 86_400))
    }
}

/// `[auth.jwt]`: accept bearer JWTs signed by an identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Signature algorithm; tokens signed with another are refused.
    pub algorithm: JwtAlgorithm,
    /// Name of the environment variable holding the HMAC secret: set exactly for `HS*`.
    pub secret_env: Option<String>,
    /// PEM file of the public key: set exactly for `RS*` and `ES*` (checked by the node on
    /// start, not here).
    pub public_key_path: Option<PathBuf>,
    /// Required value of the `iss` claim, if any.
    pub issuer: Option<String>,
    /// Required value of the `aud` claim, if any.
    pub audience: Option<String>,
    /// Claim holding the caller's roles.
    pub roles_claim: String,
    /// Claim holding the caller's user name.
    pub subject_claim: String,
    /// Allowed clock skew for `exp` and `nbf`, 0 to 600 s.
    pub leeway_s: u64,
}

impl JwtConfig {
    /// `leeway_s` as a duration.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.leeway_s)
    }
}

/// JWT signature algorithm, as written in `auth.jwt.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256.
    #[serde(rename = "HS256")]
    Hs256,
    /// HMAC with SHA-384.
    #[serde(rename = "HS384")]
    Hs384,
    /// HMAC with SHA-512.
    #[serde(rename = "HS512")]
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    #[serde(rename = "RS384")]
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    #[serde(rename = "RS512")]
    Rs512,
    /// ECDSA on P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// ECDSA on P-384 with SHA-384.
    #[serde(rename = "ES384")]
    Es384,
}

impl JwtAlgorithm {
    /// Every algorithm, in the order of the documentation.
    pub const ALL: [JwtAlgorithm; 8] = [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::Hs384,
        JwtAlgorithm::Hs512,
        JwtAlgorithm::Rs256,
        JwtAlgorithm::Rs384,
        JwtAlgorithm::Rs512,
        JwtAlgorithm::Es256,
        JwtAlgorithm::Es384,
    ];

    /// The name as written in the file and in a JWT header (`"HS256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Hs384 => "HS384",
            JwtAlgorithm::Hs512 => "HS512",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Rs384 => "RS384",
            JwtAlgorithm::Rs512 => "RS512",
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::Es384 => "ES384",
        }
    }

    /// Whether it is an HMAC algorithm (`HS*`: a shared secret) rather than a public-key one
    /// (`RS*`, `ES*`).
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::Hs256 | JwtAlgorithm::Hs384 | JwtAlgorithm::Hs512
        )
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number of threads: one per core, or a fixed number (written `0` and `n` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadCount {
    /// As many as the machine has cores (written `0`).
    PerCore,
    /// Exactly this many.
    Fixed(NonZeroUsize),
}

impl ThreadCount {
    /// The number of threads to start on this machine (1 if the core count is unknown).
    pub fn resolve(self) -> usize {
        match self {
            ThreadCount::PerCore => std::thread::available_parallelism().map_or(1, usize::from),
            ThreadCount::Fixed(n) => n.get(),
        }
    }

    /// The value as written in the file (`0` = one per core).
    pub fn as_written(self) -> u64 {
        match self {
            ThreadCount::PerCore => 0,
            ThreadCount::Fixed(n) => n.get() as u64,
        }
    }
}

/// `[shards]`: virtual shards of the subscriber space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardsConfig {
    /// Number of virtual shards, 1 to 65536; `shard = stable_hash(subscriber) % count`.
    pub count: u32,
}

/// `[catalogue]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogueConfig {
    /// Catalogue TOML file to load at start, if any.
    pub path: Option<PathBuf>,
}

/// `[subscribers]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribersConfig {
    /// TOML file of subscribers to provision at start, if any.
    pub bootstrap_path: Option<PathBuf>,
}

/// `[storage]`: the engine that holds balances and the ledger, and how writes are batched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The chosen engine with its settings (the other engine's table, if written, is unused).
    pub engine: StorageEngine,
    /// Group commit of durable writes.
    pub group_commit: GroupCommitConfig,
}

/// A storage engine with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageEngine {
    /// The embedded durable store (the default: a single node with no services).
    Embedded(EmbeddedConfig),
    /// A ScyllaDB cluster.
    Scylla(ScyllaConfig),
}

/// `[storage.embedded]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// Database directory (default `<node.data_dir>/ledger`; a redb file of an earlier version
    /// at this path or at `<path>.redb` is migrated into it on start).
    pub path: PathBuf,
}

/// `[storage.scylla]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaConfig {
    /// Contact points: 1 to 64, no duplicates.
    pub nodes: Vec<HostPort>,
    /// Keyspace: a CQL identifier (a letter, then letters, digits, `_`; at most 48).
    pub keyspace: String,
}

/// A `host:port` pair (IPv6 hosts in brackets: `[::1]:9042`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address (brackets kept for IPv6).
    pub host: String,
    /// Port, 1 to 65535.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// `[storage.group_commit]`: many writes, one durable flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Most writes in one durable batch, 1 to 65536.
    pub batch_len_max: usize,
    /// Longest wait for a batch to fill, 0 (flush immediately) to 10000.
    pub flush_interval_ms: u64,
}

impl GroupCommitConfig {
    /// `flush_interval_ms` as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }
}

/// `[actors]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorsConfig {
    /// Bounded mailbox size of each actor, 1 to 1048576.
    pub mailbox_capacity: usize,
    /// Idle time before a subscriber actor is passivated, 1 s to a week.
    pub idle_timeout_s: u64,
    /// Actor arbiters (one thread each).
    pub arbiters: ThreadCount,
}

impl ActorsConfig {
    /// `idle_timeout_s` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_s)
    }
}

/// `[ledger]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// How long idempotency keys (CDR ids, payment ids...) are remembered, 1 to 3650 days.
    pub dedupe_horizon_days: u32,
}

impl LedgerConfig {
    /// `dedupe_horizon_days` as a duration (days of 86400 s).
    pub fn dedupe_horizon(&self) -> Duration {
        Duration::from_secs(u64::from(self.dedupe_horizon_days) * 86_400)
    }
}

/// `[sessions]`: real-time charging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsConfig {
    /// Lifetime of an unconfirmed reservation, 1 s to a day.
    pub reservation_ttl_s: u64,
    /// Units granted when a request does not ask for a number, 1 to `grant_units_max`.
    pub default_grant_units: u64,
    /// Most units granted in one reservation, 1 to 1000000.
    pub grant_units_max: u64,
}

impl SessionsConfig {
    /// `reservation_ttl_s` as a duration.
    pub fn reservation_ttl(&self) -> Duration {
        Duration::from_secs(self.reservation_ttl_s)
    }
}

/// `[thresholds]`: prepaid barring, in the account's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdsConfig {
    /// Suspend a subscriber whose balance falls below this amount.
    pub suspend_below: Decimal,
    /// Resume a suspended subscriber whose balance is at or above this amount
    /// (never below `suspend_below`).
    pub resume_at_or_above: Decimal,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics.
    pub enabled: bool,
    /// HTTP path of the metrics: starts with `/`, not under `/v1/`.
    pub path: String,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Most verbose level written.
    pub level: LogLevel,
    /// Line format.
    pub format: LogFormat,
}

/// Log level, as written in `log.level`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Normal operation (default).
    #[default]
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name as written in the file (`"info"`), also a valid `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Log line format, as written in `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `[kafka]`: the Kafka source of raw CDRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Consume raw CDRs from Kafka.
    pub enabled: bool,
    /// Bootstrap brokers: 1 to 64 comma-separated `host:port` (`[v6]:port` for IPv6), no
    /// duplicates; kept as a comma-separated list without spaces, ready for the client's
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic of raw CDRs: 1 to 249 of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
    pub topic: String,
    /// Consumer group: 1 to 255 bytes, no control characters.
    pub group_id: String,
    /// Most records handed on in one batch, 1 to 100000.
    pub batch_len_max: usize,
    /// Longest wait for a batch to fill, 0 (take what is there) to 10000.
    pub batch_wait_ms: u64,
    /// CDR field-mapping file of this source (the format of `examples/mapping.toml`, see
    /// `docs/cdr-format.md`), if any; it takes the place of [`MediationConfig::mapping_path`]
    /// for Kafka records. Checked by the node on start, not here.
    pub mapping_path: Option<PathBuf>,
    /// Publish every rated record to `rated_topic` and every suspended one to
    /// `suspense_topic`, whatever its source (Kafka, files, HTTP), through the transactional
    /// outbox. Independent of `enabled` (the raw source).
    pub output_enabled: bool,
    /// Topic of rated records (same rules as `topic`).
    pub rated_topic: String,
    /// Topic of suspended records (same rules as `topic`).
    pub suspense_topic: String,
    /// Brokers of the rated output, in the form of `brokers`; `None`: `brokers`.
    pub output_brokers: Option<String>,
    /// Most rows waiting in the outbox before new batches are refused (every source retries
    /// them), 1 to 100000000.
    pub output_outbox_len_max: u64,
}

impl KafkaConfig {
    /// The brokers the rated output goes to.
    pub fn output_brokers(&self) -> &str {
        self.output_brokers.as_deref().unwrap_or(&self.brokers)
    }

    /// `batch_wait_ms` as a duration.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }

    /// The brokers, one `host:port` each (they were checked when the configuration was read).
    pub fn broker_list(&self) -> impl Iterator<Item = &str> {
        self.brokers.split(',').filter(|b| !b.is_empty())
    }
}

/// `[files]`: the file-drop source (a watched directory of CSV / JSON-lines files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesConfig {
    /// Read CDR files dropped in `dir`.
    pub enabled: bool,
    /// The watched directory (default `<node.data_dir>/drop`).
    pub dir: PathBuf,
    /// How often the directory is scanned, 10 ms to an hour.
    pub poll_interval_ms: u64,
    /// Most records handed on in one batch, 1 to 100000.
    pub batch_len_max: usize,
    /// CDR field-mapping file of this source, if any; it takes the place of
    /// [`MediationConfig::mapping_path`] for dropped files. Checked by the node on start, not
    /// here.
    pub mapping_path: Option<PathBuf>,
}

impl FilesConfig {
    /// `poll_interval_ms` as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// `[mediation]`: rules applied to every source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediationConfig {
    /// Records that started longer ago than this land in suspense (`cdr.time_too_old`),
    /// 1 to 3650 days.
    pub past_days: u32,
    /// Records that start later than now + this land in suspense (`cdr.time_in_future`),
    /// 0 to 720 hours.
    pub future_hours: u32,
    /// CDR field-mapping file (the format of `examples/mapping.toml`, see
    /// `docs/cdr-format.md`: field names, time format, number rewrites) of every source: HTTP,
    /// and Kafka and files unless [`KafkaConfig::mapping_path`] / [`FilesConfig::mapping_path`]
    /// is set. `None`: canonical field names, RFC 3339 times, no number rewrites. Checked by
    /// the node on start, not here.
    pub mapping_path: Option<PathBuf>,
    /// Records dropped on purpose, at most 256, names unique.
    pub filters: Vec<FilterRule>,
    /// Attributes set on matching records after decoding, before filters and rating; at most
    /// 256, names unique. Rules apply in order, and the first match per attribute wins.
    pub enrich: Vec<EnrichRule>,
    /// What makes two records the same record.
    pub duplicate_key: DuplicateKey,
}

impl MediationConfig {
    /// `past_days` as a duration (days of 86400 s).
    pub fn past(&self) -> Duration {
        Duration::from_secs(u64::from(self.past_days) * 86_400)
    }

    /// `future_hours` as a duration.
    pub fn future(&self) -> Duration {
        Duration::from_secs(u64::from(self.future_hours) * 3600)
    }
}

/// A record dropped on purpose, counted as `filtered` with its reason (e.g. test calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    /// Name of the rule: 1 to 64 bytes, no control characters, unique among the filters.
    pub name: String,
    /// Field of the record compared: one of [`FilterRule::FIELDS`].
    pub field: String,
    /// Drop records whose field starts with this (exactly one of `prefix` and `equals` is
    /// set; 1 to 256 bytes, no control characters).
    pub prefix: Option<String>,
    /// Drop records whose field is exactly this.
    pub equals: Option<String>,
    /// Reason code recorded with the dropped record: 1 to 64 of `a-z 0-9 _ .`
    /// (e.g. `filter.test_call`).
    pub reason: String,
}

impl FilterRule {
    /// Fields a filter can compare, as written in `field` (`caller` and `callee` as normalised
    /// E.164 digits without `+`).
    pub const FIELDS: [&'static str; 7] = [
        "subscriber",
        "callee",
        "service",
        "direction",
        "id",
        "caller",
        "trunk",
    ];

    /// Whether `value` (the text of the record's `field`) matches the rule.
    pub fn matches(&self, value: &str) -> bool {
        match (&self.prefix, &self.equals) {
            (Some(prefix), _) => value.starts_with(prefix.as_str()),
            (None, Some(equals)) => value == equals,
            (None, None) => false,
        }
    }
}

/// Sets an attribute on matching records before rating (e.g. trunk -> partner), read by
/// catalogue conditions as `cdr.<attribute>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichRule {
    /// Name of the rule: 1 to 64 bytes, no control characters, unique among the enrichment
    /// rules.
    pub name: String,
    /// Field of the record compared: one of [`EnrichRule::FIELDS`].
    pub field: String,
    /// Match records whose field starts with this (exactly one of `prefix` and `equals` is
    /// set; 1 to 256 bytes, no control characters).
    pub prefix: Option<String>,
    /// Match records whose field is exactly this.
    pub equals: Option<String>,
    /// Attribute set on matching records: 1 to 64 of `a-z 0-9 _`.
    pub attribute: String,
    /// Value of the attribute: 1 to 256 bytes, no control characters.
    pub value: String,
}

impl EnrichRule {
    /// Fields an enrichment rule can compare, as written in `field` (`caller` and `callee` as
    /// normalised E.164 digits without `+`).
    pub const FIELDS: [&'static str; 7] = [
        "subscriber",
        "callee",
        "caller",
        "service",
        "direction",
        "id",
        "trunk",
    ];

    /// Whether `value` (the text of the record's `field`) matches the rule.
    pub fn matches(&self, value: &str) -> bool {
        match (&self.prefix, &self.equals) {
            (Some(prefix), _) => value.starts_with(prefix.as_str()),
            (None, Some(equals)) => value == equals,
            (None, None) => false,
        }
    }
}

/// What makes two records the same record (duplicates charge nothing again), as written in
/// `mediation.duplicate_key`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKey {
    /// The record id (per subscriber), the default.
    #[default]
    RecordId,
    /// subscriber + start time + callee + service (for sources whose ids are not stable).
    Content,
}

impl DuplicateKey {
    /// The name as written in the file (`"record_id"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateKey::RecordId => "record_id",
            DuplicateKey::Content => "content",
        }
    }
}
