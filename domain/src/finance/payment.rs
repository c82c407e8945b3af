//! Payments, refunds and reversals.
//!
//! A payment is recorded once per idempotency key. It is allocated to the payer's open invoices
//! (oldest due date first, or as the caller says); what is not allocated stays on the account as
//! credit and is allocated to the next invoices by later allocations. Refunds and reversals
//! (a bounced cheque, a charged-back card) never edit a payment's money: they are new
//! receivable entries, and the payment records how much of it was refunded or that it was
//! reversed.
//!
//! Card payments carry the gateway's token only: anything that looks like a card number (13 to
//! 19 digits passing the Luhn check, spaces and dashes ignored) is refused.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ids::{AccountId, CustomerId};
use crate::money::Money;

/// How the money came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaymentMethod {
    /// A card, charged through a payment gateway: only the gateway's token is kept.
    Card {
        /// Gateway token (never the card number).
        token: SmolStr,
        /// Gateway name.
        #[serde(default)]
        gateway: Option<SmolStr>,
    },
    /// SEPA direct debit.
    DirectDebit {
        /// Mandate reference.
        mandate: SmolStr,
    },
    /// ACH transfer.
    Ach {
        /// Trace number or transfer reference.
        reference: SmolStr,
    },
    /// Cash at a cashier desk (the payment's `cashier` is required).
    Cash,
    /// A cheque.
    Cheque {
        /// Cheque number.
        number: SmolStr,
        /// Drawn on.
        #[serde(default)]
        bank: Option<SmolStr>,
    },
    /// A voucher.
    Voucher {
        /// Voucher code.
        code: SmolStr,
    },
    /// Money paid in advance of invoices (kept as credit until invoices arrive).
    Advance,
}

impl PaymentMethod {
    /// As text (metric label).
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentMethod::Card { .. } => "card",
            PaymentMethod::DirectDebit { .. } => "direct_debit",
            PaymentMethod::Ach { .. } => "ach",
            PaymentMethod::Cash => "cash",
            PaymentMethod::Cheque { .. } => "cheque",
            PaymentMethod::Voucher { .. } => "voucher",
            PaymentMethod::Advance => "advance",
        }
    }
}

/// An explicit allocation asked by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationRequest {
    /// Invoice number.
    pub invoice: SmolStr,
    /// Amount (in the payment's currency).
    pub amount: rust_decimal::Decimal,
}

/// Part of a payment applied to an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Invoice number.
    pub invoice: SmolStr,
    /// Amount.
    pub amount: Money,
    /// When it was applied (at the payment, or later from credit).
    pub at: Timestamp,
}

/// Whether a payment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PaymentState {
    /// Received.
    Received,
    /// Reversed (bounced, charged back): its allocations are undone by a reversal entry.
    Reversed {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
        /// Who.
        by: SmolStr,
    },
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Id (`pay-<20 digits>`).
    pub id: SmolStr,
    /// The caller's idempotency key.
    pub key: SmolStr,
    /// Paying account.
    pub account: AccountId,
    /// Its customer.
    pub customer: CustomerId,
    /// Amount received.
    pub amount: Money,
    /// How.
    pub method: PaymentMethod,
    /// Value date.
    pub received_on: Date,
    /// When recorded.
    pub recorded_at: Timestamp,
    /// Who recorded it (the API user).
    pub recorded_by: SmolStr,
    /// Who took the money (cash desks; any method may name one).
    pub cashier: Option<SmolStr>,
    /// Free reference (bank statement line, receipt number).
    pub reference: Option<String>,
    /// Allocations to invoices, in the order applied.
    pub allocations: Vec<Allocation>,
    /// Refunded so far.
    pub refunded: Money,
    /// State.
    #[serde(flatten)]
    pub state: PaymentState,
}

impl Payment {
    /// Sum of allocations.
    pub fn allocated(&self) -> Money {
        let total = self.allocations.iter().map(|a| a.amount.amount).sum();
        Money::new(total, self.amount.currency).at_minor_scale()
    }

    /// What is neither allocated nor refunded (credit on the account).
    pub fn unallocated(&self) -> Money {
        Money::new(
            self.amount.amount - self.allocated().amount - self.refunded.amount,
            self.amount.currency,
        )
        .at_minor_scale()
    }
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Id (`ref-<20 digits>`).
    pub id: SmolStr,
    /// The caller's idempotency key.
    pub key: SmolStr,
    /// Payment refunded.
    pub payment: SmolStr,
    /// Account.
    pub account: AccountId,
    /// Amount.
    pub amount: Money,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub by: SmolStr,
}
