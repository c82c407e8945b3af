//! The contract every [`super::FinanceStore`] must keep; run it against each backend on a fresh
//! store. Returns the first broken promise instead of panicking, so any crate's tests can call
//! it. Entries, payments, refunds, counters, periods, notes, dunning and notifications are
//! checked in `contract_records.rs`; refused writes and collection runs in `contract_runs.rs`.
//! [`check_audit`] then checks the audit records the backend kept (read through whatever the
//! backend offers: the trait has no audit read).
//!
//! Refused writes are checked the same way each time: a write made of fresh parts (the "bait",
//! valid on its own), upserts of stored records and one conflicting part must be refused with
//! [`FinanceStoreError::Conflict`] and change nothing that any read shows; then the bait alone
//! must be accepted and read back.

use jiff::Timestamp;
use jiff::civil::{Date, date};
use rust_decimal::Decimal;
use smol_str::SmolStr;

use super::collection::{CollectionItem, CollectionRun, collection_run_id};
use super::credit_note::{CreditNote, NoteKind, NoteLine};
use super::dunning::{AccountDunning, AppliedStep, DunningCase};
use super::notification::{Channel, Notification};
use super::payment::{Allocation, Payment, PaymentMethod, PaymentState, Refund};
use super::period::FinancialPeriod;
use super::receivable::{ArEntry, ArKind};
use super::store::{FinanceStore, FinanceStoreError, FinanceWrite, NoteFilter};
use crate::admin::AuditRecord;
use crate::billing::{Amount, Period};
use crate::ids::{AccountId, CustomerId};
use crate::ledger::StoreError;
use crate::money::{Currency, Money};

#[path = "contract_records.rs"]
mod records;
#[path = "contract_runs.rs"]
mod runs;

/// Refused writes the contract makes (`1..=BAITS`): their audit records must be absent, those
/// of the baits committed after them present.
const BAITS: u32 = 16;

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

fn day() -> Date {
    date(2026, 11, 20)
}

fn acct(id: &str) -> AccountId {
    AccountId::new(id)
}

fn entry(key: &str, account: &str, minor: i64) -> Result<ArEntry, String> {
    Ok(ArEntry {
        key: key.into(),
        account: acct(account),
        kind: ArKind::Payment,
        document: "pay-1".into(),
        invoice: Some("INV-1".into()),
        amount: Money::from_minor(minor, eur()?),
        on: day(),
        at: at(0)?,
        description: format!("entry {key}"),
    })
}

fn payment(id: &str, key: &str, account: &str) -> Result<Payment, String> {
    Ok(Payment {
        id: id.into(),
        key: key.into(),
        account: acct(account),
        customer: CustomerId::new(format!("c-{account}")),
        amount: Money::from_minor(10_000, eur()?),
        method: PaymentMethod::Cash,
        received_on: day(),
        recorded_at: at(0)?,
        recorded_by: "clerk".into(),
        cashier: Some("desk-1".into()),
        reference: None,
        allocations: Vec::new(),
        refunded: Money::zero(eur()?),
        state: PaymentState::Received,
    })
}

fn refund(id: &str, key: &str, payment: &str, account: &str) -> Result<Refund, String> {
    Ok(Refund {
        id: id.into(),
        key: key.into(),
        payment: payment.into(),
        account: acct(account),
        amount: Money::from_minor(500, eur()?),
        reason: "goodwill".into(),
        at: at(1)?,
        by: "clerk".into(),
    })
}

fn note(number: &str, key: &str, account: &str, invoice: &str) -> Result<CreditNote, String> {
    let eur = eur()?;
    let minus = Amount::from_minor(-50, eur);
    Ok(CreditNote {
        number: number.into(),
        kind: NoteKind::Credit,
        key: key.into(),
        invoice: invoice.into(),
        invoice_period: Period::new(date(2026, 10, 1), date(2026, 11, 1))
            .map_err(|e| e.to_string())?,
        account: acct(account),
        customer: CustomerId::new(format!("c-{account}")),
        currency: eur,
        booked_in: "2026-11".into(),
        issued_on: day(),
        issued_at: at(2)?,
        reason: "rerate job j1: price change".into(),
        lines: vec![NoteLine {
            service: "voice".into(),
            records: 1,
            old: Decimal::new(100, 2),
            new: Decimal::new(50, 2),
            tax_category: "usage".into(),
            amount: minus,
        }],
        tax_lines: Vec::new(),
        net: minus,
        tax: Amount::from_minor(0, eur),
        gross: minus,
    })
}

fn case(account: &str, invoice: &str) -> DunningCase {
    DunningCase {
        account: acct(account),
        invoice: invoice.into(),
        policy: "default".into(),
        due_on: date(2026, 11, 16),
        applied: Vec::new(),
        settled_on: None,
    }
}

fn dunning(account: &str, suspended: bool, disconnected: bool) -> Result<AccountDunning, String> {
    Ok(AccountDunning {
        suspended,
        disconnected,
        changed_at: Some(at(3)?),
        reason: Some(format!("test {suspended} {disconnected}")),
        converged: !suspended || disconnected,
        ..AccountDunning::new(acct(account))
    })
}

fn notification(id: &str, account: &str, created: i64) -> Result<Notification, String> {
    Ok(Notification {
        id: id.into(),
        account: acct(account),
        customer: CustomerId::new(format!("c-{account}")),
        channel: Channel::Sms,
        to: Some("+491700000000".into()),
        body: format!("pay up ({id})"),
        created_at: at(created)?,
        delivered_at: None,
        attempts: 0,
        last_error: None,
    })
}

fn period(id: &str, version: u64) -> Result<FinancialPeriod, String> {
    let mut p = FinancialPeriod::new(id).map_err(|e| e.to_string())?;
    p.version = version;
    Ok(p)
}

fn audit(target: &str) -> Result<AuditRecord, String> {
    Ok(AuditRecord::new(
        at(0)?,
        "finance",
        "finance.contract",
        target,
        "req-1",
        None,
        None,
    ))
}

/// A write of fresh parts only (valid on its own), numbered `n`.
fn bait(n: u32) -> Result<FinanceWrite, String> {
    let tag = format!("bait-{n}");
    let account = format!("acct-{tag}");
    let pay = format!("pay-{tag}");
    let month = format!("{:04}-{:02}", 2040 + n / 12, n % 12 + 1);
    Ok(FinanceWrite {
        entries: vec![entry(&format!("{tag}:entry"), &account, 100)?],
        payments: vec![payment(&pay, &format!("{tag}:payment"), &account)?],
        refunds: vec![refund(
            &format!("ref-{tag}"),
            &format!("{tag}:refund"),
            &pay,
            &account,
        )?],
        notes: vec![note(
            &format!("CN-{tag}"),
            &format!("{tag}:note"),
            &account,
            "INV-bait",
        )?],
        cases: vec![case(&account, "INV-bait")],
        accounts: vec![dunning(&account, false, false)?],
        notifications: vec![notification(&format!("{tag}:notify"), &account, 5)?],
        periods: vec![(period(&month, 1)?, 0)],
        counters: vec![(SmolStr::new(&tag), 0, 7)],
        collection_item: None,
        audit: vec![audit(&format!("bait/{n}"))?],
    })
}

/// Whether nothing of a write of fresh parts is stored.
fn absent(store: &dyn FinanceStore, w: &FinanceWrite, why: &str) -> Result<(), String> {
    let fail = |what: &str| format!("{why}: a refused write stored its {what}");
    for x in &w.entries {
        ensure(store.entry(&x.key).map_err(e)?.is_none(), &fail("entry"))?;
        ensure(
            store.entries(&x.account).map_err(e)?.is_empty(),
            &fail("entry"),
        )?;
    }
    for x in &w.payments {
        ensure(store.payment(&x.id).map_err(e)?.is_none(), &fail("payment"))?;
        ensure(
            store.payment_by_key(&x.key).map_err(e)?.is_none(),
            &fail("payment key"),
        )?;
        ensure(
            store.payments(&x.account).map_err(e)?.is_empty(),
            &fail("payment"),
        )?;
    }
    for x in &w.refunds {
        ensure(
            store.refund_by_key(&x.key).map_err(e)?.is_none(),
            &fail("refund"),
        )?;
        ensure(
            store.refunds(&x.payment).map_err(e)?.is_empty(),
            &fail("refund"),
        )?;
    }
    for x in &w.notes {
        ensure(store.note(&x.number).map_err(e)?.is_none(), &fail("note"))?;
        ensure(
            store.note_by_key(&x.key).map_err(e)?.is_none(),
            &fail("note key"),
        )?;
    }
    for x in &w.cases {
        let stored = store.case(&x.account, &x.invoice).map_err(e)?;
        ensure(stored.is_none(), &fail("dunning case"))?;
    }
    for x in &w.accounts {
        let stored = store.account_dunning(&x.account).map_err(e)?;
        ensure(stored.is_none(), &fail("account dunning state"))?;
    }
    for x in &w.notifications {
        ensure(
            store.notification(&x.id).map_err(e)?.is_none(),
            &fail("notification"),
        )?;
        ensure(
            store.notifications(&x.account).map_err(e)?.is_empty(),
            &fail("notification"),
        )?;
    }
    for (p, _) in &w.periods {
        ensure(store.period(&p.id).map_err(e)?.is_none(), &fail("period"))?;
    }
    for (name, read, _) in &w.counters {
        ensure(store.counter(name).map_err(e)? == *read, &fail("counter"))?;
    }
    Ok(())
}

/// Whether every part of a write of fresh parts reads back.
fn present(store: &dyn FinanceStore, w: &FinanceWrite, why: &str) -> Result<(), String> {
    let fail = |what: &str| format!("{why}: an accepted write lost its {what}");
    for x in &w.entries {
        ensure(
            store.entry(&x.key).map_err(e)? == Some(x.clone()),
            &fail("entry"),
        )?;
        let of_account = store.entries(&x.account).map_err(e)?;
        ensure(of_account.contains(x), &fail("entry"))?;
    }
    for x in &w.payments {
        ensure(
            store.payment(&x.id).map_err(e)? == Some(x.clone()),
            &fail("payment"),
        )?;
        let by_key = store.payment_by_key(&x.key).map_err(e)?;
        ensure(by_key == Some(x.clone()), &fail("payment key"))?;
        ensure(
            store.payments(&x.account).map_err(e)?.contains(x),
            &fail("payment"),
        )?;
    }
    for x in &w.refunds {
        let by_key = store.refund_by_key(&x.key).map_err(e)?;
        ensure(by_key == Some(x.clone()), &fail("refund"))?;
        ensure(
            store.refunds(&x.payment).map_err(e)?.contains(x),
            &fail("refund"),
        )?;
    }
    for x in &w.notes {
        ensure(
            store.note(&x.number).map_err(e)? == Some(x.clone()),
            &fail("note"),
        )?;
        let by_key = store.note_by_key(&x.key).map_err(e)?;
        ensure(by_key == Some(x.clone()), &fail("note key"))?;
    }
    for x in &w.cases {
        let stored = store.case(&x.account, &x.invoice).map_err(e)?;
        ensure(stored == Some(x.clone()), &fail("dunning case"))?;
    }
    for x in &w.accounts {
        let stored = store.account_dunning(&x.account).map_err(e)?;
        ensure(stored == Some(x.clone()), &fail("account dunning state"))?;
    }
    for x in &w.notifications {
        let stored = store.notification(&x.id).map_err(e)?;
        ensure(stored == Some(x.clone()), &fail("notification"))?;
    }
    for (p, _) in &w.periods {
        ensure(
            store.period(&p.id).map_err(e)? == Some(p.clone()),
            &fail("period"),
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
    entries: Vec<Vec<ArEntry>>,
    payments: Vec<Vec<Payment>>,
    refunds: Vec<Vec<Refund>>,
    notes: Vec<CreditNote>,
    cases: Vec<Vec<DunningCase>>,
    dunning: Vec<Option<AccountDunning>>,
    suspended: Vec<AccountDunning>,
    notifications: Vec<Vec<Notification>>,
    pending: Vec<Notification>,
    periods: Vec<FinancialPeriod>,
    runs: Vec<CollectionRun>,
    items: Vec<CollectionItem>,
}

fn snapshot(store: &dyn FinanceStore) -> Result<Snapshot, String> {
    const ALL: usize = 10_000;
    let accounts = ["a1", "a2", "a3"].map(acct);
    let mut s = Snapshot {
        counters: Vec::new(),
        entries: Vec::new(),
        payments: Vec::new(),
        refunds: Vec::new(),
        notes: store.notes(&NoteFilter::default(), None, ALL).map_err(e)?,
        cases: Vec::new(),
        dunning: Vec::new(),
        suspended: store.unconverged_accounts().map_err(e)?,
        notifications: Vec::new(),
        pending: store.pending_notifications(ALL).map_err(e)?,
        periods: store.periods().map_err(e)?,
        runs: store.collection_runs(None, ALL).map_err(e)?,
        items: store
            .collection_items(&collection_run_id(1), false, None, ALL)
            .map_err(e)?,
    };
    for name in ["payment", "refund", "never"] {
        s.counters.push(store.counter(name).map_err(e)?);
    }
    for a in &accounts {
        s.entries.push(store.entries(a).map_err(e)?);
        s.payments.push(store.payments(a).map_err(e)?);
        s.cases.push(store.cases(a).map_err(e)?);
        s.dunning.push(store.account_dunning(a).map_err(e)?);
        s.notifications.push(store.notifications(a).map_err(e)?);
    }
    for p in ["pay-1", "pay-2", "pay-3"] {
        s.refunds.push(store.refunds(p).map_err(e)?);
    }
    Ok(s)
}

/// Commits bait `n`, with upserts of stored records, and whatever `conflict` adds: it must be
/// refused as a conflict and change nothing; then the bait alone must be accepted.
fn refused(
    store: &dyn FinanceStore,
    n: u32,
    why: &str,
    conflict: impl FnOnce(&mut FinanceWrite) -> Result<(), String>,
) -> Result<(), String> {
    let before = snapshot(store)?;
    let mut write = bait(n)?;
    write.audit = vec![audit(&format!("refused/{n}"))?];
    let mut p2 = payment("pay-2", "k2", "a1")?;
    p2.reference = Some(format!("changed by refused write {n}"));
    write.payments.push(p2);
    let mut c = case("a1", "INV-2");
    c.settled_on = Some(day());
    write.cases.push(c);
    write.accounts.push(dunning("a2", false, false)?);
    conflict(&mut write)?;
    match store.commit(write) {
        Err(FinanceStoreError::Conflict(_)) => {}
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

/// Runs every check on `store`, which must be empty.
pub fn run(store: &dyn FinanceStore) -> Result<(), String> {
    records::empty(store)?;
    records::receivables(store)?;
    records::documents(store)?;
    records::notifications(store)?;
    runs::refusals(store)?;
    runs::collection(store)
}

/// Checks the audit records a backend stored while [`run`] ran on it: those of accepted writes
/// and created runs are there, none of a refused write or a repeated run key.
pub fn check_audit(records: &[AuditRecord]) -> Result<(), String> {
    let has = |target: &str| records.iter().any(|r| r.target == target);
    let mut stored = vec!["write/1".to_string(), "collection_item/a1".to_string()];
    for key in ["d1", "d2", "d3"] {
        stored.push(format!("collection_run/{key}"));
    }
    let mut lost = vec!["collection_run/d1-again".to_string()];
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
