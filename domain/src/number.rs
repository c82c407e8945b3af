//! Telephone numbers: E.164 digits and the rules that normalise what switches write.
//!
//! Switches write numbers in national form (`030 1234567`), with an international access code
//! (`0049301234567`), with a `+`, or with a national trunk prefix that is not `0` (Russia's
//! `8 800 ...`). A [`NumberPlan`] turns these into E.164 digits (no `+`): a leading `+` means the
//! rest is already international; otherwise the first matching [`RewriteRule`] replaces a prefix.
//! `libphonenumber` (the `phonenumber` crate) was considered and not used on the hot path: it
//! validates against per-country metadata at microseconds per number, while mediation needs
//! operator-defined prefix rewrites at tens of nanoseconds (see docs/ARCHITECTURE.md).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest E.164 number (ITU-T E.164: 15 digits).
pub const E164_DIGITS_MAX: usize = 15;

/// A number in E.164 form: 1 to 15 ASCII digits, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Number {
    len: u8,
    digits: [u8; E164_DIGITS_MAX],
}

impl Number {
    /// Builds a number from digits already in E.164 form.
    pub fn from_digits(digits: &str) -> Result<Number, NumberError> {
        let bytes = digits.as_bytes();
        if bytes.is_empty() || bytes.len() > E164_DIGITS_MAX {
            return Err(NumberError::Length {
                number: digits.to_string(),
            });
        }
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(NumberError::NotDigits {
                number: digits.to_string(),
            });
        }
        let mut out = [0u8; E164_DIGITS_MAX];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Number {
            len: bytes.len() as u8,
            digits: out,
        })
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The digits as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.as_str())
    }
}

impl Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Number::from_digits(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a number cannot be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Empty or longer than 15 digits after normalisation.
    #[error("number {number:?} is not 1 to 15 digits after normalisation")]
    Length {
        /// The number as received.
        number: String,
    },
    /// Contains something other than digits and the separators ` -.()/`.
    #[error("number {number:?} contains characters other than digits")]
    NotDigits {
        /// The number as received.
        number: String,
    },
}

/// Replace a leading `prefix` by `replace` (e.g. `0` -> `49`, `00` -> ``, `8` -> `7`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteRule {
    /// Leading digits to match.
    pub prefix: String,
    /// Digits that replace them.
    #[serde(default)]
    pub replace: String,
    /// Only numbers with exactly this many digits (before rewriting) match, if set.
    #[serde(default)]
    pub length: Option<usize>,
}

/// Normalisation rules: first matching rewrite wins; `+` means already international.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberPlan {
    /// Rewrites tried in order.
    #[serde(default)]
    pub rewrites: Vec<RewriteRule>,
}

impl NumberPlan {
    /// Normalises `raw` to E.164 digits.
    pub fn normalise(&self, raw: &str) -> Result<Number, NumberError> {
        let mut buf = [0u8; 32];
        let mut len = 0usize;
        let mut international = false;
        for (i, b) in raw.trim().bytes().enumerate() {
            match b {
                b'0'..=b'9' => {
                    if len == buf.len() {
                        return Err(NumberError::Length {
                            number: raw.to_string(),
                        });
                    }
                    buf[len] = b;
                    len += 1;
                }
                b'+' if i == 0 => international = true,
                b' ' | b'-' | b'.' | b'(' | b')' | b'/' => {}
                _ => {
                    return Err(NumberError::NotDigits {
                        number: raw.to_string(),
                    });
                }
            }
        }
        let digits = &buf[..len];
        // Digits are ASCII, so this cannot fail; an empty string fails the length check below.
        let text = std::str::from_utf8(digits).unwrap_or("");
        if !international {
            for rule in &self.rewrites {
                if rule.length.is_some_and(|n| n != len) {
                    continue;
                }
                if let Some(rest) = text.strip_prefix(rule.prefix.as_str()) {
                    let total = rule.replace.len() + rest.len();
                    if total == 0 || total > E164_DIGITS_MAX {
                        return Err(NumberError::Length {
                            number: raw.to_string(),
                        });
                    }
                    let mut out = [0u8; E164_DIGITS_MAX];
                    out[..rule.replace.len()].copy_from_slice(rule.replace.as_bytes());
                    out[rule.replace.len()..total].copy_from_slice(rest.as_bytes());
                    return Ok(Number {
                        len: total as u8,
                        digits: out,
                    });
                }
            }
        }
        Number::from_digits(text).map_err(|e| match e {
            NumberError::Length { .. } => NumberError::Length {
                number: raw.to_string(),
            },
            NumberError::NotDigits { .. } => NumberError::NotDigits {
                number: raw.to_string(),
            },
        })
    }

    /// Checks the rules themselves (digits only); returns what is wrong, per rule index.
    pub fn problems(&self) -> Vec<(usize, String)> {
        self.rewrites
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                if r.prefix.is_empty() || !digits(&r.prefix) {
                    Some((
                        i,
                        format!("prefix {:?} must be one or more digits", r.prefix),
                    ))
                } else if !digits(&r.replace) {
                    Some((i, format!("replace {:?} must be digits", r.replace)))
                } else {
                    None
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn germany() -> NumberPlan {
        NumberPlan {
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
        }
    }

    #[test]
    fn normalises_national_and_international_forms() {
        let plan = germany();
        assert_eq!(
            plan.normalise("+49 30 1234567").unwrap().as_str(),
            "49301234567"
        );
        assert_eq!(
            plan.normalise("0049301234567").unwrap().as_str(),
            "49301234567"
        );
        assert_eq!(
            plan.normalise("030/123-4567").unwrap().as_str(),
            "49301234567"
        );
        assert_eq!(
            plan.normalise("49301234567").unwrap().as_str(),
            "49301234567"
        );
    }

    #[test]
    fn russian_trunk_prefix_8_only_for_11_digit_numbers() {
        let plan = NumberPlan {
            rewrites: vec![
                RewriteRule {
                    prefix: "810".into(),
                    replace: "".into(),
                    length: None,
                },
                RewriteRule {
                    prefix: "8".into(),
                    replace: "7".into(),
                    length: Some(11),
                },
            ],
        };
        assert_eq!(
            plan.normalise("8 800 555-35-35").unwrap().as_str(),
            "78005553535"
        );
        assert_eq!(
            plan.normalise("81049301234567").unwrap().as_str(),
            "49301234567"
        );
        assert_eq!(
            plan.normalise("811").unwrap().as_str(),
            "811",
            "short numbers are kept"
        );
    }

    #[test]
    fn rejects_garbage() {
        let plan = germany();
        assert!(matches!(
            plan.normalise("abc"),
            Err(NumberError::NotDigits { .. })
        ));
        assert!(matches!(
            plan.normalise(""),
            Err(NumberError::Length { .. })
        ));
        assert!(matches!(
            plan.normalise("+1234567890123456"),
            Err(NumberError::Length { .. })
        ));
        assert!(matches!(
            plan.normalise("12+3"),
            Err(NumberError::NotDigits { .. })
        ));
    }
}
