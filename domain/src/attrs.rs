//! Attributes of CDRs, legs and customers, and the conditions rules put on them.
//!
//! A condition is written as text in the catalogue, e.g. `customer.type == business`,
//! `cdr.bandwidth_mbps >= 100`, `leg.operator_location in [msk, spb]`, `leg.dedicated == true`.
//! The left side names a scope (`cdr`, `leg`, `customer`, or `period` for the rule's period
//! counter) and a key. Values compare as decimals when both sides are numbers, as text otherwise.
//! A missing attribute never matches (whatever the operator).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// A small ordered key/value map (a handful of entries; a scan beats hashing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(#[serde(with = "attr_map")] pub Vec<(SmolStr, SmolStr)>);

impl Attributes {
    /// An empty set.
    pub fn new() -> Self {
        Attributes(Vec::new())
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: impl Into<SmolStr>, value: impl Into<SmolStr>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// True when there is no attribute.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<SmolStr>, V: Into<SmolStr>> FromIterator<(K, V)> for Attributes {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut attrs = Attributes::new();
        for (k, v) in iter {
            attrs.set(k, v);
        }
        attrs
    }
}

/// Where a condition looks its attribute up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The usage record's own attributes (and its fields: `service`, `direction`, `trunk`).
    Cdr,
    /// The attributes of the leg being rated (`kind` is the leg kind).
    Leg,
    /// The customer's (subscriber profile's) attributes.
    Customer,
    /// The rule's period counter: `period.units` is the units counted before this record.
    Period,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// One of a list.
    In,
    /// None of a list.
    NotIn,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Scope of the attribute.
    pub scope: Scope,
    /// Attribute name.
    pub key: SmolStr,
    /// Operator.
    pub op: Op,
    /// Right side values (one, or several for `in` / `not in`).
    pub values: Vec<Operand>,
    text: String,
}

/// A right-side value, pre-parsed as a decimal when it is a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    /// The text.
    pub text: SmolStr,
    /// The number, if the text is one.
    pub number: Option<Decimal>,
}

impl Operand {
    fn new(text: &str) -> Operand {
        Operand {
            text: SmolStr::new(text),
            number: Decimal::from_str(text).ok(),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a condition text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition {text:?}: {reason}")]
pub struct ConditionError {
    /// The condition as written.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl FromStr for Condition {
    type Err = ConditionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ConditionError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        // Operators, longest first so that `>=` is not read as `>`.
        const OPS: [(&str, Op); 8] = [
            (" not in ", Op::NotIn),
            (" in ", Op::In),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (pos, token, op) = OPS
            .iter()
            .filter_map(|(token, op)| trimmed.find(token).map(|pos| (pos, *token, *op)))
            .min_by_key(|(pos, token, _)| (*pos, usize::MAX - token.len()))
            .ok_or_else(|| fail("no operator (use ==, !=, <, <=, >, >=, in, not in)"))?;
        let left = trimmed[..pos].trim();
        let right = trimmed[pos + token.len()..].trim();
        let (scope_text, key) = left
            .split_once('.')
            .ok_or_else(|| fail("left side must be scope.key (cdr., leg., customer., period.)"))?;
        let scope = match scope_text {
            "cdr" => Scope::Cdr,
            "leg" => Scope::Leg,
            "customer" => Scope::Customer,
            "period" => Scope::Period,
            _ => return Err(fail("unknown scope (use cdr, leg, customer or period)")),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(fail("attribute name must be letters, digits, '_' or '-'"));
        }
        if scope == Scope::Period && key != "units" {
            return Err(fail("the period scope has one attribute: period.units"));
        }
        let values: Vec<Operand> = match op {
            Op::In | Op::NotIn => {
                let inner = right
                    .strip_prefix('[')
                    .and_then(|r| r.strip_suffix(']'))
                    .ok_or_else(|| fail("a list must be written [a, b, c]"))?;
                inner
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Operand::new(unquote(v)))
                    .collect()
            }
            _ => vec![Operand::new(unquote(right))],
        };
        if values.is_empty() || values.iter().any(|v| v.text.is_empty()) {
            return Err(fail("missing value"));
        }
        if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && values[0].number.is_none() {
            return Err(fail("ordering operators need a number on the right"));
        }
        Ok(Condition {
            scope,
            key: SmolStr::new(key),
            op,
            values,
            text: trimmed.to_string(),
        })
    }
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

impl Condition {
    /// Evaluates against a whole number (the `period.units` counter).
    pub fn matches_units(&self, units: u64) -> bool {
        let mut buf = [0u8; 20];
        let mut n = units;
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.matches(std::str::from_utf8(&buf[i..]).ok())
    }

    /// Evaluates against an attribute value (`None` when the attribute is missing).
    pub fn matches(&self, value: Option<&str>) -> bool {
        let Some(value) = value else { return false };
        let number = || Decimal::from_str(value).ok();
        let equal = |operand: &Operand| match operand.number {
            Some(n) => number().map_or(operand.text == value, |v| v == n),
            None => operand.text == value,
        };
        match self.op {
            Op::Eq => equal(&self.values[0]),
            Op::Ne => !equal(&self.values[0]),
            Op::In => self.values.iter().any(equal),
            Op::NotIn => !self.values.iter().any(equal),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let (Some(v), Some(limit)) = (number(), self.values[0].number) else {
                    return false;
                };
                match self.op {
                    Op::Lt => v < limit,
                    Op::Le => v <= limit,
                    Op::Gt => v > limit,
                    _ => v >= limit,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates_conditions() {
        let c: Condition = "customer.type == business".parse().unwrap();
        assert_eq!(c.scope, Scope::Customer);
        assert!(c.matches(Some("business")));
        assert!(!c.matches(Some("residential")));
        assert!(!c.matches(None));

        let c: Condition = "cdr.bandwidth_mbps >= 100".parse().unwrap();
        assert!(c.matches(Some("100")));
        assert!(c.matches(Some("250.5")));
        assert!(!c.matches(Some("99.99")));
        assert!(!c.matches(Some("fast")));

        let c: Condition = "leg.operator_location in [msk, \"spb\"]".parse().unwrap();
        assert!(c.matches(Some("spb")));
        assert!(!c.matches(Some("nsk")));
        let c: Condition = "leg.operator_location not in [msk, spb]".parse().unwrap();
        assert!(c.matches(Some("nsk")));
        let c: Condition = "cdr.qos != gold".parse().unwrap();
        assert!(c.matches(Some("silver")));
        let c: Condition = "cdr.rate == 1.0".parse().unwrap();
        assert!(c.matches(Some("1")), "numbers compare as numbers");
    }

    #[test]
    fn rejects_bad_conditions_with_a_reason() {
        for bad in [
            "customer.type",
            "type == x",
            "foo.type == x",
            "cdr.x > abc",
            "cdr.x in a, b",
            "period.minutes > 1",
            "cdr. == x",
        ] {
            assert!(bad.parse::<Condition>().is_err(), "{bad} should fail");
        }
    }
}

/// Attributes are written as a JSON/TOML object (`{ type = "business" }`), kept in order.
mod attr_map {
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};
    use smol_str::SmolStr;

    pub fn serialize<S: Serializer>(pairs: &[(SmolStr, SmolStr)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in pairs {
            map.serialize_entry(k.as_str(), v.as_str())?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(SmolStr, SmolStr)>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(SmolStr, SmolStr)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of attribute names to text, number or boolean values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(SmolStr, SmolStr)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Scalar>()? {
                    out.retain(|(key, _)| key != &k);
                    out.push((SmolStr::new(k), v.0));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }

    struct Scalar(SmolStr);

    impl<'de> serde::Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Scalar;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("text, a number or a boolean")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                    Ok(Scalar(SmolStr::new(v)))
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                    Ok(Scalar(smol_str::format_smolstr!("{v}")))
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                    Ok(Scalar(smol_str::format_smolstr!("{v}")))
                }
                fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                    Ok(Scalar(smol_str::format_smolstr!("{v}")))
                }
                fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                    Ok(Scalar(SmolStr::new(if v { "true" } else { "false" })))
                }
            }
            d.deserialize_any(V)
        }
    }
}
