//! The one error enum of the billing layer, with stable codes.

use jiff::civil::Date;
use smol_str::SmolStr;

use super::subscription::SubscriptionStatus;
use crate::ids::{AccountId, BillCycleId, DiscountId, ItemCode, SubscriptionId};
use crate::money::{Currency, MoneyError};

/// Why a hierarchy change, a subscription transition, a period or an invoice is refused.
///
/// Codes are stable: they are API error codes, dead-letter reasons and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// An account names a parent that does not exist.
    #[error("account {account}: unknown parent {parent}")]
    UnknownParent {
        /// The child.
        account: AccountId,
        /// The missing parent.
        parent: AccountId,
    },
    /// An account id that is not in the hierarchy.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// The same account id appears twice.
    #[error("account {0} appears twice")]
    DuplicateAccount(AccountId),
    /// The change would make an account its own ancestor.
    #[error("account {0}: the change would create a cycle")]
    Cycle(AccountId),
    /// A root account (no parent) cannot be paid by a parent.
    #[error("account {0} has no parent but is marked paid by parent")]
    RootPaidByParent(AccountId),
    /// `PaidBy` must name a strict ancestor: a child never pays for its parent.
    #[error("account {account}: payer {payer} is not one of its ancestors")]
    PayerNotAncestor {
        /// The paid-for account.
        account: AccountId,
        /// The named payer.
        payer: AccountId,
    },
    /// A paid-for account has another currency than its payer (one invoice, one currency).
    #[error("account {account} in {currency} is paid by {payer} in {payer_currency}")]
    HierarchyCurrencyMismatch {
        /// The paid-for account.
        account: AccountId,
        /// Its currency.
        currency: Currency,
        /// Its payer.
        payer: AccountId,
        /// The payer's currency.
        payer_currency: Currency,
    },
    /// The subscription lifecycle does not allow this transition.
    #[error("subscription {subscription}: illegal transition {from:?} -> {to:?}")]
    IllegalTransition {
        /// Subscription.
        subscription: SubscriptionId,
        /// Current status.
        from: SubscriptionStatus,
        /// Requested status.
        to: SubscriptionStatus,
    },
    /// A transition dated before the subscription's latest transition.
    #[error("subscription {subscription}: transition on {on} is before the last one on {last}")]
    BackdatedTransition {
        /// Subscription.
        subscription: SubscriptionId,
        /// Requested date.
        on: Date,
        /// Date of the latest transition.
        last: Date,
    },
    /// A price list item code that the price list does not define.
    #[error("unknown price list item {0}")]
    UnknownItem(ItemCode),
    /// The item (or a fixed discount) has no price in the invoice currency.
    #[error("{item} has no price in {currency}")]
    NoPriceList {
        /// Item or discount id.
        item: SmolStr,
        /// The currency asked for.
        currency: Currency,
    },
    /// A discount id that the discount definitions do not contain.
    #[error("unknown discount {0}")]
    UnknownDiscount(DiscountId),
    /// A bill cycle id that is not defined.
    #[error("unknown bill cycle {0}")]
    UnknownCycle(BillCycleId),
    /// A bill cycle definition that is out of range (bill day, month).
    #[error("bad bill cycle: {0}")]
    BadCycle(String),
    /// A period that is not one of the cycle's periods.
    #[error("period does not match the bill cycle: {0}")]
    PeriodMismatch(String),
    /// The period has not ended yet: it cannot be billed.
    #[error("period ending {end} has not ended on {today}")]
    PeriodNotEnded {
        /// Exclusive end of the period.
        end: Date,
        /// The day the check ran.
        today: Date,
    },
    /// No tax rate for a product category in a jurisdiction.
    #[error("no tax rate for category {category:?} in jurisdiction {jurisdiction:?}")]
    NoTaxRate {
        /// Product (tax) category.
        category: SmolStr,
        /// Tax jurisdiction.
        jurisdiction: SmolStr,
    },
    /// An amount or account in another currency than the invoice.
    #[error("account {account}: {found} where the invoice is in {expected}")]
    CurrencyMismatch {
        /// Account concerned.
        account: AccountId,
        /// Invoice currency.
        expected: Currency,
        /// Currency found.
        found: Currency,
    },
    /// The account asked to be billed does not pay for itself.
    #[error("account {0} is not a payer")]
    NotAPayer(AccountId),
    /// An account given to an invoice is not paid by the invoice's payer.
    #[error("account {account} is not billed by payer {payer}")]
    NotBilledByPayer {
        /// Account.
        account: AccountId,
        /// Invoice payer.
        payer: AccountId,
    },
    /// An invoice number template that cannot be used.
    #[error("bad invoice number template: {0}")]
    BadNumberTemplate(String),
    /// An invoice sequence number below 1.
    #[error("invoice sequence numbers start at 1, got {0}")]
    BadSequence(u64),
    /// A date computation left jiff's supported range.
    #[error("date out of range")]
    DateOutOfRange,
    /// An amount does not fit a decimal or an i64 of minor units.
    #[error("amount overflow")]
    Overflow,
    /// Money arithmetic refused (kept with its own `money.*` code).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl BillingError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            BillingError::UnknownParent { .. } => "hierarchy.unknown_parent",
            BillingError::UnknownAccount(_) => "hierarchy.unknown_account",
            BillingError::DuplicateAccount(_) => "hierarchy.duplicate_account",
            BillingError::Cycle(_) => "hierarchy.cycle",
            BillingError::RootPaidByParent(_) => "hierarchy.root_paid_by_parent",
            BillingError::PayerNotAncestor { .. } => "hierarchy.payer_not_ancestor",
            BillingError::HierarchyCurrencyMismatch { .. } => "hierarchy.currency_mismatch",
            BillingError::IllegalTransition { .. } => "subscription.illegal_transition",
            BillingError::BackdatedTransition { .. } => "subscription.backdated_transition",
            BillingError::UnknownItem(_) => "billing.unknown_item",
            BillingError::NoPriceList { .. } => "billing.no_price_list",
            BillingError::UnknownDiscount(_) => "billing.unknown_discount",
            BillingError::UnknownCycle(_) => "billing.unknown_cycle",
            BillingError::BadCycle(_) => "billing.bad_cycle",
            BillingError::PeriodMismatch(_) => "billing.period_mismatch",
            BillingError::PeriodNotEnded { .. } => "billing.period_not_ended",
            BillingError::NoTaxRate { .. } => "billing.no_tax_rate",
            BillingError::CurrencyMismatch { .. } => "billing.currency_mismatch",
            BillingError::NotAPayer(_) => "billing.not_a_payer",
            BillingError::NotBilledByPayer { .. } => "billing.not_billed_by_payer",
            BillingError::BadNumberTemplate(_) => "billing.bad_number_template",
            BillingError::BadSequence(_) => "billing.bad_sequence",
            BillingError::DateOutOfRange => "billing.date_out_of_range",
            BillingError::Overflow => "billing.overflow",
            BillingError::Money(err) => err.code(),
        }
    }
}

impl From<jiff::Error> for BillingError {
    fn from(_: jiff::Error) -> Self {
        BillingError::DateOutOfRange
    }
}
