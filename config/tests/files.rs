//! Tests that read files: the example configuration, the reference documentation, `load`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tollgate_config::raw::{RawEnrich, RawFilter};
use tollgate_config::{
    ConfigProblems, EnvVars, FILE_ONLY_KEYS, KEYS, NodeConfig, Origin, env_var_name,
};

fn manifest_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn example_text() -> String {
    std::fs::read_to_string(manifest_file("tollgate.example.toml")).unwrap()
}

/// `# key = value` lines of the example are keys without a default, and `# [table]` (or
/// `# [[table]]`) lines optional tables; uncomment them.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_assignment(rest) || is_table_header(rest) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_table_header(line: &str) -> bool {
    let line = line
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .filter(|inner| inner.starts_with('['))
        .unwrap_or(line);
    line.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
        })
}

fn is_assignment(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(key, _)| {
        !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => leaf_keys(inner, &path, out),
            // A list of tables: the keys of its tables, as `list[].key`.
            toml::Value::Array(elements)
                if !elements.is_empty() && elements.iter().all(toml::Value::is_table) =>
            {
                for element in elements {
                    if let toml::Value::Table(inner) = element {
                        leaf_keys(inner, &format!("{path}[]"), out);
                    }
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
}

/// The keys of the tables of [`FILE_ONLY_KEYS`], as `list[].key`.
fn file_only_keys() -> BTreeSet<String> {
    assert_eq!(
        FILE_ONLY_KEYS,
        ["mediation.filters", "mediation.enrich"],
        "list the keys of the new list"
    );
    let text = || Some(String::new());
    let filter = toml::Table::try_from(RawFilter {
        name: text(),
        field: text(),
        prefix: text(),
        equals: text(),
        reason: text(),
    })
    .unwrap();
    let enrich = toml::Table::try_from(RawEnrich {
        name: text(),
        field: text(),
        prefix: text(),
        equals: text(),
        attribute: text(),
        value: text(),
    })
    .unwrap();
    let keys = |list: &str, table: toml::Table| {
        table
            .keys()
            .map(|key| format!("{list}[].{key}"))
            .collect::<Vec<_>>()
    };
    keys("mediation.filters", filter)
        .into_iter()
        .chain(keys("mediation.enrich", enrich))
        .collect()
}

#[test]
fn the_example_file_is_the_defaults() {
    let config = NodeConfig::from_toml_with_env(
        &example_text(),
        Some("tollgate.example.toml"),
        &EnvVars::empty(),
    )
    .unwrap();
    assert_eq!(config, NodeConfig::default());
}

#[test]
fn the_example_file_lists_every_key() {
    let text = uncommented(&example_text());
    // Still valid with the optional keys set (their example values are valid), except that
    // [auth.jwt] shows both secret_env (HS*) and public_key_path (RS*, ES*): one at a time.
    let without = |key: &str| {
        text.lines()
            .filter(|line| !line.starts_with(&format!("{key} = ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let public_key = NodeConfig::from_toml_str(&without("secret_env"), &|_| None).unwrap();
    assert!(public_key.auth.jwt.is_some());
    let hmac = without("public_key_path").replace("\"RS256\"", "\"HS256\"");
    let hmac = NodeConfig::from_toml_str(&hmac, &|_| None).unwrap();
    assert!(hmac.auth.jwt.unwrap().secret_env.is_some());
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut written = BTreeSet::new();
    leaf_keys(&table, "", &mut written);
    let mut known: BTreeSet<String> = KEYS.iter().map(|k| k.to_string()).collect();
    known.extend(file_only_keys());
    assert_eq!(written, known);
    // Its filters and enrichment rules are valid: one by prefix, one by equals.
    let filters = &hmac.mediation.filters;
    assert_eq!(filters.len(), 2);
    assert!(filters[0].prefix.is_some() && filters[1].equals.is_some());
    let enrich = &hmac.mediation.enrich;
    assert_eq!(enrich.len(), 2);
    assert!(enrich[0].prefix.is_some() && enrich[1].equals.is_some());
    // And its mapping paths.
    for path in [
        &hmac.mediation.mapping_path,
        &hmac.kafka.mapping_path,
        &hmac.files.mapping_path,
    ] {
        assert!(path.is_some());
    }
}

#[test]
fn the_reference_documents_every_key_and_variable() {
    let docs = std::fs::read_to_string(manifest_file("../docs/configuration.md")).unwrap();
    for key in KEYS {
        let name = key.rsplit('.').next().unwrap();
        let row = docs
            .lines()
            .find(|line| {
                line.starts_with(&format!("| `{name}`")) && line.contains(&env_var_name(key))
            })
            .unwrap_or_else(|| panic!("no table row for {key} with {}", env_var_name(key)));
        assert!(row.matches('|').count() >= 6, "{row}");
    }
    // Keys of lists of tables have no variable; each is in the table under the list's heading.
    for key in file_only_keys() {
        let (list, name) = key.split_once("[].").unwrap();
        let heading = format!("#### `[[{list}]]`");
        let row = docs
            .lines()
            .skip_while(|line| *line != heading)
            .skip(1)
            .take_while(|line| !line.starts_with("##"))
            .find(|line| line.starts_with(&format!("| `{name}`")) && line.contains("file only"))
            .unwrap_or_else(|| panic!("no table row for {key} (file only) under {heading}"));
        assert!(row.matches('|').count() >= 6, "{row}");
    }
}

#[test]
fn load_reads_the_file_and_names_it_in_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, "[http]\nlisten = \"0.0.0.0:0\"\nworkers = -1\n").unwrap();
    let env: EnvVars = [("TOLLGATE_NODE__ID", "bad id")].into_iter().collect();
    let err: ConfigProblems = NodeConfig::load_with_env(&path, &env).unwrap_err();
    let name = path.display().to_string();
    assert_eq!(
        err.to_string(),
        format!(
            "{name}:3: http.workers: invalid value: integer `-1`, expected u64\n\
             env TOLLGATE_NODE__ID: node.id: \"bad id\" may only hold letters, digits, '.', '_' \
             and '-'"
        )
    );

    std::fs::write(&path, "[http]\nlisten = \"0.0.0.0:0\"\n").unwrap();
    let env: EnvVars = [("TOLLGATE_HTTP__WORKERS", "2")].into_iter().collect();
    let config = NodeConfig::load_with_env(&path, &env).unwrap();
    assert_eq!(config.http.listen.port(), 0);
    assert_eq!(config.http.workers.resolve(), 2);
    // The real environment of the test process has no TOLLGATE_* configuration variables.
    if std::env::vars().all(|(k, _)| !k.starts_with("TOLLGATE_")) {
        assert_eq!(NodeConfig::load(&path).unwrap().http.listen.port(), 0);
    }
}

#[test]
fn an_unreadable_file_is_one_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = NodeConfig::load_with_env(&path, &EnvVars::empty()).unwrap_err();
    assert_eq!(err.problems().len(), 1);
    assert_eq!(
        err.problems()[0].origin,
        Origin::File {
            file: Some(path.display().to_string()),
            line: None
        }
    );
    assert!(err.to_string().contains("cannot read the file"), "{err}");
}
