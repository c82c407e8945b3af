//! Text + environment -> `NodeConfig`, collecting every problem.
//!
//! Serde stops at the first error, so the text is first read as a plain TOML table and each
//! key is tried on its own against [`RawConfig`] (a one-key document; every key is optional,
//! so the document is valid exactly when that key is). Keys that fail become problems and are
//! left out; what remains deserializes in one go and is validated. Lines come from a second,
//! span-keeping read of the text.

use std::collections::BTreeMap;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::{Spanned, Table, Value};

use crate::NodeConfig;
use crate::env::{KEYS, env_var_name, unknown_variable};
use crate::problems::{ConfigProblems, Origin, Problem};
use crate::raw::RawConfig;
use crate::validate::validate;

/// Where overrides come from: a lookup for each key's variable, and the names of every set
/// variable when they can be listed.
pub(crate) struct EnvInput<'a> {
    pub(crate) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(crate) names: Vec<String>,
    pub(crate) not_unicode: &'a dyn Fn(&str) -> bool,
}

/// Collects problems and knows where each key's value came from.
struct Report<'a> {
    file: Option<&'a str>,
    lines: BTreeMap<String, usize>,
    /// Key path -> variable that set it.
    from_env: BTreeMap<String, String>,
    /// List key path -> original index of each element kept by `prune`, so that problems
    /// found later name the element as written.
    kept_indices: BTreeMap<String, Vec<usize>>,
    problems: Vec<Problem>,
}

impl Report<'_> {
    fn origin(&self, key: &str) -> Origin {
        let base = key.split('[').next().unwrap_or(key);
        if let Some(variable) = self.from_env.get(base) {
            return Origin::Env {
                variable: variable.clone(),
            };
        }
        // The key itself, else its closest ancestor written in the file.
        let mut path = key;
        let line = loop {
            if let Some(line) = self.lines.get(path) {
                break Some(*line);
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => break None,
            }
        };
        Origin::File {
            file: self.file.map(str::to_string),
            line,
        }
    }

    /// `nodes[1]` of the pruned list -> `nodes[2]` of the file when element 1 was dropped.
    fn original_key(&self, key: String) -> String {
        let Some((list, rest)) = key.split_once('[') else {
            return key;
        };
        let Some((index, tail)) = rest.split_once(']') else {
            return key;
        };
        let original = index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.kept_indices.get(list)?.get(i).copied());
        match original {
            Some(i) => format!("{list}[{i}]{tail}"),
            None => key,
        }
    }

    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            origin: self.origin(key),
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn env_problem(&mut self, variable: &str, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            origin: Origin::Env {
                variable: variable.to_string(),
            },
            key: key.to_string(),
            message: message.into(),
        });
    }
}

/// The whole pipeline: parse, override, check each key, validate.
pub(crate) fn parse(
    text: &str,
    file: Option<&str>,
    env: &EnvInput<'_>,
) -> Result<NodeConfig, ConfigProblems> {
    let mut report = Report {
        file,
        lines: BTreeMap::new(),
        from_env: BTreeMap::new(),
        kept_indices: BTreeMap::new(),
        problems: Vec::new(),
    };
    let mut table = match toml::from_str::<Table>(text) {
        Ok(table) => table,
        Err(e) => {
            // Nothing past a syntax error can be trusted; the environment is still checked.
            report.problems.push(Problem {
                origin: Origin::File {
                    file: file.map(str::to_string),
                    line: e.span().map(|s| line_at(text, s.start)),
                },
                key: String::new(),
                message: e.message().trim().to_string(),
            });
            apply_env(&mut report, &mut Table::new(), env);
            return Err(finish(report));
        }
    };
    if let Ok(tree) = toml::from_str::<SpanNode>(text) {
        index_lines(text, &tree, "", &mut report.lines);
    }
    apply_env(&mut report, &mut table, env);
    let clean = prune(&mut report, &mut Vec::new(), &table);
    let raw = match Value::Table(clean).try_into::<RawConfig>() {
        Ok(raw) => raw,
        Err(e) => {
            // Every key passed on its own, so this is not expected; report rather than panic.
            report.problem("", e.message().trim().to_string());
            return Err(finish(report));
        }
    };
    match validate(&raw) {
        Ok(config) if report.problems.is_empty() => Ok(config),
        Ok(_) => Err(finish(report)),
        Err(problems) => {
            let earlier: Vec<String> = report.problems.iter().map(|p| p.key.clone()).collect();
            for found in problems {
                if found.compared_with.iter().any(|other| {
                    let other = report.original_key(other.clone());
                    earlier.contains(&other)
                }) {
                    continue;
                }
                let key = report.original_key(found.key);
                report.problem(&key, found.message);
            }
            Err(finish(report))
        }
    }
}

fn finish(report: Report<'_>) -> ConfigProblems {
    let mut problems = ConfigProblems(report.problems);
    problems.sort();
    problems
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A step of a key path: a key of a table, or an element of a list.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Element(usize),
}

/// The path as problems name it: `mediation.filters[1].name`.
fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Element(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// `Ok` when a document holding only `value` at `path` is a valid [`RawConfig`] (an element
/// step stands for a list holding only that element).
fn accepts(path: &[Step], value: Value) -> Result<(), String> {
    let mut doc = value;
    for step in path.iter().rev() {
        doc = match step {
            Step::Key(key) => {
                let mut table = Table::new();
                table.insert(key.clone(), doc);
                Value::Table(table)
            }
            Step::Element(_) => Value::Array(vec![doc]),
        };
    }
    match doc.try_into::<RawConfig>() {
        Ok(_) => Ok(()),
        Err(e) if path.len() == 1 => Err(e
            .message()
            .trim()
            .replace("unknown field", "unknown section")),
        Err(e) => Err(e.message().trim().to_string()),
    }
}

/// Keeps the keys of `table` (at `path`) that are valid, reporting the others.
fn prune(report: &mut Report<'_>, path: &mut Vec<Step>, table: &Table) -> Table {
    let mut clean = Table::new();
    for (key, value) in table {
        path.push(Step::Key(key.clone()));
        let dotted = dotted(path);
        let takes_table = accepts(path, Value::Table(Table::new())).is_ok();
        let takes_list = accepts(path, Value::Array(Vec::new())).is_ok();
        // Serde would read a list as a struct's fields in order; a section is never a list.
        if value.is_array() && takes_table {
            report.problem(
                &dotted,
                format!("is a table: write [{dotted}] (not [[{dotted}]]) or {{ key = value }}"),
            );
            path.pop();
            continue;
        }
        // A list of tables written as one table.
        if value.is_table()
            && !takes_table
            && accepts(path, Value::Array(vec![Value::Table(Table::new())])).is_ok()
        {
            report.problem(
                &dotted,
                format!("is a list of tables: write [[{dotted}]] (not [{dotted}])"),
            );
            path.pop();
            continue;
        }
        match accepts(path, value.clone()) {
            Ok(()) => {
                clean.insert(key.clone(), value.clone());
            }
            // A table of the right kind with some bad keys inside: look inside.
            Err(_) if value.is_table() && takes_table => {
                if let Value::Table(inner) = value {
                    let inner = prune(report, path, inner);
                    clean.insert(key.clone(), Value::Table(inner));
                }
            }
            // A list of the right kind with some bad elements: name each one.
            Err(_) if value.is_array() && takes_list => {
                let mut good = Vec::new();
                let mut kept = Vec::new();
                for (i, element) in value.as_array().into_iter().flatten().enumerate() {
                    path.push(Step::Element(i));
                    match accepts(path, element.clone()) {
                        Ok(()) => {
                            good.push(element.clone());
                            kept.push(i);
                        }
                        // A table element of the right kind with some bad keys: look inside.
                        Err(_)
                            if element.is_table()
                                && accepts(path, Value::Table(Table::new())).is_ok() =>
                        {
                            if let Value::Table(inner) = element {
                                good.push(Value::Table(prune(report, path, inner)));
                                kept.push(i);
                            }
                        }
                        Err(message) => report.problem(&format!("{dotted}[{i}]"), message),
                    }
                    path.pop();
                }
                clean.insert(key.clone(), Value::Array(good));
                report.kept_indices.insert(dotted, kept);
            }
            Err(message) => report.problem(&dotted, message),
        }
        path.pop();
    }
    clean
}

/// Sets every overridden key in `table`, reporting variables that do not fit.
fn apply_env(report: &mut Report<'_>, table: &mut Table, env: &EnvInput<'_>) {
    for key in KEYS {
        let variable = env_var_name(key);
        if (env.not_unicode)(&variable) {
            report.env_problem(&variable, key, "the value is not valid UTF-8");
            continue;
        }
        let Some(text) = (env.lookup)(&variable) else {
            continue;
        };
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        match env_value(&path, &text) {
            Ok(value) => {
                if set(table, &path, value) {
                    report.from_env.insert((*key).to_string(), variable);
                }
            }
            Err(message) => report.env_problem(&variable, key, message),
        }
    }
    for name in &env.names {
        if let Some((key, message)) = unknown_variable(name) {
            report.env_problem(name, &key, message);
        }
    }
}

/// Reads a variable's text as the type its key wants (see the `env` module).
fn env_value(path: &[String], text: &str) -> Result<Value, String> {
    let path: Vec<Step> = path.iter().cloned().map(Step::Key).collect();
    let path = path.as_slice();
    let typed = toml::from_str::<Table>(&format!("value = {text}"))
        .ok()
        .filter(|t| t.len() == 1)
        .and_then(|mut t| t.remove("value"));
    let typed_error = match typed {
        Some(value) => match accepts(path, value.clone()) {
            Ok(()) => return Ok(value),
            Err(message) => Some(message),
        },
        None => None,
    };
    let string = Value::String(text.to_string());
    let string_error = match accepts(path, string.clone()) {
        Ok(()) => return Ok(string),
        Err(message) => message,
    };
    let list = Value::Array(
        text.split(',')
            .map(|s| Value::String(s.trim().to_string()))
            .collect(),
    );
    if accepts(path, list.clone()).is_ok() {
        return Ok(list);
    }
    // "expected u64" says more about `1.5` as a float than as a string; for a key that takes
    // strings (money: "1e3") the string reading is the one meant.
    match typed_error {
        Some(typed) if string_error.starts_with("invalid type: string") => Err(typed),
        _ => Err(string_error),
    }
}

/// Puts `value` at `path`, creating tables on the way. Returns false (and leaves the file's
/// value, which is then reported) when the file has a non-table where a section belongs.
fn set(table: &mut Table, path: &[String], value: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        match entry {
            Value::Table(inner) => current = inner,
            _ => return false,
        }
    }
    current.insert(last.clone(), value);
    true
}

/// The text re-read keeping the span of every key and list element.
enum SpanNode {
    Table(Vec<(Spanned<String>, SpanNode)>),
    Array(Vec<Spanned<SpanNode>>),
    Leaf,
}

fn index_lines(text: &str, node: &SpanNode, prefix: &str, lines: &mut BTreeMap<String, usize>) {
    match node {
        SpanNode::Table(entries) => {
            for (key, value) in entries {
                let path = if prefix.is_empty() {
                    key.get_ref().clone()
                } else {
                    format!("{prefix}.{}", key.get_ref())
                };
                lines.insert(path.clone(), line_at(text, key.span().start));
                index_lines(text, value, &path, lines);
            }
        }
        SpanNode::Array(elements) => {
            for (i, element) in elements.iter().enumerate() {
                let path = format!("{prefix}[{i}]");
                lines.insert(path.clone(), line_at(text, element.span().start));
                index_lines(text, element.get_ref(), &path, lines);
            }
        }
        SpanNode::Leaf => {}
    }
}

impl<'de> Deserialize<'de> for SpanNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SpanNodeVisitor)
    }
}

struct SpanNodeVisitor;

impl<'de> Visitor<'de> for SpanNodeVisitor {
    type Value = SpanNode;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpanNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value::<SpanNode>()?));
        }
        Ok(SpanNode::Table(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpanNode, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element::<Spanned<SpanNode>>()? {
            elements.push(element);
        }
        Ok(SpanNode::Array(elements))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SpanNode, E> {
        Ok(SpanNode::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SpanNode, E> {
        Ok(SpanNode::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SpanNode, E> {
        Ok(SpanNode::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SpanNode, E> {
        Ok(SpanNode::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SpanNode, E> {
        Ok(SpanNode::Leaf)
    }
}
