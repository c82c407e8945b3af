//! Field mapping: where each CDR field is found in a source's records, and how to read it.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::number::NumberPlan;

/// How a source's records map to CDR fields. Loaded from TOML (see docs/cdr-format.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrMapping {
    /// Column names in order for CSV files without a header line; empty = the file has a header.
    pub columns: Vec<String>,
    /// CSV field delimiter (one ASCII character), `,` by default.
    pub delimiter: Option<char>,
    /// Names of the input columns/keys for each canonical field.
    pub fields: FieldNames,
    /// Values used when a record has no value for a field (`service`, `direction`).
    pub defaults: BTreeMap<String, String>,
    /// How timestamps are written.
    pub time: TimeSpec,
    /// Number normalisation for caller and callee.
    pub numbers: NumberPlan,
}

/// Input column/key names for the canonical CDR fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldNames {
    /// Record id (idempotency key).
    pub id: String,
    /// Subscriber; when empty in a record, the caller (outbound) or callee (inbound) is used.
    pub subscriber: String,
    /// Service id.
    pub service: String,
    /// Direction.
    pub direction: String,
    /// Calling number.
    pub caller: String,
    /// Called number.
    pub callee: String,
    /// Start time.
    pub start: String,
    /// Units (seconds, bytes, events).
    pub units: String,
    /// Trunk.
    pub trunk: String,
    /// Legs (`kind:units[:k=v,k=v];...` in CSV, an array in JSON).
    pub legs: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            id: "id".into(),
            subscriber: "subscriber".into(),
            service: "service".into(),
            direction: "direction".into(),
            caller: "caller".into(),
            callee: "callee".into(),
            start: "start".into(),
            units: "units".into(),
            trunk: "trunk".into(),
            legs: "legs".into(),
        }
    }
}

impl FieldNames {
    /// (canonical name, input name) pairs.
    pub fn pairs(&self) -> [(&'static str, &str); 10] {
        [
            ("id", &self.id),
            ("subscriber", &self.subscriber),
            ("service", &self.service),
            ("direction", &self.direction),
            ("caller", &self.caller),
            ("callee", &self.callee),
            ("start", &self.start),
            ("units", &self.units),
            ("trunk", &self.trunk),
            ("legs", &self.legs),
        ]
    }
}

/// How start times are written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSpec {
    /// Format.
    pub format: TimeFormat,
    /// Timezone for `civil` times (IANA name), UTC by default.
    pub timezone: Option<String>,
}

/// Timestamp formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFormat {
    /// RFC 3339 with an offset: `2026-03-02T10:00:00Z`.
    #[default]
    Rfc3339,
    /// Seconds since the Unix epoch.
    Epoch,
    /// Milliseconds since the Unix epoch.
    EpochMs,
    /// `YYYY-MM-DD HH:MM:SS` (or with `T`) in the mapping's timezone.
    Civil,
}

/// A mapping that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct MappingError {
    /// Every problem found.
    pub problems: Vec<String>,
}

impl CdrMapping {
    /// Parses a mapping from TOML text.
    pub fn from_toml(text: &str) -> Result<CdrMapping, MappingError> {
        let mapping: CdrMapping = toml::from_str(text).map_err(|e| MappingError {
            problems: vec![e.to_string()],
        })?;
        mapping.check()?;
        Ok(mapping)
    }

    /// Checks the mapping itself.
    pub fn check(&self) -> Result<(), MappingError> {
        let mut problems: Vec<String> = self
            .numbers
            .problems()
            .into_iter()
            .map(|(i, p)| format!("numbers.rewrites[{i}]: {p}"))
            .collect();
        if let Some(tz) = &self.time.timezone
            && TimeZone::get(tz).is_err()
        {
            problems.push(format!("time.timezone: unknown timezone {tz:?}"));
        }
        if self.delimiter.is_some_and(|d| !d.is_ascii()) {
            problems.push("delimiter must be one ASCII character".into());
        }
        for key in self.defaults.keys() {
            if !matches!(key.as_str(), "service" | "direction" | "trunk") {
                problems.push(format!(
                    "defaults.{key}: only service, direction and trunk take defaults"
                ));
            }
        }
        if let Some(d) = self.defaults.get("direction")
            && super::Direction::parse(d).is_none()
        {
            problems.push(format!(
                "defaults.direction: {d:?} is not inbound or outbound"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MappingError { problems })
        }
    }

    /// The timezone for civil times.
    pub fn timezone(&self) -> TimeZone {
        self.time
            .timezone
            .as_deref()
            .and_then(|tz| TimeZone::get(tz).ok())
            .unwrap_or(TimeZone::UTC)
    }
}
