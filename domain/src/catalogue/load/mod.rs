//! Loading and validating a catalogue file. Every problem is collected (not just the first),
//! each with the file, the line and the key path it concerns.

mod plan;
mod product;
mod support;
pub(super) mod tables;

pub use support::{FileReader, Problem, Problems};

use std::collections::{HashMap, HashSet};

use jiff::tz::TimeZone;
use smol_str::SmolStr;

use super::raw::*;
use super::*;
use crate::money::Currency;
use plan::plan;
use product::product;
use support::*;
use tables::{destinations_table, schedule};

impl Catalogue {
    /// Parses and validates a catalogue. `file` names it in problems; `read` loads the prefix
    /// files it references (paths as written, resolved by the caller).
    pub fn from_toml(
        text: &str,
        file: &str,
        read: &mut FileReader<'_>,
    ) -> Result<Catalogue, Problems> {
        let doc = match toml_edit::ImDocument::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                let message = e.message().trim().to_string();
                return Err(Problems(vec![Problem {
                    file: file.to_string(),
                    line,
                    key: String::new(),
                    message,
                }]));
            }
        };
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                let message = e.message().to_string();
                return Err(Problems(vec![Problem {
                    file: file.to_string(),
                    line,
                    key: String::new(),
                    message,
                }]));
            }
        };
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut loader = Loader {
            file: file.to_string(),
            doc,
            line_starts,
            problems: Vec::new(),
        };
        let catalogue = build(&mut loader, &table, read);
        if loader.problems.is_empty() {
            Ok(catalogue)
        } else {
            let mut problems = loader.problems;
            problems.sort_by(|a, b| {
                (a.file != file, &a.file, a.line).cmp(&(b.file != file, &b.file, b.line))
            });
            Err(Problems(problems))
        }
    }
}

fn build(loader: &mut Loader<'_>, table: &toml::Table, read: &mut FileReader<'_>) -> Catalogue {
    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            loader.problem(
                &KeyPath::default().k(key),
                format!("unknown section (expected one of {})", SECTIONS.join(", ")),
            );
        }
    }
    let header_path = KeyPath::default().k("catalogue");
    let header = match table.get("catalogue") {
        Some(v) => loader.parse::<RawHeader>(&header_path, v),
        None => {
            loader.problem(&header_path, "missing [catalogue] section (name, currency)");
            None
        }
    };
    let currency = header
        .as_ref()
        .and_then(|h| match Currency::from_code(&h.currency) {
            Ok(c) => Some(c),
            Err(e) => {
                loader.problem(&header_path.k("currency"), e.to_string());
                None
            }
        })
        .unwrap_or(Currency::EUR);
    let tz = timezone(
        loader,
        &header_path.k("timezone"),
        header.as_ref().and_then(|h| h.timezone.as_ref()),
        &TimeZone::UTC,
    );
    let charge_precision = header
        .as_ref()
        .and_then(|h| h.charge_precision)
        .unwrap_or(4);
    if charge_precision > PRECISION_MAX {
        loader.problem(
            &header_path.k("charge_precision"),
            format!("at most {PRECISION_MAX} decimal places"),
        );
    }
    let rounding = header.as_ref().and_then(|h| h.rounding).unwrap_or_default();
    let defaults = Limits::default();
    let limits = header.as_ref().map_or(defaults, |h| Limits {
        max_seconds: h.limits.max_seconds.unwrap_or(defaults.max_seconds),
        max_bytes: h.limits.max_bytes.unwrap_or(defaults.max_bytes),
        max_events: h.limits.max_events.unwrap_or(defaults.max_events),
    });

    let mut scope = Scope {
        tz: tz.clone(),
        services: HashMap::new(),
        zones: HashMap::new(),
        tables: HashMap::new(),
        schedules: HashMap::new(),
        allowances: HashMap::new(),
        plans: HashMap::new(),
        failed: HashSet::new(),
    };

    let (raw_services, failed) = loader.section::<RawService>(table, "services");
    scope.failed.extend(failed);
    let mut services = Vec::new();
    for (path, raw) in raw_services {
        if unique(loader, &mut scope.services, &path, &raw.id, "service") {
            services.push(Service {
                name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)),
                id: SmolStr::new(&raw.id),
                unit: raw.unit,
            });
        }
    }

    let (raw_zones, failed) = loader.section::<RawZone>(table, "zones");
    scope.failed.extend(failed);
    let mut zones = Vec::new();
    for (path, raw) in raw_zones {
        if unique(loader, &mut scope.zones, &path, &raw.id, "zone") {
            zones.push(Zone {
                name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)),
                id: SmolStr::new(&raw.id),
            });
        }
    }

    let (raw_tables, failed) = loader.section::<RawDestinations>(table, "destinations");
    scope.failed.extend(failed);
    let mut destinations = Vec::new();
    for (path, raw) in raw_tables {
        if !unique(
            loader,
            &mut scope.tables,
            &path,
            &raw.id,
            "destinations table",
        ) {
            continue;
        }
        destinations.push(destinations_table(loader, &scope, &path, &raw, read));
    }

    let (raw_schedules, failed) = loader.section::<RawSchedule>(table, "schedules");
    scope.failed.extend(failed);
    let mut schedules = Vec::new();
    for (path, raw) in raw_schedules {
        if !unique(loader, &mut scope.schedules, &path, &raw.id, "schedule") {
            continue;
        }
        let (built, ok) = schedule(loader, &scope, &path, &raw);
        if !ok {
            scope.failed.insert(raw.id.clone());
        }
        schedules.push(built);
    }

    let (raw_allowances, failed) = loader.section::<RawAllowance>(table, "allowances");
    scope.failed.extend(failed);
    let mut allowances = Vec::new();
    for (path, raw) in raw_allowances {
        if !unique(loader, &mut scope.allowances, &path, &raw.id, "allowance") {
            continue;
        }
        let service = resolve(
            loader,
            &scope.services,
            &scope.failed,
            &path.k("service"),
            &raw.service,
            "service",
        );
        let zones_idx = raw
            .zones
            .iter()
            .enumerate()
            .filter_map(|(i, z)| {
                resolve(
                    loader,
                    &scope.zones,
                    &scope.failed,
                    &path.k("zones").i(i),
                    z,
                    "zone",
                )
            })
            .collect();
        if raw.units == 0 {
            loader.problem(
                &path.k("units"),
                "an allowance must grant at least one unit",
            );
        }
        allowances.push(Allowance {
            id: SmolStr::new(&raw.id),
            name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)),
            service: service.unwrap_or(0),
            units: raw.units,
            period: raw.period.unwrap_or_default(),
            zones: zones_idx,
            counter: smol_str::format_smolstr!("allowance:{}", raw.id),
        });
    }

    let (raw_plans, failed) = loader.section::<RawPlan>(table, "plans");
    scope.failed.extend(failed);
    let mut plans = Vec::new();
    for (path, raw) in raw_plans {
        if !unique(loader, &mut scope.plans, &path, &raw.id, "plan") {
            continue;
        }
        let plan = plan(
            loader,
            &scope,
            &services,
            &schedules,
            &path,
            &raw,
            currency,
            rounding,
            charge_precision,
        );
        plans.push(plan);
    }

    let (raw_products, failed_products) = loader.section::<RawProduct>(table, "products");
    let (raw_bundles, failed_bundles) = loader.section::<RawBundle>(table, "bundles");
    scope.failed.extend(failed_products);
    scope.failed.extend(failed_bundles);
    let mut offers: HashMap<String, usize> = HashMap::new();
    let mut product_index: HashMap<String, usize> = HashMap::new();
    let mut products = Vec::new();
    for (path, raw) in raw_products {
        if !unique(loader, &mut offers, &path, &raw.id, "product or bundle") {
            continue;
        }
        product_index.insert(raw.id.clone(), products.len());
        products.push(product(loader, &scope, &plans, &path, &raw));
    }
    let mut bundles = Vec::new();
    for (path, raw) in raw_bundles {
        if !unique(loader, &mut offers, &path, &raw.id, "product or bundle") {
            continue;
        }
        if raw.products.is_empty() {
            loader.problem(&path.k("products"), "a bundle needs at least one product");
        }
        let members = raw
            .products
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                resolve(
                    loader,
                    &product_index,
                    &scope.failed,
                    &path.k("products").i(i),
                    p,
                    "product",
                )
            })
            .collect();
        bundles.push(Bundle {
            id: SmolStr::new(&raw.id),
            name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)),
            products: members,
        });
    }

    for plan in &mut plans {
        plan.rule_index = RuleIndex::build(&plan.rules, zones.len());
    }
    let service_index = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i as u32))
        .collect();
    let mut offer_index: rustc_hash::FxHashMap<SmolStr, Offer> = Default::default();
    for (i, p) in products.iter().enumerate() {
        offer_index.insert(p.id.clone(), Offer::Product(i as u32));
    }
    for (i, b) in bundles.iter().enumerate() {
        offer_index.insert(b.id.clone(), Offer::Bundle(i as u32));
    }
    Catalogue {
        name: SmolStr::new(header.as_ref().map_or("", |h| h.name.as_str())),
        currency,
        timezone: tz,
        charge_precision,
        rounding,
        limits,
        services,
        zones,
        destinations,
        schedules,
        allowances,
        plans,
        products,
        bundles,
        service_index,
        offer_index,
    }
}
