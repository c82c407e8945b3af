//! Contract checks of entries, payments, refunds, counters, periods, notes, dunning cases and
//! states, and notifications (see [`super`]).

use super::*;

pub(super) fn empty(store: &dyn FinanceStore) -> Result<(), String> {
    ensure(
        store.counter("payment").map_err(e)? == 0,
        "a counter never moved is 0",
    )?;
    ensure(store.entry("x").map_err(e)?.is_none(), "no entry")?;
    ensure(
        store.entries(&acct("a1")).map_err(e)?.is_empty(),
        "no entries",
    )?;
    ensure(store.payment("pay-1").map_err(e)?.is_none(), "no payment")?;
    ensure(store.periods().map_err(e)?.is_empty(), "no periods")?;
    ensure(store.period("2026-01").map_err(e)?.is_none(), "no period")?;
    ensure(
        store.unconverged_accounts().map_err(e)?.is_empty(),
        "no suspended account",
    )?;
    ensure(
        store.pending_notifications(10).map_err(e)?.is_empty(),
        "no pending notification",
    )?;
    ensure(
        store.collection_runs(None, 10).map_err(e)?.is_empty(),
        "no collection run",
    )?;
    ensure(
        store
            .notes(&NoteFilter::default(), None, 10)
            .map_err(e)?
            .is_empty(),
        "no notes",
    )
}

/// Entries, payments, refunds, counters and periods.
pub(super) fn receivables(store: &dyn FinanceStore) -> Result<(), String> {
    let (e1, e2, e3) = (
        entry("z-first", "a1", -10_000)?,
        entry("m-other", "a2", -5_000)?,
        entry("a-second", "a1", 500)?,
    );
    let (p1, p2, p3) = (
        payment("pay-1", "k1", "a1")?,
        payment("pay-2", "k2", "a1")?,
        payment("pay-3", "k3", "a2")?,
    );
    let (r1, r2, r3) = (
        refund("ref-1", "rk1", "pay-1", "a1")?,
        refund("ref-2", "rk2", "pay-1", "a1")?,
        refund("ref-3", "rk3", "pay-2", "a1")?,
    );
    store
        .commit(FinanceWrite {
            entries: vec![e1.clone(), e2.clone(), e3.clone()],
            payments: vec![p2.clone(), p1.clone(), p3.clone()],
            refunds: vec![r2.clone(), r1.clone(), r3.clone()],
            counters: vec![("payment".into(), 0, 3), ("refund".into(), 0, 3)],
            audit: vec![audit("write/1")?],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("a first write is accepted: {e}"))?;
    ensure(store.counter("payment").map_err(e)? == 3, "a counter moves")?;
    ensure(
        store.entry("z-first").map_err(e)? == Some(e1.clone()),
        "an entry reads back by key",
    )?;
    ensure(
        store.entries(&acct("a1")).map_err(e)? == vec![e1.clone(), e3.clone()],
        "an account's entries in write order (not key order), only its own",
    )?;
    ensure(
        store.entries(&acct("a2")).map_err(e)? == vec![e2],
        "entries of another account",
    )?;
    ensure(
        store.payment("pay-1").map_err(e)? == Some(p1.clone()),
        "a payment by id",
    )?;
    ensure(
        store.payment_by_key("k2").map_err(e)? == Some(p2.clone()),
        "a payment by key",
    )?;
    ensure(
        store.payments(&acct("a1")).map_err(e)? == vec![p1.clone(), p2.clone()],
        "an account's payments in id order, only its own",
    )?;
    ensure(
        store.refund_by_key("rk1").map_err(e)? == Some(r1.clone()),
        "a refund by key",
    )?;
    ensure(
        store.refunds("pay-1").map_err(e)? == vec![r1, r2],
        "a payment's refunds in id order",
    )?;
    ensure(
        store.refunds("pay-2").map_err(e)? == vec![r3],
        "refunds of one payment only",
    )?;
    ensure(store.refunds("pay-3").map_err(e)?.is_empty(), "no refunds")?;

    // Counters move from the value read; entries keep being appended in write order.
    let e4 = entry("b-third", "a1", 700)?;
    store
        .commit(FinanceWrite {
            entries: vec![e4.clone()],
            counters: vec![("payment".into(), 3, 4)],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("a counter moves from the value read: {e}"))?;
    ensure(store.counter("payment").map_err(e)? == 4, "counter moved")?;
    ensure(
        store.entries(&acct("a1")).map_err(e)? == vec![e1, e3, e4],
        "a later entry comes last",
    )?;

    // Payments are replaced by id (same key).
    let mut p1b = p1;
    p1b.allocations.push(Allocation {
        invoice: "INV-1".into(),
        amount: Money::from_minor(4_000, eur()?),
        at: at(9)?,
    });
    p1b.refunded = Money::from_minor(1_000, eur()?);
    store
        .commit(FinanceWrite {
            payments: vec![p1b.clone()],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("a payment is replaced by id: {e}"))?;
    ensure(
        store.payment("pay-1").map_err(e)? == Some(p1b.clone()),
        "a replaced payment reads back",
    )?;
    ensure(
        store.payment_by_key("k1").map_err(e)? == Some(p1b.clone()),
        "a replaced payment is found by its key",
    )?;
    ensure(
        store.payments(&acct("a1")).map_err(e)? == vec![p1b, p2],
        "replacing a payment adds none",
    )?;

    // Periods: added from version 0, replaced from the version read.
    let (feb, jan) = (period("2026-02", 1)?, period("2026-01", 1)?);
    store
        .commit(FinanceWrite {
            periods: vec![(feb.clone(), 0), (jan.clone(), 0)],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("periods are added from version 0: {e}"))?;
    ensure(
        store.periods().map_err(e)? == vec![jan, feb.clone()],
        "periods in id order",
    )?;
    let jan2 = period("2026-01", 2)?;
    store
        .commit(FinanceWrite {
            periods: vec![(jan2.clone(), 1)],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("a period is replaced from the version read: {e}"))?;
    ensure(
        store.period("2026-01").map_err(e)? == Some(jan2.clone()),
        "a replaced period reads back",
    )?;
    ensure(
        store.periods().map_err(e)? == vec![jan2, feb],
        "replacing a period adds none",
    )
}

/// Notes, dunning cases and account dunning states.
pub(super) fn documents(store: &dyn FinanceStore) -> Result<(), String> {
    let n3 = note("CN-2026-000003", "nk3", "a1", "INV-1")?;
    let n1 = note("CN-2026-000001", "nk1", "a1", "INV-2")?;
    let d2 = note("DN-2026-000002", "dk2", "a2", "INV-3")?;
    store
        .commit(FinanceWrite {
            notes: vec![n3.clone(), n1.clone(), d2.clone()],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("notes are added: {e}"))?;
    let all = NoteFilter::default();
    let of = |account: Option<&str>, invoice: Option<&str>| NoteFilter {
        account: account.map(acct),
        invoice: invoice.map(SmolStr::new),
    };
    let notes = |filter: &NoteFilter, after: Option<&str>, limit: usize| {
        store.notes(filter, after, limit).map_err(e)
    };
    ensure(
        notes(&all, None, 10)? == vec![n1.clone(), n3.clone(), d2.clone()],
        "notes in number order",
    )?;
    ensure(
        notes(&all, Some("CN-2026-000001"), 1)? == vec![n3.clone()],
        "note paging: after a number, at most limit",
    )?;
    ensure(
        notes(&all, Some("CN-2026-000003"), 10)? == vec![d2.clone()],
        "note paging: the last page",
    )?;
    ensure(notes(&all, None, 0)?.is_empty(), "a limit of 0 gives none")?;
    ensure(
        notes(&of(Some("a1"), None), None, 10)? == vec![n1.clone(), n3.clone()],
        "notes of an account",
    )?;
    ensure(
        notes(&of(Some("a1"), None), Some("CN-2026-000001"), 10)? == vec![n3.clone()],
        "paging the notes of an account",
    )?;
    ensure(
        notes(&of(None, Some("INV-3")), None, 10)? == vec![d2.clone()],
        "notes of an invoice",
    )?;
    ensure(
        notes(&of(Some("a1"), Some("INV-1")), None, 10)? == vec![n3],
        "notes of an account and invoice",
    )?;
    ensure(
        notes(&of(Some("a2"), Some("INV-1")), None, 10)?.is_empty(),
        "filters combine",
    )?;
    ensure(
        store.note("CN-2026-000001").map_err(e)? == Some(n1),
        "a note by number",
    )?;
    ensure(
        store.note_by_key("dk2").map_err(e)? == Some(d2),
        "a note by key",
    )?;

    // Dunning cases: by (account, invoice), in invoice order; replaced in place.
    let (c2, c1, c3) = (
        case("a1", "INV-2"),
        case("a1", "INV-1"),
        case("a2", "INV-3"),
    );
    store
        .commit(FinanceWrite {
            cases: vec![c2.clone(), c1.clone(), c3.clone()],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("dunning cases are added: {e}"))?;
    ensure(
        store.cases(&acct("a1")).map_err(e)? == vec![c1.clone(), c2.clone()],
        "an account's cases in invoice order, only its own",
    )?;
    ensure(
        store.case(&acct("a2"), "INV-3").map_err(e)? == Some(c3),
        "a case by account and invoice",
    )?;
    ensure(
        store.case(&acct("a1"), "INV-3").map_err(e)?.is_none(),
        "a case of another account",
    )?;
    let mut c1b = c1;
    c1b.applied.push(AppliedStep {
        step: "reminder".into(),
        action: "notify".into(),
        due_on: date(2026, 11, 19),
        applied_on: day(),
        at: at(4)?,
        run: collection_run_id(1),
        detail: "n-1".into(),
    });
    store
        .commit(FinanceWrite {
            cases: vec![c1b.clone()],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("a case is replaced: {e}"))?;
    ensure(
        store.cases(&acct("a1")).map_err(e)? == vec![c1b, c2],
        "a replaced case reads back and adds none",
    )?;

    // Account dunning states: upserted; suspended (not disconnected) ones are listed.
    let suspended = |store: &dyn FinanceStore| -> Result<Vec<AccountDunning>, String> {
        let mut all = store.unconverged_accounts().map_err(e)?;
        all.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(all)
    };
    let (s1, s2, s3) = (
        dunning("a1", true, false)?,
        dunning("a2", true, true)?,
        dunning("a3", false, false)?,
    );
    store
        .commit(FinanceWrite {
            accounts: vec![s1.clone(), s2, s3.clone()],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("account dunning states are added: {e}"))?;
    ensure(
        store.account_dunning(&acct("a3")).map_err(e)? == Some(s3),
        "an account dunning state reads back",
    )?;
    ensure(
        suspended(store)? == vec![s1],
        "suspended accounts: suspended and not disconnected",
    )?;
    let (r1, t3) = (dunning("a1", false, false)?, dunning("a3", true, false)?);
    store
        .commit(FinanceWrite {
            accounts: vec![r1.clone(), t3.clone()],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("account dunning states are replaced: {e}"))?;
    ensure(
        store.account_dunning(&acct("a1")).map_err(e)? == Some(r1),
        "a replaced account dunning state reads back",
    )?;
    ensure(
        suspended(store)? == vec![t3],
        "a resumed account is no longer suspended",
    )
}

/// The notification outbox.
pub(super) fn notifications(store: &dyn FinanceStore) -> Result<(), String> {
    let nb = notification("n-b", "a1", 20)?;
    let nc = notification("n-c", "a1", 10)?;
    let na = notification("n-a", "a2", 10)?;
    store
        .commit(FinanceWrite {
            notifications: vec![nb.clone(), nc.clone(), na.clone()],
            ..FinanceWrite::default()
        })
        .map_err(|e| format!("notifications are added: {e}"))?;
    let ids = |list: Vec<Notification>| list.into_iter().map(|n| n.id).collect::<Vec<_>>();
    let pending = |limit: usize| store.pending_notifications(limit).map_err(e).map(ids);
    ensure(
        pending(10)? == ["n-a", "n-c", "n-b"],
        "pending notifications oldest first (then by id)",
    )?;
    ensure(
        pending(2)? == ["n-a", "n-c"],
        "pending notifications: at most limit",
    )?;
    ensure(
        store.notifications(&acct("a1")).map_err(e)? == vec![nc.clone(), nb.clone()],
        "an account's notifications oldest first, only its own",
    )?;
    ensure(
        store.notification("n-b").map_err(e)? == Some(nb),
        "a notification reads back",
    )?;

    store
        .mark_notification("n-a", Some(at(30)?), None)
        .map_err(e)?;
    let a = store.notification("n-a").map_err(e)?.ok_or("n-a lost")?;
    ensure(
        a.delivered_at == Some(at(30)?) && a.attempts == 1,
        "a delivery is recorded (one attempt)",
    )?;
    ensure(
        pending(10)? == ["n-c", "n-b"],
        "a delivered notification is not pending",
    )?;

    store
        .mark_notification("n-c", None, Some("no route".into()))
        .map_err(e)?;
    store
        .mark_notification("n-c", None, Some("timeout".into()))
        .map_err(e)?;
    let c = store.notification("n-c").map_err(e)?.ok_or("n-c lost")?;
    ensure(
        c.attempts == 2 && c.last_error.as_deref() == Some("timeout") && c.delivered_at.is_none(),
        "failed deliveries count attempts and keep the last error",
    )?;
    ensure(
        pending(10)? == ["n-c", "n-b"],
        "a failed notification stays pending, in place",
    )?;

    store
        .mark_notification("n-a", None, Some("late failure".into()))
        .map_err(e)?;
    let a2 = store.notification("n-a").map_err(e)?.ok_or("n-a lost")?;
    ensure(
        a2.delivered_at == Some(at(30)?),
        "a delivered notification stays delivered",
    )?;
    ensure(
        pending(10)? == ["n-c", "n-b"],
        "a delivered notification does not become pending again",
    )?;
    ensure(
        store.notifications(&acct("a2")).map_err(e)? == vec![a2],
        "an account's notifications include delivered ones",
    )
}
