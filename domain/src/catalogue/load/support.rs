//! Problem reporting, key paths and shared validation helpers.

use std::collections::{HashMap, HashSet};
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::raw::*;
use crate::attrs::Condition;
use crate::calendar::parse_instant;

/// Reads a file referenced by the catalogue (a prefix table), given its path as written.
pub type FileReader<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// One thing wrong with a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// File it is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path, e.g. `plans[0].rules[2].prices[0].rate`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[derive(Debug, Clone)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A key path inside the document.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyPath(pub(super) Vec<Seg>);

impl KeyPath {
    pub(super) fn k(&self, key: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }
    pub(super) fn i(&self, index: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

pub(super) struct Loader<'t> {
    pub(super) file: String,
    pub(super) doc: toml_edit::ImDocument<&'t str>,
    pub(super) line_starts: Vec<usize>,
    pub(super) problems: Vec<Problem>,
}

impl Loader<'_> {
    pub(super) fn line_at_offset(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    pub(super) fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let mut item = self.doc.as_item();
        let mut span = None;
        for seg in &path.0 {
            let next = match seg {
                Seg::Key(k) => item.get(k.as_str()),
                Seg::Index(i) => item.get(*i),
            };
            let Some(next) = next else { break };
            item = next;
            if let Some(s) = item.span() {
                span = Some(s);
            }
        }
        span.map(|s| self.line_at_offset(s.start))
    }

    pub(super) fn problem(&mut self, path: &KeyPath, message: impl Into<String>) {
        let line = self.line_of(path);
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            key: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn file_problem(
        &mut self,
        file: &str,
        line: Option<usize>,
        key: &KeyPath,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            file: file.to_string(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Deserializes one value, reporting a failure at its exact key path.
    pub(super) fn parse<T: DeserializeOwned>(
        &mut self,
        path: &KeyPath,
        value: &toml::Value,
    ) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                let mut full = path.clone();
                for seg in e.path().iter() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => full = full.i(*index),
                        serde_path_to_error::Segment::Map { key } => full = full.k(key),
                        serde_path_to_error::Segment::Enum { variant } => full = full.k(variant),
                        serde_path_to_error::Segment::Unknown => {}
                    }
                }
                let message = e.into_inner().message().to_string();
                self.problem(&full, message);
                None
            }
        }
    }

    /// Deserializes each item of an array section; failed items are reported and skipped, and
    /// their ids (when readable) returned so references to them are not reported again.
    pub(super) fn section<T: DeserializeOwned>(
        &mut self,
        table: &toml::Table,
        name: &str,
    ) -> (Vec<(KeyPath, T)>, HashSet<String>) {
        let base = KeyPath::default().k(name);
        let mut items = Vec::new();
        let mut failed = HashSet::new();
        match table.get(name) {
            None => {}
            Some(toml::Value::Array(values)) => {
                for (i, value) in values.iter().enumerate() {
                    let path = base.i(i);
                    match self.parse::<T>(&path, value) {
                        Some(item) => items.push((path, item)),
                        None => {
                            if let Some(id) = value.get("id").and_then(toml::Value::as_str) {
                                failed.insert(id.to_string());
                            }
                        }
                    }
                }
            }
            Some(_) => self.problem(&base, format!("must be an array of tables ([[{name}]])")),
        }
        (items, failed)
    }
}

pub(super) const SECTIONS: [&str; 9] = [
    "catalogue",
    "services",
    "zones",
    "destinations",
    "schedules",
    "allowances",
    "plans",
    "products",
    "bundles",
];

/// Ids already seen in one namespace; reports duplicates.
pub(super) fn unique(
    loader: &mut Loader<'_>,
    seen: &mut HashMap<String, usize>,
    path: &KeyPath,
    id: &str,
    what: &str,
) -> bool {
    if id.trim().is_empty() {
        loader.problem(&path.k("id"), format!("{what} id must not be empty"));
        return false;
    }
    if seen.contains_key(id) {
        loader.problem(&path.k("id"), format!("duplicate {what} id {id:?}"));
        return false;
    }
    let next = seen.len();
    seen.insert(id.to_string(), next);
    true
}

/// Resolves a reference by id, reporting it when unknown (unless the target itself failed).
pub(super) fn resolve(
    loader: &mut Loader<'_>,
    index: &HashMap<String, usize>,
    failed: &HashSet<String>,
    path: &KeyPath,
    id: &str,
    what: &str,
) -> Option<u32> {
    match index.get(id) {
        Some(&i) => Some(i as u32),
        None => {
            if !failed.contains(id) {
                loader.problem(path, format!("unknown {what} {id:?}"));
            }
            None
        }
    }
}

pub(super) fn non_negative(
    loader: &mut Loader<'_>,
    path: &KeyPath,
    amount: Option<Amount>,
) -> Decimal {
    let value = amount.map_or(Decimal::ZERO, |a| a.0);
    if value.is_sign_negative() && !value.is_zero() {
        loader.problem(path, format!("{value} must not be negative"));
    }
    value
}

pub(super) fn conditions(
    loader: &mut Loader<'_>,
    path: &KeyPath,
    texts: &[String],
) -> Vec<Condition> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match text.parse::<Condition>() {
            Ok(c) => Some(c),
            Err(e) => {
                loader.problem(&path.i(i), e.reason);
                None
            }
        })
        .collect()
}

pub(super) fn instant(
    loader: &mut Loader<'_>,
    path: &KeyPath,
    text: Option<&String>,
    tz: &TimeZone,
) -> Option<Timestamp> {
    let text = text?;
    match parse_instant(text, tz) {
        Ok(ts) => Some(ts),
        Err(e) => {
            loader.problem(path, e);
            None
        }
    }
}

pub(super) fn timezone(
    loader: &mut Loader<'_>,
    path: &KeyPath,
    name: Option<&String>,
    default: &TimeZone,
) -> TimeZone {
    match name {
        None => default.clone(),
        Some(name) => TimeZone::get(name).unwrap_or_else(|_| {
            loader.problem(
                path,
                format!("unknown timezone {name:?} (use an IANA name such as Europe/Berlin)"),
            );
            default.clone()
        }),
    }
}

pub(super) const PRECISION_MAX: u32 = 12;

pub(super) struct Scope {
    pub(super) tz: TimeZone,
    pub(super) services: HashMap<String, usize>,
    pub(super) zones: HashMap<String, usize>,
    pub(super) tables: HashMap<String, usize>,
    pub(super) schedules: HashMap<String, usize>,
    pub(super) allowances: HashMap<String, usize>,
    pub(super) plans: HashMap<String, usize>,
    pub(super) failed: HashSet<String>,
}
