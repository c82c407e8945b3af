//! Rerating: the records of a time range rated again with the catalogue version in force at
//! each record's start, after a price change (a backdated correction, a customer data fix).
//! Pure: the caller turns changed lines into ledger entries (a reversal of the old charge and
//! the new charge, never an edit) and makes them durable.
//!
//! Period counters (tiers, free units) are replayed: the counters the records used are taken
//! out of the current counters, then the records are rated again in start order, each seeing
//! the counts of the ones before it. Records outside the range keep the counts they added.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::{CounterUpdate, Counters, Rating, rate};
use crate::catalogue::Timeline;
use crate::cdr::Cdr;
use crate::money::Money;
use crate::subscriber::SubscriberProfile;

/// A record as it is charged now: the record, its current charge and what it counted.
#[derive(Debug, Clone)]
pub struct ChargedRecord {
    /// The record.
    pub cdr: Cdr,
    /// Its current charge.
    pub charge: Money,
    /// The catalogue version of the current charge.
    pub catalogue_version: u64,
    /// The counter updates of the current charge.
    pub counter_updates: Vec<CounterUpdate>,
}

/// One record whose charge changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerateLine {
    /// Record id.
    pub cdr_id: SmolStr,
    /// Service (`voice`, `sms`, ...); empty in reports stored before it was recorded.
    #[serde(default)]
    pub service: SmolStr,
    /// Start of the usage.
    pub start: Timestamp,
    /// Charge before.
    pub old_charge: Money,
    /// Charge now.
    pub new_charge: Money,
    /// Version that priced it before.
    pub old_version: u64,
    /// Version that prices it now.
    pub new_version: u64,
    /// `old_charge - new_charge`: positive when the customer is credited.
    pub credit: Decimal,
}

/// A record that could not be rated again: it keeps its charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerateFailure {
    /// Record id.
    pub cdr_id: SmolStr,
    /// Reason code.
    pub reason: SmolStr,
    /// Message.
    pub message: String,
}

/// What rerating a subscriber's records gives.
#[derive(Debug, Clone)]
pub struct RerateResult {
    /// Records whose charge changed, in start order, with their new rating.
    pub changed: Vec<(RerateLine, Rating)>,
    /// Records rated again to the same charge.
    pub unchanged: usize,
    /// Records that could not be rated again.
    pub failed: Vec<RerateFailure>,
    /// The counters after the replay.
    pub counters: Counters,
}

/// Rates `records` again. `counters` are the subscriber's current counters (which include
/// what `records` counted).
pub fn rerate(
    timeline: &Timeline,
    profile: &SubscriberProfile,
    counters: &Counters,
    mut records: Vec<ChargedRecord>,
) -> RerateResult {
    records.sort_by(|a, b| (a.cdr.start, &a.cdr.id).cmp(&(b.cdr.start, &b.cdr.id)));
    let mut counters = counters.clone();
    for r in &records {
        counters.remove(&r.counter_updates);
    }
    let mut result = RerateResult {
        changed: Vec::new(),
        unchanged: 0,
        failed: Vec::new(),
        counters: Counters::new(),
    };
    for r in records {
        let rated = timeline
            .at(r.cdr.start)
            .ok_or(super::RatingError::NoCatalogueVersion(r.cdr.start))
            .and_then(|(version, catalogue)| {
                rate(catalogue, profile, &r.cdr, &counters).map(|rating| (version, rating))
            });
        match rated {
            Ok((version, rating)) if rating.charge.currency == r.charge.currency => {
                counters.apply(&rating.counter_updates);
                if rating.charge.amount == r.charge.amount {
                    result.unchanged += 1;
                    continue;
                }
                let line = RerateLine {
                    cdr_id: SmolStr::new(r.cdr.id.as_str()),
                    service: r.cdr.service.clone(),
                    start: r.cdr.start,
                    old_charge: r.charge,
                    new_charge: rating.charge,
                    old_version: r.catalogue_version,
                    new_version: version,
                    credit: r.charge.amount - rating.charge.amount,
                };
                result.changed.push((line, rating));
            }
            Ok((_, rating)) => {
                // A currency change is not a price change: keep the charge and say why.
                counters.apply(&r.counter_updates);
                result.failed.push(RerateFailure {
                    cdr_id: SmolStr::new(r.cdr.id.as_str()),
                    reason: "rerate.currency_changed".into(),
                    message: format!(
                        "charged in {}, now priced in {}",
                        r.charge.currency.code(),
                        rating.charge.currency.code()
                    ),
                });
            }
            Err(e) => {
                counters.apply(&r.counter_updates);
                result.failed.push(RerateFailure {
                    cdr_id: SmolStr::new(r.cdr.id.as_str()),
                    reason: SmolStr::new(e.code()),
                    message: e.to_string(),
                });
            }
        }
    }
    result.counters = counters;
    result
}
