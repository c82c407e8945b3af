//! Typed configuration of a Tollgate node.
//!
//! Job: read a TOML file into raw serde structs ([`raw::RawConfig`], every key optional,
//! unknown keys refused), apply `TOLLGATE_<SECTION>__<KEY>` environment overrides on top, and
//! validate the result into a [`NodeConfig`] — parse, don't validate: code that holds a
//! `NodeConfig` never re-checks it.
//!
//! Invariants:
//! - Every problem is reported at once, each with its key path and where the value came from
//!   (`file:line:` or `env VARIABLE:`), so `tollgate check-config FILE` lists them all.
//! - [`NodeConfig::default()`] runs a single node on the embedded store with no external
//!   services; it equals the result of an empty file with no overrides.
//! - Every key has a limit (see [`defaults::limits`]) and units last in its name.
//! - Money amounts are exact decimals, written as strings or integers; floats are refused.
//! - Serialising a `NodeConfig` ([`NodeConfig::to_toml_string`]) and parsing it back gives the
//!   same `NodeConfig`.
//!
//! The reference of every key is `docs/configuration.md`; `config/tollgate.example.toml` lists
//! them all with their defaults.

pub mod defaults;
mod env;
mod parse;
mod problems;
pub mod raw;
mod sections;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

pub use env::{ENV_PREFIX, EnvVars, FILE_ONLY_KEYS, KEYS, env_var_name};
pub use problems::{ConfigProblems, Origin, Problem};
pub use sections::*;

use parse::{EnvInput, parse};
use raw::*;

/// A validated node configuration. Build it with [`NodeConfig::load`],
/// [`NodeConfig::from_toml_str`] or [`NodeConfig::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `[node]`.
    pub node: NodeSettings,
    /// `[http]`.
    pub http: HttpConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[shards]`.
    pub shards: ShardsConfig,
    /// `[catalogue]`.
    pub catalogue: CatalogueConfig,
    /// `[subscribers]`.
    pub subscribers: SubscribersConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[actors]`.
    pub actors: ActorsConfig,
    /// `[ledger]`.
    pub ledger: LedgerConfig,
    /// `[sessions]`.
    pub sessions: SessionsConfig,
    /// `[thresholds]`.
    pub thresholds: ThresholdsConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[kafka]`.
    pub kafka: KafkaConfig,
    /// `[files]`.
    pub files: FilesConfig,
    /// `[mediation]`.
    pub mediation: MediationConfig,
    /// `[jobs]`.
    pub jobs: JobsConfig,
    /// `[amqp]`.
    pub amqp: AmqpSettings,
    /// `[billing]`.
    pub billing: BillingConfig,
    /// `[finance]`.
    pub finance: FinanceConfig,
}

impl Default for NodeConfig {
    /// A single node on the embedded store, no external services, API on 127.0.0.1:8080.
    fn default() -> Self {
        let data_dir = PathBuf::from(defaults::DATA_DIR);
        NodeConfig {
            node: NodeSettings {
                id: defaults::NODE_ID.to_string(),
                data_dir: data_dir.clone(),
                test_clock_enabled: defaults::NODE_TEST_CLOCK_ENABLED,
            },
            http: HttpConfig {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
                body_limit_bytes: defaults::HTTP_BODY_LIMIT_BYTES as usize,
                upload_limit_bytes: defaults::HTTP_UPLOAD_LIMIT_BYTES as usize,
                workers: ThreadCount::PerCore,
            },
            auth: AuthConfig {
                public_paths: defaults::AUTH_PUBLIC_PATHS
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
                bootstrap_token_sha256: None,
                bootstrap_token_id: defaults::AUTH_BOOTSTRAP_TOKEN_ID.to_string(),
                token_ttl_days_default: None,
                jwt: None,
            },
            shards: ShardsConfig {
                count: defaults::SHARDS_COUNT as u32,
            },
            catalogue: CatalogueConfig::default(),
            subscribers: SubscribersConfig::default(),
            storage: StorageConfig {
                engine: StorageEngine::Embedded(EmbeddedConfig {
                    path: data_dir.join(defaults::EMBEDDED_FILE_NAME),
                }),
                group_commit: GroupCommitConfig {
                    batch_len_max: defaults::GROUP_COMMIT_BATCH_LEN_MAX as usize,
                    flush_interval_ms: defaults::GROUP_COMMIT_FLUSH_INTERVAL_MS,
                },
            },
            actors: ActorsConfig {
                mailbox_capacity: defaults::ACTORS_MAILBOX_CAPACITY as usize,
                idle_timeout_s: defaults::ACTORS_IDLE_TIMEOUT_S,
                arbiters: ThreadCount::PerCore,
            },
            ledger: LedgerConfig {
                dedupe_horizon_days: defaults::LEDGER_DEDUPE_HORIZON_DAYS as u32,
            },
            sessions: SessionsConfig {
                reservation_ttl_s: defaults::SESSIONS_RESERVATION_TTL_S,
                default_grant_units: defaults::SESSIONS_DEFAULT_GRANT_UNITS,
                grant_units_max: defaults::SESSIONS_GRANT_UNITS_MAX,
            },
            thresholds: ThresholdsConfig {
                suspend_below: Decimal::ZERO,
                resume_at_or_above: Decimal::ZERO,
            },
            metrics: MetricsConfig {
                enabled: defaults::METRICS_ENABLED,
                path: defaults::METRICS_PATH.to_string(),
            },
            log: LogConfig {
                level: LogLevel::Info,
                format: LogFormat::Text,
            },
            kafka: KafkaConfig {
                enabled: defaults::KAFKA_ENABLED,
                brokers: defaults::KAFKA_BROKERS.to_string(),
                topic: defaults::KAFKA_TOPIC.to_string(),
                group_id: defaults::KAFKA_GROUP_ID.to_string(),
                batch_len_max: defaults::KAFKA_BATCH_LEN_MAX as usize,
                batch_wait_ms: defaults::KAFKA_BATCH_WAIT_MS,
                mapping_path: None,
                output_enabled: defaults::KAFKA_OUTPUT_ENABLED,
                rated_topic: defaults::KAFKA_RATED_TOPIC.to_string(),
                suspense_topic: defaults::KAFKA_SUSPENSE_TOPIC.to_string(),
                output_brokers: None,
                output_outbox_len_max: defaults::KAFKA_OUTPUT_OUTBOX_LEN_MAX,
            },
            files: FilesConfig {
                enabled: defaults::FILES_ENABLED,
                dir: data_dir.join(defaults::FILES_DIR_NAME),
                poll_interval_ms: defaults::FILES_POLL_INTERVAL_MS,
                batch_len_max: defaults::FILES_BATCH_LEN_MAX as usize,
                mapping_path: None,
            },
            mediation: MediationConfig {
                past_days: defaults::MEDIATION_PAST_DAYS as u32,
                future_hours: defaults::MEDIATION_FUTURE_HOURS as u32,
                mapping_path: None,
                filters: Vec::new(),
                enrich: Vec::new(),
                duplicate_key: DuplicateKey::RecordId,
            },
            jobs: JobsConfig {
                backend: JobsBackend::Embedded,
            },
            amqp: AmqpSettings {
                url: defaults::AMQP_URL.to_string(),
                queue_prefix: defaults::AMQP_QUEUE_PREFIX.to_string(),
                queue_type: AmqpQueueKind::Quorum,
                delivery_limit: defaults::AMQP_DELIVERY_LIMIT as u32,
                reconnect_backoff_ms_min: defaults::AMQP_RECONNECT_BACKOFF_MS_MIN,
                reconnect_backoff_ms_max: defaults::AMQP_RECONNECT_BACKOFF_MS_MAX,
                retry_ms_max: defaults::AMQP_RETRY_MS_MAX,
                connect_timeout_ms: defaults::AMQP_CONNECT_TIMEOUT_MS,
                publish_window_len_max: defaults::AMQP_PUBLISH_WINDOW_LEN_MAX as usize,
            },
            billing: BillingConfig {
                workers_enabled: defaults::BILLING_WORKERS_ENABLED,
                prefetch: defaults::BILLING_PREFETCH as u16,
                timezone: defaults::BILLING_TIMEZONE.to_string(),
                series: defaults::BILLING_SERIES.to_string(),
                attempts_max: defaults::BILLING_ATTEMPTS_MAX as u32,
                republish_interval_ms: defaults::BILLING_REPUBLISH_INTERVAL_MS,
            },
            finance: FinanceConfig {
                workers_enabled: defaults::FINANCE_WORKERS_ENABLED,
                prefetch: defaults::FINANCE_PREFETCH as u16,
                attempts_max: defaults::FINANCE_ATTEMPTS_MAX as u32,
                notifications_adapter: NotificationsAdapter::File,
                notifications_path: None,
                notifications_interval_ms: defaults::FINANCE_NOTIFICATIONS_INTERVAL_MS,
                collection_schedule_enabled: defaults::FINANCE_COLLECTION_SCHEDULE_ENABLED,
                collection_time: defaults::FINANCE_COLLECTION_TIME.to_string(),
                republish_interval_ms: defaults::FINANCE_REPUBLISH_INTERVAL_MS,
            },
        }
    }
}

impl NodeConfig {
    /// Parses TOML text with overrides looked up through `env` (called with each key's
    /// variable name). A lookup cannot list variables, so a mistyped `TOLLGATE_*` variable is
    /// not reported here; use [`NodeConfig::from_toml_with_env`] for that.
    pub fn from_toml_str(
        text: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<NodeConfig, ConfigProblems> {
        let input = EnvInput {
            lookup: env,
            names: Vec::new(),
            not_unicode: &|_| false,
        };
        parse(text, None, &input)
    }

    /// Parses TOML text with overrides from `env`, reporting any `TOLLGATE_*` variable that
    /// maps to no key. `file` names the text in problems (`file:line: key: message`).
    pub fn from_toml_with_env(
        text: &str,
        file: Option<&str>,
        env: &EnvVars,
    ) -> Result<NodeConfig, ConfigProblems> {
        let input = EnvInput {
            lookup: &|name| env.get(name).map(str::to_string),
            names: env.names().map(str::to_string).collect(),
            not_unicode: &|name| env.is_not_unicode(name),
        };
        parse(text, file, &input)
    }

    /// The defaults with overrides from `env` (a node started without a configuration file).
    pub fn from_env(env: &EnvVars) -> Result<NodeConfig, ConfigProblems> {
        NodeConfig::from_toml_with_env("", None, env)
    }

    /// Reads the file at `path` and applies the overrides of this process's environment.
    pub fn load(path: impl AsRef<Path>) -> Result<NodeConfig, ConfigProblems> {
        NodeConfig::load_with_env(path, &EnvVars::from_process())
    }

    /// Reads the file at `path` and applies the overrides of `env`.
    pub fn load_with_env(
        path: impl AsRef<Path>,
        env: &EnvVars,
    ) -> Result<NodeConfig, ConfigProblems> {
        let path = path.as_ref();
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => NodeConfig::from_toml_with_env(&text, Some(&name), env),
            Err(e) => Err(ConfigProblems(vec![Problem {
                origin: Origin::File {
                    file: Some(name),
                    line: None,
                },
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }])),
        }
    }

    /// Validates a raw configuration built in code (no file, no environment).
    pub fn from_raw(raw: &RawConfig) -> Result<NodeConfig, ConfigProblems> {
        validate::validate(raw).map_err(|problems| {
            ConfigProblems(
                problems
                    .into_iter()
                    .map(|found| Problem {
                        origin: Origin::Unknown,
                        key: found.key,
                        message: found.message,
                    })
                    .collect(),
            )
        })
    }

    /// The raw form with every key written out (optional keys only when set; only the chosen
    /// storage engine's table; `[auth.jwt]` only when JWTs are accepted). Paths that are not UTF-8 are written lossily.
    pub fn to_raw(&self) -> RawConfig {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let (engine, embedded, scylla) = match &self.storage.engine {
            StorageEngine::Embedded(e) => (
                StorageEngineName::Embedded,
                Some(RawEmbedded {
                    path: Some(path(&e.path)),
                }),
                None,
            ),
            StorageEngine::Scylla(s) => (
                StorageEngineName::Scylla,
                None,
                Some(RawScylla {
                    nodes: Some(s.nodes.iter().map(ToString::to_string).collect()),
                    keyspace: Some(s.keyspace.clone()),
                }),
            ),
        };
        RawConfig {
            node: Some(RawNode {
                id: Some(self.node.id.clone()),
                data_dir: Some(path(&self.node.data_dir)),
                test_clock_enabled: Some(self.node.test_clock_enabled),
            }),
            http: Some(RawHttp {
                listen: Some(self.http.listen.to_string()),
                body_limit_bytes: Some(self.http.body_limit_bytes as u64),
                upload_limit_bytes: Some(self.http.upload_limit_bytes as u64),
                workers: Some(self.http.workers.as_written()),
            }),
            auth: Some(RawAuth {
                public_paths: Some(self.auth.public_paths.clone()),
                bootstrap_token_sha256: self.auth.bootstrap_token_sha256.clone(),
                bootstrap_token_id: Some(self.auth.bootstrap_token_id.clone()),
                token_ttl_days_default: self.auth.token_ttl_days_default.map(u64::from),
                jwt: self.auth.jwt.as_ref().map(|jwt| RawJwt {
                    algorithm: Some(jwt.algorithm),
                    secret_env: jwt.secret_env.clone(),
                    public_key_path: jwt.public_key_path.as_deref().map(path),
                    issuer: jwt.issuer.clone(),
                    audience: jwt.audience.clone(),
                    roles_claim: Some(jwt.roles_claim.clone()),
                    subject_claim: Some(jwt.subject_claim.clone()),
                    leeway_s: Some(jwt.leeway_s),
                }),
            }),
            shards: Some(RawShards {
                count: Some(u64::from(self.shards.count)),
            }),
            catalogue: Some(RawCatalogue {
                path: self.catalogue.path.as_deref().map(path),
            }),
            subscribers: Some(RawSubscribers {
                bootstrap_path: self.subscribers.bootstrap_path.as_deref().map(path),
            }),
            storage: Some(RawStorage {
                engine: Some(engine),
                embedded,
                scylla,
                group_commit: Some(RawGroupCommit {
                    batch_len_max: Some(self.storage.group_commit.batch_len_max as u64),
                    flush_interval_ms: Some(self.storage.group_commit.flush_interval_ms),
                }),
            }),
            actors: Some(RawActors {
                mailbox_capacity: Some(self.actors.mailbox_capacity as u64),
                idle_timeout_s: Some(self.actors.idle_timeout_s),
                arbiters: Some(self.actors.arbiters.as_written()),
            }),
            ledger: Some(RawLedger {
                dedupe_horizon_days: Some(u64::from(self.ledger.dedupe_horizon_days)),
            }),
            sessions: Some(RawSessions {
                reservation_ttl_s: Some(self.sessions.reservation_ttl_s),
                default_grant_units: Some(self.sessions.default_grant_units),
                grant_units_max: Some(self.sessions.grant_units_max),
            }),
            thresholds: Some(RawThresholds {
                suspend_below: Some(Amount(self.thresholds.suspend_below)),
                resume_at_or_above: Some(Amount(self.thresholds.resume_at_or_above)),
            }),
            metrics: Some(RawMetrics {
                enabled: Some(self.metrics.enabled),
                path: Some(self.metrics.path.clone()),
            }),
            log: Some(RawLog {
                level: Some(self.log.level),
                format: Some(self.log.format),
            }),
            kafka: Some(RawKafka {
                enabled: Some(self.kafka.enabled),
                brokers: Some(self.kafka.brokers.clone()),
                topic: Some(self.kafka.topic.clone()),
                group_id: Some(self.kafka.group_id.clone()),
                batch_len_max: Some(self.kafka.batch_len_max as u64),
                batch_wait_ms: Some(self.kafka.batch_wait_ms),
                mapping_path: self.kafka.mapping_path.as_deref().map(path),
                output_enabled: Some(self.kafka.output_enabled),
                rated_topic: Some(self.kafka.rated_topic.clone()),
                suspense_topic: Some(self.kafka.suspense_topic.clone()),
                output_brokers: self.kafka.output_brokers.clone(),
                output_outbox_len_max: Some(self.kafka.output_outbox_len_max),
            }),
            files: Some(RawFiles {
                enabled: Some(self.files.enabled),
                dir: Some(path(&self.files.dir)),
                poll_interval_ms: Some(self.files.poll_interval_ms),
                batch_len_max: Some(self.files.batch_len_max as u64),
                mapping_path: self.files.mapping_path.as_deref().map(path),
            }),
            mediation: Some(RawMediation {
                past_days: Some(u64::from(self.mediation.past_days)),
                future_hours: Some(u64::from(self.mediation.future_hours)),
                duplicate_key: Some(self.mediation.duplicate_key),
                mapping_path: self.mediation.mapping_path.as_deref().map(path),
                filters: Some(
                    self.mediation
                        .filters
                        .iter()
                        .map(|f| RawFilter {
                            name: Some(f.name.clone()),
                            field: Some(f.field.clone()),
                            prefix: f.prefix.clone(),
                            equals: f.equals.clone(),
                            reason: Some(f.reason.clone()),
                        })
                        .collect(),
                ),
                enrich: Some(
                    self.mediation
                        .enrich
                        .iter()
                        .map(|e| RawEnrich {
                            name: Some(e.name.clone()),
                            field: Some(e.field.clone()),
                            prefix: e.prefix.clone(),
                            equals: e.equals.clone(),
                            attribute: Some(e.attribute.clone()),
                            value: Some(e.value.clone()),
                        })
                        .collect(),
                ),
            }),
            jobs: Some(RawJobs {
                backend: Some(self.jobs.backend),
            }),
            amqp: Some(RawAmqp {
                url: Some(self.amqp.url.clone()),
                queue_prefix: Some(self.amqp.queue_prefix.clone()),
                queue_type: Some(self.amqp.queue_type),
                delivery_limit: Some(u64::from(self.amqp.delivery_limit)),
                reconnect_backoff_ms_min: Some(self.amqp.reconnect_backoff_ms_min),
                reconnect_backoff_ms_max: Some(self.amqp.reconnect_backoff_ms_max),
                retry_ms_max: Some(self.amqp.retry_ms_max),
                connect_timeout_ms: Some(self.amqp.connect_timeout_ms),
                publish_window_len_max: Some(self.amqp.publish_window_len_max as u64),
            }),
            billing: Some(RawBilling {
                workers_enabled: Some(self.billing.workers_enabled),
                prefetch: Some(u64::from(self.billing.prefetch)),
                timezone: Some(self.billing.timezone.clone()),
                series: Some(self.billing.series.clone()),
                attempts_max: Some(u64::from(self.billing.attempts_max)),
                republish_interval_ms: Some(self.billing.republish_interval_ms),
            }),
            finance: Some(RawFinance {
                workers_enabled: Some(self.finance.workers_enabled),
                prefetch: Some(u64::from(self.finance.prefetch)),
                attempts_max: Some(u64::from(self.finance.attempts_max)),
                notifications_adapter: Some(self.finance.notifications_adapter),
                notifications_path: self.finance.notifications_path.as_deref().map(path),
                notifications_interval_ms: Some(self.finance.notifications_interval_ms),
                collection_schedule_enabled: Some(self.finance.collection_schedule_enabled),
                collection_time: Some(self.finance.collection_time.clone()),
                republish_interval_ms: Some(self.finance.republish_interval_ms),
            }),
        }
    }

    /// The configuration as a TOML file with every key written out (the effective
    /// configuration, e.g. for a startup log or `check-config`). It holds `amqp.url` as
    /// written, password included; `Debug` of [`AmqpSettings`] hides it.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(&self.to_raw())
    }
}
