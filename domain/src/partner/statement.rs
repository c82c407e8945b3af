//! The partner statement of a period (the self-billing document): one line per product or
//! service, the minimum guarantee top-up and the cap, tax lines and totals.
//!
//! Order of computation, all in minor units after the first step:
//! 1. each line's exact share is rounded half-up to minor units (once, here);
//! 2. `subtotal` is the sum of the rounded lines;
//! 3. below the minimum guarantee, `guarantee_top_up` lifts it to the guarantee; above the
//!    cap, `cap_cut` brings it down to the cap; `net = subtotal + top_up - cap_cut`;
//! 4. tax lines on `net` with [`crate::billing::tax::tax_lines`] (rounded once per tax line);
//! 5. `total = net + exclusive taxes` (an inclusive tax is already inside `net`).
//!
//! Guarantee and cap are those of the version in force on the last day of the period that is
//! inside the term.

use std::collections::BTreeMap;

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::agreement::{Agreement, ShareTarget};
use super::error::PartnerError;
use super::share::Position;
use crate::billing::tax::{TaxBase, TaxLine, TaxScheme, tax_lines};
use crate::billing::{Amount, NumberTemplate, Period};
use crate::ids::PartnerId;
use crate::money::{Currency, Money, MoneyError, RoundingMode};

/// One statement line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Product, service or invoice total.
    pub target: ShareTarget,
    /// Records (invoices) counted.
    pub records: u64,
    /// Units.
    pub units: u64,
    /// Revenue shared, rounded half-up to minor units.
    pub base: Amount,
    /// Exact share before rounding.
    pub share_exact: Decimal,
    /// Share, rounded half-up to minor units.
    pub share: Amount,
}

/// How the partner's share is taxed (the partner's jurisdiction and the category of the
/// service it sells).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementTax {
    /// Tax scheme.
    pub scheme: TaxScheme,
    /// Category of the partner's supply.
    pub category: SmolStr,
    /// Partner's tax jurisdiction.
    pub jurisdiction: SmolStr,
}

/// A partner statement for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerStatement {
    /// Partner.
    pub partner: PartnerId,
    /// Agreement.
    pub agreement: SmolStr,
    /// Period.
    pub period: Period,
    /// Currency.
    pub currency: Currency,
    /// Lines, by target.
    pub lines: Vec<StatementLine>,
    /// Sum of the rounded line shares.
    pub subtotal: Amount,
    /// Added to reach the minimum guarantee (zero when none applies).
    pub guarantee_top_up: Amount,
    /// Removed to respect the cap (zero when none applies).
    pub cap_cut: Amount,
    /// Owed to the partner before tax.
    pub net: Amount,
    /// Tax lines.
    pub tax_lines: Vec<TaxLine>,
    /// Sum of the exclusive taxes.
    pub tax: Amount,
    /// Owed to the partner.
    pub total: Amount,
    /// Self-billing document number, once assigned.
    pub number: Option<String>,
}

fn to_minor(exact: Decimal, currency: Currency) -> Result<Amount, PartnerError> {
    let rounded = Money::new(exact, currency).round_to_minor(RoundingMode::HalfUp);
    Ok(Amount::exact(rounded)?)
}

fn add(a: i64, b: i64) -> Result<i64, PartnerError> {
    a.checked_add(b)
        .ok_or(PartnerError::Money(MoneyError::Overflow))
}

/// The last day of `period` inside the agreement's term.
fn settlement_day(agreement: &Agreement, period: &Period) -> Option<Date> {
    let end = match agreement.to {
        Some(to) if to < period.end => to,
        _ => period.end,
    };
    let day = end.yesterday().ok()?;
    (day >= period.start && agreement.in_term(day)).then_some(day)
}

/// Builds the statement of `position` (no number yet: see [`PartnerStatement::assign_number`]).
pub fn build_statement(
    position: &Position,
    agreement: &Agreement,
    tax: Option<&StatementTax>,
) -> Result<PartnerStatement, PartnerError> {
    if position.agreement != agreement.id {
        return Err(PartnerError::OutsidePosition {
            item: position.agreement.clone(),
            message: format!("the statement is built with agreement {}", agreement.id),
        });
    }
    let currency = position.currency;
    let mut lines = Vec::with_capacity(position.lines.len());
    let mut subtotal = 0i64;
    for (target, totals) in &position.lines {
        let share = to_minor(totals.share, currency)?;
        subtotal = add(subtotal, share.minor)?;
        lines.push(StatementLine {
            target: target.clone(),
            records: totals.records,
            units: totals.units,
            base: to_minor(totals.base, currency)?,
            share_exact: totals.share,
            share,
        });
    }
    let version = settlement_day(agreement, &position.period).and_then(|d| agreement.version_at(d));
    let floor = version
        .and_then(|v| v.min_guarantee)
        .map(|m| m.to_minor())
        .transpose()?;
    let cap = version
        .and_then(|v| v.cap)
        .map(|m| m.to_minor())
        .transpose()?;
    let overflow = || PartnerError::Money(MoneyError::Overflow);
    let top_up = match floor {
        Some(floor) => floor.checked_sub(subtotal).ok_or_else(overflow)?.max(0),
        None => 0,
    };
    let cap_cut = match cap {
        Some(cap) => subtotal.checked_sub(cap).ok_or_else(overflow)?.max(0),
        None => 0,
    };
    let net = add(subtotal, top_up)?
        .checked_sub(cap_cut)
        .ok_or_else(overflow)?;
    let tax_lines = match tax {
        Some(tax) => {
            let mut bases = BTreeMap::new();
            bases.insert(
                TaxBase {
                    category: tax.category.clone(),
                    jurisdiction: tax.jurisdiction.clone(),
                },
                net,
            );
            tax_lines(&tax.scheme, &bases, currency)?
        }
        None => Vec::new(),
    };
    let mut tax_minor = 0i64;
    for line in tax_lines.iter().filter(|l| !l.inclusive) {
        tax_minor = add(tax_minor, line.tax.minor)?;
    }
    Ok(PartnerStatement {
        partner: position.partner.clone(),
        agreement: position.agreement.clone(),
        period: position.period,
        currency,
        lines,
        subtotal: Amount::from_minor(subtotal, currency),
        guarantee_top_up: Amount::from_minor(top_up, currency),
        cap_cut: Amount::from_minor(cap_cut, currency),
        net: Amount::from_minor(net, currency),
        tax_lines,
        tax: Amount::from_minor(tax_minor, currency),
        total: Amount::from_minor(add(net, tax_minor)?, currency),
        number: None,
    })
}

impl PartnerStatement {
    /// The line of `target`, if any.
    pub fn line(&self, target: &ShareTarget) -> Option<&StatementLine> {
        self.lines.iter().find(|l| &l.target == target)
    }

    /// Numbers the self-billing document: `seq` comes from the counter of
    /// `template.series_key(issued, series)`, which the store allocates gap-free. Numbering
    /// twice keeps the first number (`Ok(false)`).
    pub fn assign_number(
        &mut self,
        template: &NumberTemplate,
        issued: Date,
        series: &str,
        seq: u64,
    ) -> Result<bool, PartnerError> {
        if self.number.is_some() {
            return Ok(false);
        }
        self.number = Some(template.render(issued, series, seq)?);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use rust_decimal_macros::dec;

    use super::super::fixtures::*;
    use super::*;
    use crate::billing::tax::TaxRate;

    fn march_position(revenues: &[Decimal]) -> (Agreement, Position) {
        let agreement = music_30();
        let mut position = Position::new(&agreement, march());
        for (i, revenue) in revenues.iter().enumerate() {
            let r = record(
                &format!("cdr-{i}"),
                "music-plus",
                date(2026, 3, 10),
                *revenue,
            );
            position.accumulate(&agreement, &r).unwrap();
        }
        (agreement, position)
    }

    #[test]
    fn thirty_percent_of_a_month_is_rounded_once_per_line() {
        // Revenue 400.00 + 500.00 + 334.56 = 1,234.56 EUR.
        // Shares: 120.00 + 150.00 + 100.368 = 370.368 (exact, never rounded per record).
        // The line rounds once, half-up: 370.368 -> 370.37.
        let (agreement, position) = march_position(&[dec!(400.00), dec!(500.00), dec!(334.56)]);
        let statement = build_statement(&position, &agreement, None).unwrap();
        let line = statement.line(&product("music-plus")).unwrap();
        assert_eq!(line.records, 3);
        assert_eq!(line.base.money.amount, dec!(1234.56));
        assert_eq!(line.share_exact, dec!(370.368));
        assert_eq!(line.share.money.amount, dec!(370.37));
        assert_eq!(statement.subtotal.minor, 37037);
        assert_eq!(statement.net.minor, 37037);
        assert_eq!(statement.total.minor, 37037);
    }

    #[test]
    fn minimum_guarantee_tops_up_and_cap_cuts() {
        let (mut agreement, position) = march_position(&[dec!(1234.56)]);
        // Guarantee 500.00: 500.00 - 370.37 = 129.63 top-up.
        agreement.versions[0].min_guarantee = Some(eur(dec!(500.00)));
        let s = build_statement(&position, &agreement, None).unwrap();
        assert_eq!(s.guarantee_top_up.money.amount, dec!(129.63));
        assert_eq!(s.net.money.amount, dec!(500.00));
        // Cap 300.00: 370.37 - 300.00 = 70.37 cut.
        agreement.versions[0].min_guarantee = None;
        agreement.versions[0].cap = Some(eur(dec!(300.00)));
        let s = build_statement(&position, &agreement, None).unwrap();
        assert_eq!(s.cap_cut.money.amount, dec!(70.37));
        assert_eq!(s.net.money.amount, dec!(300.00));
    }

    #[test]
    fn guarantee_and_cap_follow_the_version_in_force_at_period_end() {
        let (mut agreement, position) = march_position(&[dec!(1234.56)]);
        let mut v2 = agreement.versions[0].clone();
        v2.valid_from = date(2026, 3, 20);
        v2.cap = Some(eur(dec!(100.00)));
        agreement.amend(v2).unwrap();
        let s = build_statement(&position, &agreement, None).unwrap();
        // 370.37 capped at 100.00 (version of 2026-03-20 is in force on 2026-03-31).
        assert_eq!(s.cap_cut.money.amount, dec!(270.37));
        assert_eq!(s.net.money.amount, dec!(100.00));
    }

    #[test]
    fn exclusive_tax_on_the_net_share() {
        let (agreement, position) = march_position(&[dec!(1234.56)]);
        let tax = StatementTax {
            scheme: TaxScheme {
                id: "de".into(),
                rates: vec![TaxRate {
                    category: "content".into(),
                    jurisdiction: "DE".into(),
                    code: "VAT19".into(),
                    rate: dec!(0.19),
                    inclusive: false,
                }],
            },
            category: "content".into(),
            jurisdiction: "DE".into(),
        };
        let s = build_statement(&position, &agreement, Some(&tax)).unwrap();
        // 370.37 x 0.19 = 70.3703 -> 70.37; total 370.37 + 70.37 = 440.74.
        assert_eq!(s.tax_lines.len(), 1);
        assert_eq!(s.tax.money.amount, dec!(70.37));
        assert_eq!(s.total.money.amount, dec!(440.74));
        let mut other = tax.clone();
        other.jurisdiction = "FR".into();
        let err = build_statement(&position, &agreement, Some(&other)).unwrap_err();
        assert_eq!(err.code(), "billing.no_tax_rate");
    }

    #[test]
    fn self_billing_number_is_assigned_once() {
        let (agreement, position) = march_position(&[dec!(10.00)]);
        let mut s = build_statement(&position, &agreement, None).unwrap();
        let template = NumberTemplate::parse("SB-{yyyy}{mm}-{seq:05}").unwrap();
        assert!(s.assign_number(&template, date(2026, 4, 2), "", 7).unwrap());
        assert!(!s.assign_number(&template, date(2026, 4, 2), "", 8).unwrap());
        assert_eq!(s.number.as_deref(), Some("SB-202604-00007"));
    }
}
