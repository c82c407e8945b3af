//! Catalogue drafts and published versions, as stored.
//!
//! A draft is the catalogue document (the TOML file's tables, held as JSON so single items can be
//! edited through the API) plus its prefix tables (CSV, stored apart because they can hold 100k+
//! rows). Publishing validates the draft as a whole and freezes it as a numbered version with an
//! effective date; versions are never changed or deleted, so rerating can use the prices that
//! were in force at the time of each record.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smol_str::SmolStr;

/// Size and checksum of a stored prefix table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixTableInfo {
    /// Data rows (header excluded).
    pub rows: u64,
    /// Size of the CSV in bytes.
    pub bytes: u64,
    /// SHA-256 of the CSV, lower-case hex.
    pub sha256: String,
}

/// A catalogue being edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueDraft {
    /// Id.
    pub id: SmolStr,
    /// The version it was copied from, if any.
    #[serde(default)]
    pub based_on: Option<u64>,
    /// The catalogue document: the TOML file's top-level tables as a JSON object.
    pub document: Value,
    /// Prefix tables by name (the name a `destinations` item's `file` refers to).
    #[serde(default)]
    pub prefix_tables: BTreeMap<String, PrefixTableInfo>,
    /// Created.
    pub created_at: Timestamp,
    /// Creator.
    pub created_by: SmolStr,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change; a publish names the revision it validated.
    #[serde(default)]
    pub revision: u64,
}

/// A published, immutable catalogue version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueVersion {
    /// Version number, from 1, in publishing order.
    pub version: u64,
    /// From when it prices usage (by the record's start time).
    pub effective_from: Timestamp,
    /// When it was published.
    pub published_at: Timestamp,
    /// Who published it.
    pub published_by: SmolStr,
    /// The draft it came from (`bootstrap` for the configured file).
    pub draft: SmolStr,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// The document.
    pub document: Value,
    /// Prefix tables.
    #[serde(default)]
    pub prefix_tables: BTreeMap<String, PrefixTableInfo>,
}

/// Who a stored prefix table belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TableOwner {
    /// A draft.
    Draft(SmolStr),
    /// A published version.
    Version(u64),
}
