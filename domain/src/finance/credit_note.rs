//! Credit and debit notes: corrections of an issued invoice booked in the open period, never by
//! editing the invoice. Rerating usage that an invoice already billed (in particular in a closed
//! period) produces one note per (rerate job, invoice): per service, the difference between the
//! new and the old charges, rounded half-up to minor units, taxed with the invoice's own rates.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::error::FinanceError;
use crate::billing::run::Invoice;
use crate::billing::{Amount, Period, TaxLine};
use crate::ids::{AccountId, CustomerId};
use crate::money::{Currency, Money, MoneyError, RoundingMode};

/// Credit (the customer owes less) or debit (owes more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Negative total.
    Credit,
    /// Positive total.
    Debit,
}

/// One corrected service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteLine {
    /// Service (`voice`, `sms`, `data`).
    pub service: SmolStr,
    /// Records whose charge changed.
    pub records: u64,
    /// Sum of old charges (as rated, any precision).
    pub old: Decimal,
    /// Sum of new charges.
    pub new: Decimal,
    /// Tax category (the invoice's usage category).
    pub tax_category: SmolStr,
    /// `new - old`, rounded half-up to minor units (negative: credit).
    pub amount: Amount,
}

/// A credit or debit note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNote {
    /// Number (`CN-2026-000001`, `DN-...`).
    pub number: SmolStr,
    /// Credit or debit.
    pub kind: NoteKind,
    /// Idempotency key (`rerate:<job>:<invoice>`).
    pub key: SmolStr,
    /// The invoice corrected.
    pub invoice: SmolStr,
    /// Its period (possibly closed).
    pub invoice_period: Period,
    /// Payer.
    pub account: AccountId,
    /// Customer.
    pub customer: CustomerId,
    /// Currency.
    pub currency: Currency,
    /// The financial period it is booked in (`YYYY-MM`, open).
    pub booked_in: SmolStr,
    /// Issue date.
    pub issued_on: Date,
    /// When written.
    pub issued_at: Timestamp,
    /// Why (e.g. `rerate job <key>: price change`).
    pub reason: String,
    /// Lines.
    pub lines: Vec<NoteLine>,
    /// Taxes on the lines (signed like the lines).
    pub tax_lines: Vec<TaxLine>,
    /// Lines + taxes (signed: negative for a credit note).
    pub net: Amount,
    /// Taxes.
    pub tax: Amount,
    /// What the customer owes more (positive) or less (negative).
    pub gross: Amount,
}

/// What [`build_note`] needs: the invoice corrected and the changed charges of its usage.
#[derive(Debug, Clone)]
pub struct NoteInput<'a> {
    /// The invoice corrected.
    pub invoice: &'a Invoice,
    /// Idempotency key (`rerate:<job>:<invoice>`).
    pub key: SmolStr,
    /// Number, rendered by the caller (`CN-...` or `DN-...`).
    pub number: SmolStr,
    /// The open financial period it is booked in.
    pub booked_in: SmolStr,
    /// Issue date.
    pub issued_on: Date,
    /// When written.
    pub issued_at: Timestamp,
    /// Why.
    pub reason: String,
    /// Changed records: (service, old charge, new charge).
    pub differences: &'a [(SmolStr, Decimal, Decimal)],
}

fn exact(money: Money) -> Result<Amount, FinanceError> {
    Ok(Amount::from_minor(money.to_minor()?, money.currency))
}

fn minor_sum(a: i64, b: i64) -> Result<i64, FinanceError> {
    a.checked_add(b)
        .ok_or(FinanceError::Money(MoneyError::Overflow))
}

/// The credit or debit note correcting `input.invoice` by `input.differences`: one line per
/// service (`new - old` rounded half-up to minor units), taxed per category with the invoice's
/// own tax lines (each tax line rounded once, half-up); `None` when every line is zero.
pub fn build_note(input: &NoteInput) -> Result<Option<CreditNote>, FinanceError> {
    let invoice = input.invoice;
    let currency = invoice.draft.currency;
    let overflow = || FinanceError::Money(MoneyError::Overflow);
    let mut services: BTreeMap<&SmolStr, (u64, Decimal, Decimal)> = BTreeMap::new();
    for (service, old, new) in input.differences {
        let slot = services.entry(service).or_default();
        slot.0 += 1;
        slot.1 = slot.1.checked_add(*old).ok_or_else(overflow)?;
        slot.2 = slot.2.checked_add(*new).ok_or_else(overflow)?;
    }
    let mut lines = Vec::with_capacity(services.len());
    for (service, (records, old, new)) in services {
        let difference = new.checked_sub(old).ok_or_else(overflow)?;
        let amount = exact(Money::new(difference, currency).round_to_minor(RoundingMode::HalfUp))?;
        let tax_category = invoice
            .draft
            .sections
            .iter()
            .flat_map(|section| section.usage.iter())
            .find(|usage| usage.service == *service)
            .map_or_else(|| SmolStr::new("usage"), |usage| usage.tax_category.clone());
        lines.push(NoteLine {
            service: service.clone(),
            records,
            old,
            new,
            tax_category,
            amount,
        });
    }
    if lines.iter().all(|line| line.amount.minor == 0) {
        return Ok(None);
    }
    let mut bases: BTreeMap<&SmolStr, i64> = BTreeMap::new();
    for line in &lines {
        let slot = bases.entry(&line.tax_category).or_default();
        *slot = minor_sum(*slot, line.amount.minor)?;
    }
    let mut subtotal = 0i64;
    let mut inclusive_tax = 0i64;
    let mut tax_total = 0i64;
    let mut tax_lines = Vec::new();
    for (category, base_minor) in bases {
        subtotal = minor_sum(subtotal, base_minor)?;
        let Some(rate) = invoice
            .draft
            .tax_lines
            .iter()
            .find(|t| t.category == *category)
        else {
            continue;
        };
        if base_minor == 0 {
            continue;
        }
        let base = Money::from_minor(base_minor, currency);
        // Multiply before dividing, as the invoice does.
        let mut tax = base.amount.checked_mul(rate.rate).ok_or_else(overflow)?;
        if rate.inclusive {
            let divisor = Decimal::ONE
                .checked_add(rate.rate)
                .filter(|d| !d.is_zero())
                .ok_or_else(overflow)?;
            tax = tax.checked_div(divisor).ok_or_else(overflow)?;
        }
        let tax = exact(Money::new(tax, currency).round_to_minor(RoundingMode::HalfUp))?;
        let net_minor = if rate.inclusive {
            inclusive_tax = minor_sum(inclusive_tax, tax.minor)?;
            base_minor.checked_sub(tax.minor).ok_or_else(overflow)?
        } else {
            base_minor
        };
        tax_total = minor_sum(tax_total, tax.minor)?;
        tax_lines.push(TaxLine {
            category: category.clone(),
            code: rate.code.clone(),
            rate: rate.rate,
            inclusive: rate.inclusive,
            base: Amount::from_minor(base_minor, currency),
            net: Amount::from_minor(net_minor, currency),
            tax,
        });
    }
    let net = subtotal.checked_sub(inclusive_tax).ok_or_else(overflow)?;
    let gross = minor_sum(net, tax_total)?;
    Ok(Some(CreditNote {
        number: input.number.clone(),
        kind: if gross > 0 {
            NoteKind::Debit
        } else {
            NoteKind::Credit
        },
        key: input.key.clone(),
        invoice: invoice.number.clone(),
        invoice_period: invoice.period,
        account: invoice.payer.clone(),
        customer: invoice.customer.clone(),
        currency,
        booked_in: input.booked_in.clone(),
        issued_on: input.issued_on,
        issued_at: input.issued_at,
        reason: input.reason.clone(),
        lines,
        tax_lines,
        net: Amount::from_minor(net, currency),
        tax: Amount::from_minor(tax_total, currency),
        gross: Amount::from_minor(gross, currency),
    }))
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::billing::{InvoiceSection, UsageLine};
    use crate::finance::allocation::fixtures::{acc, day, eur, invoice, noon};

    /// An invoice with SMS and voice usage in category `telecom`, taxed `rate` (inclusive or
    /// not); data usage is not on it.
    fn billed(rate: Decimal, inclusive: bool) -> Invoice {
        let mut inv = invoice(
            "INV-2026-000001",
            day(2026, 1, 1),
            Some(day(2026, 1, 15)),
            dec!(10.00),
        );
        let usage = |service: &str| UsageLine {
            service: service.into(),
            events: 3,
            quantity: dec!(3),
            tax_category: "telecom".into(),
            amount: Amount::from_minor(0, Currency::EUR),
        };
        inv.draft.sections.push(InvoiceSection {
            depth: 0,
            account: acc(),
            customer_name: "Ada".into(),
            usage: vec![usage("sms"), usage("voice")],
            fees: Vec::new(),
            discounts: Vec::new(),
            total: Amount::from_minor(0, Currency::EUR),
        });
        inv.draft.tax_lines.push(TaxLine {
            category: "telecom".into(),
            code: "VAT".into(),
            rate,
            inclusive,
            base: Amount::from_minor(0, Currency::EUR),
            net: Amount::from_minor(0, Currency::EUR),
            tax: Amount::from_minor(0, Currency::EUR),
        });
        inv
    }

    fn input<'a>(
        invoice: &'a Invoice,
        differences: &'a [(SmolStr, Decimal, Decimal)],
    ) -> NoteInput<'a> {
        NoteInput {
            invoice,
            key: "rerate:job-1:INV-2026-000001".into(),
            number: "CN-2026-000001".into(),
            booked_in: "2026-03".into(),
            issued_on: day(2026, 3, 2),
            issued_at: noon(day(2026, 3, 2)),
            reason: "rerate job job-1: price change".into(),
            differences,
        }
    }

    fn amount(minor: i64) -> Amount {
        Amount::from_minor(minor, Currency::EUR)
    }

    #[test]
    fn a_price_cut_on_sms_is_a_credit_note_with_vat() {
        let inv = billed(dec!(0.19), false);
        let differences = vec![(SmolStr::new("sms"), dec!(0.09), dec!(0.06)); 3];
        let note = build_note(&input(&inv, &differences)).unwrap().unwrap();
        // 3 x 0.09 = 0.27 old, 3 x 0.06 = 0.18 new: -0.09.
        assert_eq!(note.lines.len(), 1);
        let line = &note.lines[0];
        assert_eq!(
            (line.service.as_str(), line.records, line.old, line.new),
            ("sms", 3, dec!(0.27), dec!(0.18))
        );
        assert_eq!(line.tax_category, "telecom");
        assert_eq!(line.amount, amount(-9));
        // VAT 19 % exclusive: -0.09 x 0.19 = -0.0171 -> -0.02 (half-up, away from zero).
        assert_eq!(note.tax_lines.len(), 1);
        let tax = &note.tax_lines[0];
        assert_eq!(
            (
                tax.category.as_str(),
                tax.code.as_str(),
                tax.rate,
                tax.inclusive
            ),
            ("telecom", "VAT", dec!(0.19), false)
        );
        assert_eq!(
            (tax.base, tax.net, tax.tax),
            (amount(-9), amount(-9), amount(-2))
        );
        // -0.09 + -0.02 = -0.11.
        assert_eq!(
            (note.net, note.tax, note.gross),
            (amount(-9), amount(-2), amount(-11))
        );
        assert_eq!(note.gross.money, eur(dec!(-0.11)));
        assert_eq!(note.kind, NoteKind::Credit);
        assert_eq!(note.invoice, "INV-2026-000001");
        assert_eq!(note.invoice_period, inv.period);
        assert_eq!(
            (note.account.clone(), note.customer.clone(), note.currency),
            (inv.payer.clone(), inv.customer.clone(), Currency::EUR)
        );
        assert_eq!(
            (
                note.number.as_str(),
                note.key.as_str(),
                note.booked_in.as_str()
            ),
            ("CN-2026-000001", "rerate:job-1:INV-2026-000001", "2026-03")
        );
        assert_eq!(
            (note.issued_on, note.issued_at),
            (day(2026, 3, 2), noon(day(2026, 3, 2)))
        );
    }

    #[test]
    fn a_price_rise_is_a_debit_note_and_unknown_services_are_untaxed_usage() {
        let inv = billed(dec!(0.19), false);
        let differences = [
            ("voice".into(), dec!(0.50), dec!(0.6125)),
            ("voice".into(), dec!(0.50), dec!(0.6125)),
            ("data".into(), dec!(1.00), dec!(1.10)),
        ];
        let note = build_note(&input(&inv, &differences)).unwrap().unwrap();
        let lines: Vec<(&str, u64, &str, Amount)> = note
            .lines
            .iter()
            .map(|l| {
                (
                    l.service.as_str(),
                    l.records,
                    l.tax_category.as_str(),
                    l.amount,
                )
            })
            .collect();
        // data: 1.10 - 1.00 = 0.10 (no usage line on the invoice: category "usage");
        // voice: 1.225 - 1.00 = 0.225 -> 0.23.
        assert_eq!(
            lines,
            [
                ("data", 1, "usage", amount(10)),
                ("voice", 2, "telecom", amount(23))
            ]
        );
        // Only telecom is taxed (the invoice has no "usage" tax line): 0.23 x 0.19 = 0.0437 -> 0.04.
        assert_eq!(note.tax_lines.len(), 1);
        assert_eq!(note.tax_lines[0].tax, amount(4));
        // net 0.10 + 0.23 = 0.33, gross 0.33 + 0.04 = 0.37.
        assert_eq!(
            (note.net, note.tax, note.gross),
            (amount(33), amount(4), amount(37))
        );
        assert_eq!(note.kind, NoteKind::Debit);
    }

    #[test]
    fn inclusive_tax_is_taken_out_of_the_lines() {
        let inv = billed(dec!(0.20), true);
        let differences = [("sms".into(), dec!(2.40), dec!(1.20))];
        let note = build_note(&input(&inv, &differences)).unwrap().unwrap();
        // -1.20 gross of 20 % VAT: tax = -1.20 x 0.20 / 1.20 = -0.20, net = -1.00.
        let tax = &note.tax_lines[0];
        assert_eq!(
            (tax.base, tax.net, tax.tax),
            (amount(-120), amount(-100), amount(-20))
        );
        assert_eq!(
            (note.net, note.tax, note.gross),
            (amount(-100), amount(-20), amount(-120))
        );
        assert_eq!(note.kind, NoteKind::Credit);
    }

    #[test]
    fn no_change_is_no_note() {
        let inv = billed(dec!(0.19), false);
        assert_eq!(build_note(&input(&inv, &[])).unwrap(), None);
        let same = [("sms".into(), dec!(0.09), dec!(0.09))];
        assert_eq!(build_note(&input(&inv, &same)).unwrap(), None);
        // 0.0004 x 3 = 0.0012 -> 0.00 at EUR cents.
        let tiny = vec![(SmolStr::new("sms"), dec!(0.0900), dec!(0.0904)); 3];
        assert_eq!(build_note(&input(&inv, &tiny)).unwrap(), None);
    }
}
