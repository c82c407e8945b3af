//! Rating: a pure function from (catalogue, subscriber, record, period counters) to the charge,
//! its lines, the counter updates, partner shares and an explanation.
//!
//! Order of operations for one leg (a record without legs is one leg), in one place:
//! 1. units -> charged units by the rule's increments (cumulated: on the period total);
//! 2. free units from the product's allowances are taken from the start of the usage;
//! 3. billable units priced: flat, per band (split at boundaries or band at start), graduated
//!    tiers, or volume tier; exact sum of `rate x units` divided once by `per`;
//! 4. multiplied by the matching coefficients;
//! 5. plus the connection fee (answered usage only), raised to the minimum charge if below it.
//!
//! Then for the record: plus the leg-combination fee, minus discounts (in catalogue order), and
//! **one** rounding of the total to the plan's charge precision with its rounding mode. Lines are
//! rounded the same way and a `rounding` line carries any difference, so lines always sum to the
//! charge. Partner shares are computed from the rounded charge and rounded the same way.

mod counters;
mod explain;
mod leg;
pub mod rerate;

pub use counters::{CounterKey, CounterUpdate, CounterValue, Counters};
pub use explain::{Explanation, FreeUse, LegExplanation, Part, ZoneMatch};

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use smallvec::SmallVec;
use smol_str::SmolStr;

use crate::attrs::{Condition, Scope};
use crate::catalogue::{Catalogue, DiscountKind, Offer, Plan, Product, Rule, ShareKind, UnitKind};
use crate::cdr::{Cdr, Leg};
use crate::ids::{CdrId, PartnerId, SubscriberId};
use crate::money::{Currency, Money};
use crate::subscriber::SubscriberProfile;
use counters::CounterView;

/// Why a record cannot be rated. Codes are stable: they are suspense reasons and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    /// No subscriber with this id (raised by callers that look profiles up).
    #[error("unknown subscriber {0}")]
    UnknownSubscriber(SubscriberId),
    /// The record's service is not in the catalogue.
    #[error("unknown service {0:?}")]
    UnknownService(SmolStr),
    /// The subscriber holds a product or bundle the catalogue does not have.
    #[error("subscriber holds unknown product {0:?}")]
    UnknownProduct(SmolStr),
    /// No rule of the subscriber's plans matches the record.
    #[error("no tariff: {0}")]
    NoTariff(String),
    /// A rule matches but none of its prices is valid at the record's time.
    #[error("rule {rule} has no price valid at {at}")]
    NoPrice {
        /// Rule id.
        rule: SmolStr,
        /// Record time.
        at: Timestamp,
    },
    /// None of the subscriber's products has a plan in the account currency.
    #[error("no plan in the account currency {0}")]
    CurrencyMismatch(Currency),
    /// The record carries no units and its service is not counted in events.
    #[error("record has no units")]
    MissingUnits,
    /// Units above the catalogue's limit for their kind.
    #[error("{units} units is above the limit of {max}")]
    UnitsOutOfRange {
        /// Units in the record.
        units: u64,
        /// Limit.
        max: u64,
    },
    /// Arithmetic overflow (absurd amounts).
    #[error("amount overflow")]
    Overflow,
    /// No published catalogue version is in force at the record's time.
    #[error("no catalogue version is in force at {0}")]
    NoCatalogueVersion(Timestamp),
}

impl RatingError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            RatingError::UnknownSubscriber(_) => "rating.unknown_subscriber",
            RatingError::UnknownService(_) => "rating.unknown_service",
            RatingError::UnknownProduct(_) => "rating.unknown_product",
            RatingError::NoTariff(_) => "rating.no_tariff",
            RatingError::NoPrice { .. } => "rating.no_price",
            RatingError::CurrencyMismatch(_) => "rating.currency_mismatch",
            RatingError::MissingUnits => "cdr.missing_field",
            RatingError::UnitsOutOfRange { .. } => "cdr.units_out_of_range",
            RatingError::Overflow => "rating.overflow",
            RatingError::NoCatalogueVersion(_) => "rating.no_catalogue_version",
        }
    }
}

/// What a charge line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineKind {
    /// Usage.
    Usage,
    /// Connection fee.
    ConnectionFee,
    /// Raise to the minimum charge.
    MinimumCharge,
    /// Fee of a leg combination.
    CombinationFee,
    /// Discount (negative).
    Discount,
    /// Difference between the rounded total and the rounded lines.
    Rounding,
}

/// One line of a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChargeLine {
    /// What it is for.
    pub kind: LineKind,
    /// Leg kind, rule or discount id it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SmolStr>,
    /// Amount at charge precision.
    pub amount: Decimal,
}

/// A partner's share of a rated record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerShare {
    /// Partner.
    pub partner: PartnerId,
    /// Amount at charge precision.
    pub amount: Money,
    /// `30%` or `0.002 per 60 units` or `0.01 per record`.
    pub basis: SmolStr,
}

/// The result of rating one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rating {
    /// Record id.
    pub cdr_id: CdrId,
    /// Subscriber.
    pub subscriber: SubscriberId,
    /// Service.
    pub service: SmolStr,
    /// Product that rated it.
    pub product: SmolStr,
    /// Plan.
    pub plan: SmolStr,
    /// The charge, at the plan's charge precision.
    pub charge: Money,
    /// Lines; they sum to `charge`.
    pub lines: SmallVec<[ChargeLine; 2]>,
    /// Units used.
    pub units: u64,
    /// Units after increments.
    pub charged_units: u64,
    /// Free units used.
    pub free_units: u64,
    /// Counter updates to apply with the charge.
    #[serde(skip_serializing_if = "SmallVec::is_empty")]
    pub counter_updates: SmallVec<[CounterUpdate; 2]>,
    /// Partner shares.
    #[serde(skip_serializing_if = "SmallVec::is_empty")]
    pub partner_shares: SmallVec<[PartnerShare; 1]>,
    /// Explanation.
    pub explanation: Explanation,
}

/// Zones of the record's numbers in one plan's tables.
struct Zones {
    destination: Option<(u32, usize)>,
    caller: Option<(u32, usize)>,
}

/// Rates one record. Pure: the counters are read, and the updates are returned for the caller
/// to apply together with the charge.
pub fn rate(
    catalogue: &Catalogue,
    profile: &SubscriberProfile,
    cdr: &Cdr,
    counters: &Counters,
) -> Result<Rating, RatingError> {
    let service = catalogue
        .service(&cdr.service)
        .ok_or_else(|| RatingError::UnknownService(cdr.service.clone()))?;
    let unit = catalogue.services[service as usize].unit;
    let max = catalogue.limits.max(unit);
    let leg_total = cdr.legs.iter().try_fold(0u64, |acc, leg| {
        if leg.units > max {
            return Err(RatingError::UnitsOutOfRange {
                units: leg.units,
                max,
            });
        }
        acc.checked_add(leg.units)
            .ok_or(RatingError::UnitsOutOfRange {
                units: u64::MAX,
                max,
            })
    })?;
    let units = match cdr.units {
        Some(units) => units,
        None if !cdr.legs.is_empty() => leg_total,
        None if unit == UnitKind::Event => 1,
        None => return Err(RatingError::MissingUnits),
    };
    if units > max || leg_total > max {
        return Err(RatingError::UnitsOutOfRange {
            units: units.max(leg_total),
            max,
        });
    }
    let mut currency_mismatch = false;
    let mut plan_in_currency = false;
    let mut unmatched_leg: Option<SmolStr> = None;
    for offer_id in &profile.products {
        let offer = catalogue
            .offer(offer_id)
            .ok_or_else(|| RatingError::UnknownProduct(offer_id.clone()))?;
        let members: &[u32] = match offer {
            Offer::Product(ref p) => std::slice::from_ref(p),
            Offer::Bundle(b) => &catalogue.bundles[b as usize].products,
        };
        for &p in members {
            let product = &catalogue.products[p as usize];
            let plan = product
                .plans
                .iter()
                .map(|&i| &catalogue.plans[i as usize])
                .find(|plan| profile.currency.is_none_or(|c| c == plan.currency));
            let Some(plan) = plan else {
                currency_mismatch = true;
                continue;
            };
            plan_in_currency = true;
            let zones = zones(catalogue, plan, cdr);
            let ctx = Ctx {
                catalogue,
                plan,
                product,
                profile,
                cdr,
                service,
                unit,
                zones: &zones,
            };
            if cdr.legs.is_empty() {
                if let Some(rule) = ctx.find_rule(None, counters) {
                    let leg = LegIn {
                        leg: None,
                        units,
                        start: cdr.start,
                    };
                    return ctx.finish(&[(rule, leg)], None, counters);
                }
            } else {
                match ctx.rate_legs(counters) {
                    Ok(rating) => return rating,
                    Err(kind) => unmatched_leg = unmatched_leg.or(Some(kind)),
                }
            }
        }
    }
    if currency_mismatch
        && !plan_in_currency
        && let Some(c) = profile.currency
    {
        return Err(RatingError::CurrencyMismatch(c));
    }
    let what = match &unmatched_leg {
        Some(kind) => format!("no rule for leg {kind:?} of this {} record", cdr.service),
        None => format!(
            "no rule matches {} {} to {} in the subscriber's products",
            cdr.direction,
            cdr.service,
            cdr.callee.as_ref().map_or("-", |n| n.as_str())
        ),
    };
    Err(RatingError::NoTariff(what))
}

fn zones(catalogue: &Catalogue, plan: &Plan, cdr: &Cdr) -> Zones {
    let lookup = |table: Option<u32>, number: Option<&crate::number::Number>| {
        let table = &catalogue.destinations.get(table? as usize)?.table;
        table.longest_match(number?.as_bytes())
    };
    Zones {
        destination: lookup(plan.destinations, cdr.callee.as_ref()),
        caller: lookup(plan.caller_regions, cdr.caller.as_ref()),
    }
}

struct LegIn<'a> {
    leg: Option<&'a Leg>,
    units: u64,
    start: Timestamp,
}

struct Ctx<'a> {
    catalogue: &'a Catalogue,
    plan: &'a Plan,
    product: &'a Product,
    profile: &'a SubscriberProfile,
    cdr: &'a Cdr,
    service: u32,
    unit: UnitKind,
    zones: &'a Zones,
}

/// A priced leg before rounding.
struct LegOut {
    explanation: LegExplanation,
    subtotal: Decimal,
}

fn attribute<'v>(
    cdr: &'v Cdr,
    leg: Option<&'v Leg>,
    profile: &'v SubscriberProfile,
    c: &Condition,
) -> Option<&'v str> {
    let key = c.key.as_str();
    match c.scope {
        Scope::Cdr => match key {
            "service" => Some(cdr.service.as_str()),
            "direction" => Some(cdr.direction.as_str()),
            "trunk" => cdr.trunk.as_deref(),
            _ => cdr.attributes.get(key),
        },
        Scope::Leg => leg.and_then(|l| {
            if key == "kind" {
                Some(l.kind.as_str())
            } else {
                l.attributes.get(key)
            }
        }),
        Scope::Customer => profile.attributes.get(key),
        Scope::Period => None,
    }
}

impl Ctx<'_> {
    fn period_key(&self, kind: crate::calendar::PeriodKind, at: Timestamp) -> SmolStr {
        kind.key(&self.catalogue.timezone, at)
    }

    fn counter_units(&self, rule: &Rule, at: Timestamp, counters: &Counters) -> u64 {
        counters
            .get(&CounterKey {
                name: rule.counter.clone(),
                period: self.period_key(self.plan.period, at),
            })
            .units
    }

    fn conditions_hold(
        &self,
        when: &[Condition],
        leg: Option<&Leg>,
        period_units: impl Fn() -> u64,
    ) -> bool {
        when.iter().all(|c| match c.scope {
            Scope::Period => c.matches_units(period_units()),
            _ => c.matches(attribute(self.cdr, leg, self.profile, c)),
        })
    }

    fn rule_matches(&self, rule: &Rule, leg: Option<&Leg>, counters: &Counters) -> bool {
        let cdr = self.cdr;
        rule.service == self.service
            && rule.direction.is_none_or(|d| d == cdr.direction)
            && (rule.zones.is_empty() || self.zones.destination.is_some_and(|(z, _)| rule.zones.contains(&z)))
            && (rule.caller_zones.is_empty() || self.zones.caller.is_some_and(|(z, _)| rule.caller_zones.contains(&z)))
            && (rule.trunks.is_empty() || cdr.trunk.as_ref().is_some_and(|t| rule.trunks.contains(t)))
            // Leg rules price legs; other rules price records without legs.
            && match leg {
                None => rule.legs.is_empty(),
                Some(l) => rule.legs.contains(&l.kind),
            }
            && self.conditions_hold(&rule.when, leg, || self.counter_units(rule, cdr.start, counters))
    }

    fn find_rule(&self, leg: Option<&Leg>, counters: &Counters) -> Option<usize> {
        let candidates = self
            .plan
            .rule_index
            .candidates(self.zones.destination.map(|(z, _)| z));
        candidates
            .iter()
            .map(|&i| i as usize)
            .find(|&i| self.rule_matches(&self.plan.rules[i], leg, counters))
    }

    /// Rates a multi-leg record; `Err` names a leg that no rule of this plan prices.
    fn rate_legs(&self, counters: &Counters) -> Result<Result<Rating, RatingError>, SmolStr> {
        let mut kinds: SmallVec<[SmolStr; 4]> =
            self.cdr.legs.iter().map(|l| l.kind.clone()).collect();
        kinds.sort();
        kinds.dedup();
        let combination = self.plan.combinations.iter().find(|c| c.matches(&kinds));
        let mut chosen: SmallVec<[(usize, LegIn<'_>); 4]> = SmallVec::new();
        let mut start = self.cdr.start;
        for leg in &self.cdr.legs {
            let forced = combination.and_then(|c| {
                c.leg_rules
                    .iter()
                    .find(|(k, _)| *k == leg.kind)
                    .map(|(_, r)| *r as usize)
            });
            let rule = forced
                .or_else(|| self.find_rule(Some(leg), counters))
                .ok_or_else(|| leg.kind.clone())?;
            chosen.push((
                rule,
                LegIn {
                    leg: Some(leg),
                    units: leg.units,
                    start,
                },
            ));
            start = Timestamp::from_second(start.as_second().saturating_add(leg.units as i64))
                .unwrap_or(start);
        }
        Ok(self.finish(&chosen, combination, counters))
    }

    fn finish(
        &self,
        legs: &[(usize, LegIn<'_>)],
        combination: Option<&crate::catalogue::Combination>,
        counters: &Counters,
    ) -> Result<Rating, RatingError> {
        let plan = self.plan;
        let mut view = CounterView::new(counters);
        let mut outs: SmallVec<[LegOut; 1]> = SmallVec::new();
        for (rule, leg) in legs {
            outs.push(self.price_leg(*rule, leg, &mut view)?);
        }
        let round = |amount: Decimal| plan.rounding.round(amount, plan.charge_precision);
        let mut lines: SmallVec<[ChargeLine; 2]> = SmallVec::new();
        let mut exact = Decimal::ZERO;
        for out in &outs {
            let e = &out.explanation;
            let source = e.leg.clone().or_else(|| Some(e.rule.clone()));
            exact = exact
                .checked_add(out.subtotal)
                .ok_or(RatingError::Overflow)?;
            lines.push(ChargeLine {
                kind: LineKind::Usage,
                source: source.clone(),
                amount: round(e.usage),
            });
            if !e.connection_fee.is_zero() {
                lines.push(ChargeLine {
                    kind: LineKind::ConnectionFee,
                    source: source.clone(),
                    amount: round(e.connection_fee),
                });
            }
            if !e.minimum_adjustment.is_zero() {
                lines.push(ChargeLine {
                    kind: LineKind::MinimumCharge,
                    source,
                    amount: round(e.minimum_adjustment),
                });
            }
        }
        let combination_note = combination.map(|c| (c.id.clone(), c.fee));
        if let Some(c) = combination.filter(|c| !c.fee.is_zero()) {
            exact = exact.checked_add(c.fee).ok_or(RatingError::Overflow)?;
            lines.push(ChargeLine {
                kind: LineKind::CombinationFee,
                source: Some(c.id.clone()),
                amount: round(c.fee),
            });
        }
        let mut discounts: SmallVec<[(SmolStr, Decimal); 1]> = SmallVec::new();
        for d in &plan.discounts {
            let applies_to_rule =
                d.rules.is_empty() || legs.iter().any(|(r, _)| d.rules.contains(&(*r as u32)));
            let first_leg = legs.first().and_then(|(_, l)| l.leg);
            if !applies_to_rule
                || !self.conditions_hold(&d.when, first_leg, || 0)
                || exact <= Decimal::ZERO
            {
                continue;
            }
            let off = match d.kind {
                DiscountKind::Percent(p) => exact * p / Decimal::ONE_HUNDRED,
                DiscountKind::Amount(a) => a.min(exact),
            };
            exact -= off;
            discounts.push((d.id.clone(), off));
            lines.push(ChargeLine {
                kind: LineKind::Discount,
                source: Some(d.id.clone()),
                amount: -round(off),
            });
        }
        let charge = round(exact);
        let lines_sum: Decimal = lines.iter().map(|l| l.amount).sum();
        if lines_sum != charge {
            lines.push(ChargeLine {
                kind: LineKind::Rounding,
                source: None,
                amount: charge - lines_sum,
            });
        }
        let charged_units: u64 = outs.iter().map(|o| o.explanation.charged_units).sum();
        let free_units: u64 = outs
            .iter()
            .flat_map(|o| o.explanation.free.iter())
            .map(|f| f.units)
            .sum();
        let units: u64 = legs.iter().map(|(_, l)| l.units).sum();
        let money = Money::new(charge, plan.currency);
        let mut shares: SmallVec<[PartnerShare; 1]> = SmallVec::new();
        for share in &self.product.shares {
            if !share.services.is_empty() && !share.services.contains(&self.service) {
                continue;
            }
            let (amount, basis) = match share.kind {
                ShareKind::Percent(p) => (
                    charge * p / Decimal::ONE_HUNDRED,
                    smol_str::format_smolstr!("{p}%"),
                ),
                ShareKind::Amount {
                    amount,
                    per: Some(per),
                } => (
                    amount * Decimal::from(charged_units) / Decimal::from(per),
                    smol_str::format_smolstr!("{amount} per {per} {}", self.unit.as_str()),
                ),
                ShareKind::Amount { amount, per: None } => {
                    (amount, smol_str::format_smolstr!("{amount} per record"))
                }
            };
            shares.push(PartnerShare {
                partner: share.partner.clone(),
                amount: Money::new(round(amount), plan.currency),
                basis,
            });
        }
        let explanation = Explanation {
            product: self.product.id.clone(),
            plan: plan.id.clone(),
            currency: plan.currency,
            destination: self.zone_match(self.zones.destination, self.cdr.callee.as_ref()),
            caller_region: self.zone_match(self.zones.caller, self.cdr.caller.as_ref()),
            legs: outs.into_iter().map(|o| o.explanation).collect(),
            combination: combination_note,
            discounts,
            exact,
            rounding: plan.rounding,
            precision: plan.charge_precision,
            charge,
        };
        Ok(Rating {
            cdr_id: self.cdr.id.clone(),
            subscriber: self.cdr.subscriber.clone(),
            service: self.cdr.service.clone(),
            product: self.product.id.clone(),
            plan: plan.id.clone(),
            charge: money,
            lines,
            units,
            charged_units,
            free_units,
            counter_updates: view.pending,
            partner_shares: shares,
            explanation,
        })
    }

    fn zone_match(
        &self,
        found: Option<(u32, usize)>,
        number: Option<&crate::number::Number>,
    ) -> Option<ZoneMatch> {
        let (zone, len) = found?;
        let digits = number?.as_str();
        Some(ZoneMatch {
            zone: self.catalogue.zones.get(zone as usize)?.id.clone(),
            prefix: SmolStr::new(digits.get(..len).unwrap_or(digits)),
        })
    }
}

#[cfg(test)]
mod tests;
