//! Taxes: rates per (product category, jurisdiction), inclusive or exclusive, and the invoice's
//! tax lines.
//!
//! Every invoice amount (lines, discounts, discount allocations) is already in minor units when
//! taxes are computed. Amounts are summed per (category, jurisdiction) into taxable bases, the
//! bases are grouped per tax line (rate code, rate, inclusive, category), and each tax line is
//! rounded **once**, half-up to the currency's minor units:
//! - exclusive: `tax = base x rate` (the base is net);
//! - inclusive: `tax = base x rate / (1 + rate)` (the base is gross; net = base - tax).
//!
//! The invoice's total tax is the sum of its tax lines, so lines and total always agree.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::error::BillingError;
use super::invoice::Amount;
use crate::money::{Currency, Money, RoundingMode};

/// One tax rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRate {
    /// Product (tax) category it applies to.
    pub category: SmolStr,
    /// Jurisdiction it applies in.
    pub jurisdiction: SmolStr,
    /// Code printed on the invoice (`VAT20`).
    pub code: SmolStr,
    /// Rate as a fraction (0.20 for 20 %).
    pub rate: Decimal,
    /// Whether prices of this category already include the tax.
    #[serde(default)]
    pub inclusive: bool,
}

/// A tax scheme: rates by (category, jurisdiction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxScheme {
    /// Scheme id.
    pub id: SmolStr,
    /// Rates; the first one matching (category, jurisdiction) applies.
    pub rates: Vec<TaxRate>,
}

impl TaxScheme {
    /// The rate for `category` in `jurisdiction` (`billing.no_tax_rate` when missing).
    pub fn rate(&self, category: &str, jurisdiction: &str) -> Result<&TaxRate, BillingError> {
        self.rates
            .iter()
            .find(|r| r.category == category && r.jurisdiction == jurisdiction)
            .ok_or_else(|| BillingError::NoTaxRate {
                category: SmolStr::new(category),
                jurisdiction: SmolStr::new(jurisdiction),
            })
    }
}

/// Where an amount is taxed: its category and its account's jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaxBase {
    /// Product (tax) category.
    pub category: SmolStr,
    /// Tax jurisdiction.
    pub jurisdiction: SmolStr,
}

/// One tax line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    /// Product category.
    pub category: SmolStr,
    /// Rate code.
    pub code: SmolStr,
    /// Rate as a fraction.
    pub rate: Decimal,
    /// Whether the base includes the tax.
    pub inclusive: bool,
    /// Sum of the invoice amounts taxed here (gross when inclusive, net when exclusive).
    pub base: Amount,
    /// Net amount (base minus tax when inclusive, the base when exclusive).
    pub net: Amount,
    /// The tax.
    pub tax: Amount,
}

/// Tax lines for bases given in minor units, ordered by (category, code, rate, inclusive).
pub fn tax_lines(
    scheme: &TaxScheme,
    bases: &BTreeMap<TaxBase, i64>,
    currency: Currency,
) -> Result<Vec<TaxLine>, BillingError> {
    let mut groups: BTreeMap<(SmolStr, SmolStr, Decimal, bool), i64> = BTreeMap::new();
    for (base, minor) in bases {
        let rate = scheme.rate(&base.category, &base.jurisdiction)?;
        let key = (
            base.category.clone(),
            rate.code.clone(),
            rate.rate,
            rate.inclusive,
        );
        let slot = groups.entry(key).or_default();
        *slot = slot.checked_add(*minor).ok_or(BillingError::Overflow)?;
    }
    let mut lines = Vec::with_capacity(groups.len());
    for ((category, code, rate, inclusive), base_minor) in groups {
        let base = Money::from_minor(base_minor, currency);
        // Multiply before dividing so that 120.00 x 0.20 / 1.20 is exactly 20.00.
        let mut tax = base
            .amount
            .checked_mul(rate)
            .ok_or(BillingError::Overflow)?;
        if inclusive {
            let divisor = Decimal::ONE
                .checked_add(rate)
                .filter(|d| !d.is_zero())
                .ok_or(BillingError::Overflow)?;
            tax = tax.checked_div(divisor).ok_or(BillingError::Overflow)?;
        }
        let tax = Money::new(tax, currency).round_to_minor(RoundingMode::HalfUp);
        let tax = Amount::exact(tax)?;
        let net_minor = if inclusive {
            base_minor
                .checked_sub(tax.minor)
                .ok_or(BillingError::Overflow)?
        } else {
            base_minor
        };
        lines.push(TaxLine {
            category,
            code,
            rate,
            inclusive,
            base: Amount::from_minor(base_minor, currency),
            net: Amount::from_minor(net_minor, currency),
            tax,
        });
    }
    Ok(lines)
}
