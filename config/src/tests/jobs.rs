//! `[jobs]`, `[amqp]` and `[billing]`: defaults, ranges, env overrides, round trips.

use super::{only_problem, parse, with_env};
use crate::sections::jobs::redact_url;
use crate::*;

fn default_amqp() -> AmqpSettings {
    AmqpSettings {
        url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
        queue_prefix: "tollgate.jobs".to_string(),
        queue_type: AmqpQueueKind::Quorum,
        delivery_limit: 20,
        reconnect_backoff_ms_min: 100,
        reconnect_backoff_ms_max: 5000,
        retry_ms_max: 60_000,
        connect_timeout_ms: 5000,
        publish_window_len_max: 256,
    }
}

fn default_billing() -> BillingConfig {
    BillingConfig {
        workers_enabled: true,
        prefetch: 8,
        timezone: "UTC".to_string(),
        series: String::new(),
        attempts_max: 5,
        republish_interval_ms: 5000,
    }
}

#[test]
fn jobs_amqp_and_billing_defaults() {
    let config = parse("").unwrap();
    assert_eq!(
        config.jobs,
        JobsConfig {
            backend: JobsBackend::Embedded
        }
    );
    assert_eq!(config.amqp, default_amqp());
    assert_eq!(config.billing, default_billing());
    assert_eq!(config.amqp.reconnect_backoff_min().as_millis(), 100);
    assert_eq!(config.amqp.reconnect_backoff_max().as_millis(), 5000);
    assert_eq!(config.amqp.retry_max().as_secs(), 60);
    assert_eq!(config.amqp.connect_timeout().as_millis(), 5000);
    assert_eq!(config.billing.republish_interval().as_millis(), 5000);
    assert_eq!(JobsBackend::default(), JobsBackend::Embedded);
    assert_eq!(AmqpQueueKind::default(), AmqpQueueKind::Quorum);
    // Empty tables are the defaults too: an existing file without them keeps working.
    assert_eq!(
        parse("[jobs]\n[amqp]\n[billing]\n").unwrap(),
        NodeConfig::default()
    );
}

#[test]
fn a_full_jobs_amqp_and_billing_config_round_trips() {
    let text = r#"
        [jobs]
        backend = "amqp"
        [amqp]
        url = "amqps://billing:s3cret@rabbit-1.internal:5671/tollgate"
        queue_prefix = "prod-eu.Jobs_2"
        queue_type = "classic"
        delivery_limit = 1000
        reconnect_backoff_ms_min = 60000
        reconnect_backoff_ms_max = 60000
        retry_ms_max = 0
        connect_timeout_ms = 100
        publish_window_len_max = 65535
        [billing]
        workers_enabled = false
        prefetch = 1000
        timezone = "Europe/Berlin"
        series = "EU-1_b"
        attempts_max = 100
        republish_interval_ms = 3600000
    "#;
    let config = parse(text).unwrap();
    assert_eq!(config.jobs.backend, JobsBackend::Amqp);
    assert_eq!(
        config.amqp,
        AmqpSettings {
            url: "amqps://billing:s3cret@rabbit-1.internal:5671/tollgate".to_string(),
            queue_prefix: "prod-eu.Jobs_2".to_string(),
            queue_type: AmqpQueueKind::Classic,
            delivery_limit: 1000,
            reconnect_backoff_ms_min: 60_000,
            reconnect_backoff_ms_max: 60_000,
            retry_ms_max: 0,
            connect_timeout_ms: 100,
            publish_window_len_max: 65_535,
        }
    );
    assert_eq!(
        config.billing,
        BillingConfig {
            workers_enabled: false,
            prefetch: 1000,
            timezone: "Europe/Berlin".to_string(),
            series: "EU-1_b".to_string(),
            attempts_max: 100,
            republish_interval_ms: 3_600_000,
        }
    );
    assert_eq!(config.jobs.backend.as_str(), "amqp");
    assert_eq!(config.amqp.queue_type.as_str(), "classic");
    let again = parse(&config.to_toml_string().unwrap()).unwrap();
    assert_eq!(again, config);
    assert_eq!(NodeConfig::from_raw(&config.to_raw()).unwrap(), config);
    // The lower ends of the ranges.
    let low = parse(
        "[amqp]\ndelivery_limit = 1\nreconnect_backoff_ms_min = 1\nreconnect_backoff_ms_max = 1\n\
         queue_prefix = \"j\"\n[billing]\nprefetch = 1\nattempts_max = 1\n\
         republish_interval_ms = 100\n",
    )
    .unwrap();
    assert_eq!(low.amqp.delivery_limit, 1);
    assert_eq!(low.amqp.reconnect_backoff_ms_max, 1);
    assert_eq!(low.billing.republish_interval_ms, 100);
    let high =
        parse("[amqp]\nreconnect_backoff_ms_max = 600000\nretry_ms_max = 3600000\nconnect_timeout_ms = 600000\n")
            .unwrap();
    assert_eq!(high.amqp.retry_ms_max, 3_600_000);
}

const BROKEN_JOBS: &str = r#"[jobs]
backend = "kafka"

[amqp]
url = "http://guest:hunter2@rabbit:5672/"
queue_prefix = "tollgate jobs"
queue_type = "stream"
delivery_limit = 0
reconnect_backoff_ms_min = 60001
reconnect_backoff_ms_max = 600001
retry_ms_max = 3600001
connect_timeout_ms = 99
publish_window_len_max = 65536

[billing]
workers_enabled = "yes"
prefetch = 1001
timezone = "Mars/Olympus_Mons"
series = "EU 1"
attempts_max = 101
republish_interval_ms = 99
"#;

#[test]
fn every_jobs_amqp_and_billing_problem_is_listed_with_its_line() {
    let err = parse(BROKEN_JOBS).unwrap_err();
    let rendered = err.to_string();
    let expect: &[(&str, usize, &str)] = &[
        (
            "jobs.backend",
            2,
            "unknown variant `kafka`, expected `embedded` or `amqp`",
        ),
        ("amqp.url", 5, "must start with amqp:// or amqps://"),
        (
            "amqp.queue_prefix",
            6,
            "\"tollgate jobs\" may only hold letters, digits, '.', '_' and '-'",
        ),
        (
            "amqp.queue_type",
            7,
            "unknown variant `stream`, expected `quorum` or `classic`",
        ),
        (
            "amqp.delivery_limit",
            8,
            "0 is out of range: must be 1 to 1000",
        ),
        (
            "amqp.reconnect_backoff_ms_min",
            9,
            "60001 is out of range: must be 1 to 60000",
        ),
        (
            "amqp.reconnect_backoff_ms_max",
            10,
            "600001 is out of range: must be 1 to 600000",
        ),
        (
            "amqp.retry_ms_max",
            11,
            "3600001 is out of range: must be 0 to 3600000",
        ),
        (
            "amqp.connect_timeout_ms",
            12,
            "99 is out of range: must be 100 to 600000",
        ),
        (
            "amqp.publish_window_len_max",
            13,
            "65536 is out of range: must be 1 to 65535",
        ),
        (
            "billing.workers_enabled",
            16,
            "invalid type: string \"yes\", expected a boolean",
        ),
        (
            "billing.prefetch",
            17,
            "1001 is out of range: must be 1 to 1000",
        ),
        (
            "billing.timezone",
            18,
            "\"Mars/Olympus_Mons\" is not a known IANA time zone",
        ),
        (
            "billing.series",
            19,
            "\"EU 1\" may only hold letters, digits, '_' and '-'",
        ),
        (
            "billing.attempts_max",
            20,
            "101 is out of range: must be 1 to 100",
        ),
        (
            "billing.republish_interval_ms",
            21,
            "99 is out of range: must be 100 to 3600000",
        ),
    ];
    for (key, line, message) in expect {
        let problem = err
            .find(key)
            .unwrap_or_else(|| panic!("no problem for {key} in\n{rendered}"));
        assert!(
            problem.message.contains(message),
            "{key}: {problem}\n{rendered}"
        );
        assert_eq!(
            problem.origin,
            Origin::File {
                file: None,
                line: Some(*line)
            },
            "{key}: {problem}"
        );
        assert!(
            rendered.contains(&format!("line {line}: {key}: ")),
            "{key} at line {line} in\n{rendered}"
        );
    }
    // Both backoffs were out of range: their defaults stood in, and are not compared.
    assert_eq!(err.problems().len(), expect.len(), "{rendered}");
    // The URL holds a password, which no problem repeats.
    assert!(!rendered.contains("hunter2"), "{rendered}");
}

#[test]
fn the_first_reconnection_delay_is_at_most_the_longest() {
    let m = only_problem(
        "[amqp]\nreconnect_backoff_ms_min = 2000\nreconnect_backoff_ms_max = 1000\n",
        "amqp.reconnect_backoff_ms_min",
    );
    assert_eq!(
        m,
        "2000 is above amqp.reconnect_backoff_ms_max (1000): the first delay cannot be longer \
         than the longest"
    );
    // Against the default max (5000) too.
    let m = only_problem(
        "[amqp]\nreconnect_backoff_ms_min = 5001\n",
        "amqp.reconnect_backoff_ms_min",
    );
    assert!(
        m.contains("above amqp.reconnect_backoff_ms_max (5000)"),
        "{m}"
    );
    // A max out of range is one problem, not two.
    let m = only_problem(
        "[amqp]\nreconnect_backoff_ms_min = 2000\nreconnect_backoff_ms_max = 0\n",
        "amqp.reconnect_backoff_ms_max",
    );
    assert!(m.contains("0 is out of range: must be 1 to 600000"), "{m}");
    parse("[amqp]\nreconnect_backoff_ms_min = 1000\nreconnect_backoff_ms_max = 1000\n").unwrap();
}

#[test]
fn amqp_url_and_queue_prefix_rules() {
    for (url, says) in [
        ("", "must be 1 to 2048 bytes long (got 0)"),
        (
            "guest:guest@rabbit:5672",
            "must start with amqp:// or amqps://",
        ),
        ("AMQP://rabbit", "must start with amqp:// or amqps://"),
        ("amqp://", "names no broker after the scheme"),
        ("amqps://", "names no broker after the scheme"),
        (
            "amqp://rabbit host:5672",
            "must not hold spaces or control characters",
        ),
        (
            "amqp://rabbit\\t:5672",
            "must not hold spaces or control characters",
        ),
    ] {
        let m = only_problem(&format!("[amqp]\nurl = \"{url}\"\n"), "amqp.url");
        assert!(m.contains(says), "{url:?}: {m}");
    }
    let long = format!("amqp://{}", "h".repeat(2042));
    let m = only_problem(&format!("[amqp]\nurl = \"{long}\"\n"), "amqp.url");
    assert!(m.contains("(got 2049)"), "{m}");
    let config = parse(&format!("[amqp]\nurl = \"{}\"\n", &long[..2048])).unwrap();
    assert_eq!(config.amqp.url.len(), 2048);
    for url in ["amqp://rabbit", "amqps://u:p@[::1]:5671/%2f?heartbeat=10"] {
        let config = parse(&format!("[amqp]\nurl = \"{url}\"\n")).unwrap();
        assert_eq!(config.amqp.url, url);
    }

    let m = only_problem("[amqp]\nqueue_prefix = \"\"\n", "amqp.queue_prefix");
    assert!(
        m.contains("must be 1 to 200 characters long (got 0)"),
        "{m}"
    );
    let m = only_problem(
        &format!("[amqp]\nqueue_prefix = \"{}\"\n", "q".repeat(201)),
        "amqp.queue_prefix",
    );
    assert!(m.contains("(got 201)"), "{m}");
    let m = only_problem("[amqp]\nqueue_prefix = \"jobs/eu\"\n", "amqp.queue_prefix");
    assert!(m.contains("may only hold letters"), "{m}");
    let config = parse(&format!("[amqp]\nqueue_prefix = \"{}\"\n", "q".repeat(200))).unwrap();
    assert_eq!(config.amqp.queue_prefix.len(), 200);
}

#[test]
fn the_amqp_password_is_hidden_from_debug() {
    let config = parse("[amqp]\nurl = \"amqp://billing:s3cret@rabbit:5672/%2f\"\n").unwrap();
    assert_eq!(
        config.amqp.url_redacted(),
        "amqp://billing:***@rabbit:5672/%2f"
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(
        debug.contains("amqp://billing:***@rabbit:5672/%2f"),
        "{debug}"
    );
    assert!(debug.contains("publish_window_len_max: 256"), "{debug}");
    for (url, shown) in [
        ("amqp://rabbit", "amqp://rabbit"),
        ("amqp://user@rabbit/%2f", "amqp://user@rabbit/%2f"),
        ("amqps://u:p:q@h", "amqps://u:***@h"),
        ("amqp://u:p@h/v@x", "amqp://u:***@h/v@x"),
        ("amqp://u:p%40w@h?x=1", "amqp://u:***@h?x=1"),
        ("not a url", "not a url"),
    ] {
        assert_eq!(redact_url(url), shown, "{url}");
    }
}

#[test]
fn billing_timezone_and_series_rules() {
    for zone in [
        "UTC",
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT-3",
    ] {
        let config = parse(&format!("[billing]\ntimezone = \"{zone}\"\n")).unwrap();
        assert_eq!(config.billing.timezone, zone);
    }
    for (zone, says) in [
        ("", "must be 1 to 64 bytes long (got 0)"),
        ("Europe/Atlantis", "is not a known IANA time zone"),
        ("+03:00", "is not a known IANA time zone"),
        ("Europe/Berlin\\n", "must not hold control characters"),
    ] {
        let m = only_problem(
            &format!("[billing]\ntimezone = \"{zone}\"\n"),
            "billing.timezone",
        );
        assert!(m.contains(says), "{zone:?}: {m}");
    }
    let m = only_problem(
        &format!("[billing]\ntimezone = \"{}\"\n", "Z".repeat(65)),
        "billing.timezone",
    );
    assert!(m.contains("(got 65)"), "{m}");

    for series in ["", "A", "eu-1_B", &"s".repeat(16)] {
        let config = parse(&format!("[billing]\nseries = \"{series}\"\n")).unwrap();
        assert_eq!(config.billing.series, series);
    }
    let m = only_problem(
        &format!("[billing]\nseries = \"{}\"\n", "s".repeat(17)),
        "billing.series",
    );
    assert_eq!(m, "must be 0 to 16 characters long (got 17)");
    for series in ["EU/1", "EU.1", "Ä"] {
        let m = only_problem(
            &format!("[billing]\nseries = \"{series}\"\n"),
            "billing.series",
        );
        assert!(
            m.contains("may only hold letters, digits, '_' and '-'"),
            "{m}"
        );
    }
}

#[test]
fn jobs_amqp_and_billing_env_overrides() {
    let config = with_env(
        "[jobs]\nbackend = \"embedded\"\n[billing]\nprefetch = 2\n",
        &[
            ("TOLLGATE_JOBS__BACKEND", "amqp"),
            ("TOLLGATE_AMQP__URL", "amqp://u:p@rabbit-2:5672/%2f"),
            ("TOLLGATE_AMQP__QUEUE_PREFIX", "staging.jobs"),
            ("TOLLGATE_AMQP__QUEUE_TYPE", "classic"),
            ("TOLLGATE_AMQP__DELIVERY_LIMIT", "7"),
            ("TOLLGATE_AMQP__RECONNECT_BACKOFF_MS_MIN", "50"),
            ("TOLLGATE_AMQP__RECONNECT_BACKOFF_MS_MAX", "500"),
            ("TOLLGATE_AMQP__RETRY_MS_MAX", "0"),
            ("TOLLGATE_AMQP__CONNECT_TIMEOUT_MS", "1000"),
            ("TOLLGATE_AMQP__PUBLISH_WINDOW_LEN_MAX", "64"),
            ("TOLLGATE_BILLING__WORKERS_ENABLED", "false"),
            ("TOLLGATE_BILLING__PREFETCH", "32"),
            ("TOLLGATE_BILLING__TIMEZONE", "Europe/Moscow"),
            ("TOLLGATE_BILLING__SERIES", "RU"),
            ("TOLLGATE_BILLING__ATTEMPTS_MAX", "3"),
            ("TOLLGATE_BILLING__REPUBLISH_INTERVAL_MS", "250"),
        ],
    )
    .unwrap();
    assert_eq!(config.jobs.backend, JobsBackend::Amqp);
    assert_eq!(
        config.amqp,
        AmqpSettings {
            url: "amqp://u:p@rabbit-2:5672/%2f".to_string(),
            queue_prefix: "staging.jobs".to_string(),
            queue_type: AmqpQueueKind::Classic,
            delivery_limit: 7,
            reconnect_backoff_ms_min: 50,
            reconnect_backoff_ms_max: 500,
            retry_ms_max: 0,
            connect_timeout_ms: 1000,
            publish_window_len_max: 64,
        }
    );
    assert_eq!(
        config.billing,
        BillingConfig {
            workers_enabled: false,
            prefetch: 32,
            timezone: "Europe/Moscow".to_string(),
            series: "RU".to_string(),
            attempts_max: 3,
            republish_interval_ms: 250,
        }
    );
    // A series of digits only is read as a TOML integer first; the string reading is taken.
    let config = with_env("", &[("TOLLGATE_BILLING__SERIES", "2026")]).unwrap();
    assert_eq!(config.billing.series, "2026");

    let err = with_env(
        "",
        &[
            ("TOLLGATE_JOBS__BACKEND", "rabbitmq"),
            ("TOLLGATE_AMQP__URL", "rabbit:5672"),
            ("TOLLGATE_AMQP__DELIVERY_LIMIT", "1001"),
            ("TOLLGATE_BILLING__PREFETCH", "0"),
            ("TOLLGATE_BILLING__TIMEZONE", "Nowhere/Land"),
            ("TOLLGATE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            ("TOLLGATE_BILLING__PREFETCH_MAX", "1"),
        ],
    )
    .unwrap_err();
    let rendered = err.to_string();
    let expect = [
        "env TOLLGATE_JOBS__BACKEND: jobs.backend: unknown variant `rabbitmq`",
        "env TOLLGATE_AMQP__URL: amqp.url: must start with amqp:// or amqps://",
        "env TOLLGATE_AMQP__DELIVERY_LIMIT: amqp.delivery_limit: 1001 is out of range: must be 1 \
         to 1000",
        "env TOLLGATE_BILLING__PREFETCH: billing.prefetch: 0 is out of range: must be 1 to 1000",
        "env TOLLGATE_BILLING__TIMEZONE: billing.timezone: \"Nowhere/Land\" is not a known IANA \
         time zone",
        "env TOLLGATE_AMQP_URL: amqp_url: no configuration key has this variable; did you mean \
         TOLLGATE_AMQP__URL (double underscore between section and key)?",
        "env TOLLGATE_BILLING__PREFETCH_MAX: billing.prefetch_max: no configuration key has this \
         variable",
    ];
    for line in expect {
        assert!(rendered.contains(line), "missing {line:?} in\n{rendered}");
    }
    assert_eq!(err.problems().len(), expect.len(), "{rendered}");
}

#[test]
fn the_example_file_round_trips_with_the_new_sections() {
    let text = include_str!("../../tollgate.example.toml");
    for section in ["[jobs]", "[amqp]", "[billing]"] {
        assert!(
            text.lines().any(|line| line == section),
            "{section} missing from the example file"
        );
    }
    let config = NodeConfig::from_toml_with_env(text, None, &EnvVars::empty()).unwrap();
    assert_eq!(config.jobs.backend, JobsBackend::Embedded);
    assert_eq!(config.amqp, default_amqp());
    assert_eq!(config.billing, default_billing());
    let written = config.to_toml_string().unwrap();
    assert_eq!(parse(&written).unwrap(), config, "{written}");
    // Switched to RabbitMQ by one variable, as a cluster node would be.
    let config = NodeConfig::from_toml_with_env(
        text,
        None,
        &[("TOLLGATE_JOBS__BACKEND", "amqp")].into_iter().collect(),
    )
    .unwrap();
    assert_eq!(config.jobs.backend, JobsBackend::Amqp);
}
