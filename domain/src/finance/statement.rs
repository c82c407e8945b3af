//! Account statements: invoices, payments, refunds, penalties and notes of a date range with a
//! running balance (what the account owes after each line).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::receivable::ArKind;
use crate::ids::AccountId;
use crate::money::Money;

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
