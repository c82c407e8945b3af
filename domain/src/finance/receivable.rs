//! Receivables: what an account owes, as entries, and what each invoice still owes.
//!
//! Invoices themselves are kept by the bill runs ([`crate::billing::run`]); everything that
//! happens to money after the invoice is a [`ArEntry`] here. An entry's `amount` is positive
//! when the customer owes more (penalty, debit note, refund, payment reversal) and negative when
//! it owes less (payment, credit note). Entries are never edited or deleted.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ids::AccountId;
use crate::money::Money;

/// What a receivable entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArKind {
    /// An invoice issued (statements show invoices with this kind; not stored as an entry).
    Invoice,
    /// Money received (negative).
    Payment,
    /// Money given back (positive).
    Refund,
    /// A payment undone, e.g. a bounced cheque (positive).
    PaymentReversal,
    /// A late-payment penalty charged by dunning (positive).
    Penalty,
    /// A credit note (negative).
    CreditNote,
    /// A debit note (positive).
    DebitNote,
}

/// One receivable entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArEntry {
    /// Idempotency key of what wrote it (`payment:<key>`, `dunning:<invoice>:<step>`, ...).
    pub key: SmolStr,
    /// Account.
    pub account: AccountId,
    /// What.
    pub kind: ArKind,
    /// The document: payment id, refund id, note number, or the invoice a penalty is on.
    pub document: SmolStr,
    /// The invoice it concerns, if any (penalties, notes, allocations).
    pub invoice: Option<SmolStr>,
    /// Effect on what the customer owes (positive: owes more).
    pub amount: Money,
    /// Value date.
    pub on: Date,
    /// When written.
    pub at: Timestamp,
    /// Printed on statements.
    pub description: String,
}

/// What one invoice still owes: its total, penalties and debit notes on it, minus allocated
/// payments and credit notes on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceBalance {
    /// Invoice number.
    pub invoice: SmolStr,
    /// Payer.
    pub payer: AccountId,
    /// Issue date.
    pub issued_on: Date,
    /// Pay-by date.
    pub due_on: Date,
    /// Invoice total (gross).
    pub total: Money,
    /// Penalties and debit notes charged on it.
    pub charges: Money,
    /// Payments allocated to it.
    pub paid: Money,
    /// Credit notes on it.
    pub credited: Money,
}

impl InvoiceBalance {
    /// Still owed (never below zero: a credit note larger than what is owed leaves credit on the
    /// account, not a negative invoice).
    pub fn outstanding(&self) -> Money {
        let owed =
            self.total.amount + self.charges.amount - self.paid.amount - self.credited.amount;
        Money::new(owed.max(rust_decimal::Decimal::ZERO), self.total.currency).at_minor_scale()
    }

    /// Whether it is overdue on `day` (due date passed, something still owed).
    pub fn overdue_on(&self, day: Date) -> bool {
        day > self.due_on && !self.outstanding().is_zero()
    }
}
