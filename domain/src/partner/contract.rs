//! The contract every [`super::PartnerStore`] must keep; run it against each backend on a fresh
//! store. Returns the first broken promise instead of panicking, so any crate's tests can call
//! it. Partners, agreements, positions, item shares, statements (with their lifecycle updates),
//! reconciliations, disputes and counters are checked here; refused writes and settlement runs
//! in `contract_runs.rs`. [`check_audit`] then checks the audit records the backend kept (read
//! through whatever the backend offers: the trait has no audit read).
//!
//! Refused writes are checked as in [`crate::finance::contract`]: a write made of fresh parts
//! (the "bait", valid on its own), upserts of stored records and one conflicting part must be
//! refused with [`PartnerStoreError::Conflict`] and change nothing that any read shows; then the
//! bait alone must be accepted and read back.

use jiff::Timestamp;
use jiff::civil::{Date, date};
use rust_decimal::Decimal;
use smol_str::SmolStr;

use super::agreement::{Agreement, AgreementVersion, ShareRule, ShareTarget, ShareValue};
use super::dispute::{Dispute, DisputeState};
use super::partner::{Partner, PartnerStatus};
use super::reconcile::Compared;
use super::run::{SettlementItem, SettlementRun, settlement_run_id};
use super::share::{ItemShare, Position};
use super::statement::{PartnerStatement, StatementStage, StatementStep};
use super::store::{
    PartnerRecord, PartnerStore, PartnerStoreError, PartnerWrite, ReconciliationReport,
    ReportProblem, StoredShare,
};
use crate::admin::AuditRecord;
use crate::billing::{Amount, Period};
use crate::ids::{CdrId, PartnerId};
use crate::ledger::StoreError;
use crate::money::{Currency, Money};

#[path = "contract_runs.rs"]
mod runs;

/// Refused writes the contract makes (`1..=BAITS`): their audit records must be absent, those
/// of the baits committed after them present.
const BAITS: u32 = 21;

/// Reads everything in one page.
const ALL: usize = 10_000;

fn ensure(condition: bool, what: &str) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn e(error: StoreError) -> String {
    error.to_string()
}

fn at(offset_seconds: i64) -> Result<Timestamp, String> {
    Timestamp::from_second(1_800_000_000 + offset_seconds).map_err(|e| e.to_string())
}

fn eur() -> Result<Currency, String> {
    Currency::from_code("EUR").map_err(|e| e.to_string())
}

fn pid(id: &str) -> PartnerId {
    PartnerId::new(id)
}

fn month(m: i8) -> Period {
    let end = if m == 12 {
        date(2027, 1, 1)
    } else {
        date(2026, m + 1, 1)
    };
    Period {
        start: date(2026, m, 1),
        end,
    }
}

fn march() -> Period {
    month(3)
}

fn partner(id: &str, version: u64) -> PartnerRecord {
    PartnerRecord {
        partner: Partner {
            id: pid(id),
            legal_name: format!("{id} v{version} GmbH"),
            contacts: Vec::new(),
            tax_id: None,
            bank_reference: None,
            status: PartnerStatus::Active,
            tax: None,
        },
        version,
    }
}

fn agreement(id: &str, partner: &str, versions: u32) -> Result<Agreement, String> {
    let versions = (0..versions)
        .map(|v| AgreementVersion {
            valid_from: date(2026, 1, 1).saturating_add(jiff::Span::new().days(i64::from(v) * 30)),
            shares: vec![ShareRule {
                target: ShareTarget::Product("music".into()),
                value: ShareValue::Percent(Decimal::from(30 + v)),
            }],
            min_guarantee: None,
            cap: None,
            note: None,
        })
        .collect();
    Ok(Agreement {
        id: id.into(),
        partner: pid(partner),
        from: date(2026, 1, 1),
        to: None,
        currency: eur()?,
        versions,
    })
}

fn position(partner: &str, period: Period, records: &[&str]) -> Result<Position, String> {
    Ok(Position {
        partner: pid(partner),
        agreement: format!("agr-{partner}").into(),
        period,
        currency: eur()?,
        // A line per kind of target: the store must keep targets that are not plain strings.
        lines: [
            ShareTarget::Product("music-plus".into()),
            ShareTarget::Service("voice".into()),
            ShareTarget::InvoiceTotal,
        ]
        .into_iter()
        .map(|t| {
            let totals = crate::partner::LineTotals {
                records: records.len() as u64,
                units: 60,
                base: Decimal::new(123_456, 2),
                share: Decimal::new(370_368, 3),
            };
            (t, totals)
        })
        .collect(),
        counted: records.len() as u64,
        counted_records: Default::default(),
        counted_invoices: Default::default(),
    })
}

fn statement(
    number: Option<&str>,
    partner: &str,
    period: Period,
) -> Result<PartnerStatement, String> {
    let eur = eur()?;
    let amount = Amount::from_minor(1_000, eur);
    Ok(PartnerStatement {
        partner: pid(partner),
        agreement: format!("agr-{partner}").into(),
        period,
        currency: eur,
        lines: Vec::new(),
        subtotal: amount,
        guarantee_top_up: Amount::from_minor(0, eur),
        cap_cut: Amount::from_minor(0, eur),
        net: amount,
        tax_lines: Vec::new(),
        tax: Amount::from_minor(0, eur),
        total: amount,
        number: number.map(str::to_string),
        approved: None,
        released: None,
        adjustments: Vec::new(),
    })
}

/// The exact share of `item`: 30 % of `base_cents` EUR cents, finer than minor units (stored
/// unrounded).
fn share(item: &str, base_cents: i64) -> Result<ItemShare, String> {
    let eur = eur()?;
    Ok(ItemShare {
        item: item.into(),
        target: ShareTarget::Product("music".into()),
        version: date(2026, 1, 1),
        units: 60,
        base: Money::new(Decimal::new(base_cents, 2), eur),
        share: Money::new(Decimal::new(base_cents * 3, 3), eur),
        basis: "30%".into(),
        reversal: false,
    })
}

fn stored(
    partner: &str,
    period: Period,
    item: &str,
    base_cents: i64,
) -> Result<StoredShare, String> {
    Ok(StoredShare {
        partner: pid(partner),
        period_start: period.start,
        share: share(item, base_cents)?,
    })
}

fn step(by: &str, time: i64, note: &str) -> Result<StatementStep, String> {
    Ok(StatementStep {
        by: by.into(),
        at: at(time)?,
        note: Some(note.to_string()),
    })
}

fn stored_statement(store: &dyn PartnerStore, number: &str) -> Result<PartnerStatement, String> {
    store
        .statement(number)
        .map_err(e)?
        .ok_or_else(|| format!("statement {number} lost"))
}

fn item_shares(
    store: &dyn PartnerStore,
    partner: &str,
    period_start: Date,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<ItemShare>, String> {
    store
        .item_shares(&pid(partner), period_start, after, limit)
        .map_err(e)
}

fn report(id: &str, statement: &str, partner: &str) -> Result<ReconciliationReport, String> {
    Ok(ReconciliationReport {
        id: id.into(),
        statement: statement.into(),
        partner: pid(partner),
        created_at: at(10)?,
        created_by: "clerk".into(),
        currency: eur()?,
        matched: Vec::new(),
        differing: Vec::new(),
        only_ours: Vec::new(),
        only_theirs: Vec::new(),
        lines: Vec::new(),
        total: Compared {
            key: (),
            ours: Decimal::new(1_000, 2),
            theirs: Decimal::new(1_250, 2),
            difference: Decimal::new(250, 2),
        },
        problems: vec![ReportProblem {
            line: 3,
            code: "reconcile.bad_amount".into(),
            message: format!("in {id}"),
        }],
    })
}

fn dispute(id: &str, partner: &str, statement: &str) -> Result<Dispute, String> {
    Ok(Dispute {
        id: id.into(),
        partner: pid(partner),
        statement: statement.into(),
        lines: Vec::new(),
        claimed: Money::from_minor(500, eur()?),
        state: DisputeState::Open,
        history: Vec::new(),
        carried_in: None,
    })
}

fn audit(target: &str) -> Result<AuditRecord, String> {
    Ok(AuditRecord::new(
        at(0)?,
        "partner",
        "partner.contract",
        target,
        "req-1",
        None,
        None,
    ))
}

/// A write of fresh parts only (valid on its own), numbered `n`.
fn bait(n: u32) -> Result<PartnerWrite, String> {
    let p = format!("bait-{n}");
    let number = format!("PS-{p}");
    Ok(PartnerWrite {
        partners: vec![(partner(&p, 1), 0)],
        agreements: vec![(agreement(&format!("agr-{p}"), &p, 1)?, 0)],
        positions: vec![(position(&p, march(), &["cdr-1"])?, 0)],
        items: vec![stored(&p, march(), "cdr-1", 1_234)?],
        statements: vec![statement(Some(&number), &p, march())?],
        statement_updates: Vec::new(),
        reconciliations: vec![report(&format!("rec-{p}"), &number, &p)?],
        disputes: vec![dispute(&format!("dsp-{p}"), &p, &number)?],
        counters: vec![(SmolStr::new(&p), 0, 7)],
        settlement_item: None,
        audit: vec![audit(&format!("bait/{n}"))?],
    })
}

/// Whether nothing of a write of fresh parts is stored.
fn absent(store: &dyn PartnerStore, w: &PartnerWrite, why: &str) -> Result<(), String> {
    let fail = |what: &str| format!("{why}: a refused write stored its {what}");
    for (x, _) in &w.partners {
        ensure(
            store.partner(&x.partner.id).map_err(e)?.is_none(),
            &fail("partner"),
        )?;
    }
    for (x, _) in &w.agreements {
        ensure(
            store.agreement(&x.id).map_err(e)?.is_none(),
            &fail("agreement"),
        )?;
        let of_partner = store.agreements(&x.partner).map_err(e)?;
        ensure(of_partner.is_empty(), &fail("agreement"))?;
    }
    for (x, _) in &w.positions {
        let stored = store.position(&x.partner, x.period.start).map_err(e)?;
        ensure(stored.is_none(), &fail("position"))?;
    }
    for x in &w.items {
        let stored = item_shares(store, x.partner.as_str(), x.period_start, None, ALL)?;
        ensure(!stored.contains(&x.share), &fail("item share"))?;
    }
    for x in &w.statements {
        let number = x.number.as_deref().unwrap_or_default();
        ensure(
            store.statement(number).map_err(e)?.is_none(),
            &fail("statement"),
        )?;
        let of_partner = store.statements(&x.partner, None).map_err(e)?;
        ensure(of_partner.is_empty(), &fail("statement"))?;
    }
    for x in &w.reconciliations {
        let stored = store.reconciliations(&x.statement).map_err(e)?;
        ensure(stored.is_empty(), &fail("reconciliation"))?;
    }
    for x in &w.disputes {
        ensure(store.dispute(&x.id).map_err(e)?.is_none(), &fail("dispute"))?;
        ensure(
            store.disputes(&x.partner).map_err(e)?.is_empty(),
            &fail("dispute"),
        )?;
    }
    for (name, read, _) in &w.counters {
        ensure(store.counter(name).map_err(e)? == *read, &fail("counter"))?;
    }
    Ok(())
}

/// Whether every part of a write of fresh parts reads back.
fn present(store: &dyn PartnerStore, w: &PartnerWrite, why: &str) -> Result<(), String> {
    let fail = |what: &str| format!("{why}: an accepted write lost its {what}");
    for (x, _) in &w.partners {
        let stored = store.partner(&x.partner.id).map_err(e)?;
        ensure(stored == Some(x.clone()), &fail("partner"))?;
    }
    for (x, _) in &w.agreements {
        ensure(
            store.agreement(&x.id).map_err(e)? == Some(x.clone()),
            &fail("agreement"),
        )?;
        let of_partner = store.agreements(&x.partner).map_err(e)?;
        ensure(of_partner.contains(x), &fail("agreement"))?;
    }
    for (x, _) in &w.positions {
        let stored = store.position(&x.partner, x.period.start).map_err(e)?;
        ensure(stored == Some(x.clone()), &fail("position"))?;
    }
    for x in &w.items {
        let stored = item_shares(store, x.partner.as_str(), x.period_start, None, ALL)?;
        ensure(stored.contains(&x.share), &fail("item share"))?;
    }
    // The last of a number's statements is stored (added, then updated in the same write).
    let updated = w.statement_updates.iter().map(|(x, _)| x);
    let mut last: Vec<&PartnerStatement> = Vec::new();
    for x in w.statements.iter().chain(updated) {
        last.retain(|l| l.number != x.number);
        last.push(x);
    }
    for x in last {
        let number = x.number.as_deref().unwrap_or_default();
        let stored = store.statement(number).map_err(e)?;
        ensure(stored == Some(x.clone()), &fail("statement"))?;
        let of_period = store
            .statements(&x.partner, Some(x.period.start))
            .map_err(e)?;
        ensure(of_period.contains(x), &fail("statement"))?;
    }
    for x in &w.reconciliations {
        let stored = store.reconciliations(&x.statement).map_err(e)?;
        ensure(stored.contains(x), &fail("reconciliation"))?;
    }
    for x in &w.disputes {
        ensure(
            store.dispute(&x.id).map_err(e)? == Some(x.clone()),
            &fail("dispute"),
        )?;
        ensure(
            store.disputes(&x.partner).map_err(e)?.contains(x),
            &fail("dispute"),
        )?;
    }
    for (name, _, new) in &w.counters {
        ensure(store.counter(name).map_err(e)? == *new, &fail("counter"))?;
    }
    Ok(())
}

/// What the reads show of the records the contract stores (to compare before and after a
/// refused write).
#[derive(Debug, PartialEq)]
struct Snapshot {
    counters: Vec<u64>,
    partners: Vec<PartnerRecord>,
    agreements: Vec<Vec<Agreement>>,
    positions: Vec<Option<Position>>,
    item_shares: Vec<Vec<ItemShare>>,
    statements: Vec<Vec<PartnerStatement>>,
    reconciliations: Vec<Vec<ReconciliationReport>>,
    disputes: Vec<Vec<Dispute>>,
    runs: Vec<SettlementRun>,
    items: Vec<SettlementItem>,
}

fn snapshot(store: &dyn PartnerStore) -> Result<Snapshot, String> {
    let mut s = Snapshot {
        counters: Vec::new(),
        partners: store.partners(None, ALL).map_err(e)?,
        agreements: Vec::new(),
        positions: Vec::new(),
        item_shares: Vec::new(),
        statements: Vec::new(),
        reconciliations: Vec::new(),
        disputes: Vec::new(),
        runs: store.settlement_runs(None, ALL).map_err(e)?,
        items: store
            .settlement_items(&settlement_run_id(1), false, None, ALL)
            .map_err(e)?,
    };
    for name in ["statement", "never"] {
        s.counters.push(store.counter(name).map_err(e)?);
    }
    for p in ["p1", "p2", "p3"].map(pid) {
        s.agreements.push(store.agreements(&p).map_err(e)?);
        s.positions
            .push(store.position(&p, march().start).map_err(e)?);
        s.statements.push(store.statements(&p, None).map_err(e)?);
        s.disputes.push(store.disputes(&p).map_err(e)?);
        for period in [march(), month(4)] {
            s.item_shares
                .push(store.item_shares(&p, period.start, None, ALL).map_err(e)?);
        }
    }
    for number in ["PS-1", "PS-2", "PS-3"] {
        s.reconciliations
            .push(store.reconciliations(number).map_err(e)?);
    }
    Ok(s)
}

/// Commits bait `n`, with upserts of stored records (a valid update of statement PS-3 among
/// them), a fresh item share of a stored position and whatever `conflict` adds: it must be
/// refused as a conflict and change nothing; then the bait alone must be accepted.
fn refused(
    store: &dyn PartnerStore,
    n: u32,
    why: &str,
    conflict: impl FnOnce(&mut PartnerWrite) -> Result<(), String>,
) -> Result<(), String> {
    let before = snapshot(store)?;
    let mut write = bait(n)?;
    write.audit = vec![audit(&format!("refused/{n}"))?];
    write.partners.push((partner("p2", 2), 1));
    write.agreements.push((agreement("agr-3", "p2", 2)?, 1));
    let mut d = dispute("d-2", "p2", "PS-3")?;
    d.state = DisputeState::Rejected(format!("by refused write {n}"));
    write.disputes.push(d);
    write
        .items
        .push(stored("p1", march(), &format!("refused-{n}"), 1)?);
    let ps3 = stored_statement(store, "PS-3")?;
    let mut update = ps3.clone();
    update.approved = Some(step("refused", 1, &format!("by refused write {n}"))?);
    write.statement_updates.push((update, ps3.stage()));
    conflict(&mut write)?;
    match store.commit(write) {
        Err(PartnerStoreError::Conflict(_)) => {}
        Ok(()) => return Err(format!("{why}: the write was accepted")),
        Err(other) => return Err(format!("{why}: expected a conflict, got {other}")),
    }
    ensure(
        snapshot(store)? == before,
        &format!("{why}: a refused write changed what the reads show"),
    )?;
    let bait = bait(n)?;
    absent(store, &bait, why)?;
    store
        .commit(bait.clone())
        .map_err(|e| format!("{why}: the write without its conflict was refused: {e}"))?;
    present(store, &bait, why)
}

/// A store without records answers with nothing.
fn empty(store: &dyn PartnerStore) -> Result<(), String> {
    let p = pid("p1");
    ensure(
        store.counter("statement").map_err(e)? == 0
            && store.partner(&p).map_err(e)?.is_none()
            && store.partners(None, 10).map_err(e)?.is_empty()
            && store.agreement("agr-1").map_err(e)?.is_none()
            && store.agreements(&p).map_err(e)?.is_empty()
            && store.position(&p, march().start).map_err(e)?.is_none()
            && item_shares(store, "p1", march().start, None, 10)?.is_empty()
            && store.statement("PS-1").map_err(e)?.is_none()
            && store.statements(&p, None).map_err(e)?.is_empty()
            && store.reconciliations("PS-1").map_err(e)?.is_empty()
            && store.dispute("d-1").map_err(e)?.is_none()
            && store.disputes(&p).map_err(e)?.is_empty()
            && store.settlement_runs(None, 10).map_err(e)?.is_empty()
            && store.unpublished_settlement_runs().map_err(e)?.is_empty(),
        "an empty store reads empty",
    )
}

/// The first write, its reads, paging and accepted replacements.
fn records(store: &dyn PartnerStore) -> Result<(), String> {
    let first = PartnerWrite {
        partners: vec![
            (partner("p3", 1), 0),
            (partner("p1", 1), 0),
            (partner("p2", 1), 0),
        ],
        agreements: vec![
            (agreement("agr-2", "p1", 1)?, 0),
            (agreement("agr-1", "p1", 1)?, 0),
            (agreement("agr-3", "p2", 1)?, 0),
        ],
        positions: vec![(position("p1", march(), &["r1", "r2"])?, 0)],
        items: Vec::new(),
        statements: vec![
            statement(Some("PS-1"), "p1", march())?,
            statement(Some("PS-2"), "p1", month(2))?,
            statement(Some("PS-3"), "p2", march())?,
        ],
        statement_updates: Vec::new(),
        reconciliations: vec![
            report("rec-2", "PS-1", "p1")?,
            report("rec-1", "PS-1", "p1")?,
        ],
        disputes: vec![dispute("d-1", "p1", "PS-1")?, dispute("d-2", "p2", "PS-3")?],
        counters: vec![("statement".into(), 0, 3)],
        settlement_item: None,
        audit: vec![audit("write/1")?],
    };
    store
        .commit(first.clone())
        .map_err(|e| format!("the first write is accepted: {e}"))?;
    present(store, &first, "the first write")?;
    let ids = |records: Vec<PartnerRecord>| -> Vec<String> {
        records
            .into_iter()
            .map(|r| r.partner.id.to_string())
            .collect()
    };
    ensure(
        ids(store.partners(None, 10).map_err(e)?) == ["p1", "p2", "p3"],
        "partners in id order",
    )?;
    ensure(
        ids(store.partners(Some(&pid("p1")), 1).map_err(e)?) == ["p2"],
        "partner paging: after an id, at most limit",
    )?;
    ensure(
        store.partners(Some(&pid("p3")), 10).map_err(e)?.is_empty()
            && store.partners(None, 0).map_err(e)?.is_empty(),
        "partner paging: nothing after the last, nothing for limit 0",
    )?;
    let agreement_ids = |p: &str| -> Result<Vec<String>, String> {
        let list = store.agreements(&pid(p)).map_err(e)?;
        Ok(list.into_iter().map(|a| a.id.to_string()).collect())
    };
    ensure(
        agreement_ids("p1")? == ["agr-1", "agr-2"],
        "agreements in id order",
    )?;
    let numbers = |list: Vec<PartnerStatement>| -> Vec<Option<String>> {
        list.into_iter().map(|s| s.number).collect()
    };
    ensure(
        numbers(store.statements(&pid("p1"), None).map_err(e)?)
            == [Some("PS-2".to_string()), Some("PS-1".to_string())],
        "a partner's statements by period",
    )?;
    ensure(
        numbers(
            store
                .statements(&pid("p1"), Some(march().start))
                .map_err(e)?,
        ) == [Some("PS-1".to_string())]
            && store
                .statements(&pid("p1"), Some(month(4).start))
                .map_err(e)?
                .is_empty(),
        "a partner's statements of one period",
    )?;
    let reports = store.reconciliations("PS-1").map_err(e)?;
    ensure(
        reports.iter().map(|r| r.id.as_str()).collect::<Vec<_>>() == ["rec-1", "rec-2"]
            && store.reconciliations("PS-3").map_err(e)?.is_empty(),
        "reconciliations of a statement in id order",
    )?;

    // Replacements from what was read.
    let amended = agreement("agr-1", "p1", 2)?;
    let mut resolved = dispute("d-1", "p1", "PS-1")?;
    resolved.state = DisputeState::Rejected("no evidence".into());
    // March of p1 has a statement (its position is settled): May grows instead.
    store
        .commit(PartnerWrite {
            positions: vec![(position("p1", month(5), &["m1"])?, 0)],
            ..PartnerWrite::default()
        })
        .map_err(|e| format!("a new position is accepted: {e}"))?;
    let grown = position("p1", month(5), &["m1", "m2", "m3"])?;
    let second = PartnerWrite {
        partners: vec![(partner("p1", 2), 1)],
        agreements: vec![(amended.clone(), 1), (agreement("agr-2", "p3", 1)?, 1)],
        positions: vec![(grown.clone(), 1)],
        disputes: vec![resolved.clone(), dispute("d-3", "p3", "PS-3")?],
        counters: vec![("statement".into(), 3, 4)],
        ..PartnerWrite::default()
    };
    store
        .commit(second.clone())
        .map_err(|e| format!("replacements from what was read are accepted: {e}"))?;
    present(store, &second, "replacements")?;
    ensure(
        store.partner(&pid("p1")).map_err(e)? == Some(partner("p1", 2)),
        "a partner is replaced with its new version",
    )?;
    ensure(
        agreement_ids("p1")? == ["agr-1"] && agreement_ids("p3")? == ["agr-2"],
        "an agreement moved to another partner is listed there only",
    )?;
    let ds = |p: &str| -> Result<Vec<Dispute>, String> { store.disputes(&pid(p)).map_err(e) };
    ensure(
        ds("p1")? == vec![resolved] && ds("p3")?.len() == 1,
        "disputes replaced by id, listed per partner",
    )?;
    ensure(
        store.counter("statement").map_err(e)? == 4,
        "a counter moves",
    )
}

/// Item shares stored with position writes: read back per (partner, period) in item-id order,
/// with paging.
fn shares(store: &dyn PartnerStore) -> Result<(), String> {
    let write = PartnerWrite {
        // (p2's March is settled by PS-3: the position of these shares is June's.)
        positions: vec![(position("p2", month(6), &["r1"])?, 0)],
        items: vec![
            stored("p1", march(), "r3", 100_368)?,
            stored("p1", march(), "r1", 40_000)?,
            stored("p1", march(), "r2", 50_001)?,
            stored("p1", month(4), "r1", 7)?,
            stored("p2", march(), "r1", 9)?,
        ],
        ..PartnerWrite::default()
    };
    store
        .commit(write.clone())
        .map_err(|e| format!("item shares are accepted: {e}"))?;
    present(store, &write, "item shares")?;
    let of = |p: &str, period: Period, after: Option<&str>, limit: usize| {
        item_shares(store, p, period.start, after, limit)
    };
    ensure(
        of("p1", march(), None, 10)?
            == [
                share("r1", 40_000)?,
                share("r2", 50_001)?,
                share("r3", 100_368)?,
            ],
        "item shares of a period in item-id order, exact",
    )?;
    ensure(
        of("p1", march(), Some("r1"), 1)? == [share("r2", 50_001)?],
        "item share paging: after an item, at most limit",
    )?;
    ensure(
        of("p1", march(), Some("r15"), 10)? == [share("r2", 50_001)?, share("r3", 100_368)?],
        "item share paging: after an item that is not stored",
    )?;
    ensure(
        of("p1", march(), Some("r3"), 10)?.is_empty() && of("p1", march(), None, 0)?.is_empty(),
        "item share paging: nothing after the last, nothing for limit 0",
    )?;
    ensure(
        of("p1", month(4), None, 10)? == [share("r1", 7)?]
            && of("p2", march(), None, 10)? == [share("r1", 9)?]
            && of("p1", month(2), None, 10)?.is_empty()
            && of("p3", march(), None, 10)?.is_empty(),
        "item shares are kept per partner and period",
    )?;
    let more = PartnerWrite {
        items: vec![stored("p1", march(), "r0", 5)?],
        ..PartnerWrite::default()
    };
    store
        .commit(more)
        .map_err(|e| format!("a further item share is accepted: {e}"))?;
    ensure(
        of("p1", march(), None, 2)? == [share("r0", 5)?, share("r1", 40_000)?],
        "a further item share is listed in item-id order",
    )?;
    // One item share by id: the dedupe index of positions.
    ensure(
        store
            .item_share(&pid("p1"), march().start, "r2")
            .map_err(e)?
            == Some(share("r2", 50_001)?)
            && store
                .item_share(&pid("p1"), month(4).start, "r2")
                .map_err(e)?
                .is_none()
            && store
                .item_share(&pid("p2"), march().start, "r2")
                .map_err(e)?
                .is_none()
            && store
                .item_share(&pid("p1"), march().start, "r")
                .map_err(e)?
                .is_none(),
        "one item share by partner, period and id",
    )?;
    // A position is stored without the ids counted in memory; its count is kept.
    let mut in_memory = position("p9", march(), &["a", "b"])?;
    in_memory.counted_records = ["a", "b"].iter().map(CdrId::new).collect();
    store
        .commit(PartnerWrite {
            positions: vec![(in_memory.clone(), 0)],
            ..PartnerWrite::default()
        })
        .map_err(|e| format!("a position with ids in memory is accepted: {e}"))?;
    let read = store.position(&pid("p9"), march().start).map_err(e)?;
    ensure(
        read.as_ref().is_some_and(|p| {
            p.counted_records.is_empty() && p.counted == 2 && p.lines == in_memory.lines
        }) && read == Some(in_memory.stored()),
        "a position is stored without its in-memory ids, with its count and lines",
    )?;
    // Once its period has a statement, a position is not replaced (late records go to a later
    // period); the write that issues the statement may still write it.
    let settled = in_memory.stored();
    let mut issue = statement(Some("PS-P9"), "p9", march())?;
    issue.partner = pid("p9");
    store
        .commit(PartnerWrite {
            positions: vec![(settled.clone(), 2)],
            statements: vec![issue],
            ..PartnerWrite::default()
        })
        .map_err(|e| format!("a statement with its position is accepted: {e}"))?;
    let mut grown = settled.clone();
    grown.counted = 3;
    match store.commit(PartnerWrite {
        positions: vec![(grown, 2)],
        ..PartnerWrite::default()
    }) {
        Err(PartnerStoreError::Conflict(_)) => {}
        other => return Err(format!("a settled position is not replaced, got {other:?}")),
    }
    ensure(
        store.position(&pid("p9"), march().start).map_err(e)? == Some(settled),
        "a refused write leaves the settled position as it was",
    )?;
    let mut april = position("p9", month(4), &["c"])?;
    april.agreement = "agr-p9".into();
    store
        .commit(PartnerWrite {
            positions: vec![(april, 0)],
            ..PartnerWrite::default()
        })
        .map_err(|e| format!("the next period's position is accepted: {e}"))
}

/// Statement lifecycle updates, each from the stage read: read back by number and per partner.
fn stages(store: &dyn PartnerStore) -> Result<(), String> {
    let ps1 = stored_statement(store, "PS-1")?;
    ensure(
        ps1.stage() == StatementStage::Issued && ps1.approved.is_none() && ps1.released.is_none(),
        "a stored statement is issued",
    )?;
    let fail = |err: super::PartnerError| err.to_string();
    let mut approved1 = ps1;
    approved1
        .approve("ada".into(), at(20)?, Some("checked".into()))
        .map_err(fail)?;
    let mut approved2 = stored_statement(store, "PS-2")?;
    approved2
        .approve("ada".into(), at(21)?, None)
        .map_err(fail)?;
    // A statement added and approved in one write: the update sees the addition.
    let added = statement(Some("PS-4"), "p3", march())?;
    let mut approved4 = added.clone();
    approved4
        .approve("ada".into(), at(22)?, None)
        .map_err(fail)?;
    let approve = PartnerWrite {
        statements: vec![added],
        statement_updates: vec![
            (approved1.clone(), StatementStage::Issued),
            (approved2.clone(), StatementStage::Issued),
            (approved4.clone(), StatementStage::Issued),
        ],
        ..PartnerWrite::default()
    };
    store
        .commit(approve.clone())
        .map_err(|e| format!("approvals from the stage read are accepted: {e}"))?;
    present(store, &approve, "approvals")?;
    ensure(
        store.statements(&pid("p1"), None).map_err(e)? == [approved2, approved1.clone()]
            && store.statement("PS-1").map_err(e)?.map(|s| s.stage())
                == Some(StatementStage::Approved),
        "approved statements replace the issued ones by number and per partner",
    )?;
    ensure(
        store.statements(&pid("p3"), None).map_err(e)? == [approved4.clone()],
        "a statement added and approved in one write is stored approved",
    )?;

    let mut released1 = approved1;
    released1
        .release("bob".into(), at(30)?, "PAY-2026-04-17".into())
        .map_err(fail)?;
    // An update that moves a statement to another period is listed there only.
    let mut moved4 = approved4;
    moved4.period = month(5);
    let release = PartnerWrite {
        statement_updates: vec![
            (released1.clone(), StatementStage::Approved),
            (moved4.clone(), StatementStage::Approved),
        ],
        ..PartnerWrite::default()
    };
    store
        .commit(release.clone())
        .map_err(|e| format!("a release from the stage read is accepted: {e}"))?;
    present(store, &release, "a release")?;
    ensure(
        store
            .statements(&pid("p1"), Some(march().start))
            .map_err(e)?
            == [released1.clone()]
            && store.statement("PS-1").map_err(e)?.map(|s| s.stage())
                == Some(StatementStage::Released)
            && released1.released == Some(step("bob", 30, "PAY-2026-04-17")?),
        "a released statement reads back with its payment reference",
    )?;
    ensure(
        store
            .statements(&pid("p3"), Some(march().start))
            .map_err(e)?
            .is_empty()
            && store.statements(&pid("p3"), None).map_err(e)? == [moved4],
        "an update moving a statement to another period is listed there only",
    )
}

/// Runs every check on `store`, which must be empty.
pub fn run(store: &dyn PartnerStore) -> Result<(), String> {
    empty(store)?;
    records(store)?;
    shares(store)?;
    runs::refusals(store)?;
    stages(store)?;
    runs::statement_update_refusals(store)?;
    runs::settlement(store)
}

/// Checks the audit records a backend stored while [`run`] ran on it: those of accepted writes
/// and created runs are there, none of a refused write or a repeated run key.
pub fn check_audit(records: &[AuditRecord]) -> Result<(), String> {
    let has = |target: &str| records.iter().any(|r| r.target == target);
    let mut stored = vec!["write/1".to_string(), "settlement_item/p1".to_string()];
    for key in ["m1", "m2", "m3"] {
        stored.push(format!("settlement_run/{key}"));
    }
    let mut lost = vec!["settlement_run/m1-again".to_string()];
    for n in 1..=BAITS {
        stored.push(format!("bait/{n}"));
        lost.push(format!("refused/{n}"));
    }
    for target in &stored {
        ensure(
            has(target),
            &format!("audit record {target} was not stored"),
        )?;
    }
    for target in &lost {
        ensure(
            !has(target),
            &format!("audit record {target} of a refused write was stored"),
        )?;
    }
    Ok(())
}
