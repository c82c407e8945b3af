//! Usage records (CDRs): the model, its validation errors, and decoding from CSV and JSON.

mod decode;
mod mapping;

pub use decode::{CsvDecoder, JsonDecoder, parse_legs};
pub use mapping::{CdrMapping, FieldNames, MappingError, TimeFormat, TimeSpec};

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::attrs::Attributes;
use crate::ids::{CdrId, SubscriberId};
use crate::number::{Number, NumberError};

/// Direction of a call or message, seen from the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Originated by the subscriber (mobile originated, outgoing).
    Outbound,
    /// Received by the subscriber (e.g. calls to a 8-800 number it owns).
    Inbound,
}

impl Direction {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }

    /// Parses the canonical names and the usual switch spellings.
    pub fn parse(text: &str) -> Option<Direction> {
        match text.trim().to_ascii_lowercase().as_str() {
            "outbound" | "out" | "o" | "mo" | "outgoing" => Some(Direction::Outbound),
            "inbound" | "in" | "i" | "mt" | "incoming" => Some(Direction::Inbound),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One leg of a multi-leg call (e.g. IVR, agent, post-processing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// Leg kind, matched by rules (`ivr`, `agent`, `post`...).
    pub kind: SmolStr,
    /// Units of the leg (seconds for voice).
    pub units: u64,
    /// Leg attributes (`operator_location`, `dedicated`...), seen by `leg.*` conditions.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// A decoded, normalised usage record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdr {
    /// Idempotency key of the record.
    pub id: CdrId,
    /// Subscriber charged.
    pub subscriber: SubscriberId,
    /// Service id (`voice`, `sms`, `data`, or an event service such as `fax`).
    pub service: SmolStr,
    /// Direction.
    pub direction: Direction,
    /// Calling party, E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Number>,
    /// Called party, E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<Number>,
    /// Start of the usage.
    pub start: Timestamp,
    /// Units used: seconds (voice), bytes (data), events (SMS and events). `None` when the record
    /// did not say: events then count 1, legs are summed, anything else is rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// Trunk (route) the call used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk: Option<SmolStr>,
    /// Legs of a multi-leg call, in order; empty for an ordinary record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<Leg>,
    /// Other attributes (`qos`, `bandwidth_mbps`...), seen by `cdr.*` conditions.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// Why a record cannot be decoded. Each variant has a stable code used as suspense reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdrError {
    /// The record is not parseable at all (bad CSV/JSON, wrong encoding).
    #[error("malformed record: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// A required field is missing or empty.
    #[error("missing field {field:?}")]
    MissingField {
        /// Canonical field name.
        field: &'static str,
    },
    /// The start time does not parse.
    #[error("bad timestamp {value:?}: {reason}")]
    BadTimestamp {
        /// Value as received.
        value: String,
        /// Why.
        reason: String,
    },
    /// A telephone number does not normalise.
    #[error("bad number in {field}: {source}")]
    BadNumber {
        /// Which field.
        field: &'static str,
        /// Why.
        source: NumberError,
    },
    /// Units are not a non-negative integer.
    #[error("bad units {value:?}: must be a whole non-negative number")]
    BadUnits {
        /// Value as received.
        value: String,
    },
    /// Direction is not one of the known spellings.
    #[error("bad direction {value:?}")]
    BadDirection {
        /// Value as received.
        value: String,
    },
    /// The legs field does not parse.
    #[error("bad legs: {reason}")]
    BadLegs {
        /// Why.
        reason: String,
    },
}

impl CdrError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            CdrError::Malformed { .. } => "cdr.malformed",
            CdrError::MissingField { .. } => "cdr.missing_field",
            CdrError::BadTimestamp { .. } => "cdr.bad_timestamp",
            CdrError::BadNumber { .. } => "cdr.bad_number",
            CdrError::BadUnits { .. } => "cdr.bad_units",
            CdrError::BadDirection { .. } => "cdr.bad_direction",
            CdrError::BadLegs { .. } => "cdr.bad_legs",
        }
    }
}
