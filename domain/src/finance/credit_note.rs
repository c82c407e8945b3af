//! Credit and debit notes: corrections of an issued invoice booked in the open period, never by
//! editing the invoice. Rerating usage that an invoice already billed (in particular in a closed
//! period) produces one note per (rerate job, invoice): per service, the difference between the
//! new and the old charges, rounded half-up to minor units, taxed with the invoice's own rates.

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::billing::{Amount, Period, TaxLine};
use crate::ids::{AccountId, CustomerId};
use crate::money::Currency;

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
