//! Invoice input and the convergent invoice draft: one section per account on the payer's
//! invoice, invoice-level discounts, tax lines and totals.
//!
//! Totals always add up (a property test checks it):
//! - a section's `total` = its usage lines + fee lines + discount lines;
//! - `subtotal` = the section totals + the invoice-level discount lines = the tax lines' bases;
//! - `tax` = the tax lines' taxes; `net` = `subtotal` - inclusive taxes; `gross` = `net` + `tax`.
//!
//! With exclusive taxes only, `net` = `subtotal` = sections + invoice-level discounts.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::cycle::{BillCycle, Period};
use super::discount::{DiscountDefinition, DiscountLevel};
use super::error::BillingError;
use super::hierarchy::Account;
use super::price_list::{ChargeCategory, PriceList, Timing};
use super::subscription::Subscription;
use super::tax::{TaxBase, TaxLine, TaxScheme};
use crate::ids::{AccountId, CustomerId, DiscountId, ItemCode, SubscriptionId};
use crate::money::{Currency, Money};

/// An invoice amount: exact money at the currency's minor units, and those minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Amount {
    /// The amount.
    #[serde(flatten)]
    pub money: Money,
    /// The same amount in integer minor units (cents).
    pub minor: i64,
}

impl Amount {
    /// From integer minor units.
    pub fn from_minor(minor: i64, currency: Currency) -> Amount {
        Amount {
            money: Money::from_minor(minor, currency),
            minor,
        }
    }

    /// From money already at minor-unit precision (`money.not_minor_units` otherwise).
    pub fn exact(money: Money) -> Result<Amount, BillingError> {
        Ok(Amount::from_minor(money.to_minor()?, money.currency))
    }
}

/// Usage of one service by one account in the period, aggregated by the caller from the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSummary {
    /// Service name (`voice`, `sms`, `data`).
    pub service: SmolStr,
    /// Number of rated events.
    pub events: u64,
    /// Units used (seconds, messages, bytes).
    pub quantity: Decimal,
    /// Rated amount, in the account currency (any precision; rounded once on the invoice).
    pub amount: Money,
    /// Product category for tax (default `usage`).
    #[serde(default = "usage_category")]
    pub tax_category: SmolStr,
}

fn usage_category() -> SmolStr {
    SmolStr::new("usage")
}

/// One account of the billed subtree with what it is charged for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountCharges {
    /// The account.
    pub account: Account,
    /// Its customer's display name (printed on its section).
    pub customer_name: String,
    /// Its subscriptions.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// Its usage in the period, per service.
    #[serde(default)]
    pub usage: Vec<UsageSummary>,
}

/// Everything [`super::build_invoice`] needs; gathered by the caller, no IO inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceInput {
    /// The paying account.
    pub payer: AccountId,
    /// The payer's bill cycle.
    pub cycle: BillCycle,
    /// The period billed (one of the cycle's periods).
    pub period: Period,
    /// The payer and the accounts it pays for (accounts in between that it does not pay for
    /// may be included, without charges, to connect the hierarchy).
    pub accounts: Vec<AccountCharges>,
    /// Prices.
    pub price_list: PriceList,
    /// Discount definitions referred to by subscriptions and accounts.
    #[serde(default)]
    pub discounts: Vec<DiscountDefinition>,
    /// Tax rates.
    pub tax_scheme: TaxScheme,
}

/// Rated usage of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageLine {
    /// Service.
    pub service: SmolStr,
    /// Number of events.
    pub events: u64,
    /// Units used.
    pub quantity: Decimal,
    /// Tax category.
    pub tax_category: SmolStr,
    /// Amount (rounded half-up to minor units).
    pub amount: Amount,
}

/// Whether a fee line is recurring or one-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    /// A recurring fee or rental for `service_period`.
    Recurring,
    /// The in-advance fee of the period just ended, corrected for what actually happened
    /// (activation, suspension, deactivation) since it was billed in advance.
    RecurringAdjustment,
    /// A one-off fee.
    OneOff,
}

/// A fee, rental or one-off charge of one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeLine {
    /// Subscription.
    pub subscription: SubscriptionId,
    /// Its product.
    pub product: SmolStr,
    /// Price list item.
    pub item: ItemCode,
    /// Item name.
    pub name: String,
    /// Presentation category (fee, rental, setup).
    pub category: ChargeCategory,
    /// Recurring, adjustment or one-off.
    pub kind: FeeKind,
    /// In advance or in arrears (recurring only).
    pub timing: Option<Timing>,
    /// The period the fee pays for (recurring only).
    pub service_period: Option<Period>,
    /// Units.
    pub quantity: u32,
    /// Price per unit (per period for recurring items).
    pub unit_price: Money,
    /// Days charged (recurring; negative for a credit adjustment).
    pub charged_days: i64,
    /// Days in the service period (recurring).
    pub period_days: i64,
    /// `charged_days / period_days` (1 for one-off lines).
    pub proration: Decimal,
    /// Tax category.
    pub tax_category: SmolStr,
    /// Amount = unit price x quantity x proration, rounded half-up to minor units.
    pub amount: Amount,
}

/// How a discount's share is spread over tax bases (proportionally, in minor units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxShare {
    /// Where this part is taxed.
    pub base: TaxBase,
    /// Its part of the discount (negative).
    pub amount: Amount,
}

/// A discount applied (a negative amount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountLine {
    /// Discount definition.
    pub discount: DiscountId,
    /// Its name.
    pub name: String,
    /// What it was applied to.
    pub level: DiscountLevel,
    /// The subscription discounted (item and subscription levels).
    pub subscription: Option<SubscriptionId>,
    /// The item discounted (item level).
    pub item: Option<ItemCode>,
    /// The amount it was computed on (before this discount).
    pub base: Amount,
    /// The discount (negative; never more than `base`).
    pub amount: Amount,
    /// Its split over tax bases.
    pub allocation: Vec<TaxShare>,
}

/// The part of a convergent invoice for one account (location).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSection {
    /// Depth below the payer (0: the payer itself).
    pub depth: u32,
    /// Account.
    pub account: AccountId,
    /// Customer name.
    pub customer_name: String,
    /// Usage lines, by service.
    pub usage: Vec<UsageLine>,
    /// Fee lines, by subscription then attachment order.
    pub fees: Vec<FeeLine>,
    /// Item-, subscription- and account-level discounts.
    pub discounts: Vec<DiscountLine>,
    /// Usage + fees + discounts.
    pub total: Amount,
}

/// Invoice totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceTotals {
    /// Sections plus invoice-level discounts (as priced: gross for inclusive categories).
    pub subtotal: Amount,
    /// Subtotal without inclusive taxes.
    pub net: Amount,
    /// All taxes.
    pub tax: Amount,
    /// Net plus tax: what the payer owes.
    pub gross: Amount,
}

/// A convergent invoice for one payer and one period, before numbering and storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDraft {
    /// Paying account.
    pub payer: AccountId,
    /// Its customer.
    pub customer: CustomerId,
    /// Invoice currency (the payer's).
    pub currency: Currency,
    /// Period billed.
    pub period: Period,
    /// The next period (in-advance fees pay for it).
    pub next_period: Period,
    /// One section per account paid for, depth-first, payer first.
    pub sections: Vec<InvoiceSection>,
    /// Invoice-level discounts.
    pub discounts: Vec<DiscountLine>,
    /// Tax lines.
    pub tax_lines: Vec<TaxLine>,
    /// Totals.
    pub totals: InvoiceTotals,
}
