//! Invoice numbers from a template such as `INV-{yyyy}-{seq:06}`.
//!
//! Placeholders: `{yyyy}` (year), `{yy}` (two-digit year), `{mm}` (month, two digits),
//! `{series}` (a series code given when rendering, e.g. per legal entity), and exactly one
//! `{seq}` or `{seq:N}` (the sequence number, zero-padded to N digits; a longer number is
//! printed in full, never truncated). Literal text is ASCII letters, digits and `-_./#`.
//!
//! Storage keeps one gap-free counter per **series key**: the template rendered without its
//! `{seq}`, separators trimmed at both ends (`INV-{yyyy}-{seq:06}` in 2026 -> `INV-2026`). A
//! template with `{mm}` therefore restarts numbering every month, one without a date never.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::error::BillingError;

/// Longest template accepted.
pub const TEMPLATE_LEN_MAX: usize = 64;
/// Widest zero-padding of `{seq:N}` (u64 has at most 20 digits).
pub const SEQ_WIDTH_MAX: usize = 20;
/// Longest series code.
pub const SERIES_LEN_MAX: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Year4,
    Year2,
    Month,
    Series,
    Seq(usize),
}

/// A parsed, valid invoice number template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NumberTemplate {
    text: String,
    parts: Vec<Part>,
}

fn bad(why: impl fmt::Display) -> BillingError {
    BillingError::BadNumberTemplate(why.to_string())
}

fn literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./#".contains(c)
}

impl NumberTemplate {
    /// Parses and validates a template (`billing.bad_number_template`).
    pub fn parse(text: &str) -> Result<NumberTemplate, BillingError> {
        if text.is_empty() || text.len() > TEMPLATE_LEN_MAX {
            return Err(bad(format!("1..={TEMPLATE_LEN_MAX} characters")));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        let mut seqs = 0;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let close = after
                    .find('}')
                    .ok_or_else(|| bad(format!("unclosed placeholder in {text:?}")))?;
                let name = &after[..close];
                let part = match name {
                    "yyyy" => Part::Year4,
                    "yy" => Part::Year2,
                    "mm" => Part::Month,
                    "series" => Part::Series,
                    "seq" => Part::Seq(0),
                    _ => match name.strip_prefix("seq:") {
                        Some(width) => {
                            let width = width
                                .parse::<usize>()
                                .ok()
                                .filter(|w| {
                                    (1..=SEQ_WIDTH_MAX).contains(w) && !width.starts_with('+')
                                })
                                .ok_or_else(|| {
                                    bad(format!("{{{name}}}: width must be 1..={SEQ_WIDTH_MAX}"))
                                })?;
                            Part::Seq(width)
                        }
                        None => return Err(bad(format!("unknown placeholder {{{name}}}"))),
                    },
                };
                if matches!(part, Part::Seq(_)) {
                    seqs += 1;
                }
                parts.push(part);
                rest = &after[close + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let literal = &rest[..end];
                if let Some(c) = literal.chars().find(|c| !literal_char(*c)) {
                    return Err(bad(format!(
                        "character {c:?} is not allowed (letters, digits, -_./#)"
                    )));
                }
                parts.push(Part::Literal(literal.to_string()));
                rest = &rest[end..];
            }
        }
        if seqs != 1 {
            return Err(bad(format!(
                "needs exactly one {{seq}} or {{seq:N}}, found {seqs}"
            )));
        }
        Ok(NumberTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether rendering needs a series code.
    pub fn uses_series(&self) -> bool {
        self.parts.contains(&Part::Series)
    }

    fn render_parts(
        &self,
        date: Date,
        series: &str,
        seq: Option<u64>,
    ) -> Result<String, BillingError> {
        if self.uses_series()
            && (series.is_empty()
                || series.len() > SERIES_LEN_MAX
                || !series
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(bad(format!(
                "series {series:?}: the template needs 1..={SERIES_LEN_MAX} letters, digits, - or _"
            )));
        }
        let mut out = String::with_capacity(self.text.len() + 8);
        for part in &self.parts {
            match (part, seq) {
                (Part::Literal(text), _) => out.push_str(text),
                (Part::Year4, _) => out.push_str(&format!("{:04}", date.year())),
                (Part::Year2, _) => out.push_str(&format!("{:02}", date.year().rem_euclid(100))),
                (Part::Month, _) => out.push_str(&format!("{:02}", date.month())),
                (Part::Series, _) => out.push_str(series),
                (Part::Seq(width), Some(seq)) => out.push_str(&format!("{seq:0width$}")),
                (Part::Seq(_), None) => {}
            }
        }
        Ok(out)
    }

    /// The invoice number for sequence number `seq` (from 1) of the series in force on `date`.
    pub fn render(&self, date: Date, series: &str, seq: u64) -> Result<String, BillingError> {
        if seq == 0 {
            return Err(BillingError::BadSequence(seq));
        }
        self.render_parts(date, series, Some(seq))
    }

    /// The key of the counter that numbers invoices dated `date` (`default` if empty).
    pub fn series_key(&self, date: Date, series: &str) -> Result<String, BillingError> {
        let key = self.render_parts(date, series, None)?;
        let key = key.trim_matches(|c: char| "-_./#".contains(c));
        Ok(if key.is_empty() {
            "default".to_string()
        } else {
            key.to_string()
        })
    }
}

impl TryFrom<String> for NumberTemplate {
    type Error = BillingError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        NumberTemplate::parse(&text)
    }
}

impl From<NumberTemplate> for String {
    fn from(template: NumberTemplate) -> Self {
        template.text
    }
}

impl fmt::Display for NumberTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
