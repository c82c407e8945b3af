//! The product catalogue: services, zones and destination prefixes, schedules of time bands,
//! allowances, price plans with rating rules, products, bundles and partner shares.
//!
//! [`Catalogue::from_toml`] validates a whole file and reports every problem with its location;
//! the validated model refers to its parts by index so rating does no lookups by name.

pub mod document;
mod load;
mod raw;
pub mod timeline;

pub use load::{FileReader, Problem, Problems};
pub use timeline::Timeline;

use rustc_hash::FxHashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::attrs::Condition;
use crate::calendar::{PeriodKind, Schedule};
use crate::cdr::Direction;
use crate::ids::PartnerId;
use crate::money::{Currency, RoundingMode};
use crate::prefix::PrefixTable;

/// The unit a service is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Seconds (voice, conferencing, call-centre legs).
    Second,
    /// Bytes (data).
    Byte,
    /// Events (SMS, e-mail, fax, one-shot events).
    Event,
}

impl UnitKind {
    /// Name used in explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Second => "s",
            UnitKind::Byte => "B",
            UnitKind::Event => "event",
        }
    }

    /// Default `per` of a rate: per minute, per megabyte, per event.
    pub fn default_per(self) -> u64 {
        match self {
            UnitKind::Second => 60,
            UnitKind::Byte => 1_000_000,
            UnitKind::Event => 1,
        }
    }
}

/// How a call that crosses a band boundary is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BandMode {
    /// Split the (rounded) duration at band boundaries; each part at its band's rate.
    #[default]
    Split,
    /// The whole call at the rate of the band it started in.
    Start,
}

/// Pricing model of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// One rate (or one rate per band).
    #[default]
    Flat,
    /// Graduated tiers over the period counter: each unit at the rate of the tier it falls in.
    Tiered,
    /// All units of the period at the rate of the tier the period total reaches; rated
    /// provisionally at the tier reached so far, trued up at bill time by [`volume_true_up`].
    Volume,
    /// Increments applied to the period's accumulated usage rather than to each record: each
    /// record is charged the growth of the period's price.
    Cumulated,
}

/// Whether a combination needs exactly its legs, or at least them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CombinationMode {
    /// The call's leg kinds are exactly the listed set.
    #[default]
    Exact,
    /// The call has at least the listed leg kinds.
    Contains,
}

/// Recurring or one-off fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeeKind {
    /// Charged every period (rental, subscription).
    Recurring,
    /// Charged once (setup, activation).
    OneOff,
}

/// A service sold (voice, sms, data, fax...).
#[derive(Debug, Clone)]
pub struct Service {
    /// Id used in CDRs.
    pub id: SmolStr,
    /// Display name.
    pub name: SmolStr,
    /// Unit of its usage.
    pub unit: UnitKind,
}

/// A named destination (or caller region).
#[derive(Debug, Clone)]
pub struct Zone {
    /// Id.
    pub id: SmolStr,
    /// Display name.
    pub name: SmolStr,
}

/// A prefix table mapping numbers to zones by longest match.
#[derive(Debug, Clone)]
pub struct Destinations {
    /// Id.
    pub id: SmolStr,
    /// Prefix -> zone index.
    pub table: PrefixTable,
}

/// A free-unit allowance per period.
#[derive(Debug, Clone)]
pub struct Allowance {
    /// Id.
    pub id: SmolStr,
    /// Display name.
    pub name: SmolStr,
    /// Service index.
    pub service: u32,
    /// Free units per period.
    pub units: u64,
    /// Period.
    pub period: PeriodKind,
    /// Zones it applies to (empty: all).
    pub zones: Vec<u32>,
    /// Counter name.
    pub counter: SmolStr,
}

/// First and next charging intervals, e.g. 60/60, 30/6, 1/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Increments {
    /// First interval.
    pub first: u64,
    /// Each following interval.
    pub next: u64,
}

impl Increments {
    /// Charged units for `units` used: 0 stays 0; up to `first` is `first`; then whole `next`s.
    pub fn apply(self, units: u64) -> u64 {
        if units == 0 {
            0
        } else if units <= self.first {
            self.first
        } else {
            let rest = units - self.first;
            self.first
                .saturating_add(rest.div_ceil(self.next).saturating_mul(self.next))
        }
    }
}

impl std::fmt::Display for Increments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.first, self.next)
    }
}

/// One graduated tier: units up to `up_to` (cumulative over the period) at `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Upper bound (inclusive) of the tier in period units; `None` for the last, open tier.
    pub up_to: Option<u64>,
    /// Rate per `per` units.
    pub rate: Decimal,
}

/// The rates of a price version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rates {
    /// One rate.
    Flat(Decimal),
    /// One rate per band of the plan's schedule (indexed like the schedule's bands).
    Bands(Vec<Decimal>),
    /// Tiers, ascending.
    Tiers(Vec<Tier>),
}

/// A price valid over a time window.
#[derive(Debug, Clone)]
pub struct PriceVersion {
    /// Start of validity (inclusive); `None` = always.
    pub valid_from: Option<Timestamp>,
    /// End of validity (exclusive); `None` = open.
    pub valid_to: Option<Timestamp>,
    /// Rates.
    pub rates: Rates,
    /// Fee per answered call or record.
    pub connection_fee: Decimal,
    /// Minimum charge per answered call or record.
    pub minimum_charge: Decimal,
}

impl PriceVersion {
    /// Whether the version is in force at `at`.
    pub fn covers(&self, at: Timestamp) -> bool {
        self.valid_from.is_none_or(|from| at >= from) && self.valid_to.is_none_or(|to| at < to)
    }
}

/// A conditional price multiplier (volume coefficient, QoS surcharge...).
#[derive(Debug, Clone)]
pub struct Coefficient {
    /// All must hold.
    pub when: Vec<Condition>,
    /// Multiplier.
    pub factor: Decimal,
}

/// A rating rule: what it matches and how it prices.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Id.
    pub id: SmolStr,
    /// Service index.
    pub service: u32,
    /// Direction, if restricted.
    pub direction: Option<Direction>,
    /// Destination zones (empty: any).
    pub zones: Vec<u32>,
    /// Caller regions (empty: any).
    pub caller_zones: Vec<u32>,
    /// Trunks (empty: any).
    pub trunks: Vec<SmolStr>,
    /// Leg kinds this rule prices; empty: the rule prices records without legs only.
    pub legs: Vec<SmolStr>,
    /// Extra conditions, all must hold.
    pub when: Vec<Condition>,
    /// Charging increments.
    pub increments: Increments,
    /// Rates are per this many units.
    pub per: u64,
    /// Pricing model.
    pub model: Model,
    /// Multipliers.
    pub coefficients: Vec<Coefficient>,
    /// Price versions, sorted by `valid_from`, non-overlapping.
    pub prices: Vec<PriceVersion>,
    /// Period counter of billable units (tiers, volume, `period.units`).
    pub counter: SmolStr,
    /// Period counter of raw units (cumulated model).
    pub raw_counter: SmolStr,
    /// Whether rating must keep the period counter (tiers, volume, cumulated, `period.*`
    /// conditions, or a counter named explicitly); flat rules skip it on the hot path.
    pub counts: bool,
}

impl Rule {
    /// The price version in force at `at`.
    pub fn price_at(&self, at: Timestamp) -> Option<&PriceVersion> {
        self.prices.iter().find(|p| p.covers(at))
    }
}

/// A discount on rated usage.
#[derive(Debug, Clone)]
pub struct Discount {
    /// Id.
    pub id: SmolStr,
    /// Conditions.
    pub when: Vec<Condition>,
    /// Rule indices it applies to (empty: all).
    pub rules: Vec<u32>,
    /// What it takes off.
    pub kind: DiscountKind,
}

/// Percentage or amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountKind {
    /// Percent of the charge.
    Percent(Decimal),
    /// Fixed amount per record, never more than the charge.
    Amount(Decimal),
}

/// Pricing for a combination of legs.
#[derive(Debug, Clone)]
pub struct Combination {
    /// Id.
    pub id: SmolStr,
    /// Leg kinds, sorted and unique.
    pub legs: Vec<SmolStr>,
    /// Exact set or contains.
    pub mode: CombinationMode,
    /// Leg kind -> rule index used for that leg in this combination.
    pub leg_rules: Vec<(SmolStr, u32)>,
    /// Extra fee per call.
    pub fee: Decimal,
}

impl Combination {
    /// Whether a call with these leg kinds (sorted, unique) matches.
    pub fn matches(&self, kinds: &[SmolStr]) -> bool {
        match self.mode {
            CombinationMode::Exact => self.legs.as_slice() == kinds,
            CombinationMode::Contains => self.legs.iter().all(|l| kinds.contains(l)),
        }
    }
}

/// A price plan in one currency.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Id.
    pub id: SmolStr,
    /// Display name.
    pub name: SmolStr,
    /// Currency of all its amounts.
    pub currency: Currency,
    /// Destination table index.
    pub destinations: Option<u32>,
    /// Caller-region table index.
    pub caller_regions: Option<u32>,
    /// Schedule index.
    pub schedule: Option<u32>,
    /// Band handling.
    pub band_mode: BandMode,
    /// Rounding of charges.
    pub rounding: RoundingMode,
    /// Decimal places of charges.
    pub charge_precision: u32,
    /// Counting period of tiers.
    pub period: PeriodKind,
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
    /// Discounts, all that match apply in order.
    pub discounts: Vec<Discount>,
    /// Leg combinations, first match wins.
    pub combinations: Vec<Combination>,
    /// Candidate rules per destination zone, in rule order (built at load time).
    pub rule_index: RuleIndex,
}

/// Rules that can match a record, by its destination zone, so that a plan with one rule per
/// destination (hundreds of rules) is not scanned linearly for every record.
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    /// For zone `z`: indices of rules with no zone list or with `z` in it, in rule order.
    pub by_zone: Vec<Vec<u32>>,
    /// Indices of rules with no zone list, for records without a destination zone.
    pub no_zone: Vec<u32>,
}

impl RuleIndex {
    /// Builds the index of `rules` over `zone_count` zones.
    pub fn build(rules: &[Rule], zone_count: usize) -> RuleIndex {
        let mut by_zone = vec![Vec::new(); zone_count];
        let mut no_zone = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            if rule.zones.is_empty() {
                no_zone.push(i);
                by_zone.iter_mut().for_each(|list| list.push(i));
            } else {
                for &z in &rule.zones {
                    if let Some(list) = by_zone.get_mut(z as usize)
                        && list.last() != Some(&i)
                    {
                        list.push(i);
                    }
                }
            }
        }
        RuleIndex { by_zone, no_zone }
    }

    /// Candidate rules for a destination zone.
    pub fn candidates(&self, zone: Option<u32>) -> &[u32] {
        match zone {
            Some(z) => self
                .by_zone
                .get(z as usize)
                .map_or(&self.no_zone[..], |v| &v[..]),
            None => &self.no_zone,
        }
    }
}

/// A partner's share of a product's revenue.
#[derive(Debug, Clone)]
pub struct ShareRule {
    /// Partner.
    pub partner: PartnerId,
    /// Service indices (empty: all).
    pub services: Vec<u32>,
    /// Percentage or absolute.
    pub kind: ShareKind,
}

/// How a share is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// Percent of the net charge.
    Percent(Decimal),
    /// Fixed amount per `per` charged units, or per record when `per` is `None`.
    Amount {
        /// Amount.
        amount: Decimal,
        /// Units it is per.
        per: Option<u64>,
    },
}

/// A recurring or one-off fee of a product (billed by bill runs).
#[derive(Debug, Clone)]
pub struct Fee {
    /// Id.
    pub id: SmolStr,
    /// Display name.
    pub name: SmolStr,
    /// Recurring or one-off.
    pub kind: FeeKind,
    /// Amount in the product's currency.
    pub amount: Decimal,
    /// Period of a recurring fee.
    pub period: PeriodKind,
    /// Charged at the start of the period (true) or at its end.
    pub in_advance: bool,
    /// Validity start.
    pub valid_from: Option<Timestamp>,
    /// Validity end (exclusive).
    pub valid_to: Option<Timestamp>,
}

/// A product: plans (one per currency), allowances, partner shares and fees.
#[derive(Debug, Clone)]
pub struct Product {
    /// Id.
    pub id: SmolStr,
    /// Display name.
    pub name: SmolStr,
    /// Plan indices.
    pub plans: Vec<u32>,
    /// Allowance indices.
    pub allowances: Vec<u32>,
    /// Partner shares.
    pub shares: Vec<ShareRule>,
    /// Fees.
    pub fees: Vec<Fee>,
}

/// Products sold together (including device rental products).
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Id.
    pub id: SmolStr,
    /// Display name.
    pub name: SmolStr,
    /// Product indices.
    pub products: Vec<u32>,
}

/// Largest units one record may carry, per unit kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Seconds (default 2 days).
    pub max_seconds: u64,
    /// Bytes (default 1 TB).
    pub max_bytes: u64,
    /// Events (default 100,000).
    pub max_events: u64,
}

impl Limits {
    /// Limit for a unit kind.
    pub fn max(&self, unit: UnitKind) -> u64 {
        match unit {
            UnitKind::Second => self.max_seconds,
            UnitKind::Byte => self.max_bytes,
            UnitKind::Event => self.max_events,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_seconds: 172_800,
            max_bytes: 1_000_000_000_000,
            max_events: 100_000,
        }
    }
}

/// A validated catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Name.
    pub name: SmolStr,
    /// Default currency.
    pub currency: Currency,
    /// Default timezone (periods, dates without offset).
    pub timezone: TimeZone,
    /// Default charge precision.
    pub charge_precision: u32,
    /// Default rounding.
    pub rounding: RoundingMode,
    /// Limits on units.
    pub limits: Limits,
    /// Services.
    pub services: Vec<Service>,
    /// Zones.
    pub zones: Vec<Zone>,
    /// Destination / caller-region tables.
    pub destinations: Vec<Destinations>,
    /// Schedules.
    pub schedules: Vec<Schedule>,
    /// Allowances.
    pub allowances: Vec<Allowance>,
    /// Plans.
    pub plans: Vec<Plan>,
    /// Products.
    pub products: Vec<Product>,
    /// Bundles.
    pub bundles: Vec<Bundle>,
    service_index: FxHashMap<SmolStr, u32>,
    offer_index: FxHashMap<SmolStr, Offer>,
}

/// A product or a bundle, as a subscriber can hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A product index.
    Product(u32),
    /// A bundle index.
    Bundle(u32),
}

impl Catalogue {
    /// Service index by id.
    pub fn service(&self, id: &str) -> Option<u32> {
        self.service_index.get(id).copied()
    }

    /// Product or bundle by id.
    pub fn offer(&self, id: &str) -> Option<Offer> {
        self.offer_index.get(id).copied()
    }

    /// Plan by id.
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// Product by id.
    pub fn product(&self, id: &str) -> Option<&Product> {
        match self.offer(id)? {
            Offer::Product(i) => self.products.get(i as usize),
            Offer::Bundle(_) => None,
        }
    }

    /// Total number of destination prefixes over all tables.
    pub fn prefix_count(&self) -> usize {
        self.destinations.iter().map(|d| d.table.len()).sum()
    }
}

/// The bill-time correction of a volume-priced rule: all units of the period at the rate of the
/// tier the period total reached, minus what was charged provisionally.
pub fn volume_true_up(
    tiers: &[Tier],
    per: u64,
    period_units: u64,
    provisional: Decimal,
) -> Decimal {
    let rate = volume_rate(tiers, period_units);
    rate * Decimal::from(period_units) / Decimal::from(per.max(1)) - provisional
}

/// The rate of the tier that a period total of `units` falls in.
pub fn volume_rate(tiers: &[Tier], units: u64) -> Decimal {
    tiers
        .iter()
        .find(|t| t.up_to.is_none_or(|up| units <= up))
        .or(tiers.last())
        .map_or(Decimal::ZERO, |t| t.rate)
}

#[cfg(test)]
mod tests;
