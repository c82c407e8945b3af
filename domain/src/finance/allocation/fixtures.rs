//! Fixtures shared by the finance tests: an EUR account `acc-1`, invoices, payments and
//! receivable entries.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use smol_str::SmolStr;

use crate::billing::run::Invoice;
use crate::billing::{Amount, InvoiceDraft, InvoiceTotals, Period};
use crate::finance::payment::{Payment, PaymentMethod, PaymentState};
use crate::finance::receivable::{ArEntry, ArKind};
use crate::ids::{AccountId, CustomerId};
use crate::money::{Currency, Money};

pub(crate) fn day(y: i16, m: i8, d: i8) -> Date {
    Date::new(y, m, d).unwrap()
}

pub(crate) fn eur(amount: Decimal) -> Money {
    Money::new(amount, Currency::EUR)
}

/// Noon UTC of `date`.
pub(crate) fn noon(date: Date) -> Timestamp {
    date.at(12, 0, 0, 0)
        .to_zoned(TimeZone::UTC)
        .unwrap()
        .timestamp()
}

pub(crate) fn acc() -> AccountId {
    AccountId::new("acc-1")
}

/// An EUR invoice of `acc-1` with no lines and a gross total of `gross` (no tax).
pub(crate) fn invoice(
    number: &str,
    issued_on: Date,
    due_on: Option<Date>,
    gross: Decimal,
) -> Invoice {
    let amount = Amount::exact(eur(gross)).unwrap();
    let period = Period::new(day(2025, 12, 1), day(2026, 1, 1)).unwrap();
    Invoice {
        number: SmolStr::new(number),
        series: SmolStr::new("INV-2026"),
        seq: 1,
        issued_on,
        due_on,
        issued_at: noon(issued_on),
        run: SmolStr::new("br-1"),
        payer: acc(),
        customer: CustomerId::new("cust-1"),
        period,
        draft: InvoiceDraft {
            payer: acc(),
            customer: CustomerId::new("cust-1"),
            currency: Currency::EUR,
            period,
            next_period: Period::new(day(2026, 1, 1), day(2026, 2, 1)).unwrap(),
            sections: Vec::new(),
            discounts: Vec::new(),
            tax_lines: Vec::new(),
            totals: InvoiceTotals {
                subtotal: amount,
                net: amount,
                tax: Amount::from_minor(0, Currency::EUR),
                gross: amount,
            },
        },
    }
}

/// A received EUR payment of `acc-1`.
pub(crate) fn payment(
    id: &str,
    amount: Decimal,
    received_on: Date,
    method: PaymentMethod,
) -> Payment {
    Payment {
        id: SmolStr::new(id),
        key: SmolStr::new(format!("key-{id}")),
        account: acc(),
        customer: CustomerId::new("cust-1"),
        amount: eur(amount),
        method,
        received_on,
        recorded_at: noon(received_on),
        recorded_by: SmolStr::new("clerk"),
        cashier: None,
        reference: None,
        allocations: Vec::new(),
        refunded: eur(Decimal::ZERO),
        state: PaymentState::Received,
    }
}

pub(crate) fn entry(
    key: &str,
    kind: ArKind,
    invoice: Option<&str>,
    amount: Decimal,
    on: Date,
) -> ArEntry {
    ArEntry {
        key: SmolStr::new(key),
        account: acc(),
        kind,
        // A penalty's document is its invoice; other entries' their own key.
        document: SmolStr::new(match (kind, invoice) {
            (ArKind::Penalty, Some(invoice)) => invoice,
            _ => key,
        }),
        invoice: invoice.map(SmolStr::new),
        amount: eur(amount),
        on,
        at: noon(on),
        description: format!("{kind:?} {key}"),
    }
}
