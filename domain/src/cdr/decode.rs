//! Decoding CSV lines and JSON objects into [`Cdr`]s through a [`CdrMapping`].

use jiff::Timestamp;
use jiff::tz::TimeZone;
use smol_str::SmolStr;

use super::mapping::{CdrMapping, MappingError, TimeFormat};
use super::{Cdr, CdrError, Direction, Leg};
use crate::attrs::Attributes;
use crate::ids::{CdrId, SubscriberId};
use crate::number::{Number, NumberPlan};

/// What every decoder needs from the mapping, resolved once.
#[derive(Debug, Clone)]
struct Context {
    default_service: Option<SmolStr>,
    default_direction: Direction,
    default_trunk: Option<SmolStr>,
    time_format: TimeFormat,
    tz: TimeZone,
    numbers: NumberPlan,
}

impl Context {
    fn new(mapping: &CdrMapping) -> Result<Context, MappingError> {
        mapping.check()?;
        Ok(Context {
            default_service: mapping.defaults.get("service").map(SmolStr::new),
            default_direction: mapping
                .defaults
                .get("direction")
                .and_then(|d| Direction::parse(d))
                .unwrap_or(Direction::Outbound),
            default_trunk: mapping.defaults.get("trunk").map(SmolStr::new),
            time_format: mapping.time.format,
            tz: mapping.timezone(),
            numbers: mapping.numbers.clone(),
        })
    }

    fn build(
        &self,
        f: Fields<'_>,
        legs: Vec<Leg>,
        attributes: Attributes,
    ) -> Result<Cdr, CdrError> {
        let id = non_empty(f.id).ok_or(CdrError::MissingField { field: "id" })?;
        let direction = match non_empty(f.direction) {
            Some(d) => Direction::parse(d).ok_or_else(|| CdrError::BadDirection {
                value: d.to_string(),
            })?,
            None => self.default_direction,
        };
        let service = match non_empty(f.service) {
            Some(s) => SmolStr::new(s),
            None => self
                .default_service
                .clone()
                .ok_or(CdrError::MissingField { field: "service" })?,
        };
        let number =
            |field: &'static str, value: Option<&str>| -> Result<Option<Number>, CdrError> {
                non_empty(value)
                    .map(|v| {
                        self.numbers
                            .normalise(v)
                            .map_err(|source| CdrError::BadNumber { field, source })
                    })
                    .transpose()
            };
        let caller = number("caller", f.caller)?;
        let callee = number("callee", f.callee)?;
        let subscriber = match non_empty(f.subscriber) {
            Some(s) => SubscriberId::new(s),
            None => {
                let party = match direction {
                    Direction::Outbound => caller,
                    Direction::Inbound => callee,
                };
                SubscriberId::new(
                    party
                        .ok_or(CdrError::MissingField {
                            field: "subscriber",
                        })?
                        .as_str(),
                )
            }
        };
        let start_text = non_empty(f.start).ok_or(CdrError::MissingField { field: "start" })?;
        let start = self.parse_time(start_text)?;
        let units = non_empty(f.units).map(parse_units).transpose()?;
        let trunk = non_empty(f.trunk)
            .map(SmolStr::new)
            .or_else(|| self.default_trunk.clone());
        Ok(Cdr {
            id: CdrId::new(id),
            subscriber,
            service,
            direction,
            caller,
            callee,
            start,
            units,
            trunk,
            legs,
            attributes,
        })
    }

    fn parse_time(&self, text: &str) -> Result<Timestamp, CdrError> {
        let bad = |reason: String| CdrError::BadTimestamp {
            value: text.to_string(),
            reason,
        };
        match self.time_format {
            TimeFormat::Rfc3339 => text.parse::<Timestamp>().map_err(|e| bad(e.to_string())),
            TimeFormat::Epoch | TimeFormat::EpochMs => {
                let n: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| bad("not an integer".into()))?;
                let result = if self.time_format == TimeFormat::Epoch {
                    Timestamp::from_second(n)
                } else {
                    Timestamp::from_millisecond(n)
                };
                result.map_err(|e| bad(e.to_string()))
            }
            TimeFormat::Civil => {
                let dt = text
                    .trim()
                    .replacen(' ', "T", 1)
                    .parse::<jiff::civil::DateTime>()
                    .map_err(|e| bad(e.to_string()))?;
                self.tz
                    .to_ambiguous_timestamp(dt)
                    .compatible()
                    .map_err(|e| bad(e.to_string()))
            }
        }
    }
}

/// Raw field texts of one record.
#[derive(Default)]
struct Fields<'a> {
    id: Option<&'a str>,
    subscriber: Option<&'a str>,
    service: Option<&'a str>,
    direction: Option<&'a str>,
    caller: Option<&'a str>,
    callee: Option<&'a str>,
    start: Option<&'a str>,
    units: Option<&'a str>,
    trunk: Option<&'a str>,
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

fn parse_units(text: &str) -> Result<u64, CdrError> {
    text.trim().parse::<u64>().map_err(|_| CdrError::BadUnits {
        value: text.to_string(),
    })
}

/// Parses the text form of legs: `kind:units[:key=value,key=value];kind:units...`.
pub fn parse_legs(text: &str) -> Result<Vec<Leg>, CdrError> {
    let bad = |reason: String| CdrError::BadLegs { reason };
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut pieces = part.splitn(3, ':');
            let kind = pieces.next().map(str::trim).filter(|k| !k.is_empty());
            let kind = kind.ok_or_else(|| bad(format!("{part:?}: missing leg kind")))?;
            let units_text = pieces
                .next()
                .ok_or_else(|| bad(format!("{part:?}: missing units")))?;
            let units = units_text.trim().parse::<u64>().map_err(|_| {
                bad(format!(
                    "{part:?}: units {units_text:?} is not a whole number"
                ))
            })?;
            let mut attributes = Attributes::new();
            if let Some(attrs) = pieces.next() {
                for pair in attrs.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (k, v) = pair
                        .split_once('=')
                        .ok_or_else(|| bad(format!("{pair:?}: expected key=value")))?;
                    attributes.set(k.trim(), v.trim());
                }
            }
            Ok(Leg {
                kind: SmolStr::new(kind),
                units,
                attributes,
            })
        })
        .collect()
}

/// Decodes CSV records; built once per file from its header (or the mapping's `columns`).
#[derive(Debug, Clone)]
pub struct CsvDecoder {
    ctx: Context,
    columns: [Option<usize>; 10],
    attribute_columns: Vec<(usize, SmolStr)>,
    width: usize,
}

impl CsvDecoder {
    /// Builds a decoder for files whose columns are `header` (or `mapping.columns` if set).
    pub fn new(mapping: &CdrMapping, header: &[&str]) -> Result<CsvDecoder, MappingError> {
        let ctx = Context::new(mapping)?;
        let names: Vec<&str> = if mapping.columns.is_empty() {
            header.to_vec()
        } else {
            mapping.columns.iter().map(String::as_str).collect()
        };
        let find = |name: &str| names.iter().position(|h| h.trim() == name);
        let pairs = mapping.fields.pairs();
        let mut columns = [None; 10];
        for (slot, (_, input)) in columns.iter_mut().zip(pairs.iter()) {
            *slot = find(input);
        }
        let mut problems = Vec::new();
        for (i, required) in [(0usize, "id"), (6, "start")] {
            if columns[i].is_none() {
                problems.push(format!(
                    "no column {:?} for the required field {required}",
                    pairs[i].1
                ));
            }
        }
        if columns[1].is_none() && columns[4].is_none() && columns[5].is_none() {
            problems.push("no subscriber, caller or callee column: cannot tell who pays".into());
        }
        if !problems.is_empty() {
            return Err(MappingError { problems });
        }
        let attribute_columns = names
            .iter()
            .enumerate()
            .filter(|(i, _)| !columns.contains(&Some(*i)))
            .map(|(i, name)| (i, SmolStr::new(name.trim())))
            .collect();
        Ok(CsvDecoder {
            ctx,
            columns,
            attribute_columns,
            width: names.len(),
        })
    }

    /// Whether the file's first line is a header (no `columns` in the mapping).
    pub fn expects_header(mapping: &CdrMapping) -> bool {
        mapping.columns.is_empty()
    }

    /// Decodes one record.
    pub fn decode(&self, record: &csv::StringRecord) -> Result<Cdr, CdrError> {
        if record.len() != self.width {
            return Err(CdrError::Malformed {
                reason: format!("{} fields, expected {}", record.len(), self.width),
            });
        }
        let get = |slot: usize| self.columns[slot].and_then(|i| record.get(i));
        let fields = Fields {
            id: get(0),
            subscriber: get(1),
            service: get(2),
            direction: get(3),
            caller: get(4),
            callee: get(5),
            start: get(6),
            units: get(7),
            trunk: get(8),
        };
        let legs = match non_empty(get(9)) {
            Some(text) => parse_legs(text)?,
            None => Vec::new(),
        };
        let mut attributes = Attributes::new();
        for (i, name) in &self.attribute_columns {
            if let Some(v) = non_empty(record.get(*i)) {
                attributes.0.push((name.clone(), SmolStr::new(v)));
            }
        }
        self.ctx.build(fields, legs, attributes)
    }
}

/// Decodes JSON objects (one per line in JSON-lines files).
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    ctx: Context,
    names: [String; 10],
}

impl JsonDecoder {
    /// Builds a decoder.
    pub fn new(mapping: &CdrMapping) -> Result<JsonDecoder, MappingError> {
        let ctx = Context::new(mapping)?;
        let names = mapping.fields.pairs().map(|(_, input)| input.to_string());
        Ok(JsonDecoder { ctx, names })
    }

    /// Decodes one JSON text (an object).
    pub fn decode_str(&self, text: &str) -> Result<Cdr, CdrError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CdrError::Malformed {
                reason: e.to_string(),
            })?;
        self.decode(&value)
    }

    /// Decodes one JSON object.
    pub fn decode(&self, value: &serde_json::Value) -> Result<Cdr, CdrError> {
        let object = value.as_object().ok_or_else(|| CdrError::Malformed {
            reason: "not a JSON object".into(),
        })?;
        let mut texts: [Option<String>; 9] = Default::default();
        for (slot, text) in texts.iter_mut().enumerate() {
            *text = match object.get(&self.names[slot]) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    Some(v.to_string())
                }
                Some(_) => {
                    return Err(CdrError::Malformed {
                        reason: format!(
                            "field {:?} must be a string or a number",
                            self.names[slot]
                        ),
                    });
                }
            };
        }
        let get = |slot: usize| texts[slot].as_deref();
        let fields = Fields {
            id: get(0),
            subscriber: get(1),
            service: get(2),
            direction: get(3),
            caller: get(4),
            callee: get(5),
            start: get(6),
            units: get(7),
            trunk: get(8),
        };
        let legs = match object.get(&self.names[9]) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::String(s)) => parse_legs(s)?,
            Some(v @ serde_json::Value::Array(_)) => json_legs(v)?,
            Some(_) => {
                return Err(CdrError::BadLegs {
                    reason: "legs must be an array or a string".into(),
                });
            }
        };
        let mut attributes = Attributes::new();
        for (key, v) in object {
            if self.names.iter().any(|n| n == key) {
                continue;
            }
            if key == "attributes" {
                let nested = v.as_object().ok_or_else(|| CdrError::Malformed {
                    reason: "attributes must be an object".into(),
                })?;
                for (k, v) in nested {
                    if let Some(text) = scalar_text(v) {
                        attributes.set(k.as_str(), text);
                    }
                }
            } else if let Some(text) = scalar_text(v) {
                attributes.set(key.as_str(), text);
            }
        }
        self.ctx.build(fields, legs, attributes)
    }
}

fn scalar_text(v: &serde_json::Value) -> Option<SmolStr> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(SmolStr::new(s)),
        serde_json::Value::Number(n) => Some(SmolStr::new(n.to_string())),
        serde_json::Value::Bool(b) => Some(SmolStr::new(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn json_legs(v: &serde_json::Value) -> Result<Vec<Leg>, CdrError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawLeg {
        kind: String,
        units: u64,
        #[serde(default)]
        attributes: std::collections::BTreeMap<String, serde_json::Value>,
    }
    let raw: Vec<RawLeg> = serde_json::from_value(v.clone()).map_err(|e| CdrError::BadLegs {
        reason: e.to_string(),
    })?;
    Ok(raw
        .into_iter()
        .map(|l| Leg {
            kind: SmolStr::new(l.kind),
            units: l.units,
            attributes: l
                .attributes
                .iter()
                .filter_map(|(k, v)| scalar_text(v).map(|t| (k.as_str(), t)))
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::RewriteRule;

    fn mapping() -> CdrMapping {
        CdrMapping {
            numbers: NumberPlan {
                rewrites: vec![
                    RewriteRule {
                        prefix: "00".into(),
                        replace: "".into(),
                        length: None,
                    },
                    RewriteRule {
                        prefix: "0".into(),
                        replace: "49".into(),
                        length: None,
                    },
                ],
            },
            ..CdrMapping::default()
        }
    }

    fn record(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    #[test]
    fn decodes_csv_with_header_and_extra_attributes() {
        let header = [
            "id",
            "subscriber",
            "service",
            "direction",
            "caller",
            "callee",
            "start",
            "units",
            "qos",
        ];
        let d = CsvDecoder::new(&mapping(), &header).unwrap();
        let cdr = d
            .decode(&record(&[
                "c1",
                "",
                "voice",
                "out",
                "030 1234567",
                "+4915112345",
                "2026-03-02T10:00:00Z",
                "125",
                "gold",
            ]))
            .unwrap();
        assert_eq!(
            cdr.subscriber.as_str(),
            "49301234567",
            "subscriber falls back to the caller"
        );
        assert_eq!(cdr.callee.unwrap().as_str(), "4915112345");
        assert_eq!(cdr.units, Some(125));
        assert_eq!(cdr.attributes.get("qos"), Some("gold"));
        assert_eq!(cdr.direction, Direction::Outbound);
    }

    #[test]
    fn every_bad_field_has_its_own_code() {
        let header = [
            "id",
            "subscriber",
            "service",
            "direction",
            "caller",
            "callee",
            "start",
            "units",
            "legs",
        ];
        let d = CsvDecoder::new(&mapping(), &header).unwrap();
        let ok = [
            "c1",
            "s1",
            "voice",
            "out",
            "0301",
            "0302",
            "2026-03-02T10:00:00Z",
            "60",
            "",
        ];
        assert!(d.decode(&record(&ok)).is_ok());
        let cases: [(usize, &str, &str); 7] = [
            (0, "", "cdr.missing_field"),
            (3, "sideways", "cdr.bad_direction"),
            (4, "12ab", "cdr.bad_number"),
            (6, "yesterday", "cdr.bad_timestamp"),
            (7, "-5", "cdr.bad_units"),
            (7, "1.5", "cdr.bad_units"),
            (8, "ivr:x", "cdr.bad_legs"),
        ];
        for (column, value, code) in cases {
            let mut fields = ok;
            fields[column] = value;
            assert_eq!(
                d.decode(&record(&fields)).unwrap_err().code(),
                code,
                "{column}={value}"
            );
        }
        assert_eq!(
            d.decode(&record(&["only", "two"])).unwrap_err().code(),
            "cdr.malformed"
        );
    }

    #[test]
    fn mapping_renames_fields_and_reads_civil_time() {
        let m = CdrMapping::from_toml(
            r#"
            columns = ["rec", "a", "b", "when", "dur", "dir"]
            [fields]
            id = "rec"
            caller = "a"
            callee = "b"
            start = "when"
            units = "dur"
            direction = "dir"
            [defaults]
            service = "voice"
            [time]
            format = "civil"
            timezone = "Europe/Moscow"
            [numbers]
            rewrites = [{ prefix = "8", replace = "7", length = 11 }]
            "#,
        )
        .unwrap();
        let d = CsvDecoder::new(&m, &[]).unwrap();
        let cdr = d
            .decode(&record(&[
                "r1",
                "84951234567",
                "88005553535",
                "2026-03-02 13:00:00",
                "30",
                "MT",
            ]))
            .unwrap();
        assert_eq!(cdr.direction, Direction::Inbound);
        assert_eq!(
            cdr.subscriber.as_str(),
            "78005553535",
            "inbound calls bill the called 8-800 owner"
        );
        assert_eq!(
            cdr.start,
            "2026-03-02T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(cdr.service, "voice");
    }

    #[test]
    fn mapping_problems_are_listed() {
        let err = CdrMapping::from_toml(
            "[numbers]\nrewrites = [{ prefix = \"x\" }]\n[time]\ntimezone = \"Mars/Base\"",
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        let err = CsvDecoder::new(&CdrMapping::default(), &["foo", "bar"]).unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(CdrMapping::from_toml("unknown_key = 1").is_err());
    }

    #[test]
    fn decodes_json_with_legs() {
        let d = JsonDecoder::new(&CdrMapping::default()).unwrap();
        let cdr = d
            .decode_str(
                r#"{"id":"j1","subscriber":"cc-1","service":"voice","direction":"inbound","caller":"74951234567",
                    "start":"2026-03-02T10:00:00Z","legs":[{"kind":"ivr","units":30},
                    {"kind":"agent","units":120,"attributes":{"dedicated":true,"operator_location":"msk"}}],
                    "bandwidth_mbps": 100}"#,
            )
            .unwrap();
        assert_eq!(cdr.legs.len(), 2);
        assert_eq!(cdr.legs[1].attributes.get("dedicated"), Some("true"));
        assert_eq!(cdr.attributes.get("bandwidth_mbps"), Some("100"));
        assert_eq!(cdr.units, None);
        assert_eq!(
            d.decode_str("{not json").unwrap_err().code(),
            "cdr.malformed"
        );
        assert_eq!(d.decode_str("[1]").unwrap_err().code(), "cdr.malformed");
        let legs =
            parse_legs("ivr:30; agent:120:dedicated=false,operator_location=nsk ;post:45").unwrap();
        assert_eq!(legs.len(), 3);
        assert_eq!(legs[1].attributes.get("operator_location"), Some("nsk"));
    }
}
