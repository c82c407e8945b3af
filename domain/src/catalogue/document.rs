//! The catalogue as an editable document: the TOML file's top-level tables held as a JSON object
//! (what the admin API stores in a draft), edited item by item, turned back into TOML and
//! validated by the same loader as a file.
//!
//! Pure: prefix tables are passed in as bytes, nothing here reads files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use super::load::tables::{PREFIX_ROW_EXPECTED, PrefixRow, prefix_row};
use super::{Catalogue, Problem, Problems};
use crate::admin::catalogue::PrefixTableInfo;
use crate::prefix::check_prefix;

/// The list sections: top-level arrays of tables whose items are identified by `id`.
pub const SECTIONS: &[&str] = &[
    "services",
    "zones",
    "destinations",
    "schedules",
    "allowances",
    "plans",
    "products",
    "bundles",
];

/// The header table (`[catalogue]`: name, currency, defaults).
pub const HEADER: &str = "catalogue";

/// File name used in problems of a document parsed without one.
pub const DOCUMENT_FILE: &str = "catalogue.toml";

/// File name used in problems of a prefix table checked on its own.
pub const PREFIX_TABLE_FILE: &str = "prefix table";

/// Most problems reported for one prefix table (one more line says how many were left out).
pub const PREFIX_PROBLEMS_MAX: usize = 100;

/// Why a document or an edit is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not one of [`SECTIONS`].
    #[error("unknown section {section:?} (expected one of {})", SECTIONS.join(", "))]
    UnknownSection {
        /// The name given.
        section: String,
    },
    /// An item whose `id` differs from the id it is stored under.
    #[error("{section}: the item's id {found} does not match {expected:?}")]
    ItemIdMismatch {
        /// Section.
        section: String,
        /// The id it is stored under.
        expected: String,
        /// The item's `id`, as JSON.
        found: String,
    },
    /// An id that is empty or only blanks.
    #[error("{section}: an item id must not be empty")]
    InvalidId {
        /// Section.
        section: String,
    },
    /// A value that must be a table (JSON object) is not.
    #[error("{}: expected a table (JSON object), found {found}", show(path))]
    NotAnObject {
        /// Where (empty: the document itself).
        path: String,
        /// What was found.
        found: &'static str,
    },
    /// A section that must be a list of tables is not.
    #[error("{path}: expected a list of tables (JSON array), found {found}")]
    NotAList {
        /// Where.
        path: String,
        /// What was found.
        found: &'static str,
    },
    /// TOML has no null: leave the key out instead.
    #[error("{path}: null is not allowed (TOML has no null: leave the key out)")]
    NullValue {
        /// Where.
        path: String,
    },
    /// An integer beyond TOML's 64-bit signed range.
    #[error("{path}: {value} is outside the range of a TOML integer")]
    NumberOutOfRange {
        /// Where.
        path: String,
        /// The number.
        value: String,
    },
    /// The TOML writer failed (a bug rather than bad input).
    #[error("cannot write the document as TOML: {message}")]
    Serialize {
        /// What it said.
        message: String,
    },
}

fn show(path: &str) -> &str {
    if path.is_empty() { "(document)" } else { path }
}

impl DocumentError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::UnknownSection { .. } => "catalogue.unknown_section",
            DocumentError::ItemIdMismatch { .. } => "catalogue.item_id_mismatch",
            DocumentError::InvalidId { .. } => "catalogue.invalid_id",
            DocumentError::NotAnObject { .. } => "catalogue.not_an_object",
            DocumentError::NotAList { .. } => "catalogue.not_a_list",
            DocumentError::NullValue { .. } => "catalogue.null_value",
            DocumentError::NumberOutOfRange { .. } => "catalogue.number_out_of_range",
            DocumentError::Serialize { .. } => "catalogue.serialize",
        }
    }

    /// The key path it concerns, when it concerns one.
    pub fn path(&self) -> Option<&str> {
        match self {
            DocumentError::NotAnObject { path, .. }
            | DocumentError::NotAList { path, .. }
            | DocumentError::NullValue { path }
            | DocumentError::NumberOutOfRange { path, .. } => Some(path),
            DocumentError::ItemIdMismatch { section, .. }
            | DocumentError::InvalidId { section } => Some(section),
            DocumentError::UnknownSection { .. } | DocumentError::Serialize { .. } => None,
        }
    }
}

/// A key path being walked, rendered like the loader's (`plans[2].rules[0].price`).
#[derive(Debug, Clone, Default)]
struct JsonPath(String);

impl JsonPath {
    fn key(&self, key: &str) -> JsonPath {
        if self.0.is_empty() {
            JsonPath(key.to_string())
        } else {
            JsonPath(format!("{}.{key}", self.0))
        }
    }
    fn index(&self, i: usize) -> JsonPath {
        JsonPath(format!("{}[{i}]", self.0))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An empty document (no sections yet).
pub fn empty() -> Value {
    Value::Object(Map::new())
}

/// Parses catalogue TOML into a document. Only the syntax is checked; [`build`] validates.
/// TOML datetimes become strings (the format writes dates as strings anyway).
pub fn from_toml(text: &str) -> Result<Value, Problems> {
    match toml::from_str::<toml::Table>(text) {
        Ok(table) => Ok(table_to_json(table)),
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            Err(Problems(vec![Problem {
                file: DOCUMENT_FILE.to_string(),
                line,
                key: String::new(),
                message: e.message().trim().to_string(),
            }]))
        }
    }
}

fn table_to_json(table: toml::Table) -> Value {
    Value::Object(table.into_iter().map(|(k, v)| (k, to_json(v))).collect())
}

fn to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        // NaN and infinities have no JSON form: kept as text, which the loader then refuses.
        toml::Value::Float(f) => {
            Number::from_f64(f).map_or(Value::String(f.to_string()), Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        toml::Value::Table(t) => table_to_json(t),
    }
}

/// Writes a document as TOML text. Nulls and a root that is not an object are refused with the
/// key path of the offending value; integers stay integers and other numbers become floats.
pub fn to_toml(doc: &Value) -> Result<String, DocumentError> {
    let Value::Object(map) = doc else {
        return Err(DocumentError::NotAnObject {
            path: String::new(),
            found: kind(doc),
        });
    };
    let table = object_to_toml(map, &JsonPath::default())?;
    toml::to_string(&table).map_err(|e| DocumentError::Serialize {
        message: e.to_string(),
    })
}

fn object_to_toml(map: &Map<String, Value>, path: &JsonPath) -> Result<toml::Table, DocumentError> {
    let mut table = toml::Table::new();
    for (key, value) in map {
        table.insert(key.clone(), to_toml_value(value, &path.key(key))?);
    }
    Ok(table)
}

fn to_toml_value(value: &Value, path: &JsonPath) -> Result<toml::Value, DocumentError> {
    Ok(match value {
        Value::Null => {
            return Err(DocumentError::NullValue {
                path: path.to_string(),
            });
        }
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                toml::Value::Integer(i)
            } else if n.is_u64() {
                return Err(DocumentError::NumberOutOfRange {
                    path: path.to_string(),
                    value: n.to_string(),
                });
            } else {
                // The loader refuses floats where it wants exact amounts, with its own message.
                toml::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_toml_value(v, &path.index(i)))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => toml::Value::Table(object_to_toml(map, path)?),
    })
}

/// Validates a document as a catalogue: [`to_toml`], then [`Catalogue::from_toml`] with prefix
/// files read from `tables` (by the name a `destinations` item's `file` gives). Problems carry
/// key paths; their lines are those of the generated TOML.
pub fn build(
    doc: &Value,
    tables: &BTreeMap<String, Vec<u8>>,
    name: &str,
) -> Result<Catalogue, Problems> {
    let text = to_toml(doc).map_err(|e| {
        Problems(vec![Problem {
            file: name.to_string(),
            line: None,
            key: e.path().unwrap_or_default().to_string(),
            message: e.to_string(),
        }])
    })?;
    let users = table_users(doc);
    let mut read = |file: &str| -> Result<String, String> {
        match tables.get(file) {
            Some(bytes) => std::str::from_utf8(bytes)
                .map(str::to_string)
                .map_err(|e| format!("not UTF-8 text (bad byte at offset {})", e.valid_up_to())),
            None => Err(format!(
                "no prefix table {file:?} in this catalogue (used by destinations {}): upload it",
                users
                    .get(file)
                    .map_or_else(|| "?".to_string(), |ids| ids.join(", "))
            )),
        }
    };
    Catalogue::from_toml(&text, name, &mut read)
}

/// Prefix table name -> ids of the `destinations` items that use it.
fn table_users(doc: &Value) -> HashMap<String, Vec<String>> {
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    let items = doc
        .get("destinations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for item in items {
        if let Some(file) = item.get("file").and_then(Value::as_str) {
            let id = item.get("id").and_then(Value::as_str).unwrap_or("?");
            users
                .entry(file.to_string())
                .or_default()
                .push(format!("{id:?}"));
        }
    }
    users
}

fn check_section(section: &str) -> Result<(), DocumentError> {
    if SECTIONS.contains(&section) {
        Ok(())
    } else {
        Err(DocumentError::UnknownSection {
            section: section.to_string(),
        })
    }
}

fn root(doc: &Value) -> Result<&Map<String, Value>, DocumentError> {
    doc.as_object().ok_or(DocumentError::NotAnObject {
        path: String::new(),
        found: kind(doc),
    })
}

fn root_mut(doc: &mut Value) -> Result<&mut Map<String, Value>, DocumentError> {
    let found = kind(doc);
    doc.as_object_mut().ok_or(DocumentError::NotAnObject {
        path: String::new(),
        found,
    })
}

/// The items of a section (none when it is absent).
fn section_items<'a>(doc: &'a Value, section: &str) -> Result<&'a [Value], DocumentError> {
    check_section(section)?;
    match root(doc)?.get(section) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(DocumentError::NotAList {
            path: section.to_string(),
            found: kind(other),
        }),
    }
}

fn has_id(item: &Value, id: &str) -> bool {
    item.get("id").and_then(Value::as_str) == Some(id)
}

/// The items of a list section, in order.
pub fn list_items(doc: &Value, section: &str) -> Result<Vec<Value>, DocumentError> {
    Ok(section_items(doc, section)?.to_vec())
}

/// The item of a list section with this id.
pub fn get_item(doc: &Value, section: &str, id: &str) -> Result<Option<Value>, DocumentError> {
    Ok(section_items(doc, section)?
        .iter()
        .find(|item| has_id(item, id))
        .cloned())
}

/// Stores an item under `id`: replaces the item with that id in place, or appends it. The item
/// must be an object without nulls; its `id`, when present, must equal `id` (it is set
/// otherwise). Returns whether it was created.
pub fn put_item(
    doc: &mut Value,
    section: &str,
    id: &str,
    item: Value,
) -> Result<bool, DocumentError> {
    let items = section_items(doc, section)?;
    if id.trim().is_empty() {
        return Err(DocumentError::InvalidId {
            section: section.to_string(),
        });
    }
    let position = items.iter().position(|item| has_id(item, id));
    let index = position.unwrap_or(items.len());
    let path = JsonPath::default().key(section).index(index);
    let Value::Object(mut fields) = item else {
        return Err(DocumentError::NotAnObject {
            path: path.to_string(),
            found: kind(&item),
        });
    };
    match fields.get("id") {
        None => {}
        Some(Value::String(found)) if found == id => {}
        Some(found) => {
            return Err(DocumentError::ItemIdMismatch {
                section: section.to_string(),
                expected: id.to_string(),
                found: found.to_string(),
            });
        }
    }
    fields.insert("id".to_string(), Value::String(id.to_string()));
    object_to_toml(&fields, &path)?;
    let root = root_mut(doc)?;
    let list = root
        .entry(section.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = list else {
        return Err(DocumentError::NotAList {
            path: section.to_string(),
            found: kind(list),
        });
    };
    match position {
        Some(i) => {
            list[i] = Value::Object(fields);
            Ok(false)
        }
        None => {
            list.push(Value::Object(fields));
            Ok(true)
        }
    }
}

/// Removes the item with this id; returns whether there was one.
pub fn delete_item(doc: &mut Value, section: &str, id: &str) -> Result<bool, DocumentError> {
    section_items(doc, section)?;
    let Some(Value::Array(list)) = root_mut(doc)?.get_mut(section) else {
        return Ok(false);
    };
    let before = list.len();
    list.retain(|item| !has_id(item, id));
    Ok(list.len() != before)
}

/// The header table (`[catalogue]`), if present.
pub fn get_header(doc: &Value) -> Result<Option<Value>, DocumentError> {
    Ok(root(doc)?.get(HEADER).cloned())
}

/// Replaces the header table; it must be an object without nulls.
pub fn put_header(doc: &mut Value, header: Value) -> Result<(), DocumentError> {
    root(doc)?;
    let path = JsonPath::default().key(HEADER);
    let Value::Object(fields) = &header else {
        return Err(DocumentError::NotAnObject {
            path: path.to_string(),
            found: kind(&header),
        });
    };
    object_to_toml(fields, &path)?;
    root_mut(doc)?.insert(HEADER.to_string(), header);
    Ok(())
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Counts and checks a prefix table (CSV `prefix,zone[,description]`) the way the loader reads
/// it: every malformed row, bad prefix or duplicate is reported with its line (at most
/// [`PREFIX_PROBLEMS_MAX`]). Zones are checked later, against the document, by [`build`].
/// Problems name the file [`PREFIX_TABLE_FILE`]; callers may put the table's name there.
pub fn prefix_table_info(csv: &[u8]) -> Result<PrefixTableInfo, Problems> {
    let problem = |line: Option<usize>, message: String| Problem {
        file: PREFIX_TABLE_FILE.to_string(),
        line,
        key: String::new(),
        message,
    };
    let text = std::str::from_utf8(csv).map_err(|e| {
        let line = csv[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Problems(vec![problem(Some(line), "not UTF-8 text".to_string())])
    })?;
    let mut rows = 0u64;
    let mut problems = Vec::new();
    let mut more = 0usize;
    let mut seen: HashSet<&str> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let message = match prefix_row(n, line) {
            PrefixRow::Skip => continue,
            PrefixRow::Malformed => PREFIX_ROW_EXPECTED.to_string(),
            PrefixRow::Entry { prefix, zone } => {
                if let Err(e) = check_prefix(prefix) {
                    e.to_string()
                } else if zone.is_empty() {
                    "the zone column is empty".to_string()
                } else if !seen.insert(prefix) {
                    format!("duplicate prefix {prefix}")
                } else {
                    rows += 1;
                    continue;
                }
            }
        };
        if problems.len() < PREFIX_PROBLEMS_MAX {
            problems.push(problem(Some(n + 1), message));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        problems.push(problem(None, format!("{more} more problems not listed")));
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    Ok(PrefixTableInfo {
        rows,
        bytes: csv.len() as u64,
        sha256: sha256_hex(csv),
    })
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
