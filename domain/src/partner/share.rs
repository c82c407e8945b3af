//! The share of one rated record, and a partner's position for a settlement period.
//!
//! Rounding rule: a record's share is **exact** (`rust_decimal`, never rounded here). Shares
//! are accumulated unrounded per (partner, period, target) in a [`Position`], and each
//! statement line is rounded once, half-up to the currency's minor units, when the statement
//! is built ([`super::statement`]). So 30 % of 1,234.56 is 370.368 in the position and 370.37
//! on the statement, however many records it took to get there.
//!
//! Idempotency: the **position** dedupes. It keeps the set of record ids (and invoice ids)
//! already counted; a redelivered record is answered [`Accumulated::Duplicate`] and changes
//! nothing. A record that no rule shares is not remembered: redelivering it gives the same
//! answer ([`Accumulated::NotShared`]) anyway.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::{SmolStr, format_smolstr};

use super::agreement::{Agreement, ShareRule, ShareTarget, ShareValue};
use super::error::PartnerError;
use crate::billing::Period;
use crate::ids::{CdrId, PartnerId};
use crate::money::{Currency, Money, MoneyError};

/// One rated record as settlement needs it (built by the caller from a rating and its CDR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatedRecord {
    /// Record id (the idempotency key).
    pub cdr_id: CdrId,
    /// Product that rated it.
    pub product: SmolStr,
    /// Service.
    pub service: SmolStr,
    /// Day the usage started, in the settlement time zone: picks the agreement version.
    pub start: Date,
    /// Charged units (seconds, messages, bytes).
    pub units: u64,
    /// Net revenue of the record (its rated charge).
    pub revenue: Money,
    /// The reversal of an earlier charge of the record (rerating): its share is taken off the
    /// position (`revenue` and `units` are those of the charge reversed, positive).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reversal: bool,
}

/// An invoice total for [`ShareTarget::InvoiceTotal`] rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceTotal {
    /// Invoice number (the idempotency key).
    pub invoice: SmolStr,
    /// Issue date: picks the period and the agreement version.
    pub issued: Date,
    /// Net total the agreement shares (before tax).
    pub amount: Money,
}

/// The share of one record or invoice, exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemShare {
    /// Record id or invoice number.
    pub item: SmolStr,
    /// Statement line it goes to.
    pub target: ShareTarget,
    /// Start of the agreement version applied.
    pub version: Date,
    /// Units (0 for invoices).
    pub units: u64,
    /// Revenue shared.
    pub base: Money,
    /// The share, unrounded.
    pub share: Money,
    /// `30%`, `0.002 per 60 units`, `0.01 per event`.
    pub basis: SmolStr,
    /// A reversal (rerating): `base` and `share` are negative and the line loses one record and
    /// `units`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reversal: bool,
}

fn apply(rule: &ShareRule, base: Money, units: u64) -> Result<(Money, SmolStr), MoneyError> {
    let currency = base.currency;
    let (amount, basis) = match rule.value {
        ShareValue::Percent(p) => (
            base.amount
                .checked_mul(p)
                .and_then(|a| a.checked_div(Decimal::ONE_HUNDRED)),
            format_smolstr!("{p}%"),
        ),
        ShareValue::PerUnit { amount, unit } => (
            amount
                .checked_mul(Decimal::from(units))
                .and_then(|a| a.checked_div(Decimal::from(unit))),
            format_smolstr!("{amount} per {unit} units"),
        ),
        ShareValue::PerEvent(amount) => (Some(amount), format_smolstr!("{amount} per event")),
    };
    let amount = amount.ok_or(MoneyError::Overflow)?;
    Ok((Money::new(amount, currency), basis))
}

fn same_currency(agreement: &Agreement, money: Money) -> Result<(), PartnerError> {
    if money.currency == agreement.currency {
        Ok(())
    } else {
        Err(PartnerError::CurrencyMismatch {
            given: money.currency,
            expected: agreement.currency,
        })
    }
}

/// The share of `record` under the version in force on its start day: by its product's rule,
/// else by its service's rule, else none (`Ok(None)`).
pub fn share_of(
    agreement: &Agreement,
    record: &RatedRecord,
) -> Result<Option<ItemShare>, PartnerError> {
    same_currency(agreement, record.revenue)?;
    let version = agreement
        .version_at(record.start)
        .ok_or_else(|| PartnerError::NotInForce {
            agreement: agreement.id.clone(),
            day: record.start,
        })?;
    let rule = version
        .rule(&ShareTarget::Product(record.product.clone()))
        .or_else(|| version.rule(&ShareTarget::Service(record.service.clone())));
    let Some(rule) = rule else {
        return Ok(None);
    };
    let (share, basis) = apply(rule, record.revenue, record.units)?;
    let (base, share) = if record.reversal {
        (
            Money::new(-record.revenue.amount, record.revenue.currency),
            Money::new(-share.amount, share.currency),
        )
    } else {
        (record.revenue, share)
    };
    Ok(Some(ItemShare {
        item: record.cdr_id.0.clone(),
        target: rule.target.clone(),
        version: version.valid_from,
        units: record.units,
        base,
        share,
        basis,
        reversal: record.reversal,
    }))
}

/// The share of one invoice total under the version in force on its issue date, if that
/// version has an [`ShareTarget::InvoiceTotal`] rule.
pub fn invoice_share(
    agreement: &Agreement,
    invoice: &InvoiceTotal,
) -> Result<Option<ItemShare>, PartnerError> {
    same_currency(agreement, invoice.amount)?;
    let version = agreement
        .version_at(invoice.issued)
        .ok_or_else(|| PartnerError::NotInForce {
            agreement: agreement.id.clone(),
            day: invoice.issued,
        })?;
    let Some(rule) = version.rule(&ShareTarget::InvoiceTotal) else {
        return Ok(None);
    };
    let (share, basis) = apply(rule, invoice.amount, 0)?;
    Ok(Some(ItemShare {
        item: invoice.invoice.clone(),
        target: ShareTarget::InvoiceTotal,
        version: version.valid_from,
        units: 0,
        base: invoice.amount,
        share,
        basis,
        reversal: false,
    }))
}

/// Exact totals of one statement line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineTotals {
    /// Records (or invoices) counted.
    pub records: u64,
    /// Units.
    pub units: u64,
    /// Revenue shared, unrounded.
    pub base: Decimal,
    /// Share, unrounded.
    pub share: Decimal,
}

/// `BTreeMap<ShareTarget, LineTotals>` as a sequence of pairs.
mod line_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{LineTotals, ShareTarget};

    pub fn serialize<S: Serializer>(
        lines: &BTreeMap<ShareTarget, LineTotals>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(&ShareTarget, &LineTotals)> = lines.iter().collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ShareTarget, LineTotals>, D::Error> {
        let pairs: Vec<(ShareTarget, LineTotals)> = Vec::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

/// What accumulating one item did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accumulated {
    /// Counted now, with its share.
    Counted(ItemShare),
    /// Counted before: nothing changed.
    Duplicate,
    /// No rule of the version in force shares it.
    NotShared,
}

/// A partner's running position under one agreement for one settlement period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Partner.
    pub partner: PartnerId,
    /// Agreement.
    pub agreement: SmolStr,
    /// Settlement period.
    pub period: Period,
    /// Currency.
    pub currency: Currency,
    /// Exact totals per statement line (stored as a list of `[target, totals]` pairs: a
    /// target is not a JSON object key).
    #[serde(with = "line_pairs")]
    pub lines: BTreeMap<ShareTarget, LineTotals>,
    /// Items (records, reversals and invoices) counted so far; it only grows, and the stores
    /// check a replacement against the count read.
    #[serde(default)]
    pub counted: u64,
    /// Record ids counted while this value was in memory. The stores do not keep them: the
    /// durable dedupe index is the item-share row of every counted item
    /// ([`super::store::PartnerStore::item_share`]).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub counted_records: BTreeSet<CdrId>,
    /// Invoice numbers counted while this value was in memory (see `counted_records`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub counted_invoices: BTreeSet<SmolStr>,
}

impl Position {
    /// An empty position.
    pub fn new(agreement: &Agreement, period: Period) -> Position {
        Position {
            partner: agreement.partner.clone(),
            agreement: agreement.id.clone(),
            period,
            currency: agreement.currency,
            lines: BTreeMap::new(),
            counted: 0,
            counted_records: BTreeSet::new(),
            counted_invoices: BTreeSet::new(),
        }
    }

    /// The position as stored: without the ids counted in memory.
    pub fn stored(&self) -> Position {
        Position {
            counted_records: BTreeSet::new(),
            counted_invoices: BTreeSet::new(),
            ..self.clone()
        }
    }

    fn check(&self, agreement: &Agreement, item: &str, day: Date) -> Result<(), PartnerError> {
        let outside = |message: String| PartnerError::OutsidePosition {
            item: SmolStr::new(item),
            message,
        };
        if agreement.id != self.agreement {
            return Err(outside(format!(
                "agreement {} is not {}",
                agreement.id, self.agreement
            )));
        }
        if !self.period.contains(day) {
            return Err(outside(format!(
                "{day} is outside {}..{}",
                self.period.start, self.period.end
            )));
        }
        Ok(())
    }

    fn add(&mut self, share: &ItemShare) -> Result<(), PartnerError> {
        let line = self.lines.get(&share.target).copied().unwrap_or_default();
        let overflow = || PartnerError::Money(MoneyError::Overflow);
        let (records, units) = if share.reversal {
            let more = || PartnerError::OutsidePosition {
                item: share.item.clone(),
                message: format!("reverses more than line {} holds", share.target),
            };
            (
                line.records.checked_sub(1).ok_or_else(more)?,
                line.units.checked_sub(share.units).ok_or_else(more)?,
            )
        } else {
            (
                line.records.checked_add(1).ok_or_else(overflow)?,
                line.units.checked_add(share.units).ok_or_else(overflow)?,
            )
        };
        let next = LineTotals {
            records,
            units,
            base: line
                .base
                .checked_add(share.base.amount)
                .ok_or_else(overflow)?,
            share: line
                .share
                .checked_add(share.share.amount)
                .ok_or_else(overflow)?,
        };
        self.lines.insert(share.target.clone(), next);
        Ok(())
    }

    /// Counts one record once; a record counted before is a no-op answered `Duplicate`.
    pub fn accumulate(
        &mut self,
        agreement: &Agreement,
        record: &RatedRecord,
    ) -> Result<Accumulated, PartnerError> {
        if self.counted_records.contains(&record.cdr_id) {
            return Ok(Accumulated::Duplicate);
        }
        self.check(agreement, record.cdr_id.as_str(), record.start)?;
        let Some(share) = share_of(agreement, record)? else {
            return Ok(Accumulated::NotShared);
        };
        self.add(&share)?;
        self.counted += 1;
        self.counted_records.insert(record.cdr_id.clone());
        Ok(Accumulated::Counted(share))
    }

    /// Counts a record of an earlier period whose statement was already issued into this later
    /// position (so it is settled with this period, once): shared under the version in force
    /// on the record's own day. A record counted before is a no-op answered `Duplicate`.
    pub fn accumulate_late(
        &mut self,
        agreement: &Agreement,
        record: &RatedRecord,
    ) -> Result<Accumulated, PartnerError> {
        if self.counted_records.contains(&record.cdr_id) {
            return Ok(Accumulated::Duplicate);
        }
        let outside = |message: String| PartnerError::OutsidePosition {
            item: record.cdr_id.0.clone(),
            message,
        };
        if agreement.id != self.agreement {
            return Err(outside(format!(
                "agreement {} is not {}",
                agreement.id, self.agreement
            )));
        }
        if record.start >= self.period.start {
            return Err(outside(format!(
                "{} is not before {}: not a late record",
                record.start, self.period.start
            )));
        }
        let Some(share) = share_of(agreement, record)? else {
            return Ok(Accumulated::NotShared);
        };
        self.add(&share)?;
        self.counted += 1;
        self.counted_records.insert(record.cdr_id.clone());
        Ok(Accumulated::Counted(share))
    }

    /// Counts a batch all or nothing: every record is checked before any is counted.
    pub fn accumulate_all(
        &mut self,
        agreement: &Agreement,
        records: &[RatedRecord],
    ) -> Result<Vec<Accumulated>, PartnerError> {
        for record in records {
            if !self.counted_records.contains(&record.cdr_id) {
                self.check(agreement, record.cdr_id.as_str(), record.start)?;
                share_of(agreement, record)?;
            }
        }
        // Totals only overflow past 28 digits; then nothing is kept.
        let before = self.lines.clone();
        let mut outcomes = Vec::with_capacity(records.len());
        let mut added = Vec::new();
        for record in records {
            match self.accumulate(agreement, record) {
                Ok(outcome) => {
                    if matches!(outcome, Accumulated::Counted(_)) {
                        added.push(record.cdr_id.clone());
                    }
                    outcomes.push(outcome);
                }
                Err(err) => {
                    self.lines = before;
                    self.counted -= added.len() as u64;
                    for id in &added {
                        self.counted_records.remove(id);
                    }
                    return Err(err);
                }
            }
        }
        Ok(outcomes)
    }

    /// Counts invoice totals for the month's [`ShareTarget::InvoiceTotal`] line, in batch and
    /// all or nothing, once per invoice number.
    pub fn accumulate_invoices(
        &mut self,
        agreement: &Agreement,
        invoices: &[InvoiceTotal],
    ) -> Result<Vec<Accumulated>, PartnerError> {
        let mut shares = Vec::with_capacity(invoices.len());
        let mut batch = BTreeSet::new();
        for invoice in invoices {
            if self.counted_invoices.contains(&invoice.invoice) || !batch.insert(&invoice.invoice) {
                shares.push(None);
                continue;
            }
            self.check(agreement, &invoice.invoice, invoice.issued)?;
            shares.push(Some(invoice_share(agreement, invoice)?));
        }
        let before = self.lines.clone();
        let mut outcomes = Vec::with_capacity(invoices.len());
        for share in shares {
            let outcome = match share {
                None => Accumulated::Duplicate,
                Some(None) => Accumulated::NotShared,
                Some(Some(share)) => {
                    if let Err(err) = self.add(&share) {
                        self.lines = before;
                        return Err(err);
                    }
                    Accumulated::Counted(share)
                }
            };
            outcomes.push(outcome);
        }
        for (invoice, outcome) in invoices.iter().zip(&outcomes) {
            if matches!(outcome, Accumulated::Counted(_)) {
                self.counted += 1;
                self.counted_invoices.insert(invoice.invoice.clone());
            }
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::super::fixtures::*;
    use super::*;

    /// 30 % of `music-plus`, 0.002 per 60 s of `voice`, 0.01 per `sms`, 5 % of invoices;
    /// from 2026-03-15 music goes to 35 %.
    fn mixed() -> Agreement {
        let mut a = agreement(
            "agr-mixed",
            "acme",
            vec![
                rule(product("music-plus"), ShareValue::Percent(dec!(30))),
                rule(
                    service("voice"),
                    ShareValue::PerUnit {
                        amount: dec!(0.002),
                        unit: 60,
                    },
                ),
                rule(service("sms"), ShareValue::PerEvent(dec!(0.01))),
                rule(ShareTarget::InvoiceTotal, ShareValue::Percent(dec!(5))),
            ],
        );
        let mut v2 = a.versions[0].clone();
        v2.valid_from = date(2026, 3, 15);
        v2.shares[0].value = ShareValue::Percent(dec!(35));
        a.amend(v2).unwrap();
        a
    }

    fn on(
        id: &str,
        product: &str,
        service: &str,
        day: i8,
        units: u64,
        revenue: Decimal,
    ) -> RatedRecord {
        RatedRecord {
            cdr_id: CdrId::new(id),
            product: SmolStr::new(product),
            service: SmolStr::new(service),
            start: date(2026, 3, day),
            units,
            revenue: eur(revenue),
            reversal: false,
        }
    }

    fn counted(outcome: Accumulated) -> ItemShare {
        match outcome {
            Accumulated::Counted(share) => share,
            other => panic!("expected a share, got {other:?}"),
        }
    }

    #[test]
    fn each_rule_kind_gives_an_exact_share() {
        let a = mixed();
        // 30 % of 1.2345 = 0.37035 (exact, not rounded).
        let s = share_of(&a, &on("c1", "music-plus", "data", 2, 10, dec!(1.2345))).unwrap();
        assert_eq!(s.unwrap().share.amount, dec!(0.37035));
        // From 2026-03-15: 35 % of 1.2345 = 0.432075.
        let s = share_of(&a, &on("c2", "music-plus", "data", 15, 10, dec!(1.2345))).unwrap();
        let s = s.unwrap();
        assert_eq!(s.share.amount, dec!(0.432075));
        assert_eq!(s.version, date(2026, 3, 15));
        // 0.002 per 60 s x 90 s = 0.003.
        let s = share_of(&a, &on("c3", "talk", "voice", 2, 90, dec!(0.15))).unwrap();
        assert_eq!(s.unwrap().share.amount, dec!(0.003));
        // 0.01 per SMS whatever its price.
        let s = share_of(&a, &on("c4", "talk", "sms", 2, 1, dec!(0.09))).unwrap();
        assert_eq!(s.unwrap().share.amount, dec!(0.01));
        // No rule for data outside music-plus.
        assert_eq!(
            share_of(&a, &on("c5", "talk", "data", 2, 1, dec!(1))).unwrap(),
            None
        );
    }

    #[test]
    fn a_product_rule_wins_over_a_service_rule() {
        let mut a = mixed();
        for v in &mut a.versions {
            v.shares
                .push(rule(service("data"), ShareValue::Percent(dec!(10))));
        }
        let s = share_of(&a, &on("c1", "music-plus", "data", 2, 1, dec!(10))).unwrap();
        let s = s.unwrap();
        assert_eq!(s.target, product("music-plus"));
        assert_eq!(s.share.amount, dec!(3.0));
    }

    #[test]
    fn redelivery_is_a_no_op_and_foreign_items_are_refused() {
        let a = mixed();
        let mut p = Position::new(&a, march());
        let r = on("c1", "music-plus", "data", 2, 1, dec!(10));
        counted(p.accumulate(&a, &r).unwrap());
        let before = p.clone();
        assert_eq!(p.accumulate(&a, &r).unwrap(), Accumulated::Duplicate);
        assert_eq!(p, before);

        let april = RatedRecord {
            start: date(2026, 4, 1),
            ..on("c2", "music-plus", "data", 1, 1, dec!(1))
        };
        let err = p.accumulate(&a, &april).unwrap_err();
        assert_eq!(err.code(), "partner.outside_position");
        let dollars = RatedRecord {
            revenue: Money::new(dec!(1), Currency::USD),
            ..on("c3", "music-plus", "data", 2, 1, dec!(1))
        };
        assert_eq!(
            p.accumulate(&a, &dollars).unwrap_err().code(),
            "agreement.currency_mismatch"
        );
        assert_eq!(p, before);
    }

    #[test]
    fn a_batch_is_counted_all_or_nothing() {
        let a = mixed();
        let mut p = Position::new(&a, march());
        let good = on("c1", "music-plus", "data", 2, 1, dec!(10));
        let bad = RatedRecord {
            start: date(2026, 2, 28),
            ..on("c2", "music-plus", "data", 2, 1, dec!(1))
        };
        assert!(p.accumulate_all(&a, &[good.clone(), bad]).is_err());
        assert!(p.lines.is_empty() && p.counted_records.is_empty());
        let outcomes = p.accumulate_all(&a, &[good.clone(), good]).unwrap();
        assert!(matches!(outcomes[0], Accumulated::Counted(_)));
        assert_eq!(outcomes[1], Accumulated::Duplicate);
        assert_eq!(p.lines[&product("music-plus")].share, dec!(3.0));
    }

    #[test]
    fn invoice_totals_are_shared_in_batch_once_per_invoice() {
        let a = mixed();
        let mut p = Position::new(&a, march());
        let invoice = |id: &str, amount| InvoiceTotal {
            invoice: SmolStr::new(id),
            issued: date(2026, 3, 5),
            amount: eur(amount),
        };
        let batch = [
            invoice("INV-1", dec!(100.00)),
            invoice("INV-2", dec!(33.33)),
            invoice("INV-1", dec!(100.00)),
        ];
        let outcomes = p.accumulate_invoices(&a, &batch).unwrap();
        assert_eq!(outcomes[2], Accumulated::Duplicate);
        // 5 % x (100.00 + 33.33) = 5.00 + 1.6665 = 6.6665.
        let line = p.lines[&ShareTarget::InvoiceTotal];
        assert_eq!((line.records, line.share), (2, dec!(6.6665)));
        let again = p.accumulate_invoices(&a, &batch[..2]).unwrap();
        assert!(again.iter().all(|o| *o == Accumulated::Duplicate));
        assert_eq!(p.lines[&ShareTarget::InvoiceTotal], line);
    }

    fn arbitrary_records() -> impl Strategy<Value = Vec<RatedRecord>> {
        let one = (0i64..10_000_000, 1i8..=31, 0u64..10_000, 0usize..4);
        proptest::collection::vec(one, 1..40).prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (cents, day, units, kind))| {
                    let (product, service) = [
                        ("music-plus", "data"),
                        ("talk", "voice"),
                        ("talk", "sms"),
                        ("talk", "data"),
                    ][kind];
                    let revenue = Decimal::new(cents, 4);
                    on(&format!("c{i}"), product, service, day, units, revenue)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn order_batching_and_redelivery_do_not_change_the_position(
            (records, order, batches, redelivered) in arbitrary_records().prop_flat_map(|records| {
                let n = records.len();
                (
                    Just(records),
                    Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                    proptest::collection::vec(1usize..8, 1..10),
                    proptest::collection::vec(0..n, 0..10),
                )
            })
        ) {
            let a = mixed();
            let mut one_by_one = Position::new(&a, march());
            for r in &records {
                one_by_one.accumulate(&a, r).unwrap();
            }
            let mut stream: Vec<RatedRecord> = order.iter().map(|i| records[*i].clone()).collect();
            stream.extend(redelivered.iter().map(|i| records[*i].clone()));
            let mut batched = Position::new(&a, march());
            let mut rest = stream.as_slice();
            let mut sizes = batches.iter().cycle();
            while !rest.is_empty() {
                let size = sizes.next().copied().unwrap_or(1).min(rest.len());
                let (batch, tail) = rest.split_at(size);
                batched.accumulate_all(&a, batch).unwrap();
                rest = tail;
            }
            prop_assert_eq!(&batched, &one_by_one);
            let shared: u64 = one_by_one.lines.values().map(|l| l.records).sum();
            prop_assert_eq!(shared, one_by_one.counted_records.len() as u64);
        }
    }

    #[test]
    fn a_reversal_takes_a_counted_share_off_and_never_more_than_the_line_holds() {
        let a = music_30();
        let mut p = Position::new(&a, march());
        let first = record("c1", "music-plus", date(2026, 3, 3), dec!(10.00));
        p.accumulate(&a, &first).unwrap();
        let mut reversal = record("c1~job~rev", "music-plus", date(2026, 3, 3), dec!(10.00));
        reversal.reversal = true;
        let share = counted(p.accumulate(&a, &reversal).unwrap());
        assert_eq!(
            (share.base.amount, share.share.amount),
            (dec!(-10.00), dec!(-3.0000))
        );
        let line = p.lines[&product("music-plus")];
        assert_eq!(
            (line.records, line.units, line.base, line.share),
            (0, 0, dec!(0), dec!(0))
        );
        let before = p.clone();
        let mut again = reversal.clone();
        again.cdr_id = CdrId::new("c1~other~rev");
        assert!(matches!(
            p.accumulate(&a, &again),
            Err(PartnerError::OutsidePosition { .. })
        ));
        assert_eq!(p, before, "a refused reversal changes nothing");
    }

    #[test]
    fn a_late_record_is_counted_into_a_later_position_under_its_own_day_s_terms() {
        let a = mixed();
        let april = Period {
            start: date(2026, 4, 1),
            end: date(2026, 5, 1),
        };
        let mut p = Position::new(&a, april);
        // 2026-03-20 falls under the 35 % version of March 15th.
        let late = on("late-1", "music-plus", "data", 20, 10, dec!(10.00));
        let share = counted(p.accumulate_late(&a, &late).unwrap());
        assert_eq!(share.share.amount, dec!(3.5000));
        assert_eq!(
            p.accumulate_late(&a, &late).unwrap(),
            Accumulated::Duplicate
        );
        assert_eq!(p.counted, 1);
        let mut not_late = late.clone();
        not_late.cdr_id = CdrId::new("april-1");
        not_late.start = date(2026, 4, 2);
        assert!(p.accumulate_late(&a, &not_late).is_err());
        let mut other = late.clone();
        other.cdr_id = CdrId::new("late-2");
        assert!(
            p.accumulate(&a, &other).is_err(),
            "the plain path keeps its period check"
        );
    }
}
