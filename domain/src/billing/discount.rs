//! Discounts: definitions, conditions, and the order in which they apply.
//!
//! A discount applies where it is attached: to a subscription (`Subscription::discounts`) or to
//! an account (`Account::discounts`). Its scope says what it reduces:
//! 1. `item { code }` / `product { code }`: each matching fee line, one at a time;
//! 2. `subscription`: the fee lines of a subscription together (attached to an account: each
//!    of the account's subscriptions);
//! 3. `account`: the whole section of the account (usage, fees, after levels 1 and 2); an
//!    `invoice` discount attached to an account that does not pay for itself acts here too;
//! 4. `invoice`: attached to the payer, the sum of all sections.
//!
//! Levels run in that order; within a level, a subscription's own discounts come before its
//! account's, each in attachment order, and each one sees what the previous ones left
//! (percentages compound). A discount is computed on its **base** (what it reduces, before it),
//! rounded half-up to minor units, and **capped at the base**: it never makes a line, a
//! subscription, a section or the invoice negative, and a base at or below zero (e.g. a credit)
//! gets no discount. Conditions: the discount must be valid on at least one day of the billed
//! period (`[valid_from, valid_to)` overlaps it; no proration), the base must reach
//! `min_amount` and the usage of the section (invoice level: of the invoice) must reach
//! `min_usage`. A discount's amount is spread over the tax bases of what it reduces,
//! proportionally, in minor units (largest remainder), so taxes see discounted bases.

use std::collections::BTreeMap;

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::cycle::Period;
use super::error::BillingError;
use super::invoice::{Amount, TaxShare};
use super::price_list::{PriceByCurrency, price_in};
use super::tax::TaxBase;
use crate::ids::{DiscountId, ItemCode};
use crate::money::{Currency, Money, RoundingMode};

/// How much a discount takes off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DiscountValue {
    /// A percentage of the base (10 for 10 %).
    Percentage {
        /// Percent, 0..=100.
        percent: Decimal,
    },
    /// A fixed amount per invoice, by currency.
    Fixed {
        /// Amount in each currency.
        amounts: PriceByCurrency,
    },
}

/// What a discount reduces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DiscountScope {
    /// Fee lines of one price list item.
    Item {
        /// Item code.
        code: ItemCode,
    },
    /// Fee lines of subscriptions to one product.
    Product {
        /// Product code.
        code: SmolStr,
    },
    /// All fee lines of a subscription.
    Subscription,
    /// An account's whole section.
    Account,
    /// The whole invoice.
    Invoice,
}

/// The level a discount line was applied at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountLevel {
    /// One fee line (item or product scope).
    Item,
    /// A subscription's fee lines.
    Subscription,
    /// An account's section.
    Account,
    /// The invoice.
    Invoice,
}

/// A discount definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountDefinition {
    /// Discount id.
    pub id: DiscountId,
    /// Name printed on the invoice.
    pub name: String,
    /// Percentage or fixed amount.
    pub value: DiscountValue,
    /// What it reduces.
    pub scope: DiscountScope,
    /// Minimum base (per currency) for the discount to apply.
    #[serde(default)]
    pub min_amount: Option<PriceByCurrency>,
    /// Minimum usage amount (per currency) for the discount to apply.
    #[serde(default)]
    pub min_usage: Option<PriceByCurrency>,
    /// First day of validity.
    #[serde(default)]
    pub valid_from: Option<Date>,
    /// First day no longer valid.
    #[serde(default)]
    pub valid_to: Option<Date>,
}

impl DiscountDefinition {
    /// Whether it is valid on at least one day of `period`.
    pub fn in_force(&self, period: &Period) -> bool {
        period.overlap_days(self.valid_from, self.valid_to) > 0
    }

    /// The discount (positive minor units, at most `base_minor`) on a base, or 0 when a
    /// condition is not met.
    pub fn amount_on(
        &self,
        base_minor: i64,
        usage_minor: i64,
        currency: Currency,
        period: &Period,
    ) -> Result<i64, BillingError> {
        if base_minor <= 0 || !self.in_force(period) {
            return Ok(0);
        }
        let base = Money::from_minor(base_minor, currency);
        for (threshold, actual) in [
            (&self.min_amount, base_minor),
            (&self.min_usage, usage_minor),
        ] {
            if let Some(threshold) = threshold {
                let minimum = price_in(self.id.as_str(), threshold, currency)?;
                if Money::from_minor(actual, currency).amount < minimum.amount {
                    return Ok(0);
                }
            }
        }
        let discount = match &self.value {
            DiscountValue::Percentage { percent } => {
                let share = percent
                    .checked_div(Decimal::ONE_HUNDRED)
                    .ok_or(BillingError::Overflow)?;
                base.checked_mul(share)?
            }
            DiscountValue::Fixed { amounts } => price_in(self.id.as_str(), amounts, currency)?,
        };
        let minor = discount.round_to_minor(RoundingMode::HalfUp).to_minor()?;
        Ok(minor.clamp(0, base_minor))
    }
}

/// Amounts not yet discounted, per tax base (minor units).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pool {
    pub(crate) parts: BTreeMap<TaxBase, i64>,
}

impl Pool {
    pub(crate) fn add(&mut self, base: &TaxBase, minor: i64) -> Result<(), BillingError> {
        let slot = self.parts.entry(base.clone()).or_default();
        *slot = slot.checked_add(minor).ok_or(BillingError::Overflow)?;
        Ok(())
    }

    pub(crate) fn absorb(&mut self, other: &Pool) -> Result<(), BillingError> {
        for (base, minor) in &other.parts {
            self.add(base, *minor)?;
        }
        Ok(())
    }

    pub(crate) fn total(&self) -> Result<i64, BillingError> {
        self.parts
            .values()
            .try_fold(0i64, |acc, v| acc.checked_add(*v))
            .ok_or(BillingError::Overflow)
    }

    /// Takes `discount` (positive minor units, at most the total) off the positive parts,
    /// proportionally with the largest-remainder method (ties: tax base order), and returns
    /// the shares as negative amounts.
    pub(crate) fn take(
        &mut self,
        discount: i64,
        currency: Currency,
    ) -> Result<Vec<TaxShare>, BillingError> {
        let positive: Vec<(TaxBase, i128)> = self
            .parts
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (k.clone(), i128::from(*v)))
            .collect();
        let total: i128 = positive.iter().map(|(_, v)| v).sum();
        if discount <= 0 || total <= 0 {
            return Ok(Vec::new());
        }
        let wanted = i128::from(discount).min(total);
        let mut shares: Vec<(TaxBase, i128, i128)> = positive
            .into_iter()
            .map(|(k, v)| (k, wanted * v / total, wanted * v % total))
            .collect();
        let given: i128 = shares.iter().map(|(_, q, _)| q).sum();
        let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
        by_remainder.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2).then(a.cmp(b)));
        let leftover = usize::try_from(wanted - given).map_err(|_| BillingError::Overflow)?;
        for &i in by_remainder.iter().take(leftover) {
            shares[i].1 += 1;
        }
        let mut out = Vec::with_capacity(shares.len());
        for (base, share, _) in shares {
            let share = i64::try_from(share).map_err(|_| BillingError::Overflow)?;
            if share == 0 {
                continue;
            }
            self.add(&base, -share)?;
            out.push(TaxShare {
                base,
                amount: Amount::from_minor(-share, currency),
            });
        }
        Ok(out)
    }
}
