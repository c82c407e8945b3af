//! Plans, rules and prices.

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::Decimal;
use smol_str::SmolStr;

use super::super::raw::*;
use super::super::*;
use super::support::*;
use crate::money::Currency;

#[allow(clippy::too_many_arguments)]
pub(super) fn plan(
    loader: &mut Loader<'_>,
    scope: &Scope,
    services: &[Service],
    schedules: &[crate::calendar::Schedule],
    path: &KeyPath,
    raw: &RawPlan,
    default_currency: Currency,
    default_rounding: RoundingMode,
    default_precision: u32,
) -> Plan {
    let currency = match &raw.currency {
        None => default_currency,
        Some(code) => Currency::from_code(code).unwrap_or_else(|e| {
            loader.problem(&path.k("currency"), e.to_string());
            default_currency
        }),
    };
    let table_ref = |loader: &mut Loader<'_>, key: &str, id: &Option<String>| {
        id.as_ref().and_then(|id| {
            resolve(
                loader,
                &scope.tables,
                &scope.failed,
                &path.k(key),
                id,
                "destinations table",
            )
        })
    };
    let destinations = table_ref(loader, "destinations", &raw.destinations);
    let caller_regions = table_ref(loader, "caller_regions", &raw.caller_regions);
    let schedule = raw.schedule.as_ref().and_then(|id| {
        resolve(
            loader,
            &scope.schedules,
            &scope.failed,
            &path.k("schedule"),
            id,
            "schedule",
        )
    });
    let charge_precision = raw.charge_precision.unwrap_or(default_precision);
    if charge_precision > PRECISION_MAX {
        loader.problem(
            &path.k("charge_precision"),
            format!("at most {PRECISION_MAX} decimal places"),
        );
    }
    let schedule_failed = raw
        .schedule
        .as_ref()
        .is_some_and(|id| scope.failed.contains(id));
    let bands: Option<&[SmolStr]> = schedule
        .filter(|_| !schedule_failed)
        .and_then(|s| schedules.get(s as usize))
        .map(|s| s.bands.as_slice());
    let mut rule_ids: HashMap<String, usize> = HashMap::new();
    let mut failed_rules: HashSet<String> = HashSet::new();
    let mut rules = Vec::new();
    for (i, value) in raw.rules.iter().enumerate() {
        let rpath = path.k("rules").i(i);
        let Some(raw_rule) = loader.parse::<RawRule>(&rpath, value) else {
            if let Some(id) = value.get("id").and_then(toml::Value::as_str) {
                failed_rules.insert(id.to_string());
            }
            continue;
        };
        let raw_rule = &raw_rule;
        if !unique(loader, &mut rule_ids, &rpath, &raw_rule.id, "rule") {
            continue;
        }
        let ctx = RuleCtx {
            plan_id: &raw.id,
            has_destinations: destinations.is_some() || raw.destinations.is_some(),
            has_callers: caller_regions.is_some() || raw.caller_regions.is_some(),
            bands,
            schedule_failed,
        };
        rules.push(rule(loader, scope, services, &ctx, &rpath, raw_rule));
    }
    if raw.rules.is_empty() {
        loader.problem(&path.k("rules"), "a plan needs at least one rule");
    }
    let mut discounts = Vec::new();
    let mut discount_ids: HashMap<String, usize> = HashMap::new();
    for (i, d) in raw.discounts.iter().enumerate() {
        let dpath = path.k("discounts").i(i);
        unique(loader, &mut discount_ids, &dpath, &d.id, "discount");
        let when = conditions(loader, &dpath.k("when"), &d.when);
        for (j, c) in when.iter().enumerate() {
            if c.scope == crate::attrs::Scope::Period {
                loader.problem(
                    &dpath.k("when").i(j),
                    "discounts cannot test period.units (it belongs to a rule's counter)",
                );
            }
        }
        let rules_idx = d
            .rules
            .iter()
            .enumerate()
            .filter_map(|(j, r)| {
                resolve(
                    loader,
                    &rule_ids,
                    &failed_rules,
                    &dpath.k("rules").i(j),
                    r,
                    "rule",
                )
            })
            .collect();
        let kind = match (d.percent, d.amount) {
            (Some(p), None) => {
                if p.0 < Decimal::ZERO || p.0 > Decimal::ONE_HUNDRED {
                    loader.problem(&dpath.k("percent"), "must be between 0 and 100");
                }
                DiscountKind::Percent(p.0)
            }
            (None, Some(a)) => {
                DiscountKind::Amount(non_negative(loader, &dpath.k("amount"), Some(a)))
            }
            _ => {
                loader.problem(&dpath, "a discount needs exactly one of percent or amount");
                DiscountKind::Amount(Decimal::ZERO)
            }
        };
        discounts.push(Discount {
            id: SmolStr::new(&d.id),
            when,
            rules: rules_idx,
            kind,
        });
    }
    let mut combinations = Vec::new();
    let mut combination_ids: HashMap<String, usize> = HashMap::new();
    for (i, c) in raw.combinations.iter().enumerate() {
        let cpath = path.k("combinations").i(i);
        unique(loader, &mut combination_ids, &cpath, &c.id, "combination");
        let mut legs: Vec<SmolStr> = c.legs.iter().map(SmolStr::new).collect();
        legs.sort();
        legs.dedup();
        if legs.is_empty() {
            loader.problem(
                &cpath.k("legs"),
                "a combination needs at least one leg kind",
            );
        }
        let mut leg_rules = Vec::new();
        for (leg, rule_id) in &c.leg_rules {
            if !legs.iter().any(|l| l == leg) {
                loader.problem(
                    &cpath.k("leg_rules").k(leg),
                    format!("leg {leg:?} is not in this combination's legs"),
                );
            }
            if let Some(r) = resolve(
                loader,
                &rule_ids,
                &failed_rules,
                &cpath.k("leg_rules").k(leg),
                rule_id,
                "rule",
            ) {
                leg_rules.push((SmolStr::new(leg), r));
            }
        }
        let fee = non_negative(loader, &cpath.k("fee"), c.fee);
        combinations.push(Combination {
            id: SmolStr::new(&c.id),
            legs,
            mode: c.mode.unwrap_or_default(),
            leg_rules,
            fee,
        });
    }
    Plan {
        id: SmolStr::new(&raw.id),
        name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)),
        currency,
        destinations,
        caller_regions,
        schedule,
        band_mode: raw.band_mode.unwrap_or_default(),
        rounding: raw.rounding.unwrap_or(default_rounding),
        charge_precision,
        period: raw.period.unwrap_or_default(),
        rules,
        discounts,
        combinations,
        rule_index: RuleIndex::default(),
    }
}

pub(super) struct RuleCtx<'a> {
    plan_id: &'a str,
    has_destinations: bool,
    has_callers: bool,
    bands: Option<&'a [SmolStr]>,
    /// The plan's schedule is itself invalid (already reported): skip band checks.
    schedule_failed: bool,
}

pub(super) fn parse_increments(text: &str) -> Option<Increments> {
    let (a, b) = text.split_once('/')?;
    let first = a.trim().parse::<u64>().ok()?;
    let next = b.trim().parse::<u64>().ok()?;
    (first > 0 && next > 0).then_some(Increments { first, next })
}

pub(super) fn rule(
    loader: &mut Loader<'_>,
    scope: &Scope,
    services: &[Service],
    ctx: &RuleCtx<'_>,
    path: &KeyPath,
    raw: &RawRule,
) -> Rule {
    let service = resolve(
        loader,
        &scope.services,
        &scope.failed,
        &path.k("service"),
        &raw.service,
        "service",
    );
    let unit = service
        .and_then(|s| services.get(s as usize))
        .map_or(UnitKind::Event, |s| s.unit);
    let zone_list = |loader: &mut Loader<'_>,
                     key: &str,
                     ids: &[String],
                     allowed: bool,
                     table: &str|
     -> Vec<u32> {
        if !ids.is_empty() && !allowed {
            loader.problem(
                &path.k(key),
                format!("matching {key} needs the plan's {table} table"),
            );
        }
        ids.iter()
            .enumerate()
            .filter_map(|(i, z)| {
                resolve(
                    loader,
                    &scope.zones,
                    &scope.failed,
                    &path.k(key).i(i),
                    z,
                    "zone",
                )
            })
            .collect()
    };
    let zones = zone_list(
        loader,
        "zones",
        &raw.zones,
        ctx.has_destinations,
        "destinations",
    );
    let caller_zones = zone_list(
        loader,
        "caller_zones",
        &raw.caller_zones,
        ctx.has_callers,
        "caller_regions",
    );
    let when = conditions(loader, &path.k("when"), &raw.when);
    let increments = match &raw.increments {
        None => Increments { first: 1, next: 1 },
        Some(text) => parse_increments(text).unwrap_or_else(|| {
            loader.problem(
                &path.k("increments"),
                format!("{text:?} is not first/next with both above zero, e.g. \"60/60\""),
            );
            Increments { first: 1, next: 1 }
        }),
    };
    let per = raw.per.unwrap_or(unit.default_per());
    if per == 0 {
        loader.problem(&path.k("per"), "must be above zero");
    }
    let model = raw.model.unwrap_or_default();
    let coefficients = raw
        .coefficients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cpath = path.k("coefficients").i(i);
            if c.factor.0 <= Decimal::ZERO {
                loader.problem(&cpath.k("factor"), "must be above zero");
            }
            Coefficient {
                when: conditions(loader, &cpath.k("when"), &c.when),
                factor: c.factor.0,
            }
        })
        .collect();
    let mut prices: Vec<PriceVersion> = Vec::new();
    let raw_prices: Vec<(KeyPath, &RawPrice)> = match (&raw.price, raw.prices.is_empty()) {
        (Some(p), true) => vec![(path.k("price"), p)],
        (None, false) => raw
            .prices
            .iter()
            .enumerate()
            .map(|(i, p)| (path.k("prices").i(i), p))
            .collect(),
        (Some(_), false) => {
            loader.problem(path, "give either price or prices, not both");
            Vec::new()
        }
        (None, true) => {
            loader.problem(path, "a rule needs a price (or prices with validity dates)");
            Vec::new()
        }
    };
    for (ppath, p) in raw_prices {
        if let Some(version) = price(loader, scope, ctx, &ppath, p, model) {
            prices.push(version);
        }
    }
    prices.sort_by_key(|p| p.valid_from);
    for pair in prices.windows(2) {
        let overlaps = match (pair[0].valid_to, pair[1].valid_from) {
            (Some(to), Some(from)) => to > from,
            _ => true,
        };
        if overlaps {
            loader.problem(
                &path.k("prices"),
                "price versions overlap: every version but the first needs valid_from, and every version but the last a valid_to no later than the next one's valid_from",
            );
            break;
        }
    }
    if model == Model::Volume && !raw.coefficients.is_empty() {
        loader.problem(&path.k("coefficients"), "volume-priced rules cannot have coefficients: the bill-time true-up prices the period total at the tier rate");
    }
    let counter_name = raw
        .counter
        .clone()
        .unwrap_or_else(|| format!("{}/{}", ctx.plan_id, raw.id));
    Rule {
        id: SmolStr::new(&raw.id),
        service: service.unwrap_or(0),
        direction: raw.direction,
        zones,
        caller_zones,
        trunks: raw.trunks.iter().map(SmolStr::new).collect(),
        legs: raw.legs.iter().map(SmolStr::new).collect(),
        when,
        increments,
        per: per.max(1),
        model,
        coefficients,
        prices,
        counter: smol_str::format_smolstr!("tier:{counter_name}"),
        raw_counter: smol_str::format_smolstr!("raw:{}/{}", ctx.plan_id, raw.id),
        counts: model != Model::Flat
            || raw.counter.is_some()
            || raw
                .when
                .iter()
                .chain(raw.coefficients.iter().flat_map(|c| c.when.iter()))
                .any(|w| w.trim_start().starts_with("period.")),
    }
}

pub(super) fn price(
    loader: &mut Loader<'_>,
    scope: &Scope,
    ctx: &RuleCtx<'_>,
    path: &KeyPath,
    raw: &RawPrice,
    model: Model,
) -> Option<PriceVersion> {
    let valid_from = instant(
        loader,
        &path.k("valid_from"),
        raw.valid_from.as_ref(),
        &scope.tz,
    );
    let valid_to = instant(
        loader,
        &path.k("valid_to"),
        raw.valid_to.as_ref(),
        &scope.tz,
    );
    if let (Some(from), Some(to)) = (valid_from, valid_to)
        && to <= from
    {
        loader.problem(&path.k("valid_to"), "must be after valid_from");
    }
    let rates = match (&raw.rate, &raw.rates, &raw.tiers) {
        (Some(rate), None, None) => Rates::Flat(non_negative(loader, &path.k("rate"), Some(*rate))),
        (None, Some(by_band), None) => band_rates(loader, ctx, &path.k("rates"), by_band)?,
        (None, None, Some(tiers)) => tier_rates(loader, &path.k("tiers"), tiers)?,
        _ => {
            loader.problem(
                path,
                "a price needs exactly one of rate, rates (per band) or tiers",
            );
            return None;
        }
    };
    let fits = matches!(
        (&rates, model),
        (Rates::Flat(_) | Rates::Bands(_), Model::Flat)
            | (Rates::Tiers(_), Model::Tiered | Model::Volume)
            | (Rates::Flat(_) | Rates::Tiers(_), Model::Cumulated)
    );
    if !fits {
        let need = match model {
            Model::Flat => "rate or rates",
            Model::Tiered | Model::Volume => "tiers",
            Model::Cumulated => "rate or tiers",
        };
        loader.problem(path, format!("model {model:?} needs {need}").to_lowercase());
    }
    Some(PriceVersion {
        valid_from,
        valid_to,
        rates,
        connection_fee: non_negative(loader, &path.k("connection_fee"), raw.connection_fee),
        minimum_charge: non_negative(loader, &path.k("minimum_charge"), raw.minimum_charge),
    })
}

pub(super) fn band_rates(
    loader: &mut Loader<'_>,
    ctx: &RuleCtx<'_>,
    path: &KeyPath,
    by_band: &BTreeMap<String, Amount>,
) -> Option<Rates> {
    let Some(bands) = ctx.bands else {
        if !ctx.schedule_failed {
            loader.problem(path, "rates per band need the plan's schedule");
        }
        return None;
    };
    let mut out = vec![Decimal::ZERO; bands.len()];
    for band in by_band.keys() {
        if !bands.iter().any(|b| b == band) {
            loader.problem(
                &path.k(band),
                format!("band {band:?} is not in the plan's schedule"),
            );
        }
    }
    for (i, band) in bands.iter().enumerate() {
        match by_band.get(band.as_str()) {
            Some(rate) => out[i] = non_negative(loader, &path.k(band), Some(*rate)),
            None => loader.problem(path, format!("no rate for band {band:?}")),
        }
    }
    Some(Rates::Bands(out))
}

pub(super) fn tier_rates(
    loader: &mut Loader<'_>,
    path: &KeyPath,
    raw: &[RawTier],
) -> Option<Rates> {
    if raw.is_empty() {
        loader.problem(path, "at least one tier");
        return None;
    }
    let mut tiers = Vec::new();
    let mut last = 0u64;
    for (i, t) in raw.iter().enumerate() {
        let is_last = i + 1 == raw.len();
        match (t.up_to, is_last) {
            (None, false) => loader.problem(&path.i(i), "only the last tier may omit up_to"),
            (Some(_), true) => loader.problem(
                &path.i(i).k("up_to"),
                "the last tier must be open (no up_to)",
            ),
            (Some(up), false) => {
                if up <= last {
                    loader.problem(
                        &path.i(i).k("up_to"),
                        format!("{up} must be above the previous tier's {last}"),
                    );
                }
                last = up;
            }
            (None, true) => {}
        }
        tiers.push(Tier {
            up_to: t.up_to,
            rate: non_negative(loader, &path.i(i).k("rate"), Some(t.rate)),
        });
    }
    Some(Rates::Tiers(tiers))
}
