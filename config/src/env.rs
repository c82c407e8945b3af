//! Environment overrides: `TOLLGATE_<SECTION>__<KEY>` sets `<section>.<key>` on top of the
//! file, e.g. `TOLLGATE_STORAGE__GROUP_COMMIT__BATCH_LEN_MAX=100`.
//!
//! A variable's text is read as a TOML value when it is one of the right type (`100`, `true`,
//! `["a:9042"]`), else as a string (`0.0.0.0:9000`), else, for lists, as comma-separated
//! strings (`a:9042,b:9042`). A value that fits none of these is a problem naming the variable.

use std::collections::{BTreeMap, BTreeSet};

/// Every key of the configuration, as a dotted path, but those of [`FILE_ONLY_KEYS`]. Each has
/// the environment variable [`env_var_name`]`(key)`.
pub const KEYS: &[&str] = &[
    "node.id",
    "node.data_dir",
    "node.test_clock_enabled",
    "http.listen",
    "http.body_limit_bytes",
    "http.upload_limit_bytes",
    "http.workers",
    "auth.public_paths",
    "auth.bootstrap_token_sha256",
    "auth.bootstrap_token_id",
    "auth.token_ttl_days_default",
    "auth.jwt.algorithm",
    "auth.jwt.secret_env",
    "auth.jwt.public_key_path",
    "auth.jwt.issuer",
    "auth.jwt.audience",
    "auth.jwt.roles_claim",
    "auth.jwt.subject_claim",
    "auth.jwt.leeway_s",
    "shards.count",
    "catalogue.path",
    "subscribers.bootstrap_path",
    "storage.engine",
    "storage.embedded.path",
    "storage.scylla.nodes",
    "storage.scylla.keyspace",
    "storage.group_commit.batch_len_max",
    "storage.group_commit.flush_interval_ms",
    "actors.mailbox_capacity",
    "actors.idle_timeout_s",
    "actors.arbiters",
    "ledger.dedupe_horizon_days",
    "sessions.reservation_ttl_s",
    "sessions.default_grant_units",
    "sessions.grant_units_max",
    "thresholds.suspend_below",
    "thresholds.resume_at_or_above",
    "metrics.enabled",
    "metrics.path",
    "log.level",
    "log.format",
    "kafka.enabled",
    "kafka.brokers",
    "kafka.topic",
    "kafka.group_id",
    "kafka.batch_len_max",
    "kafka.batch_wait_ms",
    "kafka.mapping_path",
    "kafka.output_enabled",
    "kafka.rated_topic",
    "kafka.suspense_topic",
    "kafka.output_brokers",
    "kafka.output_outbox_len_max",
    "files.enabled",
    "files.dir",
    "files.poll_interval_ms",
    "files.batch_len_max",
    "files.mapping_path",
    "mediation.past_days",
    "mediation.future_hours",
    "mediation.duplicate_key",
    "mediation.mapping_path",
    "jobs.backend",
    "amqp.url",
    "amqp.queue_prefix",
    "amqp.queue_type",
    "amqp.delivery_limit",
    "amqp.reconnect_backoff_ms_min",
    "amqp.reconnect_backoff_ms_max",
    "amqp.retry_ms_max",
    "amqp.connect_timeout_ms",
    "amqp.publish_window_len_max",
    "billing.workers_enabled",
    "billing.prefetch",
    "billing.timezone",
    "billing.series",
    "billing.attempts_max",
    "billing.republish_interval_ms",
    "finance.workers_enabled",
    "finance.prefetch",
    "finance.attempts_max",
    "finance.notifications_adapter",
    "finance.notifications_path",
    "finance.notifications_interval_ms",
    "finance.collection_schedule_enabled",
    "finance.collection_time",
    "finance.republish_interval_ms",
];

/// Keys set in the file only, with no environment variable: lists of tables.
pub const FILE_ONLY_KEYS: &[&str] = &["mediation.filters", "mediation.enrich"];

/// Prefix of every override variable.
pub const ENV_PREFIX: &str = "TOLLGATE_";

/// The variable that overrides `key`: `http.listen` -> `TOLLGATE_HTTP__LISTEN`.
pub fn env_var_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// A snapshot of the `TOLLGATE_*` environment variables. Unlike a lookup function it can list
/// the variables, so one that maps to no key is reported instead of ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVars {
    vars: BTreeMap<String, String>,
    not_unicode: BTreeSet<String>,
}

impl EnvVars {
    /// No variables at all.
    pub fn empty() -> EnvVars {
        EnvVars::default()
    }

    /// The `TOLLGATE_*` variables of this process.
    pub fn from_process() -> EnvVars {
        let mut env = EnvVars::default();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(name.to_string(), value);
                }
                Err(_) => {
                    env.not_unicode.insert(name.to_string());
                }
            }
        }
        env
    }

    /// The value of a variable, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Names of the variables set, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars
            .keys()
            .chain(self.not_unicode.iter())
            .map(String::as_str)
    }

    pub(crate) fn is_not_unicode(&self, name: &str) -> bool {
        self.not_unicode.contains(name)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        EnvVars {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_unicode: BTreeSet::new(),
        }
    }
}

/// Sections, for telling a mistyped override (`TOLLGATE_HTTP_LISTEN`) from an unrelated
/// `TOLLGATE_*` variable (`TOLLGATE_SCYLLA_NODES`, read by the storage contract tests).
/// `TOLLGATE_AMQP_URL`, which points the RabbitMQ tests at a broker, is reported as a near miss
/// of `TOLLGATE_AMQP__URL`: silently connecting a node to the default broker instead would be
/// worse than refusing to start.
const SECTIONS: &[&str] = &[
    "NODE",
    "HTTP",
    "AUTH",
    "SHARDS",
    "CATALOGUE",
    "SUBSCRIBERS",
    "STORAGE",
    "ACTORS",
    "LEDGER",
    "SESSIONS",
    "THRESHOLDS",
    "METRICS",
    "LOG",
    "KAFKA",
    "FILES",
    "MEDIATION",
    "JOBS",
    "AMQP",
    "BILLING",
    "FINANCE",
];

/// For a `TOLLGATE_*` variable that is not a key's override: `Some((key, message))` when it
/// looks meant as one (it has `__`, or starts with a section name), `None` when unrelated.
pub(crate) fn unknown_variable(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if KEYS.iter().any(|k| env_var_name(k) == name) {
        return None;
    }
    let meant = rest.contains("__")
        || SECTIONS
            .iter()
            .any(|s| rest == *s || rest.strip_prefix(s).is_some_and(|r| r.starts_with('_')));
    if !meant {
        return None;
    }
    let key = rest
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".");
    let squash = |s: &str| s.replace('_', "").to_ascii_uppercase();
    let mut message = "no configuration key has this variable".to_string();
    if let Some(k) = KEYS
        .iter()
        .find(|k| squash(&env_var_name(k)) == squash(name))
    {
        message.push_str(&format!(
            "; did you mean {} (double underscore between section and key)?",
            env_var_name(k)
        ));
    } else if let Some(k) = FILE_ONLY_KEYS.iter().find(|k| env_var_name(k) == name) {
        message.push_str(&format!("; {k} is a list of tables, set in the file only"));
    } else if SECTIONS.contains(&rest) {
        message.push_str("; a section cannot be set, only its keys (TOLLGATE_SECTION__KEY)");
    }
    Some((key, message))
}
