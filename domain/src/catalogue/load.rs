//! Loading and validating a catalogue file. Every problem is collected (not just the first),
//! each with the file, the line and the key path it concerns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use smol_str::SmolStr;

use super::raw::*;
use super::*;
use crate::attrs::Condition;
use crate::calendar::{BandSpec, ScheduleSpec, parse_clock, parse_days, parse_instant};
use crate::money::Currency;

/// Reads a file referenced by the catalogue (a prefix table), given its path as written.
pub type FileReader<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// One thing wrong with a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// File it is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path, e.g. `plans[0].rules[2].prices[0].rate`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A key path inside the document.
#[derive(Debug, Clone, Default)]
struct KeyPath(Vec<Seg>);

impl KeyPath {
    fn k(&self, key: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }
    fn i(&self, index: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

struct Loader<'t> {
    file: String,
    doc: toml_edit::ImDocument<&'t str>,
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
}

impl Loader<'_> {
    fn line_at_offset(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let mut item = self.doc.as_item();
        let mut span = None;
        for seg in &path.0 {
            let next = match seg {
                Seg::Key(k) => item.get(k.as_str()),
                Seg::Index(i) => item.get(*i),
            };
            let Some(next) = next else { break };
            item = next;
            if let Some(s) = item.span() {
                span = Some(s);
            }
        }
        span.map(|s| self.line_at_offset(s.start))
    }

    fn problem(&mut self, path: &KeyPath, message: impl Into<String>) {
        let line = self.line_of(path);
        self.problems.push(Problem { file: self.file.clone(), line, key: path.to_string(), message: message.into() });
    }

    fn file_problem(&mut self, file: &str, line: Option<usize>, key: &KeyPath, message: impl Into<String>) {
        self.problems.push(Problem { file: file.to_string(), line, key: key.to_string(), message: message.into() });
    }

    /// Deserializes one value, reporting a failure at its exact key path.
    fn parse<T: DeserializeOwned>(&mut self, path: &KeyPath, value: &toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                let mut full = path.clone();
                for seg in e.path().iter() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => full = full.i(*index),
                        serde_path_to_error::Segment::Map { key } => full = full.k(key),
                        serde_path_to_error::Segment::Enum { variant } => full = full.k(variant),
                        serde_path_to_error::Segment::Unknown => {}
                    }
                }
                let message = e.into_inner().message().to_string();
                self.problem(&full, message);
                None
            }
        }
    }

    /// Deserializes each item of an array section; failed items are reported and skipped, and
    /// their ids (when readable) returned so references to them are not reported again.
    fn section<T: DeserializeOwned>(&mut self, table: &toml::Table, name: &str) -> (Vec<(KeyPath, T)>, HashSet<String>) {
        let base = KeyPath::default().k(name);
        let mut items = Vec::new();
        let mut failed = HashSet::new();
        match table.get(name) {
            None => {}
            Some(toml::Value::Array(values)) => {
                for (i, value) in values.iter().enumerate() {
                    let path = base.i(i);
                    match self.parse::<T>(&path, value) {
                        Some(item) => items.push((path, item)),
                        None => {
                            if let Some(id) = value.get("id").and_then(toml::Value::as_str) {
                                failed.insert(id.to_string());
                            }
                        }
                    }
                }
            }
            Some(_) => self.problem(&base, format!("must be an array of tables ([[{name}]])")),
        }
        (items, failed)
    }
}

const SECTIONS: [&str; 9] =
    ["catalogue", "services", "zones", "destinations", "schedules", "allowances", "plans", "products", "bundles"];

/// Ids already seen in one namespace; reports duplicates.
fn unique(loader: &mut Loader<'_>, seen: &mut HashMap<String, usize>, path: &KeyPath, id: &str, what: &str) -> bool {
    if id.trim().is_empty() {
        loader.problem(&path.k("id"), format!("{what} id must not be empty"));
        return false;
    }
    if seen.contains_key(id) {
        loader.problem(&path.k("id"), format!("duplicate {what} id {id:?}"));
        return false;
    }
    let next = seen.len();
    seen.insert(id.to_string(), next);
    true
}

/// Resolves a reference by id, reporting it when unknown (unless the target itself failed).
fn resolve(
    loader: &mut Loader<'_>,
    index: &HashMap<String, usize>,
    failed: &HashSet<String>,
    path: &KeyPath,
    id: &str,
    what: &str,
) -> Option<u32> {
    match index.get(id) {
        Some(&i) => Some(i as u32),
        None => {
            if !failed.contains(id) {
                loader.problem(path, format!("unknown {what} {id:?}"));
            }
            None
        }
    }
}

fn non_negative(loader: &mut Loader<'_>, path: &KeyPath, amount: Option<Amount>) -> Decimal {
    let value = amount.map_or(Decimal::ZERO, |a| a.0);
    if value.is_sign_negative() && !value.is_zero() {
        loader.problem(path, format!("{value} must not be negative"));
    }
    value
}

fn conditions(loader: &mut Loader<'_>, path: &KeyPath, texts: &[String]) -> Vec<Condition> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match text.parse::<Condition>() {
            Ok(c) => Some(c),
            Err(e) => {
                loader.problem(&path.i(i), e.reason);
                None
            }
        })
        .collect()
}

fn instant(loader: &mut Loader<'_>, path: &KeyPath, text: Option<&String>, tz: &TimeZone) -> Option<Timestamp> {
    let text = text?;
    match parse_instant(text, tz) {
        Ok(ts) => Some(ts),
        Err(e) => {
            loader.problem(path, e);
            None
        }
    }
}

fn timezone(loader: &mut Loader<'_>, path: &KeyPath, name: Option<&String>, default: &TimeZone) -> TimeZone {
    match name {
        None => default.clone(),
        Some(name) => TimeZone::get(name).unwrap_or_else(|_| {
            loader.problem(path, format!("unknown timezone {name:?} (use an IANA name such as Europe/Berlin)"));
            default.clone()
        }),
    }
}

const PRECISION_MAX: u32 = 12;

struct Scope {
    tz: TimeZone,
    services: HashMap<String, usize>,
    zones: HashMap<String, usize>,
    tables: HashMap<String, usize>,
    schedules: HashMap<String, usize>,
    allowances: HashMap<String, usize>,
    plans: HashMap<String, usize>,
    failed: HashSet<String>,
}

impl Catalogue {
    /// Parses and validates a catalogue. `file` names it in problems; `read` loads the prefix
    /// files it references (paths as written, resolved by the caller).
    pub fn from_toml(text: &str, file: &str, read: &mut FileReader<'_>) -> Result<Catalogue, Problems> {
        let doc = match toml_edit::ImDocument::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                let message = e.message().trim().to_string();
                return Err(Problems(vec![Problem { file: file.to_string(), line, key: String::new(), message }]));
            }
        };
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                let message = e.message().to_string();
                return Err(Problems(vec![Problem { file: file.to_string(), line, key: String::new(), message }]));
            }
        };
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut loader = Loader { file: file.to_string(), doc, line_starts, problems: Vec::new() };
        let catalogue = build(&mut loader, &table, read);
        if loader.problems.is_empty() {
            Ok(catalogue)
        } else {
            let mut problems = loader.problems;
            problems.sort_by(|a, b| (a.file != file, &a.file, a.line).cmp(&(b.file != file, &b.file, b.line)));
            Err(Problems(problems))
        }
    }
}

fn build(loader: &mut Loader<'_>, table: &toml::Table, read: &mut FileReader<'_>) -> Catalogue {
    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            loader.problem(&KeyPath::default().k(key), format!("unknown section (expected one of {})", SECTIONS.join(", ")));
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
    let tz = timezone(loader, &header_path.k("timezone"), header.as_ref().and_then(|h| h.timezone.as_ref()), &TimeZone::UTC);
    let charge_precision = header.as_ref().and_then(|h| h.charge_precision).unwrap_or(4);
    if charge_precision > PRECISION_MAX {
        loader.problem(&header_path.k("charge_precision"), format!("at most {PRECISION_MAX} decimal places"));
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
            services.push(Service { name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)), id: SmolStr::new(&raw.id), unit: raw.unit });
        }
    }

    let (raw_zones, failed) = loader.section::<RawZone>(table, "zones");
    scope.failed.extend(failed);
    let mut zones = Vec::new();
    for (path, raw) in raw_zones {
        if unique(loader, &mut scope.zones, &path, &raw.id, "zone") {
            zones.push(Zone { name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)), id: SmolStr::new(&raw.id) });
        }
    }

    let (raw_tables, failed) = loader.section::<RawDestinations>(table, "destinations");
    scope.failed.extend(failed);
    let mut destinations = Vec::new();
    for (path, raw) in raw_tables {
        if !unique(loader, &mut scope.tables, &path, &raw.id, "destinations table") {
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
        let service = resolve(loader, &scope.services, &scope.failed, &path.k("service"), &raw.service, "service");
        let zones_idx = raw
            .zones
            .iter()
            .enumerate()
            .filter_map(|(i, z)| resolve(loader, &scope.zones, &scope.failed, &path.k("zones").i(i), z, "zone"))
            .collect();
        if raw.units == 0 {
            loader.problem(&path.k("units"), "an allowance must grant at least one unit");
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
        let plan = plan(loader, &scope, &services, &schedules, &path, &raw, currency, rounding, charge_precision);
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
            .filter_map(|(i, p)| resolve(loader, &product_index, &scope.failed, &path.k("products").i(i), p, "product"))
            .collect();
        bundles.push(Bundle { id: SmolStr::new(&raw.id), name: SmolStr::new(raw.name.as_deref().unwrap_or(&raw.id)), products: members });
    }

    for plan in &mut plans {
        plan.rule_index = RuleIndex::build(&plan.rules, zones.len());
    }
    let service_index = services.iter().enumerate().map(|(i, s)| (s.id.clone(), i as u32)).collect();
    let mut offer_index: HashMap<SmolStr, Offer> = HashMap::new();
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

fn destinations_table(
    loader: &mut Loader<'_>,
    scope: &Scope,
    path: &KeyPath,
    raw: &RawDestinations,
    read: &mut FileReader<'_>,
) -> Destinations {
    let mut table = PrefixTable::new();
    // Zone of an entry: known, unknown (a problem), or one that itself failed to load (skipped).
    enum ZoneRef {
        Known(u32),
        Failed,
        Unknown,
    }
    let zone_of = |zone: &str| match scope.zones.get(zone) {
        Some(&z) => ZoneRef::Known(z as u32),
        None if scope.failed.contains(zone) => ZoneRef::Failed,
        None => ZoneRef::Unknown,
    };
    for (prefix, zone) in &raw.entries {
        let entry_path = path.k("entries").k(prefix);
        match zone_of(zone) {
            ZoneRef::Known(z) => {
                if let Err(e) = table.insert(prefix, z) {
                    loader.problem(&entry_path, e.to_string());
                }
            }
            ZoneRef::Failed => {}
            ZoneRef::Unknown => loader.problem(&entry_path, format!("unknown zone {zone:?}")),
        }
    }
    if let Some(file) = &raw.file {
        match read(file) {
            Err(e) => loader.problem(&path.k("file"), format!("cannot read {file:?}: {e}")),
            Ok(content) => {
                let mut seen: HashSet<&str> = raw.entries.keys().map(String::as_str).collect();
                for (n, line) in content.lines().enumerate() {
                    let line_no = n + 1;
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("prefix")) {
                        continue;
                    }
                    let mut cols = line.split(',').map(str::trim);
                    let (Some(prefix), Some(zone)) = (cols.next(), cols.next()) else {
                        loader.file_problem(file, Some(line_no), path, "expected prefix,zone[,description]");
                        continue;
                    };
                    if !seen.insert(prefix) {
                        loader.file_problem(file, Some(line_no), path, format!("duplicate prefix {prefix}"));
                        continue;
                    }
                    match zone_of(zone) {
                        ZoneRef::Known(z) => {
                            if let Err(e) = table.insert(prefix, z) {
                                loader.file_problem(file, Some(line_no), path, e.to_string());
                            }
                        }
                        ZoneRef::Failed => {}
                        ZoneRef::Unknown => loader.file_problem(file, Some(line_no), path, format!("unknown zone {zone:?}")),
                    }
                }
            }
        }
    }
    if raw.file.is_none() && raw.entries.is_empty() {
        loader.problem(path, "a destinations table needs a file or entries");
    }
    Destinations { id: SmolStr::new(&raw.id), table }
}

/// Builds a schedule; `false` when it is invalid (a placeholder is returned so indices hold).
fn schedule(loader: &mut Loader<'_>, scope: &Scope, path: &KeyPath, raw: &RawSchedule) -> (crate::calendar::Schedule, bool) {
    let tz = timezone(loader, &path.k("timezone"), raw.timezone.as_ref(), &scope.tz);
    let mut holidays = Vec::new();
    for (i, h) in raw.holidays.iter().enumerate() {
        match h.parse::<jiff::civil::Date>() {
            Ok(d) => holidays.push(d),
            Err(_) => loader.problem(&path.k("holidays").i(i), format!("{h:?} is not a date (YYYY-MM-DD)")),
        }
    }
    let mut bands = Vec::new();
    for (i, band) in raw.bands.iter().enumerate() {
        let bpath = path.k("bands").i(i);
        let mut days = Vec::new();
        for (j, word) in band.days.iter().enumerate() {
            match parse_days(word) {
                Some(d) => days.extend(d),
                None => loader.problem(
                    &bpath.k("days").i(j),
                    format!("{word:?} is not a day (mon..sun, holiday, weekdays, weekend, all)"),
                ),
            }
        }
        let from = parse_clock(&band.from);
        let to = parse_clock(&band.to);
        if from.is_none() {
            loader.problem(&bpath.k("from"), format!("{:?} is not a time of day (HH:MM)", band.from));
        }
        if to.is_none() {
            loader.problem(&bpath.k("to"), format!("{:?} is not a time of day (HH:MM, up to 24:00)", band.to));
        }
        if let (Some(from_s), Some(to_s)) = (from, to) {
            bands.push(BandSpec { name: SmolStr::new(&band.id), days, from_s, to_s });
        }
    }
    let spec = ScheduleSpec { id: SmolStr::new(&raw.id), tz: Some(tz.clone()), holidays, bands };
    let before = loader.problems.len();
    match spec.build() {
        Ok(s) => (s, loader.problems.len() == before),
        Err(problems) => {
            for p in problems {
                loader.problem(&path.k("bands"), p);
            }
            (crate::calendar::Schedule::placeholder(SmolStr::new(&raw.id), tz), false)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn plan(
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
        id.as_ref().and_then(|id| resolve(loader, &scope.tables, &scope.failed, &path.k(key), id, "destinations table"))
    };
    let destinations = table_ref(loader, "destinations", &raw.destinations);
    let caller_regions = table_ref(loader, "caller_regions", &raw.caller_regions);
    let schedule = raw
        .schedule
        .as_ref()
        .and_then(|id| resolve(loader, &scope.schedules, &scope.failed, &path.k("schedule"), id, "schedule"));
    let charge_precision = raw.charge_precision.unwrap_or(default_precision);
    if charge_precision > PRECISION_MAX {
        loader.problem(&path.k("charge_precision"), format!("at most {PRECISION_MAX} decimal places"));
    }
    let schedule_failed = raw.schedule.as_ref().is_some_and(|id| scope.failed.contains(id));
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
    for (i, d) in raw.discounts.iter().enumerate() {
        let dpath = path.k("discounts").i(i);
        let when = conditions(loader, &dpath.k("when"), &d.when);
        let rules_idx = d
            .rules
            .iter()
            .enumerate()
            .filter_map(|(j, r)| resolve(loader, &rule_ids, &failed_rules, &dpath.k("rules").i(j), r, "rule"))
            .collect();
        let kind = match (d.percent, d.amount) {
            (Some(p), None) => {
                if p.0 < Decimal::ZERO || p.0 > Decimal::ONE_HUNDRED {
                    loader.problem(&dpath.k("percent"), "must be between 0 and 100");
                }
                DiscountKind::Percent(p.0)
            }
            (None, Some(a)) => DiscountKind::Amount(non_negative(loader, &dpath.k("amount"), Some(a))),
            _ => {
                loader.problem(&dpath, "a discount needs exactly one of percent or amount");
                DiscountKind::Amount(Decimal::ZERO)
            }
        };
        discounts.push(Discount { id: SmolStr::new(&d.id), when, rules: rules_idx, kind });
    }
    let mut combinations = Vec::new();
    for (i, c) in raw.combinations.iter().enumerate() {
        let cpath = path.k("combinations").i(i);
        let mut legs: Vec<SmolStr> = c.legs.iter().map(SmolStr::new).collect();
        legs.sort();
        legs.dedup();
        if legs.is_empty() {
            loader.problem(&cpath.k("legs"), "a combination needs at least one leg kind");
        }
        let mut leg_rules = Vec::new();
        for (leg, rule_id) in &c.leg_rules {
            if !legs.iter().any(|l| l == leg) {
                loader.problem(&cpath.k("leg_rules").k(leg), format!("leg {leg:?} is not in this combination's legs"));
            }
            if let Some(r) = resolve(loader, &rule_ids, &failed_rules, &cpath.k("leg_rules").k(leg), rule_id, "rule") {
                leg_rules.push((SmolStr::new(leg), r));
            }
        }
        let fee = non_negative(loader, &cpath.k("fee"), c.fee);
        combinations.push(Combination { id: SmolStr::new(&c.id), legs, mode: c.mode.unwrap_or_default(), leg_rules, fee });
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

struct RuleCtx<'a> {
    plan_id: &'a str,
    has_destinations: bool,
    has_callers: bool,
    bands: Option<&'a [SmolStr]>,
    /// The plan's schedule is itself invalid (already reported): skip band checks.
    schedule_failed: bool,
}

fn parse_increments(text: &str) -> Option<Increments> {
    let (a, b) = text.split_once('/')?;
    let first = a.trim().parse::<u64>().ok()?;
    let next = b.trim().parse::<u64>().ok()?;
    (first > 0 && next > 0).then_some(Increments { first, next })
}

fn rule(
    loader: &mut Loader<'_>,
    scope: &Scope,
    services: &[Service],
    ctx: &RuleCtx<'_>,
    path: &KeyPath,
    raw: &RawRule,
) -> Rule {
    let service = resolve(loader, &scope.services, &scope.failed, &path.k("service"), &raw.service, "service");
    let unit = service.and_then(|s| services.get(s as usize)).map_or(UnitKind::Event, |s| s.unit);
    let zone_list = |loader: &mut Loader<'_>, key: &str, ids: &[String], allowed: bool, table: &str| -> Vec<u32> {
        if !ids.is_empty() && !allowed {
            loader.problem(&path.k(key), format!("matching {key} needs the plan's {table} table"));
        }
        ids.iter()
            .enumerate()
            .filter_map(|(i, z)| resolve(loader, &scope.zones, &scope.failed, &path.k(key).i(i), z, "zone"))
            .collect()
    };
    let zones = zone_list(loader, "zones", &raw.zones, ctx.has_destinations, "destinations");
    let caller_zones = zone_list(loader, "caller_zones", &raw.caller_zones, ctx.has_callers, "caller_regions");
    let when = conditions(loader, &path.k("when"), &raw.when);
    let increments = match &raw.increments {
        None => Increments { first: 1, next: 1 },
        Some(text) => parse_increments(text).unwrap_or_else(|| {
            loader.problem(&path.k("increments"), format!("{text:?} is not first/next with both above zero, e.g. \"60/60\""));
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
            Coefficient { when: conditions(loader, &cpath.k("when"), &c.when), factor: c.factor.0 }
        })
        .collect();
    let mut prices: Vec<PriceVersion> = Vec::new();
    let raw_prices: Vec<(KeyPath, &RawPrice)> = match (&raw.price, raw.prices.is_empty()) {
        (Some(p), true) => vec![(path.k("price"), p)],
        (None, false) => raw.prices.iter().enumerate().map(|(i, p)| (path.k("prices").i(i), p)).collect(),
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
            loader.problem(&path.k("prices"), "price versions overlap: each needs valid_from, and valid_to no later than the next version's valid_from");
            break;
        }
    }
    if model == Model::Volume && !raw.coefficients.is_empty() {
        loader.problem(&path.k("coefficients"), "volume-priced rules cannot have coefficients: the bill-time true-up prices the period total at the tier rate");
    }
    let counter_name = raw.counter.clone().unwrap_or_else(|| format!("{}/{}", ctx.plan_id, raw.id));
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
            || raw.when.iter().chain(raw.coefficients.iter().flat_map(|c| c.when.iter())).any(|w| w.trim_start().starts_with("period.")),
    }
}

fn price(
    loader: &mut Loader<'_>,
    scope: &Scope,
    ctx: &RuleCtx<'_>,
    path: &KeyPath,
    raw: &RawPrice,
    model: Model,
) -> Option<PriceVersion> {
    let valid_from = instant(loader, &path.k("valid_from"), raw.valid_from.as_ref(), &scope.tz);
    let valid_to = instant(loader, &path.k("valid_to"), raw.valid_to.as_ref(), &scope.tz);
    if let (Some(from), Some(to)) = (valid_from, valid_to) {
        if to <= from {
            loader.problem(&path.k("valid_to"), "must be after valid_from");
        }
    }
    let rates = match (&raw.rate, &raw.rates, &raw.tiers) {
        (Some(rate), None, None) => Rates::Flat(non_negative(loader, &path.k("rate"), Some(*rate))),
        (None, Some(by_band), None) => band_rates(loader, ctx, &path.k("rates"), by_band)?,
        (None, None, Some(tiers)) => tier_rates(loader, &path.k("tiers"), tiers)?,
        _ => {
            loader.problem(path, "a price needs exactly one of rate, rates (per band) or tiers");
            return None;
        }
    };
    let fits = match (&rates, model) {
        (Rates::Flat(_) | Rates::Bands(_), Model::Flat) => true,
        (Rates::Tiers(_), Model::Tiered | Model::Volume) => true,
        (Rates::Flat(_) | Rates::Tiers(_), Model::Cumulated) => true,
        _ => false,
    };
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

fn band_rates(loader: &mut Loader<'_>, ctx: &RuleCtx<'_>, path: &KeyPath, by_band: &BTreeMap<String, Amount>) -> Option<Rates> {
    let Some(bands) = ctx.bands else {
        if !ctx.schedule_failed {
            loader.problem(path, "rates per band need the plan's schedule");
        }
        return None;
    };
    let mut out = vec![Decimal::ZERO; bands.len()];
    for band in by_band.keys() {
        if !bands.iter().any(|b| b == band) {
            loader.problem(&path.k(band), format!("band {band:?} is not in the plan's schedule"));
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

fn tier_rates(loader: &mut Loader<'_>, path: &KeyPath, raw: &[RawTier]) -> Option<Rates> {
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
            (Some(_), true) => loader.problem(&path.i(i).k("up_to"), "the last tier must be open (no up_to)"),
            (Some(up), false) => {
                if up <= last {
                    loader.problem(&path.i(i).k("up_to"), format!("{up} must be above the previous tier's {last}"));
                }
                last = up;
            }
            (None, true) => {}
        }
        tiers.push(Tier { up_to: t.up_to, rate: non_negative(loader, &path.i(i).k("rate"), Some(t.rate)) });
    }
    Some(Rates::Tiers(tiers))
}

fn product(loader: &mut Loader<'_>, scope: &Scope, plans: &[Plan], path: &KeyPath, raw: &RawProduct) -> Product {
    if raw.plans.is_empty() && raw.fees.is_empty() {
        loader.problem(&path.k("plans"), "a product needs at least one plan (usage) or one fee (e.g. a rental)");
    }
    let mut currencies = HashSet::new();
    let mut plan_idx = Vec::new();
    for (i, p) in raw.plans.iter().enumerate() {
        if let Some(idx) = resolve(loader, &scope.plans, &scope.failed, &path.k("plans").i(i), p, "plan") {
            if let Some(plan) = plans.get(idx as usize) {
                if !currencies.insert(plan.currency) {
                    loader.problem(&path.k("plans").i(i), format!("two plans in {}: one plan per currency", plan.currency));
                }
            }
            plan_idx.push(idx);
        }
    }
    let allowances = raw
        .allowances
        .iter()
        .enumerate()
        .filter_map(|(i, a)| resolve(loader, &scope.allowances, &scope.failed, &path.k("allowances").i(i), a, "allowance"))
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
            .filter_map(|(j, id)| resolve(loader, &scope.services, &scope.failed, &spath.k("services").i(j), id, "service"))
            .collect();
        let kind = match (s.percent, s.amount) {
            (Some(p), None) => {
                if p.0 <= Decimal::ZERO || p.0 > Decimal::ONE_HUNDRED {
                    loader.problem(&spath.k("percent"), "must be above 0 and at most 100");
                }
                if s.per.is_some() {
                    loader.problem(&spath.k("per"), "per applies to absolute shares (amount) only");
                }
                let keys: Vec<Option<u32>> = if services.is_empty() { vec![None] } else { services.iter().map(|s| Some(*s)).collect() };
                for key in keys {
                    *percent_by_service.entry(key).or_default() += p.0;
                }
                ShareKind::Percent(p.0)
            }
            (None, Some(a)) => {
                if s.per == Some(0) {
                    loader.problem(&spath.k("per"), "must be above zero");
                }
                ShareKind::Amount { amount: non_negative(loader, &spath.k("amount"), Some(a)), per: s.per.filter(|p| *p > 0) }
            }
            _ => {
                loader.problem(&spath, "a partner share needs exactly one of percent or amount");
                ShareKind::Amount { amount: Decimal::ZERO, per: None }
            }
        };
        shares.push(ShareRule { partner: crate::ids::PartnerId::new(&s.partner), services, kind });
    }
    let all = percent_by_service.get(&None).copied().unwrap_or_default();
    for (service, pct) in &percent_by_service {
        let total = if service.is_some() { *pct + all } else { *pct };
        if total > Decimal::ONE_HUNDRED {
            loader.problem(&path.k("partner_shares"), format!("percentage shares add up to {total}%, above 100%"));
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
            valid_from: instant(loader, &fpath.k("valid_from"), f.valid_from.as_ref(), &scope.tz),
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
