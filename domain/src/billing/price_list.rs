//! Price lists: charge definitions keyed by item code, each with one price per currency.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::error::BillingError;
use crate::ids::ItemCode;
use crate::money::{Currency, Money};

/// Amounts by currency (a price list item's prices, a fixed discount, a threshold).
pub type PriceByCurrency = BTreeMap<Currency, Decimal>;

/// Looks up `currency` in `prices` (`billing.no_price_list` when missing).
pub fn price_in(
    what: &str,
    prices: &PriceByCurrency,
    currency: Currency,
) -> Result<Money, BillingError> {
    prices
        .get(&currency)
        .map(|amount| Money::new(*amount, currency))
        .ok_or_else(|| BillingError::NoPriceList {
            item: SmolStr::new(what),
            currency,
        })
}

/// When a recurring fee is billed relative to the period it pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// Billed for the coming period (with a correction of the period just ended).
    InAdvance,
    /// Billed for the period just ended.
    InArrears,
}

/// What kind of charge an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChargeKind {
    /// A fee per billing period of the payer's cycle, prorated by days.
    Recurring {
        /// In advance or in arrears.
        timing: Timing,
    },
    /// Charged once (setup, activation, device sale).
    OneOff,
}

/// How the invoice presents a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeCategory {
    /// Subscription fee.
    Fee,
    /// Device or equipment rental (a recurring charge).
    Rental,
    /// Setup or activation.
    Setup,
    /// Anything else.
    Other,
}

/// One price list item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeDefinition {
    /// Item code subscriptions refer to.
    pub code: ItemCode,
    /// Name printed on the invoice.
    pub name: String,
    /// Recurring or one-off.
    pub kind: ChargeKind,
    /// Presentation category.
    pub category: ChargeCategory,
    /// Product category the tax scheme is keyed by.
    pub tax_category: SmolStr,
    /// Price per unit (per period for recurring items) in each currency.
    pub prices: PriceByCurrency,
    /// Whether suspended days are charged (default yes: suspension bars service, not the fee).
    #[serde(default = "yes")]
    pub charge_suspended: bool,
    /// Default free trial in days from activation (0: none).
    #[serde(default)]
    pub trial_days: u32,
}

fn yes() -> bool {
    true
}

impl ChargeDefinition {
    /// The unit price in `currency`.
    pub fn price(&self, currency: Currency) -> Result<Money, BillingError> {
        price_in(self.code.as_str(), &self.prices, currency)
    }
}

/// A price list: item definitions by code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceList {
    /// Price list id.
    pub id: SmolStr,
    /// Items, keyed by code.
    pub items: BTreeMap<ItemCode, ChargeDefinition>,
}

impl PriceList {
    /// Builds a price list from item definitions (a later duplicate code replaces an earlier).
    pub fn new(id: impl Into<SmolStr>, items: impl IntoIterator<Item = ChargeDefinition>) -> Self {
        PriceList {
            id: id.into(),
            items: items.into_iter().map(|i| (i.code.clone(), i)).collect(),
        }
    }

    /// The definition of `code` (`billing.unknown_item` when missing).
    pub fn item(&self, code: &ItemCode) -> Result<&ChargeDefinition, BillingError> {
        self.items
            .get(code)
            .ok_or_else(|| BillingError::UnknownItem(code.clone()))
    }

    /// The unit price of `code` in `currency` (`billing.no_price_list` when missing).
    pub fn price(&self, code: &ItemCode, currency: Currency) -> Result<Money, BillingError> {
        self.item(code)?.price(currency)
    }
}
