#![allow(missing_docs)] // the meaning of every key is documented in docs/catalogue.md
//! The catalogue file format as written by product managers (TOML), before validation.
//! Every struct refuses unknown keys so a typo is reported, not ignored.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use crate::calendar::PeriodKind;
use crate::cdr::Direction;
use crate::money::RoundingMode;

use super::{BandMode, CombinationMode, FeeKind, Model, UnitKind};

/// An exact decimal written as a string (`"0.10"`) or an integer; floats are refused because
/// binary floating point cannot hold most prices exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Amount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a decimal written as a string, e.g. \"0.10\", or an integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Amount, E> {
                v.trim()
                    .parse::<Decimal>()
                    .map(Amount)
                    .map_err(|_| E::custom(format!("{v:?} is not a decimal number")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Amount, E> {
                Err(E::custom(format!(
                    "{v} is a float: write amounts as strings, e.g. \"{v}\", so they stay exact"
                )))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[catalogue]`: name and defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub name: String,
    pub currency: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub charge_precision: Option<u32>,
    #[serde(default)]
    pub rounding: Option<RoundingMode>,
    #[serde(default)]
    pub limits: RawLimits,
}

/// `[catalogue.limits]`: the largest units one record may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_seconds: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_events: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub id: String,
    pub unit: UnitKind,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestinations {
    pub id: String,
    /// CSV file `prefix,zone[,description]`, relative to the catalogue file.
    #[serde(default)]
    pub file: Option<String>,
    /// Inline `prefix = "zone"` entries.
    #[serde(default)]
    pub entries: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub id: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub holidays: Vec<String>,
    pub bands: Vec<RawBand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBand {
    pub id: String,
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllowance {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub service: String,
    pub units: u64,
    #[serde(default)]
    pub period: Option<PeriodKind>,
    #[serde(default)]
    pub zones: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub destinations: Option<String>,
    #[serde(default)]
    pub caller_regions: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub band_mode: Option<BandMode>,
    #[serde(default)]
    pub rounding: Option<RoundingMode>,
    #[serde(default)]
    pub charge_precision: Option<u32>,
    #[serde(default)]
    pub period: Option<PeriodKind>,
    /// Parsed one by one so that a broken rule does not hide the others' problems.
    #[serde(default)]
    pub rules: Vec<toml::Value>,
    #[serde(default)]
    pub discounts: Vec<RawDiscount>,
    #[serde(default)]
    pub combinations: Vec<RawCombination>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    pub service: String,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub caller_zones: Vec<String>,
    #[serde(default)]
    pub trunks: Vec<String>,
    #[serde(default)]
    pub legs: Vec<String>,
    #[serde(default)]
    pub when: Vec<String>,
    #[serde(default)]
    pub increments: Option<String>,
    #[serde(default)]
    pub per: Option<u64>,
    #[serde(default)]
    pub model: Option<Model>,
    #[serde(default)]
    pub counter: Option<String>,
    #[serde(default)]
    pub coefficients: Vec<RawCoefficient>,
    #[serde(default)]
    pub price: Option<RawPrice>,
    #[serde(default)]
    pub prices: Vec<RawPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_to: Option<String>,
    #[serde(default)]
    pub rate: Option<Amount>,
    #[serde(default)]
    pub rates: Option<BTreeMap<String, Amount>>,
    #[serde(default)]
    pub tiers: Option<Vec<RawTier>>,
    #[serde(default)]
    pub connection_fee: Option<Amount>,
    #[serde(default)]
    pub minimum_charge: Option<Amount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    #[serde(default)]
    pub up_to: Option<u64>,
    pub rate: Amount,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCoefficient {
    #[serde(default)]
    pub when: Vec<String>,
    pub factor: Amount,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscount {
    pub id: String,
    #[serde(default)]
    pub when: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub percent: Option<Amount>,
    #[serde(default)]
    pub amount: Option<Amount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCombination {
    pub id: String,
    pub legs: Vec<String>,
    #[serde(default)]
    pub mode: Option<CombinationMode>,
    #[serde(default)]
    pub leg_rules: BTreeMap<String, String>,
    #[serde(default)]
    pub fee: Option<Amount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProduct {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub plans: Vec<String>,
    #[serde(default)]
    pub allowances: Vec<String>,
    #[serde(default)]
    pub partner_shares: Vec<RawShare>,
    #[serde(default)]
    pub fees: Vec<RawFee>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShare {
    pub partner: String,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub percent: Option<Amount>,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub per: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFee {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub kind: FeeKind,
    pub amount: Amount,
    #[serde(default)]
    pub period: Option<PeriodKind>,
    #[serde(default)]
    pub in_advance: Option<bool>,
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBundle {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub products: Vec<String>,
}
