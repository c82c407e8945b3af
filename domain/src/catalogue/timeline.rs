//! Published catalogue versions in effective-date order: which version prices a record.
//!
//! A record is priced by the version in force at its start time: the one with the latest
//! `effective_from` at or before it (on equal dates, the higher version number). Publishing makes
//! a new [`Timeline`] with [`Timeline::with`]; holders swap an `Arc<Timeline>`, so a reader keeps
//! one consistent snapshot for as long as it needs.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

use super::Catalogue;

/// One published version.
#[derive(Clone)]
struct Entry {
    version: u64,
    effective_from: Timestamp,
    catalogue: Arc<Catalogue>,
}

/// Published catalogue versions, sorted by effective date (then version number).
#[derive(Clone, Default)]
pub struct Timeline {
    entries: Vec<Entry>,
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|e| (e.version, e.effective_from, e.catalogue.name.as_str())),
            )
            .finish()
    }
}

impl Timeline {
    /// A timeline of one catalogue: version 1, in force from the Unix epoch.
    pub fn single(catalogue: Arc<Catalogue>) -> Timeline {
        Timeline::new(vec![(1, Timestamp::UNIX_EPOCH, catalogue)])
    }

    /// A timeline of `(version, effective_from, catalogue)`, in any order. A version number
    /// given twice keeps its last occurrence.
    pub fn new(versions: Vec<(u64, Timestamp, Arc<Catalogue>)>) -> Timeline {
        let mut entries: Vec<Entry> = Vec::with_capacity(versions.len());
        for (version, effective_from, catalogue) in versions {
            entries.retain(|e| e.version != version);
            entries.push(Entry {
                version,
                effective_from,
                catalogue,
            });
        }
        entries.sort_by_key(|e| (e.effective_from, e.version));
        Timeline { entries }
    }

    /// A new timeline with one more version (replacing one with the same number, if any).
    pub fn with(
        &self,
        version: u64,
        effective_from: Timestamp,
        catalogue: Arc<Catalogue>,
    ) -> Timeline {
        let mut versions: Vec<_> = self.versions().map(|(v, t, c)| (v, t, c.clone())).collect();
        versions.push((version, effective_from, catalogue));
        Timeline::new(versions)
    }

    /// The version in force at `ts`: the latest `effective_from` at or before it (on equal
    /// dates the higher version). `None` when `ts` is before every version.
    pub fn at(&self, ts: Timestamp) -> Option<(u64, &Arc<Catalogue>)> {
        let after = self.entries.partition_point(|e| e.effective_from <= ts);
        let entry = self.entries.get(after.checked_sub(1)?)?;
        Some((entry.version, &entry.catalogue))
    }

    /// The version in force now (what balance views and top-ups use).
    pub fn latest_in_force(&self, now: Timestamp) -> Option<(u64, &Arc<Catalogue>)> {
        self.at(now)
    }

    /// The version in force now, else the earliest one (all are still to come); `None` only
    /// when the timeline is empty.
    pub fn in_force_or_first(&self, now: Timestamp) -> Option<(u64, &Arc<Catalogue>)> {
        self.at(now).or_else(|| {
            self.entries
                .first()
                .map(|entry| (entry.version, &entry.catalogue))
        })
    }

    /// The earliest effective date, if any version exists.
    pub fn first_effective(&self) -> Option<Timestamp> {
        self.entries.first().map(|e| e.effective_from)
    }

    /// Versions in effective-date order: `(version, effective_from, catalogue)`.
    pub fn versions(&self) -> impl Iterator<Item = (u64, Timestamp, &Arc<Catalogue>)> + '_ {
        self.entries
            .iter()
            .map(|e| (e.version, e.effective_from, &e.catalogue))
    }

    /// Number of versions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no version.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn catalogue(name: &str) -> Arc<Catalogue> {
        let text = format!("[catalogue]\nname = \"{name}\"\ncurrency = \"EUR\"\n");
        Arc::new(Catalogue::from_toml(&text, "t.toml", &mut |_| Err(String::new())).unwrap())
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_record_picks_the_version_in_force_at_its_time() {
        let t = Timeline::single(catalogue("one"));
        assert_eq!(t.at(ts("1969-12-31T23:59:59Z")).map(|(v, _)| v), None);
        assert_eq!(t.at(Timestamp::UNIX_EPOCH).map(|(v, _)| v), Some(1));
        let t = t.with(2, ts("2026-04-01T00:00:00Z"), catalogue("two"));
        let t = t.with(3, ts("2026-03-01T00:00:00Z"), catalogue("three"));
        let at = |s: &str| t.at(ts(s)).map(|(v, c)| (v, c.name.to_string()));
        assert_eq!(at("2026-02-28T23:59:59Z"), Some((1, "one".into())));
        assert_eq!(at("2026-03-01T00:00:00Z"), Some((3, "three".into())));
        assert_eq!(at("2026-03-31T23:59:59Z"), Some((3, "three".into())));
        assert_eq!(at("2026-04-01T00:00:00Z"), Some((2, "two".into())));
        assert_eq!(
            t.versions().map(|(v, _, _)| v).collect::<Vec<_>>(),
            vec![1, 3, 2]
        );
        assert_eq!(t.latest_in_force(ts("2030-01-01T00:00:00Z")).unwrap().0, 2);
    }

    #[test]
    fn ties_go_to_the_higher_version_and_numbers_are_unique() {
        let day = ts("2026-05-01T00:00:00Z");
        let t = Timeline::new(vec![
            (5, day, catalogue("five")),
            (4, day, catalogue("four")),
            (4, ts("2026-06-01T00:00:00Z"), catalogue("four-again")),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.at(day).unwrap().0, 5);
        assert_eq!(t.at(ts("2026-06-01T00:00:00Z")).unwrap().0, 4);
        assert_eq!(t.at(ts("2026-04-30T00:00:00Z")).map(|(v, _)| v), None);
        assert_eq!(
            t.in_force_or_first(ts("2026-04-30T00:00:00Z")).unwrap().0,
            5
        );
        assert!(Timeline::default().in_force_or_first(day).is_none());
    }

    proptest! {
        #[test]
        fn at_agrees_with_a_linear_scan(
            versions in proptest::collection::vec((1u64..20, 0i64..50), 0..12),
            probes in proptest::collection::vec(-5i64..60, 1..20),
        ) {
            let shared = catalogue("p");
            let list: Vec<_> = versions
                .iter()
                .map(|&(v, s)| (v, Timestamp::from_second(s).unwrap(), shared.clone()))
                .collect();
            let t = Timeline::new(list);
            // Expected: the last occurrence of each version number, then a linear scan.
            let mut last: std::collections::HashMap<u64, i64> = Default::default();
            for &(v, s) in &versions {
                last.insert(v, s);
            }
            prop_assert_eq!(t.len(), last.len());
            for p in probes {
                let expected = last
                    .iter()
                    .filter(|&(_, &s)| s <= p)
                    .max_by_key(|&(&v, &s)| (s, v))
                    .map(|(&v, _)| v);
                let got = t.at(Timestamp::from_second(p).unwrap()).map(|(v, _)| v);
                prop_assert_eq!(got, expected);
            }
            let order: Vec<(i64, u64)> =
                t.versions().map(|(v, at, _)| (at.as_second(), v)).collect();
            let mut sorted = order.clone();
            sorted.sort();
            prop_assert_eq!(order, sorted);
        }
    }
}
