//! Pricing one leg (or a record without legs): steps 1 to 5 of the order of operations in the
//! module documentation of [`crate::rating`].

use jiff::Timestamp;
use rust_decimal::Decimal;
use smallvec::SmallVec;
use smol_str::SmolStr;

use super::counters::CounterView;
use super::{CounterKey, FreeUse, LegExplanation, Part};
use super::{Ctx, LegIn, LegOut, RatingError};
use crate::catalogue::{Model, Rates, Tier, UnitKind, volume_rate};

impl Ctx<'_> {
    pub(super) fn price_leg(
        &self,
        rule_index: usize,
        leg: &LegIn<'_>,
        view: &mut CounterView<'_>,
    ) -> Result<LegOut, RatingError> {
        let rule = &self.plan.rules[rule_index];
        let price = rule
            .price_at(leg.start)
            .ok_or_else(|| RatingError::NoPrice {
                rule: rule.id.clone(),
                at: leg.start,
            })?;
        // The period key costs a timezone conversion: only rules that count pay for it.
        let tier_key = rule.counts.then(|| CounterKey {
            name: rule.counter.clone(),
            period: self.period_key(self.plan.period, leg.start),
        });

        // 1. Increments.
        let charged = if rule.model == Model::Cumulated {
            let period = tier_key.as_ref().map_or_else(
                || self.period_key(self.plan.period, leg.start),
                |k| k.period.clone(),
            );
            let raw_key = CounterKey {
                name: rule.raw_counter.clone(),
                period,
            };
            let before = view.get(&raw_key).units;
            let after = before.saturating_add(leg.units);
            view.add(raw_key, leg.units, Decimal::ZERO);
            rule.increments.apply(after) - rule.increments.apply(before)
        } else {
            rule.increments.apply(leg.units)
        };

        // 2. Free units, from the start of the usage.
        let mut free: SmallVec<[FreeUse; 1]> = SmallVec::new();
        let mut free_units = 0u64;
        for &a in &self.product.allowances {
            let allowance = &self.catalogue.allowances[a as usize];
            if free_units == charged || allowance.service != rule.service {
                continue;
            }
            if !allowance.zones.is_empty()
                && !self
                    .zones
                    .destination
                    .is_some_and(|(z, _)| allowance.zones.contains(&z))
            {
                continue;
            }
            let key = CounterKey {
                name: allowance.counter.clone(),
                period: self.period_key(allowance.period, leg.start),
            };
            let used = view.get(&key).units;
            let left = allowance.units.saturating_sub(used);
            let take = left.min(charged - free_units);
            if take > 0 {
                view.add(key, take, Decimal::ZERO);
                free_units += take;
                free.push(FreeUse {
                    allowance: allowance.id.clone(),
                    units: take,
                    left: left - take,
                });
            }
        }
        let billable = charged - free_units;

        // 3. Price the billable units: sum of rate x units, divided once by `per`.
        let before = tier_key.as_ref().map_or(0, |k| view.get(k).units);
        let mut parts: SmallVec<[Part; 2]> = SmallVec::new();
        let mut numerator = Decimal::ZERO;
        let mut add = |label: SmolStr, units: u64, rate: Decimal| -> Result<(), RatingError> {
            if units > 0 {
                let value = rate
                    .checked_mul(Decimal::from(units))
                    .ok_or(RatingError::Overflow)?;
                numerator = numerator.checked_add(value).ok_or(RatingError::Overflow)?;
                parts.push(Part { label, units, rate });
            }
            Ok(())
        };
        let mut provisional = false;
        match (&price.rates, rule.model) {
            (Rates::Flat(rate), _) => add(SmolStr::new_static("flat"), billable, *rate)?,
            (Rates::Bands(rates), _) => {
                let schedule = self
                    .plan
                    .schedule
                    .and_then(|s| self.catalogue.schedules.get(s as usize));
                if let Some(schedule) = schedule {
                    let names = &schedule.bands;
                    if self.plan.band_mode == crate::catalogue::BandMode::Start
                        || self.unit != UnitKind::Second
                    {
                        let band = usize::from(schedule.band_at(leg.start).band);
                        add(names[band].clone(), billable, rates[band])?;
                    } else {
                        let from = Timestamp::from_second(
                            leg.start.as_second().saturating_add(free_units as i64),
                        )
                        .unwrap_or(leg.start);
                        let mut segments = Vec::new();
                        schedule.split(from, billable, &mut segments);
                        for (band, units) in segments {
                            add(
                                names[usize::from(band)].clone(),
                                units,
                                rates[usize::from(band)],
                            )?;
                        }
                    }
                }
            }
            (Rates::Tiers(tiers), Model::Volume) => {
                let reached = before.saturating_add(billable);
                let rate = volume_rate(tiers, reached);
                let index = tier_index(tiers, reached);
                add(
                    smol_str::format_smolstr!("volume tier {}", index + 1),
                    billable,
                    rate,
                )?;
                provisional = true;
            }
            (Rates::Tiers(tiers), _) => {
                let mut at = before;
                let mut left = billable;
                for (i, tier) in tiers.iter().enumerate() {
                    if left == 0 {
                        break;
                    }
                    let room = match tier.up_to {
                        Some(up) if at >= up => continue,
                        Some(up) => up - at,
                        None => left,
                    };
                    let take = room.min(left);
                    add(smol_str::format_smolstr!("tier {}", i + 1), take, tier.rate)?;
                    at += take;
                    left -= take;
                }
            }
        }

        // 4. Coefficients.
        let mut coefficient = Decimal::ONE;
        for c in &rule.coefficients {
            if self.conditions_hold(&c.when, leg.leg, || before) {
                coefficient = coefficient
                    .checked_mul(c.factor)
                    .ok_or(RatingError::Overflow)?;
            }
        }
        let usage = numerator
            .checked_mul(coefficient)
            .ok_or(RatingError::Overflow)?
            .checked_div(Decimal::from(rule.per))
            .ok_or(RatingError::Overflow)?;
        if let Some(key) = tier_key {
            view.add(
                key,
                billable,
                if provisional { usage } else { Decimal::ZERO },
            );
        }

        // 5. Connection fee and minimum charge, for answered usage only.
        let answered = leg.units > 0;
        let connection_fee = if answered {
            price.connection_fee
        } else {
            Decimal::ZERO
        };
        let mut subtotal = usage
            .checked_add(connection_fee)
            .ok_or(RatingError::Overflow)?;
        let mut minimum_adjustment = Decimal::ZERO;
        if answered && subtotal < price.minimum_charge {
            minimum_adjustment = price.minimum_charge - subtotal;
            subtotal = price.minimum_charge;
        }
        Ok(LegOut {
            explanation: LegExplanation {
                leg: leg.leg.map(|l| l.kind.clone()),
                rule: rule.id.clone(),
                price_valid_from: price.valid_from,
                model: rule.model,
                units: leg.units,
                unit: self.unit.as_str(),
                increments: rule.increments,
                charged_units: charged,
                free,
                per: rule.per,
                parts,
                coefficient,
                usage,
                connection_fee,
                minimum_adjustment,
            },
            subtotal,
        })
    }
}

fn tier_index(tiers: &[Tier], units: u64) -> usize {
    tiers
        .iter()
        .position(|t| t.up_to.is_none_or(|up| units <= up))
        .unwrap_or(tiers.len().saturating_sub(1))
}
