//! The explanation of a charge: which product, plan, rule, price version, zone, band, tier,
//! increments, free units, coefficients, fees, discounts and rounding produced it.

use std::fmt;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use smallvec::SmallVec;
use smol_str::SmolStr;

use crate::catalogue::{Increments, Model};
use crate::money::{Currency, RoundingMode};

/// A number matched to a zone by a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneMatch {
    /// Zone id.
    pub zone: SmolStr,
    /// The matching prefix.
    pub prefix: SmolStr,
}

/// Units priced at one rate: a band segment, a tier portion, or the whole at a flat rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// Band name, `tier N`, or `flat`.
    pub label: SmolStr,
    /// Units in this part.
    pub units: u64,
    /// Rate per `per` units.
    pub rate: Decimal,
}

/// Free units taken from an allowance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreeUse {
    /// Allowance id.
    pub allowance: SmolStr,
    /// Units taken.
    pub units: u64,
    /// Units left after this record.
    pub left: u64,
}

/// How one leg (or a record without legs) was priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegExplanation {
    /// Leg kind, for multi-leg calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg: Option<SmolStr>,
    /// Rule id.
    pub rule: SmolStr,
    /// Start of the price version used (`None`: always valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_valid_from: Option<Timestamp>,
    /// Pricing model.
    pub model: Model,
    /// Units used.
    pub units: u64,
    /// Unit name.
    pub unit: &'static str,
    /// Increments.
    pub increments: Increments,
    /// Units after increments (for cumulated: the growth of the period's rounded total).
    pub charged_units: u64,
    /// Free units used.
    #[serde(skip_serializing_if = "SmallVec::is_empty")]
    pub free: SmallVec<[FreeUse; 1]>,
    /// Rates are per this many units.
    pub per: u64,
    /// Priced parts.
    pub parts: SmallVec<[Part; 2]>,
    /// Product of matching coefficients (1 when none).
    pub coefficient: Decimal,
    /// Usage amount (exact).
    pub usage: Decimal,
    /// Connection fee.
    pub connection_fee: Decimal,
    /// Raise to the minimum charge (0 when not applied).
    pub minimum_adjustment: Decimal,
}

/// The whole explanation of a rated record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Product id.
    pub product: SmolStr,
    /// Plan id.
    pub plan: SmolStr,
    /// Currency.
    pub currency: Currency,
    /// Destination zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<ZoneMatch>,
    /// Caller region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_region: Option<ZoneMatch>,
    /// Legs (on the heap: inline they would make every rating kilobytes to move).
    pub legs: Vec<LegExplanation>,
    /// Combination matched and its fee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub combination: Option<(SmolStr, Decimal)>,
    /// Discounts applied (id, amount taken off).
    #[serde(skip_serializing_if = "SmallVec::is_empty")]
    pub discounts: SmallVec<[(SmolStr, Decimal); 1]>,
    /// Exact total before rounding.
    pub exact: Decimal,
    /// Rounding mode.
    pub rounding: RoundingMode,
    /// Decimal places.
    pub precision: u32,
    /// The charge.
    pub charge: Decimal,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "product {}, plan {} ({})",
            self.product, self.plan, self.currency
        )?;
        if let Some(z) = &self.destination {
            write!(f, "; destination zone {} (prefix {})", z.zone, z.prefix)?;
        }
        if let Some(z) = &self.caller_region {
            write!(f, "; caller region {} (prefix {})", z.zone, z.prefix)?;
        }
        for leg in &self.legs {
            f.write_str("; ")?;
            if let Some(kind) = &leg.leg {
                write!(f, "leg {kind}: ")?;
            }
            write!(f, "rule {}", leg.rule)?;
            if let Some(from) = leg.price_valid_from {
                write!(f, " (price from {from})")?;
            }
            write!(
                f,
                ", {} {} at {} -> {} {} charged",
                leg.units, leg.unit, leg.increments, leg.charged_units, leg.unit
            )?;
            for free in &leg.free {
                write!(
                    f,
                    ", {} {} free from {} ({} left)",
                    free.units, leg.unit, free.allowance, free.left
                )?;
            }
            for part in &leg.parts {
                write!(
                    f,
                    ", {} {} {} x {}/{}{}",
                    part.label, part.units, leg.unit, part.rate, leg.per, leg.unit
                )?;
            }
            if leg.coefficient != Decimal::ONE {
                write!(f, ", coefficient x{}", leg.coefficient)?;
            }
            write!(f, " = {}", leg.usage.normalize())?;
            if !leg.connection_fee.is_zero() {
                write!(f, ", connection fee {}", leg.connection_fee)?;
            }
            if !leg.minimum_adjustment.is_zero() {
                write!(
                    f,
                    ", raised to minimum charge (+{})",
                    leg.minimum_adjustment.normalize()
                )?;
            }
        }
        if let Some((id, fee)) = &self.combination {
            write!(f, "; combination {id} fee {fee}")?;
        }
        for (id, amount) in &self.discounts {
            write!(f, "; discount {id} -{}", amount.normalize())?;
        }
        write!(
            f,
            "; total {} rounded {} to {} dp = {} {}",
            self.exact.normalize(),
            self.rounding,
            self.precision,
            self.charge,
            self.currency
        )
    }
}
