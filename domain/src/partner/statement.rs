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
//!
//! Lifecycle ([`StatementStage`]): a numbered statement is `issued`; it is `approved` (with an
//! optional comment), then `released` (marked as paid, with the payment reference). Each step
//! keeps who and when (the caller passes "now"); any other step is refused with
//! `statement.stage`, a release without a reference with `statement.reference_required`.

use std::collections::BTreeMap;

use jiff::Timestamp;
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

/// Where a statement is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementStage {
    /// Issued: built and numbered, not approved yet.
    Issued,
    /// Approved for payment.
    Approved,
    /// Released: marked as paid.
    Released,
}

impl StatementStage {
    /// As text (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            StatementStage::Issued => "issued",
            StatementStage::Approved => "approved",
            StatementStage::Released => "released",
        }
    }
}

impl std::fmt::Display for StatementStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lifecycle step of a statement: who, when, and the approval comment or the payment
/// reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementStep {
    /// Who (user id).
    pub by: SmolStr,
    /// When.
    pub at: Timestamp,
    /// Approval comment, or the payment reference of a release.
    pub note: Option<String>,
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
    /// Approval, once approved (absent in rows stored before the lifecycle existed).
    #[serde(default)]
    pub approved: Option<StatementStep>,
    /// Release (marked as paid), once released.
    #[serde(default)]
    pub released: Option<StatementStep>,
    /// Credits of resolved disputes paid with this statement (included in `net`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<StatementAdjustment>,
}

/// A credit from a resolved dispute, paid with a later statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementAdjustment {
    /// Dispute resolved.
    pub dispute: SmolStr,
    /// `credit_note` or `adhoc_credit`.
    pub kind: SmolStr,
    /// The credit note's number or the ad-hoc credit's reference.
    pub reference: SmolStr,
    /// Amount owed to the partner.
    pub amount: Amount,
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
    build_statement_with(position, agreement, tax, Vec::new())
}

/// Builds the statement of `position` paying `adjustments` (credits of resolved disputes) too:
/// they are added to `net` after the guarantee and the cap (a credit is owed whatever the
/// month's shares), and taxed with it.
pub fn build_statement_with(
    position: &Position,
    agreement: &Agreement,
    tax: Option<&StatementTax>,
    adjustments: Vec<StatementAdjustment>,
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
    let mut net = add(subtotal, top_up)?
        .checked_sub(cap_cut)
        .ok_or_else(overflow)?;
    for adjustment in &adjustments {
        if adjustment.amount.money.currency != currency {
            return Err(PartnerError::CurrencyMismatch {
                given: adjustment.amount.money.currency,
                expected: currency,
            });
        }
        net = add(net, adjustment.amount.minor)?;
    }
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
        approved: None,
        released: None,
        adjustments,
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

    /// Where the statement is: released once released, approved once approved, else issued.
    pub fn stage(&self) -> StatementStage {
        if self.released.is_some() {
            StatementStage::Released
        } else if self.approved.is_some() {
            StatementStage::Approved
        } else {
            StatementStage::Issued
        }
    }

    fn require(&self, required: StatementStage, action: &'static str) -> Result<(), PartnerError> {
        let stage = self.stage();
        if stage == required {
            return Ok(());
        }
        Err(PartnerError::StatementTransition {
            statement: self.label(),
            stage,
            required,
            action,
        })
    }

    fn label(&self) -> SmolStr {
        match &self.number {
            Some(number) => SmolStr::new(number),
            None => SmolStr::new_static("(unnumbered)"),
        }
    }

    /// Approves an issued statement, with an optional comment (a blank one is dropped).
    /// Refused with `statement.stage` unless the statement is issued.
    pub fn approve(
        &mut self,
        by: SmolStr,
        at: Timestamp,
        note: Option<String>,
    ) -> Result<(), PartnerError> {
        self.require(StatementStage::Issued, "approve")?;
        let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        self.approved = Some(StatementStep { by, at, note });
        Ok(())
    }

    /// Releases an approved statement (marks it as paid) with the payment reference.
    /// Refused with `statement.stage` unless the statement is approved, and with
    /// `statement.reference_required` when the reference is blank.
    pub fn release(
        &mut self,
        by: SmolStr,
        at: Timestamp,
        reference: String,
    ) -> Result<(), PartnerError> {
        self.require(StatementStage::Approved, "release")?;
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(PartnerError::StatementReferenceRequired(self.label()));
        }
        self.released = Some(StatementStep {
            by,
            at,
            note: Some(reference.to_string()),
        });
        Ok(())
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

    fn numbered() -> PartnerStatement {
        let (agreement, position) = march_position(&[dec!(10.00)]);
        let mut s = build_statement(&position, &agreement, None).unwrap();
        let template = NumberTemplate::parse("SB-{yyyy}-{seq:04}").unwrap();
        s.assign_number(&template, date(2026, 4, 2), "", 1).unwrap();
        s
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_775_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_statement_is_issued_then_approved_then_released() {
        let mut s = numbered();
        assert_eq!(s.stage(), StatementStage::Issued);
        assert!(s.approved.is_none() && s.released.is_none());

        // Release before approval is refused and changes nothing.
        let before = s.clone();
        let err = s.release("bob".into(), at(1), "PAY-1".into()).unwrap_err();
        assert_eq!(err.code(), "statement.stage");
        assert_eq!(
            err.to_string(),
            "statement SB-2026-0001 is issued, not approved: cannot release it"
        );
        assert_eq!(s, before);

        // Approval keeps who, when and the trimmed comment.
        s.approve("ada".into(), at(2), Some("  checked  ".into()))
            .unwrap();
        assert_eq!(s.stage(), StatementStage::Approved);
        assert_eq!(
            s.approved,
            Some(StatementStep {
                by: "ada".into(),
                at: at(2),
                note: Some("checked".into()),
            })
        );
        let err = s.approve("ada".into(), at(3), None).unwrap_err();
        assert_eq!(err.code(), "statement.stage");
        assert_eq!(
            err.to_string(),
            "statement SB-2026-0001 is approved, not issued: cannot approve it"
        );

        // A blank payment reference is refused; the release keeps the trimmed reference.
        let approved = s.clone();
        let err = s.release("bob".into(), at(4), " \t ".into()).unwrap_err();
        assert_eq!(err.code(), "statement.reference_required");
        assert_eq!(s, approved);
        s.release("bob".into(), at(5), " PAY-2026-17 ".into())
            .unwrap();
        assert_eq!(s.stage(), StatementStage::Released);
        assert_eq!(
            s.released,
            Some(StatementStep {
                by: "bob".into(),
                at: at(5),
                note: Some("PAY-2026-17".into()),
            })
        );
        assert_eq!(s.approved, approved.approved);

        // Released is final.
        let released = s.clone();
        let err = s.approve("ada".into(), at(6), None).unwrap_err();
        assert_eq!(err.code(), "statement.stage");
        let err = s.release("bob".into(), at(6), "PAY-2".into()).unwrap_err();
        assert_eq!(err.code(), "statement.stage");
        assert_eq!(s, released);
    }

    #[test]
    fn a_blank_approval_comment_is_dropped() {
        let mut s = numbered();
        s.approve("ada".into(), at(1), Some("   ".into())).unwrap();
        assert_eq!(s.approved.map(|a| a.note), Some(None));
    }

    #[test]
    fn stages_serialize_in_snake_case_and_steps_round_trip() {
        assert_eq!(
            serde_json::to_string(&StatementStage::Approved).unwrap(),
            "\"approved\""
        );
        assert_eq!(StatementStage::Released.to_string(), "released");
        let mut s = numbered();
        s.approve("ada".into(), at(1), None).unwrap();
        s.release("bob".into(), at(2), "PAY-1".into()).unwrap();
        let back: PartnerStatement =
            serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.stage(), StatementStage::Released);
    }

    #[test]
    fn a_statement_stored_before_the_lifecycle_reads_as_issued() {
        let s = numbered();
        let mut json = serde_json::to_value(&s).unwrap();
        let fields = json.as_object_mut().unwrap();
        fields.remove("approved");
        fields.remove("released");
        let old: PartnerStatement = serde_json::from_value(json).unwrap();
        assert_eq!(old, s);
        assert_eq!(old.stage(), StatementStage::Issued);
    }
}
