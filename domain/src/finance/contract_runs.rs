//! Contract checks of refused writes and of collection runs (see [`super`]).

use std::collections::BTreeMap;

use super::super::collection::CollectionItemState;
use super::*;
use crate::billing::run::RunState;

/// Every way a write conflicts, each refused as a whole.
pub(super) fn refusals(store: &dyn FinanceStore) -> Result<(), String> {
    refused(store, 1, "a counter moved from a stale value", |w| {
        w.counters.push(("payment".into(), 3, 5));
        Ok(())
    })?;
    ensure(
        store.counter("payment").map_err(e)? == 4,
        "a refused counter move keeps the counter",
    )?;
    refused(store, 2, "a counter never moved read as 1", |w| {
        w.counters.push(("never".into(), 1, 2));
        Ok(())
    })?;
    refused(store, 3, "a period replaced from a stale version", |w| {
        w.periods.push((period("2026-01", 3)?, 1));
        Ok(())
    })?;
    ensure(
        store.period("2026-01").map_err(e)? == Some(period("2026-01", 2)?),
        "a refused period change keeps the period",
    )?;
    refused(store, 4, "a stored period added as new (version 0)", |w| {
        w.periods.push((period("2026-02", 5)?, 0));
        Ok(())
    })?;
    refused(store, 5, "an absent period replaced from version 1", |w| {
        w.periods.push((period("2027-07", 2)?, 1));
        Ok(())
    })?;
    ensure(
        store.period("2027-07").map_err(e)?.is_none(),
        "a refused period is not stored",
    )?;
    refused(store, 6, "an entry with a stored key", |w| {
        w.entries.push(entry("z-first", "a3", 1)?);
        Ok(())
    })?;
    ensure(
        store.entry("z-first").map_err(e)? == Some(entry("z-first", "a1", -10_000)?),
        "a refused entry keeps the stored one",
    )?;
    refused(store, 7, "two entries with one key in a write", |w| {
        w.entries.push(entry("twice", "a3", 1)?);
        w.entries.push(entry("twice", "a3", 2)?);
        Ok(())
    })?;
    ensure(
        store.entry("twice").map_err(e)?.is_none(),
        "entries with a duplicate key are not stored",
    )?;
    refused(store, 8, "another payment with a stored key", |w| {
        w.payments.push(payment("pay-9", "k1", "a1")?);
        Ok(())
    })?;
    ensure(
        store.payment("pay-9").map_err(e)?.is_none()
            && store
                .payment_by_key("k1")
                .map_err(e)?
                .is_some_and(|p| p.id == "pay-1"),
        "a payment with a used key is not stored; the key keeps its payment",
    )?;
    refused(store, 9, "a refund with a stored key", |w| {
        w.refunds.push(refund("ref-9", "rk1", "pay-3", "a2")?);
        Ok(())
    })?;
    refused(store, 10, "a refund with a stored id", |w| {
        w.refunds.push(refund("ref-1", "rk9", "pay-3", "a2")?);
        Ok(())
    })?;
    ensure(
        store.refund_by_key("rk9").map_err(e)?.is_none(),
        "a refund with a used id is not stored",
    )?;
    refused(store, 11, "a note with a stored number", |w| {
        w.notes.push(note("CN-2026-000001", "nk9", "a3", "INV-9")?);
        Ok(())
    })?;
    ensure(
        store.note_by_key("nk9").map_err(e)?.is_none(),
        "a note with a used number is not stored",
    )?;
    refused(store, 12, "a note with a stored key", |w| {
        w.notes.push(note("CN-2026-000009", "nk1", "a3", "INV-9")?);
        Ok(())
    })?;
    ensure(
        store.note("CN-2026-000009").map_err(e)?.is_none(),
        "a note with a used key is not stored",
    )?;
    refused(store, 13, "a notification with a stored id", |w| {
        let mut n = notification("n-b", "a3", 40)?;
        n.body = "again".into();
        w.notifications.push(n);
        Ok(())
    })?;
    ensure(
        store.notification("n-b").map_err(e)? == Some(notification("n-b", "a1", 20)?),
        "a refused notification keeps the stored one",
    )
}

fn new_run(key: &str, total: u64) -> Result<CollectionRun, String> {
    Ok(CollectionRun {
        id: "ignored".into(),
        key: key.into(),
        as_of: day(),
        state: RunState::Publishing,
        created_by: "scheduler".into(),
        created_at: at(40)?,
        published_at: None,
        finished_at: None,
        total,
        processed: 0,
        failed: 0,
        steps: BTreeMap::new(),
    })
}

fn processed(run: &str, account: &str, step: &str, time: i64) -> Result<CollectionItem, String> {
    Ok(CollectionItem {
        run: run.into(),
        account: acct(account),
        state: CollectionItemState::Processed {
            applied: vec![format!("INV-1:{step}").into()],
        },
        updated_at: at(time)?,
    })
}

fn resolve(item: CollectionItem, actions: &[&str]) -> FinanceWrite {
    FinanceWrite {
        collection_item: Some((item, actions.iter().map(|a| SmolStr::new(*a)).collect())),
        ..FinanceWrite::default()
    }
}

fn steps(pairs: &[(&str, u64)]) -> BTreeMap<SmolStr, u64> {
    pairs.iter().map(|(a, n)| (SmolStr::new(*a), *n)).collect()
}

/// Collection runs and their items.
pub(super) fn collection(store: &dyn FinanceStore) -> Result<(), String> {
    let run_of = |id: &str| -> Result<CollectionRun, String> {
        store
            .collection_run(id)
            .map_err(e)?
            .ok_or_else(|| format!("collection run {id} lost"))
    };
    let item_of = |run: &str, account: &str| -> Result<CollectionItem, String> {
        store
            .collection_item(run, &acct(account))
            .map_err(e)?
            .ok_or_else(|| format!("collection item {run}/{account} lost"))
    };
    let accounts = ["a3", "a1", "a2"].map(acct);
    let mut first = new_run("d1", 3)?;
    let (r1, fresh) = store
        .create_collection_run(first.clone(), &accounts, audit("collection_run/d1")?)
        .map_err(e)?;
    ensure(
        fresh && r1.id == collection_run_id(1),
        "the first collection run is cr-1",
    )?;
    first.id = r1.id.clone();
    ensure(r1 == first, "a new run is created as given")?;
    ensure(run_of(&r1.id)? == r1, "a run reads back")?;
    let (again, fresh) = store
        .create_collection_run(
            new_run("d1", 1)?,
            &[acct("a9")],
            audit("collection_run/d1-again")?,
        )
        .map_err(e)?;
    ensure(
        !fresh && again == r1,
        "the same key answers with the first run",
    )?;
    ensure(
        store
            .collection_run(&collection_run_id(2))
            .map_err(e)?
            .is_none()
            && store
                .collection_item(&r1.id, &acct("a9"))
                .map_err(e)?
                .is_none(),
        "a repeated key writes nothing",
    )?;
    ensure(
        store.unpublished_collection_runs().map_err(e)? == vec![r1.clone()],
        "a new run is unpublished",
    )?;
    let items = store.collection_items(&r1.id, false, None, 10).map_err(e)?;
    ensure(
        items.iter().map(|i| i.account.as_str()).collect::<Vec<_>>() == ["a1", "a2", "a3"]
            && items.iter().all(|i| {
                i.state == CollectionItemState::Pending
                    && i.run == r1.id
                    && i.updated_at == r1.created_at
            }),
        "one pending item per account, in account order",
    )?;
    let page = store
        .collection_items(&r1.id, false, Some(&acct("a1")), 1)
        .map_err(e)?;
    ensure(
        page.len() == 1 && page[0].account.as_str() == "a2",
        "item paging: after an account, at most limit",
    )?;
    ensure(
        store
            .collection_items(&r1.id, false, Some(&acct("a3")), 10)
            .map_err(e)?
            .is_empty(),
        "item paging: nothing after the last",
    )?;

    // Resolving an item counts it on its run, in the same write as the rest.
    let a1 = processed(&r1.id, "a1", "penalty", 50)?;
    let mut write = resolve(a1.clone(), &["notify", "penalty"]);
    let penalty = entry("dunning:a1:INV-1:penalty", "a1", 200)?;
    write.entries.push(penalty.clone());
    write.audit.push(audit("collection_item/a1")?);
    store
        .commit(write)
        .map_err(|e| format!("a pending item is resolved: {e}"))?;
    ensure(item_of(&r1.id, "a1")? == a1, "a resolved item reads back")?;
    ensure(
        store.entry(&penalty.key).map_err(e)? == Some(penalty),
        "the rest of the write is stored with the item",
    )?;
    let r = run_of(&r1.id)?;
    ensure(
        r.processed == 1
            && r.steps == steps(&[("notify", 1), ("penalty", 1)])
            && r.state == RunState::Publishing,
        "an item is counted with its steps; a publishing run does not finish",
    )?;

    refused(store, 14, "a processed item resolved again", |w| {
        w.collection_item = Some((
            processed(&r1.id, "a1", "suspend", 55)?,
            vec!["suspend".into()],
        ));
        Ok(())
    })?;
    refused(store, 15, "an item the run does not have", |w| {
        w.collection_item = Some((
            processed(&r1.id, "a9", "notify", 55)?,
            vec!["notify".into()],
        ));
        Ok(())
    })?;
    ensure(
        store
            .collection_item(&r1.id, &acct("a9"))
            .map_err(e)?
            .is_none(),
        "a refused item is not stored",
    )?;

    // Failing: a processed item stays processed; a pending one fails once.
    store
        .fail_collection_item(&r1.id, &acct("a1"), "dunning.late", "late", at(56)?)
        .map_err(e)?;
    ensure(
        item_of(&r1.id, "a1")? == a1 && run_of(&r1.id)?.failed == 0,
        "a processed item stays processed",
    )?;
    store
        .fail_collection_item(&r1.id, &acct("a2"), "dunning.no_policy", "none", at(57)?)
        .map_err(e)?;
    store
        .fail_collection_item(&r1.id, &acct("a2"), "dunning.no_policy", "again", at(58)?)
        .map_err(e)?;
    let a2 = item_of(&r1.id, "a2")?;
    ensure(
        matches!(&a2.state, CollectionItemState::Failed { reason, .. } if reason == "dunning.no_policy"),
        "a pending item fails with its reason",
    )?;
    let r = run_of(&r1.id)?;
    ensure(
        (r.processed, r.failed) == (1, 1),
        "a failed item is counted once",
    )?;
    refused(store, 16, "a failed item resolved", |w| {
        w.collection_item = Some((
            processed(&r1.id, "a2", "notify", 59)?,
            vec!["notify".into()],
        ));
        Ok(())
    })?;

    // Publishing: running while items are pending; a second mark changes nothing.
    store
        .mark_collection_published(&r1.id, at(60)?)
        .map_err(e)?;
    let r = run_of(&r1.id)?;
    ensure(
        r.state == RunState::Running && r.published_at == Some(at(60)?),
        "a published run with pending items runs",
    )?;
    ensure(
        store.unpublished_collection_runs().map_err(e)?.is_empty(),
        "no unpublished run",
    )?;
    store
        .mark_collection_published(&r1.id, at(70)?)
        .map_err(e)?;
    ensure(
        run_of(&r1.id)?.published_at == Some(at(60)?),
        "publishing twice keeps the first time",
    )?;
    store
        .commit(resolve(
            processed(&r1.id, "a3", "suspend", 80)?,
            &["suspend"],
        ))
        .map_err(|e| format!("the last item is resolved: {e}"))?;
    let r = run_of(&r1.id)?;
    ensure(
        r.state == RunState::Finished
            && r.finished_at == Some(at(80)?)
            && (r.processed, r.failed) == (2, 1)
            && r.steps == steps(&[("notify", 1), ("penalty", 1), ("suspend", 1)]),
        "the last item finishes a running run",
    )?;
    let failed = store.collection_items(&r1.id, true, None, 10).map_err(e)?;
    ensure(failed == vec![a2], "only failed items when asked")?;

    // A run whose items are resolved before it is published finishes when published.
    let (r2, fresh) = store
        .create_collection_run(
            new_run("d2", 1)?,
            &[acct("b1")],
            audit("collection_run/d2")?,
        )
        .map_err(e)?;
    ensure(
        fresh && r2.id == collection_run_id(2),
        "run ids follow each other",
    )?;
    store
        .commit(resolve(
            processed(&r2.id, "b1", "reminder", 85)?,
            &["notify"],
        ))
        .map_err(|e| format!("an item of a publishing run is resolved: {e}"))?;
    ensure(
        run_of(&r2.id)?.state == RunState::Publishing,
        "a publishing run does not finish",
    )?;
    store
        .mark_collection_published(&r2.id, at(90)?)
        .map_err(e)?;
    let r = run_of(&r2.id)?;
    ensure(
        r.state == RunState::Finished
            && r.published_at == Some(at(90)?)
            && r.finished_at == Some(at(90)?),
        "a run with every item resolved finishes when published",
    )?;

    // A run without accounts finishes when published.
    let (r3, _) = store
        .create_collection_run(new_run("d3", 0)?, &[], audit("collection_run/d3")?)
        .map_err(e)?;
    store
        .mark_collection_published(&r3.id, at(95)?)
        .map_err(e)?;
    ensure(
        run_of(&r3.id)?.state == RunState::Finished,
        "an empty run finishes when published",
    )?;

    let ids = |runs: Vec<CollectionRun>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    ensure(
        ids(store.collection_runs(None, 10).map_err(e)?)
            == [r3.id.clone(), r2.id.clone(), r1.id.clone()],
        "runs newest first",
    )?;
    ensure(
        ids(store.collection_runs(Some(&r3.id), 1).map_err(e)?) == [r2.id.clone()],
        "run paging: before an id, at most limit",
    )?;
    ensure(
        store
            .collection_runs(Some(&r1.id), 10)
            .map_err(e)?
            .is_empty(),
        "nothing before the first run",
    )
}
