//! `RawConfig` -> `NodeConfig`: defaults, ranges and cross-key rules. Pure: no IO, no
//! environment. Every problem is collected as `(key, message)`; the caller attaches origins.
//! When a value is wrong its default stands in, so later checks still run and report.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use rust_decimal::Decimal;

use crate::NodeConfig;
use crate::defaults::{self, limits};
use crate::env::{KEYS, env_var_name, unknown_variable};
use crate::raw::*;
use crate::sections::*;

mod finance;
mod jobs;

/// A problem found by validation.
pub(crate) struct Found {
    /// Key path.
    pub(crate) key: String,
    /// What is wrong.
    pub(crate) message: String,
    /// The other keys of a cross-key rule. When one of them was itself wrong, its default
    /// stood in (or it was left out) and this problem is a consequence, not news: the caller
    /// drops it.
    pub(crate) compared_with: Vec<String>,
}

/// Collects problems.
#[derive(Default)]
pub(crate) struct Checker {
    pub(crate) problems: Vec<Found>,
}

impl Checker {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Found {
            key: key.to_string(),
            message: message.into(),
            compared_with: Vec::new(),
        });
    }

    fn cross_problem(&mut self, key: &str, other: &str, message: impl Into<String>) {
        self.cross_problem_any(key, &[other], message);
    }

    fn cross_problem_any(&mut self, key: &str, others: &[&str], message: impl Into<String>) {
        self.problems.push(Found {
            key: key.to_string(),
            message: message.into(),
            compared_with: others.iter().map(|k| k.to_string()).collect(),
        });
    }

    fn int(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> u64 {
        let v = value.unwrap_or(default);
        if range.contains(&v) {
            v
        } else {
            self.problem(
                key,
                format!(
                    "{v} is out of range: must be {} to {}",
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }

    fn threads(&mut self, key: &str, value: Option<u64>) -> ThreadCount {
        let n = self.int(key, value, 0, limits::THREADS);
        match usize::try_from(n).ok().and_then(NonZeroUsize::new) {
            Some(n) => ThreadCount::Fixed(n),
            None => ThreadCount::PerCore,
        }
    }

    fn path(&mut self, key: &str, value: &str) -> PathBuf {
        if !limits::PATH_LEN.contains(&value.len()) {
            self.problem(
                key,
                format!(
                    "a path must be {} to {} bytes long (got {})",
                    limits::PATH_LEN.start(),
                    limits::PATH_LEN.end(),
                    value.len()
                ),
            );
        } else if value.contains('\0') {
            self.problem(key, "a path must not contain a NUL character");
        }
        PathBuf::from(value)
    }

    fn optional_path(&mut self, key: &str, value: Option<&String>) -> Option<PathBuf> {
        value.map(|v| self.path(key, v))
    }
}

/// Validates a raw configuration; `Err` holds every problem.
pub(crate) fn validate(raw: &RawConfig) -> Result<NodeConfig, Vec<Found>> {
    let mut c = Checker::default();
    let config = build(&mut c, raw);
    if c.problems.is_empty() {
        Ok(config)
    } else {
        Err(c.problems)
    }
}

fn build(c: &mut Checker, raw: &RawConfig) -> NodeConfig {
    let node = node(c, raw.node.clone().unwrap_or_default());
    let http = http(c, raw.http.clone().unwrap_or_default());
    let auth = auth(c, raw.auth.clone().unwrap_or_default());
    let shards = raw.shards.clone().unwrap_or_default();
    let count = c.int(
        "shards.count",
        shards.count,
        defaults::SHARDS_COUNT,
        limits::SHARDS_COUNT,
    );
    let catalogue = raw.catalogue.clone().unwrap_or_default();
    let subscribers = raw.subscribers.clone().unwrap_or_default();
    let storage = storage(c, raw.storage.clone().unwrap_or_default(), &node.data_dir);
    let actors = actors(c, raw.actors.clone().unwrap_or_default());
    let ledger = raw.ledger.clone().unwrap_or_default();
    let dedupe_horizon_days = c.int(
        "ledger.dedupe_horizon_days",
        ledger.dedupe_horizon_days,
        defaults::LEDGER_DEDUPE_HORIZON_DAYS,
        limits::LEDGER_DEDUPE_HORIZON_DAYS,
    );
    let sessions = sessions(c, raw.sessions.clone().unwrap_or_default());
    let thresholds = thresholds(c, raw.thresholds.clone().unwrap_or_default());
    let metrics = metrics(c, raw.metrics.clone().unwrap_or_default());
    let log = raw.log.clone().unwrap_or_default();
    let kafka = kafka(c, raw.kafka.clone().unwrap_or_default());
    let files = files(c, raw.files.clone().unwrap_or_default(), &node.data_dir);
    let mediation = mediation(c, raw.mediation.clone().unwrap_or_default());
    let jobs = jobs::jobs(raw.jobs.clone().unwrap_or_default());
    let amqp = jobs::amqp(c, raw.amqp.clone().unwrap_or_default());
    let billing = jobs::billing(c, raw.billing.clone().unwrap_or_default());
    let finance = finance::finance(c, raw.finance.clone().unwrap_or_default());
    if u64::from(mediation.past_days) > dedupe_horizon_days {
        // A record older than the horizon could be charged twice: its id is forgotten.
        c.cross_problem(
            "mediation.past_days",
            "ledger.dedupe_horizon_days",
            format!(
                "{} is above ledger.dedupe_horizon_days ({dedupe_horizon_days}): a record \
                 redelivered after its id was forgotten would be charged again",
                mediation.past_days
            ),
        );
    }
    NodeConfig {
        node,
        http,
        auth,
        shards: ShardsConfig {
            count: u32::try_from(count).unwrap_or(u32::MAX),
        },
        catalogue: CatalogueConfig {
            path: c.optional_path("catalogue.path", catalogue.path.as_ref()),
        },
        subscribers: SubscribersConfig {
            bootstrap_path: c.optional_path(
                "subscribers.bootstrap_path",
                subscribers.bootstrap_path.as_ref(),
            ),
        },
        storage,
        actors,
        ledger: LedgerConfig {
            dedupe_horizon_days: u32::try_from(dedupe_horizon_days).unwrap_or(u32::MAX),
        },
        sessions,
        thresholds,
        metrics,
        log: LogConfig {
            level: log.level.unwrap_or_default(),
            format: log.format.unwrap_or_default(),
        },
        kafka,
        files,
        mediation,
        jobs,
        amqp,
        billing,
        finance,
    }
}

fn node(c: &mut Checker, raw: RawNode) -> NodeSettings {
    let id = raw.id.unwrap_or_else(|| defaults::NODE_ID.to_string());
    if !limits::NODE_ID_LEN.contains(&id.len()) {
        c.problem(
            "node.id",
            format!(
                "must be {} to {} bytes long (got {})",
                limits::NODE_ID_LEN.start(),
                limits::NODE_ID_LEN.end(),
                id.len()
            ),
        );
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        c.problem(
            "node.id",
            format!("{id:?} may only hold letters, digits, '.', '_' and '-'"),
        );
    }
    let data_dir = raw
        .data_dir
        .unwrap_or_else(|| defaults::DATA_DIR.to_string());
    NodeSettings {
        id,
        data_dir: c.path("node.data_dir", &data_dir),
        test_clock_enabled: raw
            .test_clock_enabled
            .unwrap_or(defaults::NODE_TEST_CLOCK_ENABLED),
    }
}

fn http(c: &mut Checker, raw: RawHttp) -> HttpConfig {
    let listen = raw
        .listen
        .unwrap_or_else(|| defaults::HTTP_LISTEN.to_string());
    let listen = match listen.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            c.problem(
                "http.listen",
                format!(
                    "{listen:?} is not a socket address: write IP:PORT, e.g. \"0.0.0.0:8080\" or \
                     \"[::1]:8080\" (host names are not resolved)"
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };
    let body_limit_bytes = c.int(
        "http.body_limit_bytes",
        raw.body_limit_bytes,
        defaults::HTTP_BODY_LIMIT_BYTES,
        limits::HTTP_BODY_LIMIT_BYTES,
    );
    let before = c.problems.len();
    let upload_limit_bytes = c.int(
        "http.upload_limit_bytes",
        raw.upload_limit_bytes,
        defaults::HTTP_UPLOAD_LIMIT_BYTES,
        limits::HTTP_UPLOAD_LIMIT_BYTES,
    );
    // When either value was out of range a default stands in: comparing it says nothing.
    if c.problems.len() == before && upload_limit_bytes < body_limit_bytes {
        let written = if raw.upload_limit_bytes.is_some() {
            ""
        } else {
            " (the default)"
        };
        c.cross_problem(
            "http.upload_limit_bytes",
            "http.body_limit_bytes",
            format!(
                "{upload_limit_bytes}{written} is below http.body_limit_bytes \
                 ({body_limit_bytes}): an upload route must take at least any other body"
            ),
        );
    }
    HttpConfig {
        listen,
        body_limit_bytes: usize::try_from(body_limit_bytes).unwrap_or(usize::MAX),
        upload_limit_bytes: usize::try_from(upload_limit_bytes).unwrap_or(usize::MAX),
        workers: c.threads("http.workers", raw.workers),
    }
}

/// Why `path` is not an HTTP path a route can have, if it is not.
fn http_path_problem(path: &str) -> Option<String> {
    if !limits::HTTP_PATH_LEN.contains(&path.len()) {
        Some(format!(
            "must be {} to {} bytes long",
            limits::HTTP_PATH_LEN.start(),
            limits::HTTP_PATH_LEN.end()
        ))
    } else if !path.starts_with('/') {
        Some("must start with '/'".to_string())
    } else if !path
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
    {
        Some("may only hold visible ASCII characters other than '?' and '#'".to_string())
    } else {
        None
    }
}

fn auth(c: &mut Checker, raw: RawAuth) -> AuthConfig {
    let public_paths = match raw.public_paths {
        Some(paths) => paths,
        None => defaults::AUTH_PUBLIC_PATHS
            .iter()
            .map(|p| p.to_string())
            .collect(),
    };
    if public_paths.len() > *limits::AUTH_PUBLIC_PATHS_LEN.end() {
        c.problem(
            "auth.public_paths",
            format!(
                "at most {} paths (got {})",
                limits::AUTH_PUBLIC_PATHS_LEN.end(),
                public_paths.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for (i, path) in public_paths.iter().enumerate() {
        let key = format!("auth.public_paths[{i}]");
        if let Some(why) = http_path_problem(path) {
            c.problem(&key, format!("{path:?} {why}"));
        } else if !seen.insert(path.as_str()) {
            c.problem(&key, format!("{path:?} is listed twice"));
        }
    }

    let bootstrap_token_sha256 = raw.bootstrap_token_sha256.map(|hex| {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            c.problem(
                "auth.bootstrap_token_sha256",
                format!(
                    "is not a SHA-256 in hex: write 64 hex digits (got {} characters), e.g. the \
                     output of printf %s \"$TOKEN\" | sha256sum",
                    hex.chars().count()
                ),
            );
        }
        hex.to_ascii_lowercase()
    });

    let bootstrap_token_id = raw
        .bootstrap_token_id
        .unwrap_or_else(|| defaults::AUTH_BOOTSTRAP_TOKEN_ID.to_string());
    if !limits::AUTH_TOKEN_ID_LEN.contains(&bootstrap_token_id.len()) {
        c.problem(
            "auth.bootstrap_token_id",
            format!(
                "must be {} to {} bytes long (got {})",
                limits::AUTH_TOKEN_ID_LEN.start(),
                limits::AUTH_TOKEN_ID_LEN.end(),
                bootstrap_token_id.len()
            ),
        );
    } else if !bootstrap_token_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        c.problem(
            "auth.bootstrap_token_id",
            format!("{bootstrap_token_id:?} may only hold letters, digits, '_' and '-'"),
        );
    }

    let token_ttl_days_default = raw.token_ttl_days_default.and_then(|days| {
        let before = c.problems.len();
        let days = c.int(
            "auth.token_ttl_days_default",
            Some(days),
            *limits::AUTH_TOKEN_TTL_DAYS.start(),
            limits::AUTH_TOKEN_TTL_DAYS,
        );
        (c.problems.len() == before).then(|| u32::try_from(days).unwrap_or(u32::MAX))
    });

    AuthConfig {
        public_paths,
        bootstrap_token_sha256,
        bootstrap_token_id,
        token_ttl_days_default,
        jwt: raw.jwt.and_then(|jwt| self::jwt(c, jwt)),
    }
}

/// `[auth.jwt]`; `None` (with a problem) when it has no algorithm.
fn jwt(c: &mut Checker, raw: RawJwt) -> Option<JwtConfig> {
    let secret_env = raw.secret_env.inspect(|name| env_var(c, name));
    let public_key_path = c.optional_path("auth.jwt.public_key_path", raw.public_key_path.as_ref());
    let issuer = raw
        .issuer
        .inspect(|v| claim_text(c, "auth.jwt.issuer", v, limits::JWT_CLAIM_VALUE_LEN));
    let audience = raw
        .audience
        .inspect(|v| claim_text(c, "auth.jwt.audience", v, limits::JWT_CLAIM_VALUE_LEN));
    let roles_claim = raw
        .roles_claim
        .unwrap_or_else(|| defaults::JWT_ROLES_CLAIM.to_string());
    claim_text(
        c,
        "auth.jwt.roles_claim",
        &roles_claim,
        limits::JWT_CLAIM_NAME_LEN,
    );
    let subject_claim = raw
        .subject_claim
        .unwrap_or_else(|| defaults::JWT_SUBJECT_CLAIM.to_string());
    claim_text(
        c,
        "auth.jwt.subject_claim",
        &subject_claim,
        limits::JWT_CLAIM_NAME_LEN,
    );
    let leeway_s = c.int(
        "auth.jwt.leeway_s",
        raw.leeway_s,
        defaults::JWT_LEEWAY_S,
        limits::JWT_LEEWAY_S,
    );
    let Some(algorithm) = raw.algorithm else {
        // A misspelt algorithm was reported already and left out; this follows from it.
        c.cross_problem(
            "auth.jwt.algorithm",
            "auth.jwt.algorithm",
            format!(
                "required in [auth.jwt]: one of {}",
                JwtAlgorithm::ALL.map(JwtAlgorithm::as_str).join(", ")
            ),
        );
        return None;
    };
    if algorithm.is_hmac() {
        if secret_env.is_none() {
            c.problem(
                "auth.jwt.secret_env",
                format!(
                    "required with algorithm {algorithm}: name the environment variable that \
                     holds the HMAC secret"
                ),
            );
        }
        if public_key_path.is_some() {
            c.problem(
                "auth.jwt.public_key_path",
                format!(
                    "not used with algorithm {algorithm}, which takes a shared secret \
                     (auth.jwt.secret_env): remove it"
                ),
            );
        }
    } else {
        if public_key_path.is_none() {
            c.problem(
                "auth.jwt.public_key_path",
                format!("required with algorithm {algorithm}: the PEM file of the public key"),
            );
        }
        if secret_env.is_some() {
            c.problem(
                "auth.jwt.secret_env",
                format!(
                    "not used with algorithm {algorithm}, which takes a public key \
                     (auth.jwt.public_key_path): remove it"
                ),
            );
        }
    }
    Some(JwtConfig {
        algorithm,
        secret_env,
        public_key_path,
        issuer,
        audience,
        roles_claim,
        subject_claim,
        leeway_s,
    })
}

/// Checks the name of an environment variable (`auth.jwt.secret_env`).
fn env_var(c: &mut Checker, name: &str) {
    let key = "auth.jwt.secret_env";
    let portable = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !limits::ENV_VAR_NAME_LEN.contains(&name.len()) || !portable {
        c.problem(
            key,
            format!(
                "{name:?} is not an environment variable name: a letter or '_', then letters, \
                 digits or '_', at most {} in all",
                limits::ENV_VAR_NAME_LEN.end()
            ),
        );
    } else if KEYS.iter().any(|k| env_var_name(k) == name) || unknown_variable(name).is_some() {
        c.problem(
            key,
            format!(
                "{name:?} would be read as a configuration override (TOLLGATE_SECTION__KEY); \
                 choose another name, e.g. TOLLGATE_JWT_SECRET"
            ),
        );
    }
}

/// Checks a short text (a claim name or value, a group id, a filter name...): its length, and
/// no control characters.
fn claim_text(c: &mut Checker, key: &str, value: &str, len: RangeInclusive<usize>) {
    if !len.contains(&value.len()) {
        c.problem(
            key,
            format!(
                "must be {} to {} bytes long (got {})",
                len.start(),
                len.end(),
                value.len()
            ),
        );
    } else if value.chars().any(char::is_control) {
        c.problem(key, format!("{value:?} must not hold control characters"));
    }
}

fn storage(c: &mut Checker, raw: RawStorage, data_dir: &std::path::Path) -> StorageConfig {
    let engine = match raw.engine.unwrap_or(StorageEngineName::Embedded) {
        StorageEngineName::Embedded => {
            let path = match raw.embedded.and_then(|e| e.path) {
                Some(path) => c.path("storage.embedded.path", &path),
                None => data_dir.join(defaults::EMBEDDED_FILE_NAME),
            };
            StorageEngine::Embedded(EmbeddedConfig { path })
        }
        StorageEngineName::Scylla => {
            StorageEngine::Scylla(scylla(c, raw.scylla.unwrap_or_default()))
        }
    };
    let group_commit = raw.group_commit.unwrap_or_default();
    let batch_len_max = c.int(
        "storage.group_commit.batch_len_max",
        group_commit.batch_len_max,
        defaults::GROUP_COMMIT_BATCH_LEN_MAX,
        limits::GROUP_COMMIT_BATCH_LEN_MAX,
    );
    StorageConfig {
        engine,
        group_commit: GroupCommitConfig {
            batch_len_max: usize::try_from(batch_len_max).unwrap_or(usize::MAX),
            flush_interval_ms: c.int(
                "storage.group_commit.flush_interval_ms",
                group_commit.flush_interval_ms,
                defaults::GROUP_COMMIT_FLUSH_INTERVAL_MS,
                limits::GROUP_COMMIT_FLUSH_INTERVAL_MS,
            ),
        },
    }
}

fn scylla(c: &mut Checker, raw: RawScylla) -> ScyllaConfig {
    let written = raw.nodes.unwrap_or_default();
    if written.is_empty() {
        c.problem(
            "storage.scylla.nodes",
            "required when storage.engine = \"scylla\": list at least one \"host:port\"",
        );
    } else if written.len() > *limits::SCYLLA_NODES_LEN.end() {
        c.problem(
            "storage.scylla.nodes",
            format!(
                "at most {} contact points (got {})",
                limits::SCYLLA_NODES_LEN.end(),
                written.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    let mut nodes = Vec::with_capacity(written.len());
    for (i, text) in written.iter().enumerate() {
        let key = format!("storage.scylla.nodes[{i}]");
        match host_port(text) {
            Ok(hp) if !seen.insert(hp.clone()) => {
                c.problem(&key, format!("{text:?} is listed twice"))
            }
            Ok(hp) => nodes.push(hp),
            Err(message) => c.problem(&key, message),
        }
    }
    let keyspace = raw
        .keyspace
        .unwrap_or_else(|| defaults::SCYLLA_KEYSPACE.to_string());
    let identifier = keyspace
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && keyspace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !identifier || !limits::KEYSPACE_LEN.contains(&keyspace.len()) {
        c.problem(
            "storage.scylla.keyspace",
            format!(
                "{keyspace:?} is not a keyspace name: a letter, then letters, digits or '_', at \
                 most {} in all",
                limits::KEYSPACE_LEN.end()
            ),
        );
    }
    ScyllaConfig { nodes, keyspace }
}

/// Parses `host:port` (`[v6]:port` for IPv6).
pub(crate) fn host_port(text: &str) -> Result<HostPort, String> {
    let bad = |why: &str| format!("{text:?} is not host:port ({why})");
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("no port"));
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(bad("the port must be 1 to 65535")),
    };
    let inner = match host.strip_prefix('[') {
        Some(rest) => match rest.strip_suffix(']') {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
            _ => return Err(bad("an IPv6 host is written [address]")),
        },
        None if host.contains(':') => return Err(bad("write an IPv6 host in brackets")),
        None => host,
    };
    if !limits::HOST_LEN.contains(&inner.len()) {
        return Err(bad("the host must be 1 to 253 characters"));
    }
    if !inner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        return Err(bad(
            "the host may only hold letters, digits, '.', '-' and '_'",
        ));
    }
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

fn actors(c: &mut Checker, raw: RawActors) -> ActorsConfig {
    let mailbox_capacity = c.int(
        "actors.mailbox_capacity",
        raw.mailbox_capacity,
        defaults::ACTORS_MAILBOX_CAPACITY,
        limits::ACTORS_MAILBOX_CAPACITY,
    );
    ActorsConfig {
        mailbox_capacity: usize::try_from(mailbox_capacity).unwrap_or(usize::MAX),
        idle_timeout_s: c.int(
            "actors.idle_timeout_s",
            raw.idle_timeout_s,
            defaults::ACTORS_IDLE_TIMEOUT_S,
            limits::ACTORS_IDLE_TIMEOUT_S,
        ),
        arbiters: c.threads("actors.arbiters", raw.arbiters),
    }
}

fn sessions(c: &mut Checker, raw: RawSessions) -> SessionsConfig {
    let reservation_ttl_s = c.int(
        "sessions.reservation_ttl_s",
        raw.reservation_ttl_s,
        defaults::SESSIONS_RESERVATION_TTL_S,
        limits::SESSIONS_RESERVATION_TTL_S,
    );
    let grant_units_max = c.int(
        "sessions.grant_units_max",
        raw.grant_units_max,
        defaults::SESSIONS_GRANT_UNITS_MAX,
        limits::SESSIONS_GRANT_UNITS,
    );
    let default_grant_units = c.int(
        "sessions.default_grant_units",
        raw.default_grant_units,
        defaults::SESSIONS_DEFAULT_GRANT_UNITS,
        limits::SESSIONS_GRANT_UNITS,
    );
    if default_grant_units > grant_units_max {
        c.cross_problem(
            "sessions.default_grant_units",
            "sessions.grant_units_max",
            format!("{default_grant_units} is above sessions.grant_units_max ({grant_units_max})"),
        );
    }
    SessionsConfig {
        reservation_ttl_s,
        default_grant_units,
        grant_units_max,
    }
}

fn amount(c: &mut Checker, key: &str, value: Decimal) -> Decimal {
    if value.abs() > Decimal::from(limits::THRESHOLD_ABS_MAX) {
        c.problem(
            key,
            format!(
                "{value} is out of range: at most {} either way",
                limits::THRESHOLD_ABS_MAX
            ),
        );
    } else if value.scale() > limits::THRESHOLD_SCALE_MAX {
        c.problem(
            key,
            format!(
                "{value} has more than {} decimal places",
                limits::THRESHOLD_SCALE_MAX
            ),
        );
    }
    value
}

fn thresholds(c: &mut Checker, raw: RawThresholds) -> ThresholdsConfig {
    let suspend_below = amount(
        c,
        "thresholds.suspend_below",
        raw.suspend_below.map_or(Decimal::ZERO, |a| a.0),
    );
    let resume_at_or_above = match raw.resume_at_or_above {
        Some(a) => amount(c, "thresholds.resume_at_or_above", a.0),
        None => suspend_below,
    };
    if resume_at_or_above < suspend_below {
        c.cross_problem(
            "thresholds.resume_at_or_above",
            "thresholds.suspend_below",
            format!(
                "{resume_at_or_above} is below thresholds.suspend_below ({suspend_below}): a \
                 resumed subscriber would be suspended again at once"
            ),
        );
    }
    ThresholdsConfig {
        suspend_below,
        resume_at_or_above,
    }
}

fn metrics(c: &mut Checker, raw: RawMetrics) -> MetricsConfig {
    let path = raw
        .path
        .unwrap_or_else(|| defaults::METRICS_PATH.to_string());
    let why = http_path_problem(&path).or_else(|| {
        (path == "/v1" || path.starts_with("/v1/"))
            .then(|| "must not be under /v1/, which belongs to the API".to_string())
    });
    if let Some(why) = why {
        c.problem("metrics.path", format!("{path:?} {why}"));
    }
    MetricsConfig {
        enabled: raw.enabled.unwrap_or(defaults::METRICS_ENABLED),
        path,
    }
}

fn kafka(c: &mut Checker, raw: RawKafka) -> KafkaConfig {
    let brokers = brokers(
        c,
        "kafka.brokers",
        raw.brokers.as_deref().unwrap_or(defaults::KAFKA_BROKERS),
    );
    let topic = raw
        .topic
        .unwrap_or_else(|| defaults::KAFKA_TOPIC.to_string());
    if let Some(why) = topic_problem(&topic) {
        c.problem("kafka.topic", format!("{topic:?} {why}"));
    }
    let output_brokers = raw
        .output_brokers
        .as_deref()
        .map(|b| self::brokers(c, "kafka.output_brokers", b));
    let mut output_topic = |key: &str, value: Option<String>, default: &str| {
        let name = value.unwrap_or_else(|| default.to_string());
        if let Some(why) = topic_problem(&name) {
            c.problem(key, format!("{name:?} {why}"));
        } else if name == topic && output_brokers.as_ref().is_none_or(|b| *b == brokers) {
            // Rated output into the raw topic of the same cluster would be read back as input.
            c.problem(
                key,
                format!("{name:?} is kafka.topic on the same brokers: output would be read back as raw records"),
            );
        }
        name
    };
    let rated_topic = output_topic(
        "kafka.rated_topic",
        raw.rated_topic,
        defaults::KAFKA_RATED_TOPIC,
    );
    let suspense_topic = output_topic(
        "kafka.suspense_topic",
        raw.suspense_topic,
        defaults::KAFKA_SUSPENSE_TOPIC,
    );
    let output_outbox_len_max = c.int(
        "kafka.output_outbox_len_max",
        raw.output_outbox_len_max,
        defaults::KAFKA_OUTPUT_OUTBOX_LEN_MAX,
        limits::KAFKA_OUTPUT_OUTBOX_LEN_MAX,
    );
    let group_id = raw
        .group_id
        .unwrap_or_else(|| defaults::KAFKA_GROUP_ID.to_string());
    claim_text(c, "kafka.group_id", &group_id, limits::KAFKA_GROUP_ID_LEN);
    let batch_len_max = c.int(
        "kafka.batch_len_max",
        raw.batch_len_max,
        defaults::KAFKA_BATCH_LEN_MAX,
        limits::KAFKA_BATCH_LEN_MAX,
    );
    KafkaConfig {
        enabled: raw.enabled.unwrap_or(defaults::KAFKA_ENABLED),
        brokers,
        topic,
        group_id,
        batch_len_max: usize::try_from(batch_len_max).unwrap_or(usize::MAX),
        batch_wait_ms: c.int(
            "kafka.batch_wait_ms",
            raw.batch_wait_ms,
            defaults::KAFKA_BATCH_WAIT_MS,
            limits::KAFKA_BATCH_WAIT_MS,
        ),
        mapping_path: c.optional_path("kafka.mapping_path", raw.mapping_path.as_ref()),
        output_enabled: raw.output_enabled.unwrap_or(defaults::KAFKA_OUTPUT_ENABLED),
        rated_topic,
        suspense_topic,
        output_brokers,
        output_outbox_len_max,
    }
}

/// Checks the broker list at `key` (comma-separated `host:port`) and gives it back without
/// spaces.
fn brokers(c: &mut Checker, key: &str, text: &str) -> String {
    if text.trim().is_empty() {
        c.problem(
            key,
            "required: list at least one \"host:port\", comma-separated, e.g. \
             \"kafka-1:9092,kafka-2:9092\"",
        );
        return String::new();
    }
    let entries: Vec<&str> = text.split(',').map(str::trim).collect();
    if entries.len() > *limits::KAFKA_BROKERS_LEN.end() {
        c.problem(
            key,
            format!(
                "at most {} brokers (got {})",
                limits::KAFKA_BROKERS_LEN.end(),
                entries.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            c.problem(
                key,
                format!(
                    "broker {} of {} is empty (a stray comma?)",
                    i + 1,
                    entries.len()
                ),
            );
            continue;
        }
        match host_port(entry) {
            Ok(hp) if !seen.insert(hp.clone()) => {
                c.problem(key, format!("{entry:?} is listed twice"))
            }
            Ok(_) => {}
            Err(message) => c.problem(key, message),
        }
    }
    entries.join(",")
}

/// Why `topic` is not a name Kafka accepts for a topic, if it is not.
fn topic_problem(topic: &str) -> Option<String> {
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("is not a Kafka topic name: it may only hold letters, digits, '.', '_' and '-'".into())
    } else if !limits::KAFKA_TOPIC_LEN.contains(&topic.len()) {
        Some(format!(
            "is not a Kafka topic name: it must be {} to {} characters long (got {})",
            limits::KAFKA_TOPIC_LEN.start(),
            limits::KAFKA_TOPIC_LEN.end(),
            topic.len()
        ))
    } else if topic == "." || topic == ".." {
        Some("is not a Kafka topic name: \".\" and \"..\" are refused".into())
    } else {
        None
    }
}

fn files(c: &mut Checker, raw: RawFiles, data_dir: &std::path::Path) -> FilesConfig {
    let dir = match raw.dir {
        Some(dir) => c.path("files.dir", &dir),
        None => data_dir.join(defaults::FILES_DIR_NAME),
    };
    let batch_len_max = c.int(
        "files.batch_len_max",
        raw.batch_len_max,
        defaults::FILES_BATCH_LEN_MAX,
        limits::FILES_BATCH_LEN_MAX,
    );
    FilesConfig {
        enabled: raw.enabled.unwrap_or(defaults::FILES_ENABLED),
        dir,
        poll_interval_ms: c.int(
            "files.poll_interval_ms",
            raw.poll_interval_ms,
            defaults::FILES_POLL_INTERVAL_MS,
            limits::FILES_POLL_INTERVAL_MS,
        ),
        batch_len_max: usize::try_from(batch_len_max).unwrap_or(usize::MAX),
        mapping_path: c.optional_path("files.mapping_path", raw.mapping_path.as_ref()),
    }
}

fn mediation(c: &mut Checker, raw: RawMediation) -> MediationConfig {
    let past_days = c.int(
        "mediation.past_days",
        raw.past_days,
        defaults::MEDIATION_PAST_DAYS,
        limits::MEDIATION_PAST_DAYS,
    );
    let future_hours = c.int(
        "mediation.future_hours",
        raw.future_hours,
        defaults::MEDIATION_FUTURE_HOURS,
        limits::MEDIATION_FUTURE_HOURS,
    );
    let mapping_path = c.optional_path("mediation.mapping_path", raw.mapping_path.as_ref());
    let written = raw.filters.unwrap_or_default();
    rule_count(c, &FILTERS, written.len());
    let mut names = HashSet::new();
    let filters = written
        .into_iter()
        .enumerate()
        .map(|(i, f)| filter(c, &format!("{}[{i}]", FILTERS.list), f, &mut names))
        .collect();
    let written = raw.enrich.unwrap_or_default();
    rule_count(c, &ENRICH, written.len());
    let mut names = HashSet::new();
    let enrich = written
        .into_iter()
        .enumerate()
        .map(|(i, e)| enrich_rule(c, &format!("{}[{i}]", ENRICH.list), e, &mut names))
        .collect();
    MediationConfig {
        past_days: u32::try_from(past_days).unwrap_or(u32::MAX),
        future_hours: u32::try_from(future_hours).unwrap_or(u32::MAX),
        mapping_path,
        filters,
        enrich,
        duplicate_key: raw.duplicate_key.unwrap_or_default(),
    }
}

/// A kind of mediation rule (a list of tables of `[mediation]`), as problems name it.
struct RuleKind {
    /// Key path of the list: `mediation.filters`.
    list: &'static str,
    /// One rule: `filter`.
    noun: &'static str,
    /// One rule, with its article: `a filter`.
    a_noun: &'static str,
    /// Several rules: `filters`.
    plural: &'static str,
    /// Most rules in the list.
    len: RangeInclusive<usize>,
    /// Fields a rule can compare.
    fields: &'static [&'static str],
    /// Length of `name`.
    name_len: RangeInclusive<usize>,
    /// Length of `prefix` and `equals`.
    match_len: RangeInclusive<usize>,
}

const FILTERS: RuleKind = RuleKind {
    list: "mediation.filters",
    noun: "filter",
    a_noun: "a filter",
    plural: "filters",
    len: limits::MEDIATION_FILTERS_LEN,
    fields: &FilterRule::FIELDS,
    name_len: limits::FILTER_NAME_LEN,
    match_len: limits::FILTER_VALUE_LEN,
};

const ENRICH: RuleKind = RuleKind {
    list: "mediation.enrich",
    noun: "enrichment rule",
    a_noun: "an enrichment rule",
    plural: "enrichment rules",
    len: limits::MEDIATION_ENRICH_LEN,
    fields: &EnrichRule::FIELDS,
    name_len: limits::ENRICH_NAME_LEN,
    match_len: limits::ENRICH_MATCH_LEN,
};

/// Checks the number of rules of a list.
fn rule_count(c: &mut Checker, kind: &RuleKind, len: usize) {
    if len > *kind.len.end() {
        c.problem(
            kind.list,
            format!("at most {} {} (got {len})", kind.len.end(), kind.plural),
        );
    }
}

/// An absent required key `key` of a rule of `kind`. When it was written but wrong, it was
/// reported and left out already, and this follows from it.
fn required(c: &mut Checker, kind: &RuleKind, key: &str, what: &str) {
    c.cross_problem(key, key, format!("required in [[{}]]: {what}", kind.list));
}

/// The keys every rule has, as written.
struct Match {
    name: Option<String>,
    field: Option<String>,
    prefix: Option<String>,
    equals: Option<String>,
}

/// Checks what every rule of `kind` at `key` has: a unique name, the field compared, and
/// exactly one of prefix and equals. Gives back the name and the field (empty when absent).
/// `names` holds the names of the rules before it.
fn rule_match(
    c: &mut Checker,
    kind: &RuleKind,
    key: &str,
    raw: &Match,
    names: &mut HashSet<String>,
) -> (String, String) {
    let at = |k: &str| format!("{key}.{k}");
    let name = match &raw.name {
        Some(name) => {
            let before = c.problems.len();
            claim_text(c, &at("name"), name, kind.name_len.clone());
            if c.problems.len() == before && !names.insert(name.clone()) {
                c.problem(
                    &at("name"),
                    format!(
                        "{name:?} is the name of an earlier {}: names must be unique",
                        kind.noun
                    ),
                );
            }
            name.clone()
        }
        None => {
            required(
                c,
                kind,
                &at("name"),
                &format!("the rule's name, unique among the {}", kind.plural),
            );
            String::new()
        }
    };
    let fields = kind.fields.join(", ");
    let field = match &raw.field {
        Some(field) => {
            if !kind.fields.contains(&field.as_str()) {
                c.problem(
                    &at("field"),
                    format!(
                        "{field:?} is not a field {} can compare: one of {fields}",
                        kind.a_noun
                    ),
                );
            }
            field.clone()
        }
        None => {
            required(
                c,
                kind,
                &at("field"),
                &format!("the field compared, one of {fields}"),
            );
            String::new()
        }
    };
    for (k, value) in [("prefix", &raw.prefix), ("equals", &raw.equals)] {
        if let Some(value) = value {
            claim_text(c, &at(k), value, kind.match_len.clone());
        }
    }
    match (&raw.prefix, &raw.equals) {
        (Some(_), Some(_)) => c.problem(
            &at("equals"),
            format!(
                "not with prefix: {} matches by exactly one of prefix and equals",
                kind.a_noun
            ),
        ),
        (None, None) => c.cross_problem_any(
            &at("prefix"),
            &[&at("prefix"), &at("equals")],
            format!(
                "required unless equals is set: {} matches by exactly one of prefix (the field \
                 starts with it) and equals (the field is exactly it)",
                kind.a_noun
            ),
        ),
        _ => {}
    }
    (name, field)
}

/// One `[[mediation.filters]]` table, at `key` (`mediation.filters[2]`). `names` holds the
/// names of the filters before it.
fn filter(c: &mut Checker, key: &str, raw: RawFilter, names: &mut HashSet<String>) -> FilterRule {
    let at = |k: &str| format!("{key}.{k}");
    let matching = Match {
        name: raw.name,
        field: raw.field,
        prefix: raw.prefix,
        equals: raw.equals,
    };
    let (name, field) = rule_match(c, &FILTERS, key, &matching, names);
    let reason = match raw.reason {
        Some(reason) => {
            if !limits::FILTER_REASON_LEN.contains(&reason.len()) {
                c.problem(
                    &at("reason"),
                    format!(
                        "must be {} to {} bytes long (got {})",
                        limits::FILTER_REASON_LEN.start(),
                        limits::FILTER_REASON_LEN.end(),
                        reason.len()
                    ),
                );
            } else if !reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'))
            {
                c.problem(
                    &at("reason"),
                    format!(
                        "{reason:?} is not a reason code: it may only hold lower-case letters, \
                         digits, '_' and '.', e.g. \"filter.test_call\""
                    ),
                );
            }
            reason
        }
        None => {
            required(
                c,
                &FILTERS,
                &at("reason"),
                "the reason code recorded with what the rule drops, e.g. \"filter.test_call\"",
            );
            String::new()
        }
    };
    FilterRule {
        name,
        field,
        prefix: matching.prefix,
        equals: matching.equals,
        reason,
    }
}

/// One `[[mediation.enrich]]` table, at `key` (`mediation.enrich[2]`). `names` holds the
/// names of the enrichment rules before it.
fn enrich_rule(
    c: &mut Checker,
    key: &str,
    raw: RawEnrich,
    names: &mut HashSet<String>,
) -> EnrichRule {
    let at = |k: &str| format!("{key}.{k}");
    let matching = Match {
        name: raw.name,
        field: raw.field,
        prefix: raw.prefix,
        equals: raw.equals,
    };
    let (name, field) = rule_match(c, &ENRICH, key, &matching, names);
    let attribute = match raw.attribute {
        Some(attribute) => {
            if !limits::ENRICH_ATTRIBUTE_LEN.contains(&attribute.len()) {
                c.problem(
                    &at("attribute"),
                    format!(
                        "must be {} to {} bytes long (got {})",
                        limits::ENRICH_ATTRIBUTE_LEN.start(),
                        limits::ENRICH_ATTRIBUTE_LEN.end(),
                        attribute.len()
                    ),
                );
            } else if !attribute
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                c.problem(
                    &at("attribute"),
                    format!(
                        "{attribute:?} is not an attribute name: it may only hold lower-case \
                         letters, digits and '_', e.g. \"partner\""
                    ),
                );
            }
            attribute
        }
        None => {
            required(
                c,
                &ENRICH,
                &at("attribute"),
                "the attribute set on matching records, e.g. \"partner\"",
            );
            String::new()
        }
    };
    let value = match raw.value {
        Some(value) => {
            claim_text(c, &at("value"), &value, limits::ENRICH_VALUE_LEN);
            value
        }
        None => {
            required(c, &ENRICH, &at("value"), "the value of the attribute");
            String::new()
        }
    };
    EnrichRule {
        name,
        field,
        prefix: matching.prefix,
        equals: matching.equals,
        attribute,
        value,
    }
}
