//! Default values and limits of every key, in one place so the code, the example file and
//! `docs/configuration.md` cannot drift apart (tests compare them).

use std::ops::RangeInclusive;

/// `node.id`.
pub const NODE_ID: &str = "node-1";
/// `node.data_dir`.
pub const DATA_DIR: &str = "./tollgate-data";
/// `node.test_clock_enabled`.
pub const NODE_TEST_CLOCK_ENABLED: bool = false;
/// `http.listen`.
pub const HTTP_LISTEN: &str = "127.0.0.1:8080";
/// `http.body_limit_bytes` (16 MiB).
pub const HTTP_BODY_LIMIT_BYTES: u64 = 16 * 1024 * 1024;
/// `http.upload_limit_bytes` (64 MiB).
pub const HTTP_UPLOAD_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// `auth.public_paths`.
pub const AUTH_PUBLIC_PATHS: &[&str] = &["/health", "/ready", "/metrics", "/v1/openapi.json"];
/// `auth.bootstrap_token_id`.
pub const AUTH_BOOTSTRAP_TOKEN_ID: &str = "bootstrap";
/// `auth.jwt.roles_claim`.
pub const JWT_ROLES_CLAIM: &str = "roles";
/// `auth.jwt.subject_claim`.
pub const JWT_SUBJECT_CLAIM: &str = "sub";
/// `auth.jwt.leeway_s`.
pub const JWT_LEEWAY_S: u64 = 30;
/// `shards.count`.
pub const SHARDS_COUNT: u64 = 256;
/// Directory of the embedded store inside `node.data_dir` (`storage.embedded.path`).
pub const EMBEDDED_FILE_NAME: &str = "ledger";
/// `storage.scylla.keyspace`.
pub const SCYLLA_KEYSPACE: &str = "tollgate";
/// `storage.group_commit.batch_len_max`.
pub const GROUP_COMMIT_BATCH_LEN_MAX: u64 = 4096;
/// `storage.group_commit.flush_interval_ms`.
pub const GROUP_COMMIT_FLUSH_INTERVAL_MS: u64 = 0;
/// `actors.mailbox_capacity`.
pub const ACTORS_MAILBOX_CAPACITY: u64 = 1024;
/// `actors.idle_timeout_s`.
pub const ACTORS_IDLE_TIMEOUT_S: u64 = 300;
/// `ledger.dedupe_horizon_days`.
pub const LEDGER_DEDUPE_HORIZON_DAYS: u64 = 90;
/// `sessions.reservation_ttl_s`.
pub const SESSIONS_RESERVATION_TTL_S: u64 = 300;
/// `sessions.default_grant_units`.
pub const SESSIONS_DEFAULT_GRANT_UNITS: u64 = 60;
/// `sessions.grant_units_max`.
pub const SESSIONS_GRANT_UNITS_MAX: u64 = 3600;
/// `metrics.enabled`.
pub const METRICS_ENABLED: bool = true;
/// `metrics.path`.
pub const METRICS_PATH: &str = "/metrics";
/// `kafka.enabled`.
pub const KAFKA_ENABLED: bool = false;
/// `kafka.brokers`.
pub const KAFKA_BROKERS: &str = "127.0.0.1:9092";
/// `kafka.topic`.
pub const KAFKA_TOPIC: &str = "cdr.raw";
/// `kafka.group_id`.
pub const KAFKA_GROUP_ID: &str = "tollgate";
/// `kafka.batch_len_max`: large batches share one account row and one actor message per
/// subscriber among more records (20,000 ran at ~1.4x the rate of 5,000 in the Kafka load test;
/// docs/benchmarks.md); at low rates `batch_wait_ms` sends batches long before they fill.
pub const KAFKA_BATCH_LEN_MAX: u64 = 20_000;
/// `kafka.batch_wait_ms`.
pub const KAFKA_BATCH_WAIT_MS: u64 = 20;
/// `kafka.output_enabled`.
pub const KAFKA_OUTPUT_ENABLED: bool = false;
/// `kafka.rated_topic`.
pub const KAFKA_RATED_TOPIC: &str = "cdr.rated";
/// `kafka.suspense_topic`.
pub const KAFKA_SUSPENSE_TOPIC: &str = "cdr.suspense";
/// `kafka.output_outbox_len_max`.
pub const KAFKA_OUTPUT_OUTBOX_LEN_MAX: u64 = 1_000_000;
/// `files.enabled`.
pub const FILES_ENABLED: bool = false;
/// Name of the drop directory inside `node.data_dir` (`files.dir`).
pub const FILES_DIR_NAME: &str = "drop";
/// `files.poll_interval_ms`.
pub const FILES_POLL_INTERVAL_MS: u64 = 1000;
/// `files.batch_len_max`.
pub const FILES_BATCH_LEN_MAX: u64 = 5000;
/// `mediation.past_days`.
pub const MEDIATION_PAST_DAYS: u64 = 60;
/// `mediation.future_hours`.
pub const MEDIATION_FUTURE_HOURS: u64 = 24;
/// `amqp.url`: a local RabbitMQ with its default user, vhost `/`.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// `amqp.queue_prefix`.
pub const AMQP_QUEUE_PREFIX: &str = "tollgate.jobs";
/// `amqp.delivery_limit`.
pub const AMQP_DELIVERY_LIMIT: u64 = 20;
/// `amqp.reconnect_backoff_ms_min`.
pub const AMQP_RECONNECT_BACKOFF_MS_MIN: u64 = 100;
/// `amqp.reconnect_backoff_ms_max`.
pub const AMQP_RECONNECT_BACKOFF_MS_MAX: u64 = 5_000;
/// `amqp.retry_ms_max`.
pub const AMQP_RETRY_MS_MAX: u64 = 60_000;
/// `amqp.connect_timeout_ms`.
pub const AMQP_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// `amqp.publish_window_len_max`.
pub const AMQP_PUBLISH_WINDOW_LEN_MAX: u64 = 256;
/// `billing.workers_enabled`.
pub const BILLING_WORKERS_ENABLED: bool = true;
/// `billing.prefetch`.
pub const BILLING_PREFETCH: u64 = 8;
/// `billing.timezone`.
pub const BILLING_TIMEZONE: &str = "UTC";
/// `billing.series` (empty: no series code).
pub const BILLING_SERIES: &str = "";
/// `billing.attempts_max`.
pub const BILLING_ATTEMPTS_MAX: u64 = 5;
/// `billing.republish_interval_ms`.
pub const BILLING_REPUBLISH_INTERVAL_MS: u64 = 5_000;
/// `finance.workers_enabled`.
pub const FINANCE_WORKERS_ENABLED: bool = true;
/// `finance.prefetch`.
pub const FINANCE_PREFETCH: u64 = 8;
/// `finance.attempts_max`.
pub const FINANCE_ATTEMPTS_MAX: u64 = 5;
/// File name of the notification file inside `node.data_dir` (`finance.notifications_path`).
pub const FINANCE_NOTIFICATIONS_FILE_NAME: &str = "notifications.jsonl";
/// `finance.notifications_interval_ms`.
pub const FINANCE_NOTIFICATIONS_INTERVAL_MS: u64 = 1_000;
/// `finance.collection_schedule_enabled`.
pub const FINANCE_COLLECTION_SCHEDULE_ENABLED: bool = false;
/// `finance.collection_time` (`HH:MM`, 24-hour, in `billing.timezone`).
pub const FINANCE_COLLECTION_TIME: &str = "06:00";
/// `finance.republish_interval_ms`.
pub const FINANCE_REPUBLISH_INTERVAL_MS: u64 = 5_000;

/// Allowed values of every bounded key. A limit on everything: no key is unbounded.
pub mod limits {
    use super::RangeInclusive;

    /// `node.id` length in bytes.
    pub const NODE_ID_LEN: RangeInclusive<usize> = 1..=64;
    /// Length in bytes of any path (`node.data_dir`, `storage.embedded.path`, ...).
    pub const PATH_LEN: RangeInclusive<usize> = 1..=4096;
    /// `http.body_limit_bytes` (up to 1 GiB).
    pub const HTTP_BODY_LIMIT_BYTES: RangeInclusive<u64> = 1..=1024 * 1024 * 1024;
    /// `http.upload_limit_bytes` (up to 1 GiB; at least `http.body_limit_bytes`).
    pub const HTTP_UPLOAD_LIMIT_BYTES: RangeInclusive<u64> = 1..=1024 * 1024 * 1024;
    /// Number of entries of `auth.public_paths`.
    pub const AUTH_PUBLIC_PATHS_LEN: RangeInclusive<usize> = 0..=64;
    /// Length in bytes of an HTTP path (`auth.public_paths[]`, `metrics.path`).
    pub const HTTP_PATH_LEN: RangeInclusive<usize> = 1..=256;
    /// `auth.bootstrap_token_id` length in bytes.
    pub const AUTH_TOKEN_ID_LEN: RangeInclusive<usize> = 1..=64;
    /// `auth.token_ttl_days_default` (up to ten years).
    pub const AUTH_TOKEN_TTL_DAYS: RangeInclusive<u64> = 1..=3650;
    /// `auth.jwt.secret_env` length in bytes.
    pub const ENV_VAR_NAME_LEN: RangeInclusive<usize> = 1..=256;
    /// Length in bytes of `auth.jwt.issuer` and `auth.jwt.audience`.
    pub const JWT_CLAIM_VALUE_LEN: RangeInclusive<usize> = 1..=1024;
    /// Length in bytes of `auth.jwt.roles_claim` and `auth.jwt.subject_claim`.
    pub const JWT_CLAIM_NAME_LEN: RangeInclusive<usize> = 1..=256;
    /// `auth.jwt.leeway_s` (up to ten minutes).
    pub const JWT_LEEWAY_S: RangeInclusive<u64> = 0..=600;
    /// `http.workers` and `actors.arbiters` (0 = one per core).
    pub const THREADS: RangeInclusive<u64> = 0..=1024;
    /// `shards.count`.
    pub const SHARDS_COUNT: RangeInclusive<u64> = 1..=65536;
    /// Number of entries of `storage.scylla.nodes`.
    pub const SCYLLA_NODES_LEN: RangeInclusive<usize> = 1..=64;
    /// Length of a host name in `storage.scylla.nodes`.
    pub const HOST_LEN: RangeInclusive<usize> = 1..=253;
    /// `storage.scylla.keyspace` length (a CQL identifier).
    pub const KEYSPACE_LEN: RangeInclusive<usize> = 1..=48;
    /// `storage.group_commit.batch_len_max`.
    pub const GROUP_COMMIT_BATCH_LEN_MAX: RangeInclusive<u64> = 1..=65536;
    /// `storage.group_commit.flush_interval_ms` (0 = flush immediately).
    pub const GROUP_COMMIT_FLUSH_INTERVAL_MS: RangeInclusive<u64> = 0..=10_000;
    /// `actors.mailbox_capacity`.
    pub const ACTORS_MAILBOX_CAPACITY: RangeInclusive<u64> = 1..=1_048_576;
    /// `actors.idle_timeout_s` (up to a week).
    pub const ACTORS_IDLE_TIMEOUT_S: RangeInclusive<u64> = 1..=604_800;
    /// `ledger.dedupe_horizon_days` (up to ten years).
    pub const LEDGER_DEDUPE_HORIZON_DAYS: RangeInclusive<u64> = 1..=3650;
    /// `sessions.reservation_ttl_s` (up to a day).
    pub const SESSIONS_RESERVATION_TTL_S: RangeInclusive<u64> = 1..=86_400;
    /// `sessions.grant_units_max`; `sessions.default_grant_units` is 1..=`grant_units_max`.
    pub const SESSIONS_GRANT_UNITS: RangeInclusive<u64> = 1..=1_000_000;
    /// Absolute value of a threshold amount.
    pub const THRESHOLD_ABS_MAX: u64 = 1_000_000_000_000;
    /// Decimal places of a threshold amount.
    pub const THRESHOLD_SCALE_MAX: u32 = 8;
    /// `metrics.path` length in bytes.
    pub const METRICS_PATH_LEN: RangeInclusive<usize> = HTTP_PATH_LEN;
    /// Number of `host:port` entries in `kafka.brokers`.
    pub const KAFKA_BROKERS_LEN: RangeInclusive<usize> = 1..=64;
    /// `kafka.topic` length (Kafka's own limit).
    pub const KAFKA_TOPIC_LEN: RangeInclusive<usize> = 1..=249;
    /// `kafka.group_id` length in bytes.
    pub const KAFKA_GROUP_ID_LEN: RangeInclusive<usize> = 1..=255;
    /// `kafka.batch_len_max`.
    pub const KAFKA_BATCH_LEN_MAX: RangeInclusive<u64> = 1..=100_000;
    /// `kafka.batch_wait_ms` (0 = take what is there).
    pub const KAFKA_BATCH_WAIT_MS: RangeInclusive<u64> = 0..=10_000;
    /// `kafka.output_outbox_len_max`.
    pub const KAFKA_OUTPUT_OUTBOX_LEN_MAX: RangeInclusive<u64> = 1..=100_000_000;
    /// `files.poll_interval_ms` (10 ms to an hour).
    pub const FILES_POLL_INTERVAL_MS: RangeInclusive<u64> = 10..=3_600_000;
    /// `files.batch_len_max`.
    pub const FILES_BATCH_LEN_MAX: RangeInclusive<u64> = 1..=100_000;
    /// `mediation.past_days` (up to ten years).
    pub const MEDIATION_PAST_DAYS: RangeInclusive<u64> = 1..=3650;
    /// `mediation.future_hours` (up to 30 days).
    pub const MEDIATION_FUTURE_HOURS: RangeInclusive<u64> = 0..=720;
    /// Number of `[[mediation.filters]]`.
    pub const MEDIATION_FILTERS_LEN: RangeInclusive<usize> = 0..=256;
    /// `mediation.filters[].name` length in bytes.
    pub const FILTER_NAME_LEN: RangeInclusive<usize> = 1..=64;
    /// `mediation.filters[].prefix` and `mediation.filters[].equals` length in bytes.
    pub const FILTER_VALUE_LEN: RangeInclusive<usize> = 1..=256;
    /// `mediation.filters[].reason` length in bytes.
    pub const FILTER_REASON_LEN: RangeInclusive<usize> = 1..=64;
    /// Number of `[[mediation.enrich]]`.
    pub const MEDIATION_ENRICH_LEN: RangeInclusive<usize> = 0..=256;
    /// `mediation.enrich[].name` length in bytes.
    pub const ENRICH_NAME_LEN: RangeInclusive<usize> = 1..=64;
    /// `mediation.enrich[].prefix` and `mediation.enrich[].equals` length in bytes.
    pub const ENRICH_MATCH_LEN: RangeInclusive<usize> = 1..=256;
    /// `mediation.enrich[].attribute` length (`a-z 0-9 _`).
    pub const ENRICH_ATTRIBUTE_LEN: RangeInclusive<usize> = 1..=64;
    /// `mediation.enrich[].value` length in bytes.
    pub const ENRICH_VALUE_LEN: RangeInclusive<usize> = 1..=256;
    /// `amqp.url` length in bytes.
    pub const AMQP_URL_LEN: RangeInclusive<usize> = 1..=2048;
    /// `amqp.queue_prefix` length: the longest broker name, `{prefix}.settlement.dead`, must
    /// fit an AMQP short string (255 bytes).
    pub const AMQP_QUEUE_PREFIX_LEN: RangeInclusive<usize> = 1..=200;
    /// `amqp.delivery_limit`.
    pub const AMQP_DELIVERY_LIMIT: RangeInclusive<u64> = 1..=1000;
    /// `amqp.reconnect_backoff_ms_min` (up to a minute; at most `reconnect_backoff_ms_max`).
    pub const AMQP_RECONNECT_BACKOFF_MS_MIN: RangeInclusive<u64> = 1..=60_000;
    /// `amqp.reconnect_backoff_ms_max` (up to ten minutes).
    pub const AMQP_RECONNECT_BACKOFF_MS_MAX: RangeInclusive<u64> = 1..=600_000;
    /// `amqp.retry_ms_max` (up to an hour; 0 = no retry).
    pub const AMQP_RETRY_MS_MAX: RangeInclusive<u64> = 0..=3_600_000;
    /// `amqp.connect_timeout_ms` (100 ms to ten minutes).
    pub const AMQP_CONNECT_TIMEOUT_MS: RangeInclusive<u64> = 100..=600_000;
    /// `amqp.publish_window_len_max`.
    pub const AMQP_PUBLISH_WINDOW_LEN_MAX: RangeInclusive<u64> = 1..=65_535;
    /// `billing.prefetch`.
    pub const BILLING_PREFETCH: RangeInclusive<u64> = 1..=1000;
    /// `billing.timezone` length in bytes (the longest IANA name has 32).
    pub const BILLING_TIMEZONE_LEN: RangeInclusive<usize> = 1..=64;
    /// `billing.series` length: what the invoice numbering of the domain accepts
    /// (`domain::billing::numbering::SERIES_LEN_MAX`); 0 = no series code.
    pub const BILLING_SERIES_LEN: RangeInclusive<usize> = 0..=16;
    /// `billing.attempts_max`.
    pub const BILLING_ATTEMPTS_MAX: RangeInclusive<u64> = 1..=100;
    /// `billing.republish_interval_ms` (100 ms to an hour).
    pub const BILLING_REPUBLISH_INTERVAL_MS: RangeInclusive<u64> = 100..=3_600_000;
    /// `finance.prefetch`.
    pub const FINANCE_PREFETCH: RangeInclusive<u64> = 1..=1000;
    /// `finance.attempts_max`.
    pub const FINANCE_ATTEMPTS_MAX: RangeInclusive<u64> = 1..=100;
    /// `finance.notifications_interval_ms` (100 ms to an hour).
    pub const FINANCE_NOTIFICATIONS_INTERVAL_MS: RangeInclusive<u64> = 100..=3_600_000;
    /// `finance.republish_interval_ms` (100 ms to an hour).
    pub const FINANCE_REPUBLISH_INTERVAL_MS: RangeInclusive<u64> = 100..=3_600_000;
}
