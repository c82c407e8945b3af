//! Destination prefix tables and schedules.

use std::collections::HashSet;

use smol_str::SmolStr;

use super::super::raw::*;
use super::super::*;
use super::support::*;
use crate::calendar::{BandSpec, ScheduleSpec, parse_clock, parse_days};

/// What a prefix CSV row must look like.
pub(in crate::catalogue) const PREFIX_ROW_EXPECTED: &str = "expected prefix,zone[,description]";

/// One line of a prefix CSV file (`prefix,zone[,description]`).
pub(in crate::catalogue) enum PrefixRow<'a> {
    /// Blank, a `#` comment, or the header (a first line starting with `prefix`).
    Skip,
    /// A data row (columns trimmed; the prefix is not checked yet).
    Entry {
        /// Prefix column.
        prefix: &'a str,
        /// Zone column.
        zone: &'a str,
    },
    /// A data row without a zone column.
    Malformed,
}

/// Reads line `n` (0-based) of a prefix CSV file the way the loader does.
pub(in crate::catalogue) fn prefix_row(n: usize, line: &str) -> PrefixRow<'_> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("prefix")) {
        return PrefixRow::Skip;
    }
    let mut cols = line.split(',').map(str::trim);
    match (cols.next(), cols.next()) {
        (Some(prefix), Some(zone)) => PrefixRow::Entry { prefix, zone },
        _ => PrefixRow::Malformed,
    }
}

pub(super) fn destinations_table(
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
                    let (prefix, zone) = match prefix_row(n, line) {
                        PrefixRow::Skip => continue,
                        PrefixRow::Entry { prefix, zone } => (prefix, zone),
                        PrefixRow::Malformed => {
                            loader.file_problem(file, Some(line_no), path, PREFIX_ROW_EXPECTED);
                            continue;
                        }
                    };
                    if !seen.insert(prefix) {
                        loader.file_problem(
                            file,
                            Some(line_no),
                            path,
                            format!("duplicate prefix {prefix}"),
                        );
                        continue;
                    }
                    match zone_of(zone) {
                        ZoneRef::Known(z) => {
                            if let Err(e) = table.insert(prefix, z) {
                                loader.file_problem(file, Some(line_no), path, e.to_string());
                            }
                        }
                        ZoneRef::Failed => {}
                        ZoneRef::Unknown => loader.file_problem(
                            file,
                            Some(line_no),
                            path,
                            format!("unknown zone {zone:?}"),
                        ),
                    }
                }
            }
        }
    }
    table.optimise();
    if raw.file.is_none() && raw.entries.is_empty() {
        loader.problem(path, "a destinations table needs a file or entries");
    }
    Destinations {
        id: SmolStr::new(&raw.id),
        table,
    }
}

/// Builds a schedule; `false` when it is invalid (a placeholder is returned so indices hold).
pub(super) fn schedule(
    loader: &mut Loader<'_>,
    scope: &Scope,
    path: &KeyPath,
    raw: &RawSchedule,
) -> (crate::calendar::Schedule, bool) {
    let tz = timezone(
        loader,
        &path.k("timezone"),
        raw.timezone.as_ref(),
        &scope.tz,
    );
    let mut holidays = Vec::new();
    for (i, h) in raw.holidays.iter().enumerate() {
        match h.parse::<jiff::civil::Date>() {
            Ok(d) => holidays.push(d),
            Err(_) => loader.problem(
                &path.k("holidays").i(i),
                format!("{h:?} is not a date (YYYY-MM-DD)"),
            ),
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
            loader.problem(
                &bpath.k("from"),
                format!("{:?} is not a time of day (HH:MM)", band.from),
            );
        }
        if to.is_none() {
            loader.problem(
                &bpath.k("to"),
                format!("{:?} is not a time of day (HH:MM, up to 24:00)", band.to),
            );
        }
        if let (Some(from_s), Some(to_s)) = (from, to) {
            bands.push(BandSpec {
                name: SmolStr::new(&band.id),
                days,
                from_s,
                to_s,
            });
        }
    }
    let spec = ScheduleSpec {
        id: SmolStr::new(&raw.id),
        tz: Some(tz.clone()),
        holidays,
        bands,
    };
    let before = loader.problems.len();
    match spec.build() {
        Ok(s) => (s, loader.problems.len() == before),
        Err(problems) => {
            for p in problems {
                loader.problem(&path.k("bands"), p);
            }
            (
                crate::calendar::Schedule::placeholder(SmolStr::new(&raw.id), tz),
                false,
            )
        }
    }
}
