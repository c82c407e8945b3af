//! Period counters: units (and provisional amounts) accumulated per counter and period, read by
//! tiers, allowances, cumulated rating and `period.units` conditions.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use smol_str::SmolStr;

/// Identifies a counter in a period, e.g. (`allowance:national-100`, `2026-03`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterKey {
    /// Counter name (`tier:...`, `raw:...`, `allowance:...`).
    pub name: SmolStr,
    /// Period key (`2026-03`, `2026-W09`...).
    pub period: SmolStr,
}

/// A counter's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterValue {
    /// Units counted.
    pub units: u64,
    /// Amount counted (provisional charges of volume-priced rules).
    pub amount: Decimal,
}

/// A change that rating asks for; the caller applies it together with the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterUpdate {
    /// Counter.
    pub key: CounterKey,
    /// Units to add.
    pub units: u64,
    /// Amount to add.
    pub amount: Decimal,
}

/// A subscriber's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    map: HashMap<CounterKey, CounterValue>,
}

impl Counters {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of a counter (zero when never counted).
    pub fn get(&self, key: &CounterKey) -> CounterValue {
        self.map.get(key).copied().unwrap_or_default()
    }

    /// Applies updates.
    pub fn apply(&mut self, updates: &[CounterUpdate]) {
        for u in updates {
            let v = self.map.entry(u.key.clone()).or_default();
            v.units = v.units.saturating_add(u.units);
            v.amount += u.amount;
        }
    }

    /// Takes updates back out (rerating replays the records it rates again); never below zero.
    pub fn remove(&mut self, updates: &[CounterUpdate]) {
        for u in updates {
            if let Some(v) = self.map.get_mut(&u.key) {
                v.units = v.units.saturating_sub(u.units);
                v.amount -= u.amount;
                if v.amount.is_sign_negative() {
                    v.amount = Decimal::ZERO;
                }
            }
        }
    }

    /// Sets a counter (when loading from storage).
    pub fn set(&mut self, key: CounterKey, value: CounterValue) {
        self.map.insert(key, value);
    }

    /// All counters.
    pub fn iter(&self) -> impl Iterator<Item = (&CounterKey, &CounterValue)> {
        self.map.iter()
    }
}

/// Counters plus the updates of the record being rated (legs of one call see each other).
pub(crate) struct CounterView<'a> {
    base: &'a Counters,
    pub(crate) pending: SmallVec<[CounterUpdate; 2]>,
}

impl<'a> CounterView<'a> {
    pub(crate) fn new(base: &'a Counters) -> Self {
        CounterView {
            base,
            pending: SmallVec::new(),
        }
    }

    pub(crate) fn get(&self, key: &CounterKey) -> CounterValue {
        let mut v = self.base.get(key);
        for u in self.pending.iter().filter(|u| u.key == *key) {
            v.units = v.units.saturating_add(u.units);
            v.amount += u.amount;
        }
        v
    }

    pub(crate) fn add(&mut self, key: CounterKey, units: u64, amount: Decimal) {
        if units == 0 && amount.is_zero() {
            return;
        }
        match self.pending.iter_mut().find(|u| u.key == key) {
            Some(u) => {
                u.units = u.units.saturating_add(units);
                u.amount += amount;
            }
            None => self.pending.push(CounterUpdate { key, units, amount }),
        }
    }
}
