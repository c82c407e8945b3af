//! Usage for invoices: the rated usage records a subscriber's ledger keeps, summarised per
//! service over a billing period.
//!
//! A record can be stored several times (its first rating, then one row per rerate); the
//! newest row is its current charge, so the summary takes the newest row of each record. A
//! record belongs to the period its usage *started* in (the CDR's start time), whatever day it
//! was rated or rerated, so late records and rerates land on the invoice of the period they
//! describe (closed periods are the financial-period step's business).

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;
use smol_str::SmolStr;

use super::error::BillingError;
use super::invoice::UsageSummary;
use crate::ids::AccountId;
use crate::money::{Currency, Money};

/// The fields of a stored usage record that billing reads (the ledger stores more).
#[derive(Debug, Clone, Deserialize)]
pub struct UsageRow {
    /// The record id.
    pub cdr_id: SmolStr,
    /// Service (`voice`, `sms`, `data`).
    pub service: SmolStr,
    /// The charge.
    pub charge: Money,
    /// Units used.
    #[serde(default)]
    pub units: u64,
    /// The usage record; older rows may lack it.
    #[serde(default)]
    pub cdr: Option<UsageStart>,
}

/// When a record's usage started.
#[derive(Debug, Clone, Deserialize)]
pub struct UsageStart {
    /// Start of the usage.
    pub start: Timestamp,
}

/// Summaries per service of the records that started in `[from, to)`, given a subscriber's
/// stored rows **newest first** (as the ledger returns them), in `currency`.
///
/// Rows that cannot be read or have no start time are counted in the second value: they are
/// not billed, and the caller must report them (never drop them silently).
pub fn summarize_usage<'a>(
    rows_newest_first: impl IntoIterator<Item = &'a [u8]>,
    from: Timestamp,
    to: Timestamp,
    account: &AccountId,
    currency: Currency,
) -> Result<(Vec<UsageSummary>, u64), BillingError> {
    let mut seen: HashSet<SmolStr> = HashSet::new();
    let mut unreadable = 0u64;
    let mut by_service: BTreeMap<SmolStr, (u64, Decimal, Money)> = BTreeMap::new();
    for bytes in rows_newest_first {
        let Ok(row) = serde_json::from_slice::<UsageRow>(bytes) else {
            unreadable += 1;
            continue;
        };
        if !seen.insert(row.cdr_id.clone()) {
            continue; // an older rating of a record already counted
        }
        let Some(start) = row.cdr.as_ref().map(|c| c.start) else {
            unreadable += 1;
            continue;
        };
        if start < from || start >= to {
            continue;
        }
        if row.charge.currency != currency {
            return Err(BillingError::CurrencyMismatch {
                account: account.clone(),
                expected: currency,
                found: row.charge.currency,
            });
        }
        let slot = by_service.entry(row.service.clone()).or_insert((
            0,
            Decimal::ZERO,
            Money::zero(currency),
        ));
        slot.0 += 1;
        slot.1 += Decimal::from(row.units);
        slot.2 = slot.2.checked_add(row.charge)?;
    }
    let summaries = by_service
        .into_iter()
        .map(|(service, (events, quantity, amount))| UsageSummary {
            service,
            events,
            quantity,
            amount,
            tax_category: SmolStr::new("usage"),
        })
        .collect();
    Ok((summaries, unreadable))
}

/// Adds `more` into `into`, service by service (several subscribers of one account).
pub fn merge_usage(
    into: &mut Vec<UsageSummary>,
    more: Vec<UsageSummary>,
) -> Result<(), BillingError> {
    for m in more {
        match into.iter_mut().find(|u| u.service == m.service) {
            Some(u) => {
                u.events += m.events;
                u.quantity += m.quantity;
                u.amount = u.amount.checked_add(m.amount)?;
            }
            None => into.push(m),
        }
    }
    into.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn eur() -> Currency {
        Currency::from_code("EUR").unwrap()
    }

    fn row(id: &str, service: &str, charge: &str, units: u64, start: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "cdr_id": id, "service": service, "units": units,
            "charge": {"amount": charge, "currency": "EUR"},
            "cdr": {"start": start, "id": id},
            "extra": "ignored",
        }))
        .unwrap()
    }

    #[test]
    fn newest_row_of_a_record_counts_once_and_the_period_is_by_start_time() {
        // Newest first: c1 was rerated to 0.30 (its old 0.50 row is older and ignored).
        let rows = [
            row("c1", "voice", "0.30", 60, "2026-10-31T23:59:59Z"),
            row("c2", "sms", "0.05", 1, "2026-10-02T10:00:00Z"),
            row("c1", "voice", "0.50", 60, "2026-10-31T23:59:59Z"),
            row("c3", "voice", "1.25", 120, "2026-10-01T00:00:00Z"),
            row("c4", "voice", "9.99", 10, "2026-11-01T00:00:00Z"), // next period
            row("c0", "voice", "9.99", 10, "2026-09-30T23:59:59Z"), // previous period
            b"not json".to_vec(),
        ];
        let (summary, unreadable) = summarize_usage(
            rows.iter().map(Vec::as_slice),
            "2026-10-01T00:00:00Z".parse().unwrap(),
            "2026-11-01T00:00:00Z".parse().unwrap(),
            &AccountId::new("a1"),
            eur(),
        )
        .unwrap();
        assert_eq!(unreadable, 1);
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].service, "sms");
        assert_eq!(
            (summary[0].events, summary[0].amount.amount),
            (1, dec!(0.05))
        );
        // voice: c1 0.30 + c3 1.25 = 1.55 over 60 + 120 = 180 s.
        assert_eq!(summary[1].service, "voice");
        assert_eq!(
            (
                summary[1].events,
                summary[1].quantity,
                summary[1].amount.amount
            ),
            (2, dec!(180), dec!(1.55))
        );
    }

    #[test]
    fn merging_adds_per_service() {
        let a = |s: &str, n: u64, amount| UsageSummary {
            service: s.into(),
            events: n,
            quantity: Decimal::from(n),
            amount: Money::new(amount, eur()),
            tax_category: "usage".into(),
        };
        let mut all = vec![a("voice", 2, dec!(1.5))];
        merge_usage(
            &mut all,
            vec![a("sms", 1, dec!(0.05)), a("voice", 1, dec!(0.5))],
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[1].events, all[1].amount.amount), (3, dec!(2.0)));
    }
}
