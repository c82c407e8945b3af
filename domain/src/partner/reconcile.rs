//! Reconciliation with the partner's own statement.
//!
//! The partner sends CSV (a header with `amount` and one of `record_id`, `product`, `service`,
//! optionally `currency`) or JSON lines (`{"record_id": "c1", "amount": "1.20"}` or
//! `{"product": "music-plus", "amount": "380.00"}`). Parsing never stops at a bad line: every
//! bad line is reported with its line number and a code (`reconcile.*`), and the rest is
//! reconciled.
//!
//! Comparison (differences are always `theirs - ours`):
//! - per record: their record claims against our exact [`ItemShare`]s: matched (within the
//!   tolerance), differing, only ours, only theirs;
//! - per statement line: their total for the product or service when they gave one, else the
//!   sum of their record claims for our records of that line, against our rounded line share;
//! - totals: our subtotal (shares before guarantee and cap) against the sum of their line
//!   totals when they gave any, else the sum of all their record claims.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::agreement::ShareTarget;
use super::error::PartnerError;
use super::share::ItemShare;
use super::statement::PartnerStatement;
use crate::ids::CdrId;
use crate::money::{Currency, MoneyError};

/// Most lines read from one partner statement (the rest is reported, not read).
pub const CLAIM_LINES_MAX: usize = 2_000_000;
/// Largest absolute amount accepted on one line (10^15): sums of a whole file stay far inside
/// `Decimal`'s range, so reconciling never overflows on their input.
pub const CLAIM_AMOUNT_MAX: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// Format of a partner statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimFormat {
    /// Comma-separated with a header line.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// What one claim is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKey {
    /// One record.
    Record(CdrId),
    /// A total for a statement line.
    Line(ShareTarget),
}

/// One good line of the partner's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Line number in their file (1-based, the CSV header is line 1).
    pub line: u64,
    /// What it is about.
    pub key: ClaimKey,
    /// Amount they claim.
    pub amount: Decimal,
}

/// One bad line, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimProblem {
    /// Line number.
    pub line: u64,
    /// Stable code (`reconcile.bad_line`, `reconcile.missing_key`, `reconcile.bad_amount`,
    /// `reconcile.currency_mismatch`, `reconcile.duplicate`, `reconcile.too_many_lines`).
    pub code: &'static str,
    /// Explanation.
    pub message: String,
}

/// A parsed partner statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Currency of the amounts.
    pub currency: Currency,
    /// Good lines, in file order (duplicates keep the first).
    pub claims: Vec<Claim>,
    /// Bad lines.
    pub problems: Vec<ClaimProblem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonClaim {
    #[serde(default)]
    record_id: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    service: Option<String>,
    amount: serde_json::Value,
    #[serde(default)]
    currency: Option<String>,
}

struct Parser {
    out: Claims,
    seen: BTreeSet<ClaimKey>,
}

impl Parser {
    fn problem(&mut self, line: u64, code: &'static str, message: impl Into<String>) {
        self.out.problems.push(ClaimProblem {
            line,
            code,
            message: message.into(),
        });
    }

    /// Checks one line's fields and keeps it, or reports why not.
    fn line(
        &mut self,
        line: u64,
        keys: [Option<&str>; 3],
        amount: Result<Decimal, String>,
        currency: Option<&str>,
    ) {
        let present: Vec<(usize, &str)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.map(str::trim).filter(|k| !k.is_empty()).map(|k| (i, k)))
            .collect();
        let key = match present.as_slice() {
            [(0, id)] => ClaimKey::Record(CdrId::new(id)),
            [(1, p)] => ClaimKey::Line(ShareTarget::Product(SmolStr::new(p))),
            [(_, s)] => ClaimKey::Line(ShareTarget::Service(SmolStr::new(s))),
            _ => {
                return self.problem(
                    line,
                    "reconcile.missing_key",
                    "give exactly one of record_id, product, service",
                );
            }
        };
        let amount = match amount {
            Ok(amount) => amount,
            Err(text) => {
                return self.problem(
                    line,
                    "reconcile.bad_amount",
                    format!("{text:?} is not a decimal amount of at most {CLAIM_AMOUNT_MAX}"),
                );
            }
        };
        if let Some(code) = currency.map(str::trim).filter(|c| !c.is_empty())
            && code != self.out.currency.code()
        {
            return self.problem(
                line,
                "reconcile.currency_mismatch",
                format!("{code} instead of {}", self.out.currency),
            );
        }
        if !self.seen.insert(key.clone()) {
            return self.problem(line, "reconcile.duplicate", "claimed on an earlier line");
        }
        self.out.claims.push(Claim { line, key, amount });
    }
}

fn decimal(text: &str) -> Result<Decimal, String> {
    let text = text.trim();
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
        .filter(|d| d.abs() <= CLAIM_AMOUNT_MAX)
        .ok_or_else(|| text.to_string())
}

/// Parses a partner statement, reporting each bad line and keeping the good ones. Fails only
/// when the whole file is unusable (`reconcile.format`: a CSV header without `amount` or
/// without any key column).
pub fn parse_claims(
    text: &str,
    format: ClaimFormat,
    currency: Currency,
) -> Result<Claims, PartnerError> {
    let mut parser = Parser {
        out: Claims {
            currency,
            claims: Vec::new(),
            problems: Vec::new(),
        },
        seen: BTreeSet::new(),
    };
    match format {
        ClaimFormat::JsonLines => {
            for (index, raw) in text.lines().enumerate() {
                let line = index as u64 + 1;
                if raw.trim().is_empty() {
                    continue;
                }
                if index >= CLAIM_LINES_MAX {
                    parser.problem(line, "reconcile.too_many_lines", "not read");
                    break;
                }
                match serde_json::from_str::<JsonClaim>(raw) {
                    Ok(claim) => {
                        let amount = match &claim.amount {
                            serde_json::Value::String(s) => decimal(s),
                            serde_json::Value::Number(n) => decimal(&n.to_string()),
                            other => Err(other.to_string()),
                        };
                        let keys = [
                            claim.record_id.as_deref(),
                            claim.product.as_deref(),
                            claim.service.as_deref(),
                        ];
                        parser.line(line, keys, amount, claim.currency.as_deref());
                    }
                    Err(err) => parser.problem(line, "reconcile.bad_line", err.to_string()),
                }
            }
        }
        ClaimFormat::Csv => parse_csv(text, &mut parser)?,
    }
    Ok(parser.out)
}

fn parse_csv(text: &str, parser: &mut Parser) -> Result<(), PartnerError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| PartnerError::ReconcileFormat(e.to_string()))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let keys = [column("record_id"), column("product"), column("service")];
    let Some(amount_column) = column("amount") else {
        return Err(PartnerError::ReconcileFormat(
            "the header has no amount column".into(),
        ));
    };
    if keys.iter().all(Option::is_none) {
        return Err(PartnerError::ReconcileFormat(
            "the header has none of record_id, product, service".into(),
        ));
    }
    let currency_column = column("currency");
    for (index, row) in reader.records().enumerate() {
        match row {
            Ok(row) => {
                let line = row.position().map_or(index as u64 + 2, |p| p.line());
                if index >= CLAIM_LINES_MAX {
                    parser.problem(line, "reconcile.too_many_lines", "not read");
                    break;
                }
                let field = |c: Option<usize>| c.and_then(|c| row.get(c));
                let amount = decimal(row.get(amount_column).unwrap_or(""));
                let key_fields = [field(keys[0]), field(keys[1]), field(keys[2])];
                parser.line(line, key_fields, amount, field(currency_column));
            }
            Err(err) => {
                let line = err.position().map_or(index as u64 + 2, |p| p.line());
                parser.problem(line, "reconcile.bad_line", err.to_string());
            }
        }
    }
    Ok(())
}

/// One record or line compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared<K> {
    /// Record id or statement line.
    pub key: K,
    /// Our amount (zero when only theirs).
    pub ours: Decimal,
    /// Their amount (zero when only ours).
    pub theirs: Decimal,
    /// `theirs - ours`.
    pub difference: Decimal,
}

/// The outcome of a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Currency.
    pub currency: Currency,
    /// Records on both sides within the tolerance.
    pub matched: Vec<Compared<CdrId>>,
    /// Records on both sides with different amounts.
    pub differing: Vec<Compared<CdrId>>,
    /// Records only we counted.
    pub only_ours: Vec<Compared<CdrId>>,
    /// Records only they claim.
    pub only_theirs: Vec<Compared<CdrId>>,
    /// Every statement line (ours, theirs, or both).
    pub lines: Vec<Compared<ShareTarget>>,
    /// Totals.
    pub total: Compared<()>,
    /// Their bad lines, carried over.
    pub problems: Vec<ClaimProblem>,
}

fn compared<K>(key: K, ours: Decimal, theirs: Decimal) -> Result<Compared<K>, PartnerError> {
    let difference = theirs
        .checked_sub(ours)
        .ok_or(PartnerError::Money(MoneyError::Overflow))?;
    Ok(Compared {
        key,
        ours,
        theirs,
        difference,
    })
}

/// Compares our statement and record shares with their claims; a record differs when the
/// absolute difference is above `tolerance`.
pub fn reconcile(
    statement: &PartnerStatement,
    our_items: &[ItemShare],
    claims: &Claims,
    tolerance: Decimal,
) -> Result<Reconciliation, PartnerError> {
    if claims.currency != statement.currency {
        return Err(PartnerError::CurrencyMismatch {
            given: claims.currency,
            expected: statement.currency,
        });
    }
    let ours: BTreeMap<&str, &ItemShare> = our_items.iter().map(|i| (i.item.as_str(), i)).collect();
    let mut theirs_records: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut theirs_lines: BTreeMap<&ShareTarget, Decimal> = BTreeMap::new();
    for claim in &claims.claims {
        match &claim.key {
            ClaimKey::Record(id) => {
                theirs_records.insert(id.as_str(), claim.amount);
            }
            ClaimKey::Line(target) => {
                theirs_lines.insert(target, claim.amount);
            }
        }
    }
    let mut out = Reconciliation {
        currency: statement.currency,
        matched: Vec::new(),
        differing: Vec::new(),
        only_ours: Vec::new(),
        only_theirs: Vec::new(),
        lines: Vec::new(),
        total: compared((), Decimal::ZERO, Decimal::ZERO)?,
        problems: claims.problems.clone(),
    };
    // Their record claims summed per our line, for lines without a total of theirs.
    let mut theirs_by_line: BTreeMap<&ShareTarget, Decimal> = BTreeMap::new();
    for (id, item) in &ours {
        let ours_amount = item.share.amount;
        match theirs_records.get(id) {
            Some(theirs) => {
                *theirs_by_line.entry(&item.target).or_default() += *theirs;
                let c = compared(CdrId::new(id), ours_amount, *theirs)?;
                if c.difference.abs() <= tolerance {
                    out.matched.push(c);
                } else {
                    out.differing.push(c);
                }
            }
            None => out
                .only_ours
                .push(compared(CdrId::new(id), ours_amount, Decimal::ZERO)?),
        }
    }
    for (id, theirs) in &theirs_records {
        if !ours.contains_key(id) {
            out.only_theirs
                .push(compared(CdrId::new(id), Decimal::ZERO, *theirs)?);
        }
    }
    let mut targets: BTreeSet<&ShareTarget> = statement.lines.iter().map(|l| &l.target).collect();
    targets.extend(theirs_lines.keys().copied());
    for target in targets {
        let ours_amount = statement
            .line(target)
            .map_or(Decimal::ZERO, |l| l.share.money.amount);
        let theirs = theirs_lines
            .get(target)
            .or_else(|| theirs_by_line.get(target))
            .copied()
            .unwrap_or(Decimal::ZERO);
        out.lines
            .push(compared(target.clone(), ours_amount, theirs)?);
    }
    let theirs_total: Decimal = if theirs_lines.is_empty() {
        theirs_records.values().sum()
    } else {
        theirs_lines.values().sum()
    };
    out.total = compared((), statement.subtotal.money.amount, theirs_total)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use rust_decimal_macros::dec;

    use super::super::fixtures::*;
    use super::super::share::{Accumulated, Position};
    use super::super::statement::build_statement;
    use super::*;

    /// Our March statement: 30 % of 400.00 + 500.00 + 334.56 = 370.368 -> 370.37.
    fn ours() -> (PartnerStatement, Vec<ItemShare>) {
        let agreement = music_30();
        let mut position = Position::new(&agreement, march());
        let mut items = Vec::new();
        for (id, revenue) in [
            ("c1", dec!(400.00)),
            ("c2", dec!(500.00)),
            ("c3", dec!(334.56)),
        ] {
            let r = record(id, "music-plus", date(2026, 3, 3), revenue);
            if let Accumulated::Counted(share) = position.accumulate(&agreement, &r).unwrap() {
                items.push(share);
            }
        }
        (build_statement(&position, &agreement, None).unwrap(), items)
    }

    #[test]
    fn their_product_total_of_380_differs_by_9_63() {
        let (statement, items) = ours();
        let claims = parse_claims(
            "product,amount\nmusic-plus,380.00\n",
            ClaimFormat::Csv,
            statement.currency,
        )
        .unwrap();
        let r = reconcile(&statement, &items, &claims, Decimal::ZERO).unwrap();
        // 380.00 - 370.37 = 9.63.
        assert_eq!(r.lines.len(), 1);
        assert_eq!(r.lines[0].key, product("music-plus"));
        assert_eq!(r.lines[0].ours, dec!(370.37));
        assert_eq!(r.lines[0].theirs, dec!(380.00));
        assert_eq!(r.lines[0].difference, dec!(9.63));
        assert_eq!(r.total.difference, dec!(9.63));
        // They sent no records: all of ours are only ours.
        assert_eq!(r.only_ours.len(), 3);
    }

    #[test]
    fn record_level_matching_with_bad_lines_reported() {
        let (statement, items) = ours();
        let text = [
            r#"{"record_id": "c1", "amount": "120.00"}"#,
            r#"{"record_id": "c2", "amount": 151.5}"#,
            r#"{"record_id": "c9", "amount": "4.00"}"#,
            r#"{"record_id": "c1", "amount": "120.00"}"#,
            r#"{"record_id": "c4", "amount": "abc"}"#,
            "not json",
            "",
            r#"{"record_id": "c5", "amount": "1", "currency": "USD"}"#,
            r#"{"amount": "1"}"#,
        ]
        .join("\n");
        let claims = parse_claims(&text, ClaimFormat::JsonLines, statement.currency).unwrap();
        let problems: Vec<(u64, &str)> = claims.problems.iter().map(|p| (p.line, p.code)).collect();
        assert_eq!(
            problems,
            [
                (4, "reconcile.duplicate"),
                (5, "reconcile.bad_amount"),
                (6, "reconcile.bad_line"),
                (8, "reconcile.currency_mismatch"),
                (9, "reconcile.missing_key"),
            ]
        );
        let r = reconcile(&statement, &items, &claims, dec!(0.005)).unwrap();
        // c1: 120.00 vs 120.00; c2: 151.5 - 150.00 = 1.5; c3 only ours (100.368); c9 only theirs.
        assert_eq!(r.matched.len(), 1);
        assert_eq!(r.differing[0].key, CdrId::new("c2"));
        assert_eq!(r.differing[0].difference, dec!(1.5));
        assert_eq!(r.only_ours[0].ours, dec!(100.368));
        assert_eq!(r.only_theirs[0].theirs, dec!(4.00));
        // Their line (records of our line only): 120.00 + 151.5 = 271.50 vs 370.37.
        assert_eq!(r.lines[0].difference, dec!(-98.87));
        // Totals: 120.00 + 151.5 + 4.00 = 275.50 vs 370.37.
        assert_eq!(r.total.difference, dec!(-94.87));
        assert_eq!(r.problems.len(), 5);
    }

    #[test]
    fn csv_rows_keep_their_line_numbers() {
        let text = "record_id,amount\nc1,1.00\nc2\nc3,x\n,2\nc4,2.50\n";
        let claims = parse_claims(text, ClaimFormat::Csv, eur(dec!(0)).currency).unwrap();
        let problems: Vec<(u64, &str)> = claims.problems.iter().map(|p| (p.line, p.code)).collect();
        assert_eq!(
            problems,
            [
                (3, "reconcile.bad_line"),
                (4, "reconcile.bad_amount"),
                (5, "reconcile.missing_key"),
            ]
        );
        let lines: Vec<u64> = claims.claims.iter().map(|c| c.line).collect();
        assert_eq!(lines, [2, 6]);
        assert_eq!(CLAIM_AMOUNT_MAX, dec!(1_000_000_000_000_000));
        let big = parse_claims(
            "product,amount\nx,1e16\n",
            ClaimFormat::Csv,
            eur(dec!(0)).currency,
        );
        assert_eq!(big.unwrap().problems[0].code, "reconcile.bad_amount");
        let err = parse_claims("id,value\n", ClaimFormat::Csv, eur(dec!(0)).currency).unwrap_err();
        assert_eq!(err.code(), "reconcile.format");
    }
}
