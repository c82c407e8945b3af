//! Products, partner shares and fees.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use smol_str::SmolStr;

use super::super::raw::*;
use super::super::*;
use super::support::*;

pub(super) fn product(
    loader: &mut Loader<'_>,
    scope: &Scope,
    plans: &[Plan],
    path: &KeyPath,
    raw: &RawProduct,
) -> Product {
    if raw.plans.is_empty() && raw.fees.is_empty() {
        loader.problem(
            &path.k("plans"),
            "a product needs at least one plan (usage) or one fee (e.g. a rental)",
        );
    }
    let mut currencies = HashSet::new();
    let mut plan_idx = Vec::new();
    for (i, p) in raw.plans.iter().enumerate() {
        if let Some(idx) = resolve(
            loader,
            &scope.plans,
            &scope.failed,
            &path.k("plans").i(i),
            p,
            "plan",
        ) {
            if let Some(plan) = plans.get(idx as usize)
                && !currencies.insert(plan.currency)
            {
                loader.problem(
                    &path.k("plans").i(i),
                    format!("two plans in {}: one plan per currency", plan.currency),
                );
            }
            plan_idx.push(idx);
        }
    }
    let allowances = raw
        .allowances
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            resolve(
                loader,
                &scope.allowances,
                &scope.failed,
                &path.k("allowances").i(i),
                a,
                "allowance",
            )
        })
        .collect();
    let mut shares = Vec::new();
    let mut percent_by_service: HashMap<Option<u32>, Decimal> = HashMap::new();
    for (i, s) in raw.partner_shares.iter().enumerate() {
        let spath = path.k("partner_shares").i(i);
        if s.partner.trim().is_empty() {
            loader.problem(&spath.k("partner"), "partner id must not be empty");
        }
        let services: Vec<u32> = s
            .services
            .iter()
            .enumerate()
            .filter_map(|(j, id)| {
                resolve(
                    loader,
                    &scope.services,
                    &scope.failed,
                    &spath.k("services").i(j),
                    id,
                    "service",
                )
            })
            .collect();
        let kind = match (s.percent, s.amount) {
            (Some(p), None) => {
                if p.0 <= Decimal::ZERO || p.0 > Decimal::ONE_HUNDRED {
                    loader.problem(&spath.k("percent"), "must be above 0 and at most 100");
                }
                if s.per.is_some() {
                    loader.problem(
                        &spath.k("per"),
                        "per applies to absolute shares (amount) only",
                    );
                }
                let keys: Vec<Option<u32>> = if services.is_empty() {
                    vec![None]
                } else {
                    services.iter().map(|s| Some(*s)).collect()
                };
                for key in keys {
                    *percent_by_service.entry(key).or_default() += p.0;
                }
                ShareKind::Percent(p.0)
            }
            (None, Some(a)) => {
                if s.per == Some(0) {
                    loader.problem(&spath.k("per"), "must be above zero");
                }
                ShareKind::Amount {
                    amount: non_negative(loader, &spath.k("amount"), Some(a)),
                    per: s.per.filter(|p| *p > 0),
                }
            }
            _ => {
                loader.problem(
                    &spath,
                    "a partner share needs exactly one of percent or amount",
                );
                ShareKind::Amount {
                    amount: Decimal::ZERO,
                    per: None,
                }
            }
        };
        shares.push(ShareRule {
            partner: crate::ids::PartnerId::new(&s.partner),
            services,
            kind,
        });
    }
    let all = percent_by_service.get(&None).copied().unwrap_or_default();
    for (service, pct) in &percent_by_service {
        let total = if service.is_some() { *pct + all } else { *pct };
        if total > Decimal::ONE_HUNDRED {
            loader.problem(
                &path.k("partner_shares"),
                format!("percentage shares add up to {total}%, above 100%"),
            );
            break;
        }
    }
    let mut fees = Vec::new();
    let mut fee_ids: HashMap<String, usize> = HashMap::new();
    for (i, f) in raw.fees.iter().enumerate() {
        let fpath = path.k("fees").i(i);
        if !unique(loader, &mut fee_ids, &fpath, &f.id, "fee") {
            continue;
        }
        if f.kind == FeeKind::OneOff && (f.period.is_some() || f.in_advance.is_some()) {
            loader.problem(&fpath, "period and in_advance apply to recurring fees only");
        }
        fees.push(Fee {
            id: SmolStr::new(&f.id),
            name: SmolStr::new(f.name.as_deref().unwrap_or(&f.id)),
            kind: f.kind,
            amount: non_negative(loader, &fpath.k("amount"), Some(f.amount)),
            period: f.period.unwrap_or_default(),
            in_advance: f.in_advance.unwrap_or(true),
            valid_from: instant(
                loader,
                &fpath.k("valid_from"),
                f.valid_from.as_ref(),
                &scope.tz,
            ),
            valid_to: instant(loader, &fpath.k("valid_to"), f.valid_to.as_ref(), &scope.tz),
        });
    }
    Product {
        id: SmolStr::new(&raw.id),
        name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)),
        plans: plan_idx,
        allowances,
        shares,
        fees,
    }
}
