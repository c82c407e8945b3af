//! `[finance]` and `node.test_clock_enabled`: defaults, ranges, env overrides, round trips.

use std::path::{Path, PathBuf};

use super::{only_problem, parse, with_env};
use crate::*;

fn default_finance() -> FinanceConfig {
    FinanceConfig {
        workers_enabled: true,
        prefetch: 8,
        attempts_max: 5,
        notifications_adapter: NotificationsAdapter::File,
        notifications_path: None,
        notifications_interval_ms: 1000,
        collection_schedule_enabled: false,
        collection_time: "06:00".to_string(),
        republish_interval_ms: 5000,
    }
}

#[test]
fn finance_and_test_clock_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config.finance, default_finance());
    assert_eq!(NodeConfig::default().finance, default_finance());
    assert!(!config.node.test_clock_enabled);
    assert_eq!(
        config.finance.notifications_path(&config.node.data_dir),
        PathBuf::from("./tollgate-data/notifications.jsonl")
    );
    assert_eq!(config.finance.notifications_interval().as_millis(), 1000);
    assert_eq!(config.finance.republish_interval().as_millis(), 5000);
    assert_eq!(
        config.finance.collection_time_of_day(),
        Some(jiff::civil::time(6, 0, 0, 0))
    );
    assert_eq!(NotificationsAdapter::default(), NotificationsAdapter::File);
    assert_eq!(
        NotificationsAdapter::ALL.map(NotificationsAdapter::as_str),
        ["file", "log"]
    );
    // Empty tables are the defaults too: an existing file without them keeps working.
    assert_eq!(parse("[node]\n[finance]\n").unwrap(), NodeConfig::default());
    // The default notification file follows node.data_dir.
    let config = parse("[node]\ndata_dir = \"/var/lib/tollgate\"\n").unwrap();
    assert_eq!(config.finance.notifications_path, None);
    assert_eq!(
        config.finance.notifications_path(&config.node.data_dir),
        Path::new("/var/lib/tollgate/notifications.jsonl")
    );
}

#[test]
fn a_full_finance_section_parses_and_round_trips() {
    let text = r#"
        [node]
        data_dir = "/var/lib/tollgate"
        test_clock_enabled = true
        [finance]
        workers_enabled = false
        prefetch = 1000
        attempts_max = 100
        notifications_adapter = "log"
        notifications_path = "/var/log/tollgate/notes.jsonl"
        notifications_interval_ms = 3600000
        collection_schedule_enabled = true
        collection_time = "23:59"
        republish_interval_ms = 3600000
    "#;
    let config = parse(text).unwrap();
    assert!(config.node.test_clock_enabled);
    assert_eq!(
        config.finance,
        FinanceConfig {
            workers_enabled: false,
            prefetch: 1000,
            attempts_max: 100,
            notifications_adapter: NotificationsAdapter::Log,
            notifications_path: Some(PathBuf::from("/var/log/tollgate/notes.jsonl")),
            notifications_interval_ms: 3_600_000,
            collection_schedule_enabled: true,
            collection_time: "23:59".to_string(),
            republish_interval_ms: 3_600_000,
        }
    );
    assert_eq!(config.finance.notifications_adapter.as_str(), "log");
    // A path that is set wins over node.data_dir.
    assert_eq!(
        config.finance.notifications_path(&config.node.data_dir),
        Path::new("/var/log/tollgate/notes.jsonl")
    );
    assert_eq!(
        config.finance.collection_time_of_day(),
        Some(jiff::civil::time(23, 59, 0, 0))
    );
    assert_eq!(config.finance.notifications_interval().as_secs(), 3600);
    // Round trips: through TOML text and through the raw form.
    let written = config.to_toml_string().unwrap();
    assert!(written.contains("[finance]"), "{written}");
    assert!(written.contains("test_clock_enabled = true"), "{written}");
    assert_eq!(parse(&written).unwrap(), config, "{written}");
    assert_eq!(NodeConfig::from_raw(&config.to_raw()).unwrap(), config);
    // The default (no notifications_path) round trips without writing one.
    let written = NodeConfig::default().to_toml_string().unwrap();
    assert!(!written.contains("notifications_path"), "{written}");
    assert_eq!(parse(&written).unwrap(), NodeConfig::default());
    // The lower ends of the ranges.
    let low = parse(
        "[finance]\nprefetch = 1\nattempts_max = 1\nnotifications_interval_ms = 100\n\
         republish_interval_ms = 100\ncollection_time = \"00:00\"\n",
    )
    .unwrap();
    assert_eq!(low.finance.prefetch, 1);
    assert_eq!(low.finance.attempts_max, 1);
    assert_eq!(low.finance.notifications_interval_ms, 100);
    assert_eq!(low.finance.republish_interval_ms, 100);
    assert_eq!(
        low.finance.collection_time_of_day(),
        Some(jiff::civil::time(0, 0, 0, 0))
    );
}

const BROKEN_FINANCE: &str = r#"[node]
test_clock_enabled = "yes"

[finance]
workers_enabled = 1
prefetch = 1001
attempts_max = 0
notifications_adapter = "email"
notifications_path = ""
notifications_interval_ms = 99
collection_schedule_enabled = "daily"
collection_time = "24:00"
republish_interval_ms = 3600001
"#;

#[test]
fn every_finance_problem_is_listed_with_its_line() {
    let err = parse(BROKEN_FINANCE).unwrap_err();
    let rendered = err.to_string();
    let expect: &[(&str, usize, &str)] = &[
        (
            "node.test_clock_enabled",
            2,
            "invalid type: string \"yes\", expected a boolean",
        ),
        (
            "finance.workers_enabled",
            5,
            "invalid type: integer `1`, expected a boolean",
        ),
        (
            "finance.prefetch",
            6,
            "1001 is out of range: must be 1 to 1000",
        ),
        (
            "finance.attempts_max",
            7,
            "0 is out of range: must be 1 to 100",
        ),
        (
            "finance.notifications_adapter",
            8,
            "unknown variant `email`, expected `file` or `log`",
        ),
        (
            "finance.notifications_path",
            9,
            "a path must be 1 to 4096 bytes long (got 0)",
        ),
        (
            "finance.notifications_interval_ms",
            10,
            "99 is out of range: must be 100 to 3600000",
        ),
        (
            "finance.collection_schedule_enabled",
            11,
            "invalid type: string \"daily\", expected a boolean",
        ),
        (
            "finance.collection_time",
            12,
            "\"24:00\" is not a time of day: hours are 00 to 23 and minutes 00 to 59",
        ),
        (
            "finance.republish_interval_ms",
            13,
            "3600001 is out of range: must be 100 to 3600000",
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
    assert_eq!(err.problems().len(), expect.len(), "{rendered}");
}

#[test]
fn collection_time_is_hh_mm_on_a_24_hour_clock() {
    for (time, hour, minute) in [
        ("00:00", 0, 0),
        ("06:00", 6, 0),
        ("12:30", 12, 30),
        ("23:59", 23, 59),
    ] {
        let config = parse(&format!("[finance]\ncollection_time = \"{time}\"\n")).unwrap();
        assert_eq!(config.finance.collection_time, time);
        assert_eq!(
            config.finance.collection_time_of_day(),
            Some(jiff::civil::time(hour, minute, 0, 0)),
            "{time}"
        );
    }
    let format = "is not a time of day: write HH:MM, 24-hour, e.g. \"06:00\"";
    let range = "is not a time of day: hours are 00 to 23 and minutes 00 to 59";
    for (time, says) in [
        ("", format),
        ("6:00", format),
        ("06:0", format),
        ("0600", format),
        ("06-00", format),
        ("06:00:00", format),
        (" 06:00", format),
        ("06:00 ", format),
        ("ab:cd", format),
        ("+6:00", format),
        ("06:-1", format),
        ("06:00Z", format),
        ("６:00", format),
        ("24:00", range),
        ("99:00", range),
        ("12:60", range),
        ("23:99", range),
    ] {
        let m = only_problem(
            &format!("[finance]\ncollection_time = \"{time}\"\n"),
            "finance.collection_time",
        );
        assert_eq!(m, format!("{time:?} {says}"), "{time:?}");
    }
    // Not a string at all: serde says what it wanted.
    let m = only_problem(
        "[finance]\ncollection_time = 600\n",
        "finance.collection_time",
    );
    assert!(m.contains("expected a string"), "{m}");
    // A configuration built in code that skipped validation has no time of day.
    let unchecked = FinanceConfig {
        collection_time: "25:00".to_string(),
        ..default_finance()
    };
    assert_eq!(unchecked.collection_time_of_day(), None);
}

#[test]
fn unknown_finance_and_node_keys_are_refused() {
    let m = only_problem("[finance]\nprefetch_max = 4\n", "finance.prefetch_max");
    assert!(m.contains("unknown field `prefetch_max`"), "{m}");
    assert!(
        m.contains("collection_time"),
        "the known keys are listed: {m}"
    );
    let m = only_problem("[node]\ntest_clock = true\n", "node.test_clock");
    assert!(m.contains("unknown field `test_clock`"), "{m}");
    assert!(m.contains("test_clock_enabled"), "{m}");
    let m = only_problem("[finances]\n", "finances");
    assert!(m.contains("unknown section `finances`"), "{m}");
    assert!(m.contains("finance"), "{m}");
}

#[test]
fn finance_and_test_clock_env_overrides() {
    let config = with_env(
        "[finance]\nprefetch = 2\ncollection_time = \"01:00\"\n",
        &[
            ("TOLLGATE_NODE__TEST_CLOCK_ENABLED", "true"),
            ("TOLLGATE_FINANCE__WORKERS_ENABLED", "false"),
            ("TOLLGATE_FINANCE__PREFETCH", "32"),
            ("TOLLGATE_FINANCE__ATTEMPTS_MAX", "3"),
            ("TOLLGATE_FINANCE__NOTIFICATIONS_ADAPTER", "log"),
            ("TOLLGATE_FINANCE__NOTIFICATIONS_PATH", "/tmp/notes.jsonl"),
            ("TOLLGATE_FINANCE__NOTIFICATIONS_INTERVAL_MS", "250"),
            ("TOLLGATE_FINANCE__COLLECTION_SCHEDULE_ENABLED", "true"),
            ("TOLLGATE_FINANCE__COLLECTION_TIME", "07:45"),
            ("TOLLGATE_FINANCE__REPUBLISH_INTERVAL_MS", "750"),
        ],
    )
    .unwrap();
    assert!(config.node.test_clock_enabled);
    assert_eq!(
        config.finance,
        FinanceConfig {
            workers_enabled: false,
            prefetch: 32,
            attempts_max: 3,
            notifications_adapter: NotificationsAdapter::Log,
            notifications_path: Some(PathBuf::from("/tmp/notes.jsonl")),
            notifications_interval_ms: 250,
            collection_schedule_enabled: true,
            collection_time: "07:45".to_string(),
            republish_interval_ms: 750,
        }
    );

    let err = with_env(
        "",
        &[
            ("TOLLGATE_NODE__TEST_CLOCK_ENABLED", "maybe"),
            ("TOLLGATE_FINANCE__PREFETCH", "0"),
            ("TOLLGATE_FINANCE__NOTIFICATIONS_ADAPTER", "smtp"),
            ("TOLLGATE_FINANCE__COLLECTION_TIME", "7:45"),
            ("TOLLGATE_FINANCE_ATTEMPTS_MAX", "3"),
            ("TOLLGATE_FINANCE__SCHEDULE", "daily"),
        ],
    )
    .unwrap_err();
    let rendered = err.to_string();
    let expect = [
        "env TOLLGATE_NODE__TEST_CLOCK_ENABLED: node.test_clock_enabled: invalid type: string \
         \"maybe\", expected a boolean",
        "env TOLLGATE_FINANCE__PREFETCH: finance.prefetch: 0 is out of range: must be 1 to 1000",
        "env TOLLGATE_FINANCE__NOTIFICATIONS_ADAPTER: finance.notifications_adapter: unknown \
         variant `smtp`, expected `file` or `log`",
        "env TOLLGATE_FINANCE__COLLECTION_TIME: finance.collection_time: \"7:45\" is not a time \
         of day: write HH:MM",
        "env TOLLGATE_FINANCE_ATTEMPTS_MAX: finance_attempts_max: no configuration key has this \
         variable; did you mean TOLLGATE_FINANCE__ATTEMPTS_MAX (double underscore between \
         section and key)?",
        "env TOLLGATE_FINANCE__SCHEDULE: finance.schedule: no configuration key has this variable",
    ];
    for line in expect {
        assert!(rendered.contains(line), "missing {line:?} in\n{rendered}");
    }
    assert_eq!(err.problems().len(), expect.len(), "{rendered}");
}

#[test]
fn the_example_file_has_the_finance_section_at_its_defaults() {
    let text = include_str!("../../tollgate.example.toml");
    assert!(
        text.lines().any(|line| line == "[finance]"),
        "[finance] missing from the example file"
    );
    assert!(
        text.lines()
            .any(|line| line == "test_clock_enabled = false"),
        "node.test_clock_enabled missing from the example file"
    );
    let config = NodeConfig::from_toml_with_env(text, None, &EnvVars::empty()).unwrap();
    assert_eq!(config.finance, default_finance());
    assert!(!config.node.test_clock_enabled);
    let written = config.to_toml_string().unwrap();
    assert_eq!(parse(&written).unwrap(), config, "{written}");
    // The commented-out notifications_path is the default it stands for.
    let uncommented = text.replace("# notifications_path = ", "notifications_path = ");
    let config = NodeConfig::from_toml_with_env(&uncommented, None, &EnvVars::empty()).unwrap();
    assert_eq!(
        config.finance.notifications_path(&config.node.data_dir),
        NodeConfig::default()
            .finance
            .notifications_path(&NodeConfig::default().node.data_dir)
    );
}
