//! What a subscriber actor puts into a partner's inbox with the charge of a record the partner
//! shares (see [`crate::ledger::PartnerInboxRow`]): the facts settlement needs, time-zone free.
//! The partner actor turns it into a [`RatedRecord`] in the settlement time zone and shares it
//! under the agreement in force.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::share::RatedRecord;
use crate::ids::CdrId;
use crate::money::Money;
use crate::rating::Rating;

/// One rated record in a partner's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRecord {
    /// Record id (the position's idempotency key).
    pub cdr_id: CdrId,
    /// Product that rated it.
    pub product: SmolStr,
    /// Service.
    pub service: SmolStr,
    /// Start of the usage.
    pub start: Timestamp,
    /// Charged units.
    pub units: u64,
    /// The record's charge (net revenue).
    pub revenue: Money,
    /// The share the catalogue's product rule gave this partner when rating (for reference:
    /// the agreement decides what is settled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalogue_share: Option<Money>,
    /// The reversal of an earlier charge (rerating): `revenue` and `units` are those of the
    /// charge reversed; its share is taken off the position.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reversal: bool,
}

impl InboxRecord {
    /// The record of `rating` (of a usage that started at `start`) for the partners its
    /// product shares with, one per partner: `(partner, record)`.
    pub fn of_rating(
        rating: &Rating,
        start: Timestamp,
    ) -> Vec<(crate::ids::PartnerId, InboxRecord)> {
        let mut out: Vec<(crate::ids::PartnerId, InboxRecord)> = Vec::new();
        for share in &rating.partner_shares {
            if out.iter().any(|(p, _)| *p == share.partner) {
                continue;
            }
            out.push((
                share.partner.clone(),
                InboxRecord {
                    cdr_id: rating.cdr_id.clone(),
                    product: rating.product.clone(),
                    service: rating.service.clone(),
                    start,
                    units: rating.charged_units,
                    revenue: rating.charge,
                    catalogue_share: Some(share.amount),
                    reversal: false,
                },
            ));
        }
        out
    }

    /// The record as settlement shares it: its start day in `tz`.
    pub fn rated(&self, tz: &TimeZone) -> RatedRecord {
        RatedRecord {
            cdr_id: self.cdr_id.clone(),
            product: self.product.clone(),
            service: self.service.clone(),
            start: self.start.to_zoned(tz.clone()).date(),
            units: self.units,
            revenue: self.revenue,
            reversal: self.reversal,
        }
    }

    /// The records of a rerated charge for its partners: for each partner of the old charge,
    /// the reversal of the old charge (item `<cdr>~<job>~rev`), and for each partner of the new
    /// rating, the new charge (item `<cdr>~<job>`). `(partner, item key, record)`.
    pub fn of_rerate(
        old: &OldCharge,
        new: &Rating,
        start: Timestamp,
        job: &str,
    ) -> Vec<(crate::ids::PartnerId, SmolStr, InboxRecord)> {
        let cdr = new.cdr_id.as_str();
        let mut out = Vec::new();
        let reversal = smol_str::format_smolstr!("{cdr}~{job}~rev");
        let mut seen: Vec<&crate::ids::PartnerId> = Vec::new();
        for partner in &old.partners {
            if seen.contains(&partner) {
                continue;
            }
            seen.push(partner);
            out.push((
                partner.clone(),
                reversal.clone(),
                InboxRecord {
                    cdr_id: CdrId::new(reversal.as_str()),
                    product: old.product.clone(),
                    service: old.service.clone(),
                    start,
                    units: old.units,
                    revenue: old.charge,
                    catalogue_share: None,
                    reversal: true,
                },
            ));
        }
        let charge = smol_str::format_smolstr!("{cdr}~{job}");
        for (partner, mut record) in InboxRecord::of_rating(new, start) {
            record.cdr_id = CdrId::new(charge.as_str());
            out.push((partner, charge.clone(), record));
        }
        out
    }
}

/// What a rerated record's previous charge was, for its partners' reversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldCharge {
    /// Product that rated it.
    pub product: SmolStr,
    /// Service.
    pub service: SmolStr,
    /// Charged units.
    pub units: u64,
    /// The charge.
    pub charge: Money,
    /// Partners it was shared with.
    pub partners: Vec<crate::ids::PartnerId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn a_record_takes_its_start_day_in_the_settlement_time_zone() {
        let record = InboxRecord {
            cdr_id: CdrId::new("c1"),
            product: "voice-pp".into(),
            service: "voice".into(),
            // 2026-03-31 23:30 UTC is 2026-04-01 in Berlin.
            start: "2026-03-31T23:30:00Z".parse().unwrap(),
            units: 60,
            revenue: Money::new(rust_decimal::Decimal::new(12, 2), Currency::EUR),
            catalogue_share: None,
            reversal: false,
        };
        let utc = record.rated(&TimeZone::UTC);
        assert_eq!(utc.start, jiff::civil::date(2026, 3, 31));
        let berlin = record.rated(&TimeZone::get("Europe/Berlin").unwrap());
        assert_eq!(berlin.start, jiff::civil::date(2026, 4, 1));
        let json = serde_json::to_vec(&record).unwrap();
        assert_eq!(
            serde_json::from_slice::<InboxRecord>(&json).unwrap(),
            record
        );
    }
}
