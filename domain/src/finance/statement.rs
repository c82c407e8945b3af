//! Account statements: invoices, payments, refunds, penalties and notes of a date range with a
//! running balance (what the account owes after each line).

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::error::FinanceError;
use super::receivable::{ArEntry, ArKind};
use crate::billing::run::Invoice;
use crate::ids::AccountId;
use crate::money::{Currency, Money};

/// One statement line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Value date.
    pub on: Date,
    /// What.
    pub kind: ArKind,
    /// Document (invoice number, payment id, note number).
    pub document: SmolStr,
    /// The invoice it concerns.
    pub invoice: Option<SmolStr>,
    /// Text.
    pub description: String,
    /// Amount owed more (zero when a credit).
    pub debit: Money,
    /// Amount owed less (zero when a debit).
    pub credit: Money,
    /// What the account owes after this line (negative: credit in favour of the customer).
    pub balance: Money,
}

/// An account statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Account.
    pub account: AccountId,
    /// First day.
    pub from: Date,
    /// Last day (inclusive).
    pub to: Date,
    /// Owed before `from`.
    pub opening_balance: Money,
    /// Lines in date order (then invoices before the payments of the same day).
    pub lines: Vec<StatementLine>,
    /// Owed after `to`.
    pub closing_balance: Money,
    /// Sum of debits in the range.
    pub total_debit: Money,
    /// Sum of credits in the range.
    pub total_credit: Money,
}

/// One movement before it is placed on a statement.
struct Movement {
    on: Date,
    kind: ArKind,
    document: SmolStr,
    invoice: Option<SmolStr>,
    description: String,
    amount: Money,
}

/// The statement of `account` from `from` to `to` (inclusive): `invoices` are debits on their
/// issue date (gross), `entries` debits when positive and credits when negative; everything
/// before `from` makes the opening balance, everything after `to` is left out. Lines are in
/// date order, debits (invoices first) before credits on a day, then by document. Invoices and
/// entries of other accounts are ignored; money in another currency is refused.
pub fn build_statement(
    account: &AccountId,
    currency: Currency,
    invoices: &[Invoice],
    entries: &[ArEntry],
    from: Date,
    to: Date,
) -> Result<Statement, FinanceError> {
    let check = |money: &Money| {
        if money.currency == currency {
            Ok(())
        } else {
            Err(FinanceError::CurrencyMismatch {
                account: account.clone(),
                given: money.currency,
                expected: currency,
            })
        }
    };
    let mut movements = Vec::with_capacity(invoices.len() + entries.len());
    for invoice in invoices.iter().filter(|i| i.payer == *account) {
        let amount = invoice.draft.totals.gross.money;
        check(&amount)?;
        movements.push(Movement {
            on: invoice.issued_on,
            kind: ArKind::Invoice,
            document: invoice.number.clone(),
            invoice: Some(invoice.number.clone()),
            description: format!(
                "Invoice {} for {} to {}",
                invoice.number, invoice.period.start, invoice.period.end
            ),
            amount,
        });
    }
    for entry in entries.iter().filter(|e| e.account == *account) {
        check(&entry.amount)?;
        movements.push(Movement {
            on: entry.on,
            kind: entry.kind,
            document: entry.document.clone(),
            invoice: entry.invoice.clone(),
            description: entry.description.clone(),
            amount: entry.amount,
        });
    }
    // Stable: on the same day and document, invoices (pushed first) come before entries.
    movements.sort_by(|a, b| {
        let key = |m: &Movement| (m.on, m.amount.amount < Decimal::ZERO);
        key(a)
            .cmp(&key(b))
            .then_with(|| a.document.cmp(&b.document))
    });
    let zero = Money::from_minor(0, currency);
    let mut opening = zero;
    let mut balance = zero;
    let mut total_debit = zero;
    let mut total_credit = zero;
    let mut lines = Vec::new();
    for movement in movements {
        if movement.on < from {
            opening = opening.checked_add(movement.amount)?;
            balance = opening;
            continue;
        }
        if movement.on > to {
            continue;
        }
        balance = balance.checked_add(movement.amount)?;
        let (debit, credit) = if movement.amount.amount < Decimal::ZERO {
            (zero, movement.amount.negate())
        } else {
            (movement.amount, zero)
        };
        total_debit = total_debit.checked_add(debit)?;
        total_credit = total_credit.checked_add(credit)?;
        lines.push(StatementLine {
            on: movement.on,
            kind: movement.kind,
            document: movement.document,
            invoice: movement.invoice,
            description: movement.description,
            debit,
            credit,
            balance,
        });
    }
    Ok(Statement {
        account: account.clone(),
        from,
        to,
        opening_balance: opening,
        lines,
        closing_balance: balance,
        total_debit,
        total_credit,
    })
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::finance::allocation::fixtures::{acc, day, entry, eur, invoice};

    #[test]
    fn running_balance_over_invoice_payment_penalty_and_credit_note() {
        let invoices = vec![
            // December, before the statement: 80.00 owed...
            invoice(
                "INV-2025-000009",
                day(2025, 12, 1),
                Some(day(2025, 12, 15)),
                dec!(80.00),
            ),
            invoice(
                "INV-2026-000001",
                day(2026, 1, 1),
                Some(day(2026, 1, 15)),
                dec!(100.00),
            ),
        ];
        let mut other = entry(
            "pay-x",
            ArKind::Payment,
            None,
            dec!(-999.00),
            day(2026, 1, 2),
        );
        other.account = AccountId::new("acc-2");
        let entries = vec![
            // ... less 50.00 paid: the opening balance is 80.00 - 50.00 = 30.00.
            entry(
                "pay-1",
                ArKind::Payment,
                None,
                dec!(-50.00),
                day(2025, 12, 20),
            ),
            entry(
                "pay-2",
                ArKind::Payment,
                None,
                dec!(-100.00),
                day(2026, 1, 15),
            ),
            entry(
                "pen-1",
                ArKind::Penalty,
                Some("INV-2025-000009"),
                dec!(2.00),
                day(2026, 1, 15),
            ),
            entry(
                "CN-2026-000001",
                ArKind::CreditNote,
                Some("INV-2026-000001"),
                dec!(-10.00),
                day(2026, 1, 20),
            ),
            // After the statement: left out.
            entry(
                "pay-3",
                ArKind::Payment,
                None,
                dec!(-22.00),
                day(2026, 2, 3),
            ),
            other,
        ];
        let s = build_statement(
            &acc(),
            Currency::EUR,
            &invoices,
            &entries,
            day(2026, 1, 1),
            day(2026, 1, 31),
        )
        .unwrap();
        assert_eq!(s.opening_balance, eur(dec!(30.00)));
        let lines: Vec<(Date, ArKind, &str, Money, Money, Money)> = s
            .lines
            .iter()
            .map(|l| {
                (
                    l.on,
                    l.kind,
                    l.document.as_str(),
                    l.debit,
                    l.credit,
                    l.balance,
                )
            })
            .collect();
        let zero = eur(dec!(0));
        assert_eq!(
            lines,
            [
                // 30.00 + 100.00 = 130.00
                (
                    day(2026, 1, 1),
                    ArKind::Invoice,
                    "INV-2026-000001",
                    eur(dec!(100.00)),
                    zero,
                    eur(dec!(130.00))
                ),
                // Same day: the debit (penalty) before the credit (payment). 130 + 2 = 132.00
                (
                    day(2026, 1, 15),
                    ArKind::Penalty,
                    "INV-2025-000009",
                    eur(dec!(2.00)),
                    zero,
                    eur(dec!(132.00))
                ),
                // 132.00 - 100.00 = 32.00
                (
                    day(2026, 1, 15),
                    ArKind::Payment,
                    "pay-2",
                    zero,
                    eur(dec!(100.00)),
                    eur(dec!(32.00))
                ),
                // 32.00 - 10.00 = 22.00
                (
                    day(2026, 1, 20),
                    ArKind::CreditNote,
                    "CN-2026-000001",
                    zero,
                    eur(dec!(10.00)),
                    eur(dec!(22.00))
                ),
            ]
        );
        assert_eq!(s.lines[0].invoice.as_deref(), Some("INV-2026-000001"));
        // 100.00 + 2.00 = 102.00 debit, 100.00 + 10.00 = 110.00 credit; 30 + 102 - 110 = 22.00.
        assert_eq!(s.total_debit, eur(dec!(102.00)));
        assert_eq!(s.total_credit, eur(dec!(110.00)));
        assert_eq!(s.closing_balance, eur(dec!(22.00)));
        assert_eq!(
            (s.from, s.to, s.account.clone()),
            (day(2026, 1, 1), day(2026, 1, 31), acc())
        );
        // An empty range: the closing balance is the opening balance.
        let s = build_statement(
            &acc(),
            Currency::EUR,
            &invoices,
            &entries,
            day(2026, 3, 1),
            day(2026, 3, 31),
        )
        .unwrap();
        assert!(s.lines.is_empty());
        // 80 + 100 + 2 - 50 - 100 - 10 - 22 = 0.00
        assert_eq!(s.opening_balance, eur(dec!(0.00)));
        assert_eq!(s.closing_balance, s.opening_balance);
    }

    #[test]
    fn money_in_another_currency_is_refused() {
        let invoices = vec![invoice("INV-1", day(2026, 1, 1), None, dec!(10.00))];
        let err = build_statement(
            &acc(),
            Currency::USD,
            &invoices,
            &[],
            day(2026, 1, 1),
            day(2026, 1, 31),
        )
        .unwrap_err();
        assert_eq!(err.code(), "payment.currency_mismatch");
    }
}
