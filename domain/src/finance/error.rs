//! The one error enum of the finance layer, with stable codes.

use jiff::civil::Date;
use smol_str::SmolStr;

use crate::ids::AccountId;
use crate::money::{Currency, MoneyError};

/// Why a period change, a payment, a refund, a note or a collection run is refused.
///
/// Codes are stable: API error codes, dead-letter reasons and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinanceError {
    /// A period id that is not `YYYY-MM`.
    #[error("period id {0:?} is not YYYY-MM")]
    InvalidPeriod(String),
    /// The period is not in a state that allows the change.
    #[error("period {period} is {state}: cannot {action}")]
    PeriodState {
        /// Period.
        period: SmolStr,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// A period cannot be closed before it has ended.
    #[error("period {period} ends on {end}; it cannot be closed on {today}")]
    PeriodNotEnded {
        /// Period.
        period: SmolStr,
        /// Its first day after.
        end: Date,
        /// Today.
        today: Date,
    },
    /// Payers with usage in the period and no invoice for it (closing needs `force`).
    #[error("{} payer(s) have usage in period {period} and no invoice: {}", accounts.len(), list(accounts))]
    UnbilledUsage {
        /// Period.
        period: SmolStr,
        /// The payers.
        accounts: Vec<AccountId>,
    },
    /// Reopening (and forcing a close) needs a reason.
    #[error("a reason is required to {0}")]
    ReasonRequired(&'static str),
    /// A partial close that names nothing.
    #[error("a partial close names at least one account or service")]
    EmptyScope,
    /// Money in a currency the account cannot take.
    #[error("amount in {given}, account {account} is in {expected}")]
    CurrencyMismatch {
        /// The account.
        account: AccountId,
        /// Given currency.
        given: Currency,
        /// Account currency.
        expected: Currency,
    },
    /// Zero, negative, or finer than the currency's minor units.
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    /// What looks like a card number (PAN) where a gateway token belongs.
    #[error("card payments carry the payment gateway's token, never a card number")]
    CardNumberRefused,
    /// A method's required details are missing or malformed.
    #[error("payment method {method}: {message}")]
    MethodDetails {
        /// Method.
        method: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An invoice that does not exist.
    #[error("unknown invoice {0}")]
    UnknownInvoice(SmolStr),
    /// Allocation to an invoice of another payer.
    #[error("invoice {invoice} is billed to {payer}, not to {account}")]
    ForeignInvoice {
        /// Invoice.
        invoice: SmolStr,
        /// Its payer.
        payer: AccountId,
        /// The paying account.
        account: AccountId,
    },
    /// An allocation above what the invoice still owes.
    #[error("invoice {invoice} owes {outstanding}; cannot allocate {asked}")]
    AllocationExceedsOutstanding {
        /// Invoice.
        invoice: SmolStr,
        /// Still owed.
        outstanding: String,
        /// Asked.
        asked: String,
    },
    /// Allocations that add up to more than the payment.
    #[error("allocations add up to {allocated}, more than the payment of {amount}")]
    AllocationExceedsPayment {
        /// Sum of allocations.
        allocated: String,
        /// The payment.
        amount: String,
    },
    /// The same invoice twice in one explicit allocation.
    #[error("invoice {0} appears twice in the allocation")]
    DuplicateAllocation(SmolStr),
    /// A refund above what is left of the payment.
    #[error("payment {payment} has {refundable} left to refund; cannot refund {asked}")]
    RefundExceedsPayment {
        /// Payment.
        payment: SmolStr,
        /// Left to refund.
        refundable: String,
        /// Asked.
        asked: String,
    },
    /// The payment was reversed already (nothing more can be refunded or reversed).
    #[error("payment {0} is reversed")]
    PaymentReversed(SmolStr),
    /// An idempotency key used before with another request.
    #[error("key {0} was used for another request")]
    KeyReused(SmolStr),
    /// A collection run dated after today.
    #[error("a collection run as of {as_of} is in the future (today is {today})")]
    FutureDate {
        /// Asked date.
        as_of: Date,
        /// Today.
        today: Date,
    },
    /// A dunning policy that does not make sense.
    #[error("dunning policy {policy}: {message}")]
    InvalidPolicy {
        /// Policy id.
        policy: SmolStr,
        /// What is wrong.
        message: String,
    },
    /// Money arithmetic failed (overflow, mixed currencies).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

fn list(accounts: &[AccountId]) -> String {
    const SHOWN: usize = 20;
    let mut text: Vec<&str> = accounts.iter().take(SHOWN).map(AccountId::as_str).collect();
    if accounts.len() > SHOWN {
        text.push("...");
    }
    text.join(", ")
}

impl FinanceError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            FinanceError::InvalidPeriod(_) => "period.invalid",
            FinanceError::PeriodState { .. } => "period.state",
            FinanceError::PeriodNotEnded { .. } => "period.not_ended",
            FinanceError::UnbilledUsage { .. } => "period.unbilled_usage",
            FinanceError::ReasonRequired(_) => "period.reason_required",
            FinanceError::EmptyScope => "period.empty_scope",
            FinanceError::CurrencyMismatch { .. } => "payment.currency_mismatch",
            FinanceError::InvalidAmount(_) => "payment.invalid_amount",
            FinanceError::CardNumberRefused => "payment.card_number_refused",
            FinanceError::MethodDetails { .. } => "payment.method_details",
            FinanceError::UnknownInvoice(_) => "payment.unknown_invoice",
            FinanceError::ForeignInvoice { .. } => "payment.foreign_invoice",
            FinanceError::AllocationExceedsOutstanding { .. } => "payment.allocation_exceeds_due",
            FinanceError::AllocationExceedsPayment { .. } => "payment.allocation_exceeds_amount",
            FinanceError::DuplicateAllocation(_) => "payment.duplicate_allocation",
            FinanceError::RefundExceedsPayment { .. } => "refund.exceeds_payment",
            FinanceError::PaymentReversed(_) => "payment.reversed",
            FinanceError::KeyReused(_) => "request.key_reused",
            FinanceError::FutureDate { .. } => "collection.future_date",
            FinanceError::InvalidPolicy { .. } => "dunning.invalid_policy",
            FinanceError::Money(e) => e.code(),
        }
    }
}
