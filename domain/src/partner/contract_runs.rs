//! Contract checks of refused writes and of settlement runs (see [`super`]).

use super::super::run::SettlementItemState;
use super::*;
use crate::billing::run::RunState;

/// Every way a write conflicts, each refused as a whole.
pub(super) fn refusals(store: &dyn PartnerStore) -> Result<(), String> {
    refused(store, 1, "a counter moved from a stale value", |w| {
        w.counters.push(("statement".into(), 3, 5));
        Ok(())
    })?;
    ensure(
        store.counter("statement").map_err(e)? == 4,
        "a refused counter move keeps the counter",
    )?;
    refused(store, 2, "a partner replaced from a stale version", |w| {
        w.partners.push((partner("p1", 3), 1));
        Ok(())
    })?;
    ensure(
        store.partner(&pid("p1")).map_err(e)? == Some(partner("p1", 2)),
        "a refused partner change keeps the partner",
    )?;
    refused(store, 3, "a stored partner added as new (version 0)", |w| {
        w.partners.push((partner("p3", 1), 0));
        Ok(())
    })?;
    refused(store, 4, "an absent partner replaced from version 1", |w| {
        w.partners.push((partner("p9", 2), 1));
        Ok(())
    })?;
    ensure(
        store.partner(&pid("p9")).map_err(e)?.is_none(),
        "a refused partner is not stored",
    )?;
    refused(store, 5, "a concurrent amendment of an agreement", |w| {
        w.agreements.push((agreement("agr-1", "p1", 3)?, 1));
        Ok(())
    })?;
    ensure(
        store.agreement("agr-1").map_err(e)? == Some(agreement("agr-1", "p1", 2)?),
        "a refused amendment keeps the agreement",
    )?;
    refused(store, 6, "a stored agreement added as new", |w| {
        w.agreements.push((agreement("agr-1", "p1", 1)?, 0));
        Ok(())
    })?;
    refused(store, 7, "a position replaced from a stale count", |w| {
        w.positions
            .push((position("p1", month(5), &["m1", "m2", "m3", "m4"])?, 2));
        Ok(())
    })?;
    refused(store, 8, "a stored position added as new", |w| {
        w.positions.push((position("p1", month(5), &["m9"])?, 0));
        Ok(())
    })?;
    ensure(
        store.position(&pid("p1"), month(5).start).map_err(e)?
            == Some(position("p1", month(5), &["m1", "m2", "m3"])?),
        "a refused position keeps the stored one",
    )?;
    refused(store, 9, "a statement with a stored number", |w| {
        w.statements.push(statement(Some("PS-1"), "p3", month(5))?);
        Ok(())
    })?;
    ensure(
        store.statement("PS-1").map_err(e)? == Some(statement(Some("PS-1"), "p1", march())?),
        "a refused statement keeps the stored one",
    )?;
    refused(
        store,
        10,
        "two statements with one number in a write",
        |w| {
            w.statements
                .push(statement(Some("PS-twice"), "p3", month(5))?);
            w.statements
                .push(statement(Some("PS-twice"), "p3", month(6))?);
            Ok(())
        },
    )?;
    ensure(
        store.statement("PS-twice").map_err(e)?.is_none(),
        "statements with a duplicate number are not stored",
    )?;
    refused(store, 11, "a statement without a number", |w| {
        w.statements.push(statement(None, "p3", month(7))?);
        Ok(())
    })?;
    refused(store, 12, "a reconciliation with a stored id", |w| {
        w.reconciliations.push(report("rec-1", "PS-3", "p2")?);
        Ok(())
    })?;
    ensure(
        store.reconciliations("PS-3").map_err(e)?.is_empty(),
        "a refused reconciliation is not stored",
    )?;
    item_share_refusals(store)
}

/// Item shares are counted once per (partner, period start, item).
fn item_share_refusals(store: &dyn PartnerStore) -> Result<(), String> {
    let before = item_shares(store, "p1", march().start, None, ALL)?;
    refused(store, 16, "an item share counted before", |w| {
        w.items.push(stored("p1", march(), "r1", 1)?);
        Ok(())
    })?;
    refused(store, 17, "one item share twice in a write", |w| {
        w.items.push(stored("p1", march(), "r-twice", 1)?);
        w.items.push(stored("p1", march(), "r-twice", 2)?);
        Ok(())
    })?;
    ensure(
        item_shares(store, "p1", march().start, None, ALL)? == before,
        "refused item shares keep the stored ones",
    )
}

/// Statements are updated only from the stage they are stored at (run after the lifecycle
/// checks: PS-1 released, PS-2 approved).
pub(super) fn statement_update_refusals(store: &dyn PartnerStore) -> Result<(), String> {
    let ps1 = stored_statement(store, "PS-1")?;
    let ps2 = stored_statement(store, "PS-2")?;
    ensure(
        ps1.stage() == StatementStage::Released && ps2.stage() == StatementStage::Approved,
        "the lifecycle checks left PS-1 released and PS-2 approved",
    )?;
    refused(store, 18, "a statement approved from a stale stage", |w| {
        let mut again = ps2.clone();
        again.approved = Some(step("eve", 40, "approved twice")?);
        w.statement_updates.push((again, StatementStage::Issued));
        Ok(())
    })?;
    refused(store, 19, "a released statement released again", |w| {
        let mut again = ps1.clone();
        again.released = Some(step("eve", 41, "PAY-twice")?);
        w.statement_updates.push((again, StatementStage::Approved));
        Ok(())
    })?;
    refused(store, 20, "an update of a statement not stored", |w| {
        let mut absent = statement(Some("PS-none"), "p3", month(6))?;
        absent.approved = Some(step("eve", 42, "unknown")?);
        w.statement_updates.push((absent, StatementStage::Issued));
        Ok(())
    })?;
    refused(
        store,
        21,
        "an update of a statement without a number",
        |w| {
            let mut unnumbered = statement(None, "p3", month(6))?;
            unnumbered.approved = Some(step("eve", 43, "unnumbered")?);
            w.statement_updates
                .push((unnumbered, StatementStage::Issued));
            Ok(())
        },
    )?;
    ensure(
        store.statement("PS-1").map_err(e)? == Some(ps1)
            && store.statement("PS-2").map_err(e)? == Some(ps2)
            && store.statement("PS-none").map_err(e)?.is_none(),
        "refused statement updates keep the stored statements",
    )
}

fn new_run(key: &str, total: u64) -> Result<SettlementRun, String> {
    Ok(SettlementRun {
        id: "ignored".into(),
        key: key.into(),
        period: march(),
        state: RunState::Publishing,
        created_by: "scheduler".into(),
        created_at: at(40)?,
        published_at: None,
        finished_at: None,
        total,
        settled: 0,
        failed: 0,
    })
}

fn settled(run: &str, partner: &str, number: &str, time: i64) -> Result<SettlementItem, String> {
    Ok(SettlementItem {
        run: run.into(),
        partner: pid(partner),
        state: SettlementItemState::Settled {
            statement: number.into(),
        },
        updated_at: at(time)?,
    })
}

fn resolve(item: SettlementItem) -> PartnerWrite {
    PartnerWrite {
        settlement_item: Some(item),
        ..PartnerWrite::default()
    }
}

/// Settlement runs and their items.
pub(super) fn settlement(store: &dyn PartnerStore) -> Result<(), String> {
    let run_of = |id: &str| -> Result<SettlementRun, String> {
        store
            .settlement_run(id)
            .map_err(e)?
            .ok_or_else(|| format!("settlement run {id} lost"))
    };
    let item_of = |run: &str, partner: &str| -> Result<SettlementItem, String> {
        store
            .settlement_item(run, &pid(partner))
            .map_err(e)?
            .ok_or_else(|| format!("settlement item {run}/{partner} lost"))
    };
    let partners = ["p3", "p1", "p2"].map(pid);
    let mut first = new_run("m1", 3)?;
    let (r1, fresh) = store
        .create_settlement_run(first.clone(), &partners, audit("settlement_run/m1")?)
        .map_err(e)?;
    ensure(
        fresh && r1.id == settlement_run_id(1),
        "the first settlement run is sr-1",
    )?;
    first.id = r1.id.clone();
    ensure(r1 == first, "a new run is created as given")?;
    ensure(run_of(&r1.id)? == r1, "a run reads back")?;
    let (again, fresh) = store
        .create_settlement_run(
            new_run("m1", 1)?,
            &[pid("p9")],
            audit("settlement_run/m1-again")?,
        )
        .map_err(e)?;
    ensure(
        !fresh && again == r1,
        "the same key answers with the first run",
    )?;
    ensure(
        store
            .settlement_run(&settlement_run_id(2))
            .map_err(e)?
            .is_none()
            && store
                .settlement_item(&r1.id, &pid("p9"))
                .map_err(e)?
                .is_none(),
        "a repeated key writes nothing",
    )?;
    ensure(
        store.unpublished_settlement_runs().map_err(e)? == vec![r1.clone()],
        "a new run is unpublished",
    )?;
    let items = store.settlement_items(&r1.id, false, None, 10).map_err(e)?;
    ensure(
        items.iter().map(|i| i.partner.as_str()).collect::<Vec<_>>() == ["p1", "p2", "p3"]
            && items.iter().all(|i| {
                i.state == SettlementItemState::Pending
                    && i.run == r1.id
                    && i.updated_at == r1.created_at
            }),
        "one pending item per partner, in partner order",
    )?;
    let page = store
        .settlement_items(&r1.id, false, Some(&pid("p1")), 1)
        .map_err(e)?;
    ensure(
        page.len() == 1 && page[0].partner.as_str() == "p2",
        "item paging: after a partner, at most limit",
    )?;
    ensure(
        store
            .settlement_items(&r1.id, false, Some(&pid("p3")), 10)
            .map_err(e)?
            .is_empty()
            && store
                .settlement_items(&r1.id, false, None, 0)
                .map_err(e)?
                .is_empty(),
        "item paging: nothing after the last, nothing for limit 0",
    )?;

    // Settling an item counts it on its run, in the same write as its statement.
    let p1 = settled(&r1.id, "p1", "PS-10", 50)?;
    let mut write = resolve(p1.clone());
    let issued = statement(Some("PS-10"), "p1", month(4))?;
    write.statements.push(issued.clone());
    write.counters.push(("statement".into(), 4, 10));
    write.audit.push(audit("settlement_item/p1")?);
    store
        .commit(write)
        .map_err(|e| format!("a pending item is settled: {e}"))?;
    ensure(item_of(&r1.id, "p1")? == p1, "a settled item reads back")?;
    ensure(
        store.statement("PS-10").map_err(e)? == Some(issued),
        "the rest of the write is stored with the item",
    )?;
    let r = run_of(&r1.id)?;
    ensure(
        r.settled == 1 && r.state == RunState::Publishing,
        "an item is counted; a publishing run does not finish",
    )?;

    refused(store, 13, "a settled item settled again", |w| {
        w.settlement_item = Some(settled(&r1.id, "p1", "PS-11", 55)?);
        Ok(())
    })?;
    refused(store, 14, "an item the run does not have", |w| {
        w.settlement_item = Some(settled(&r1.id, "p9", "PS-12", 55)?);
        Ok(())
    })?;
    ensure(
        store
            .settlement_item(&r1.id, &pid("p9"))
            .map_err(e)?
            .is_none(),
        "a refused item is not stored",
    )?;

    // Failing: a settled item stays settled; a pending one fails once.
    store
        .fail_settlement_item(&r1.id, &pid("p1"), "partner.late", "late", at(56)?)
        .map_err(e)?;
    ensure(
        item_of(&r1.id, "p1")? == p1 && run_of(&r1.id)?.failed == 0,
        "a settled item stays settled",
    )?;
    store
        .fail_settlement_item(
            &r1.id,
            &pid("p2"),
            "agreement.not_in_force",
            "none",
            at(57)?,
        )
        .map_err(e)?;
    store
        .fail_settlement_item(
            &r1.id,
            &pid("p2"),
            "agreement.not_in_force",
            "again",
            at(58)?,
        )
        .map_err(e)?;
    let p2 = item_of(&r1.id, "p2")?;
    ensure(
        matches!(&p2.state, SettlementItemState::Failed { reason, message }
            if reason == "agreement.not_in_force" && message == "none"),
        "a pending item fails with its reason",
    )?;
    let r = run_of(&r1.id)?;
    ensure(
        (r.settled, r.failed) == (1, 1),
        "a failed item is counted once",
    )?;
    ensure(
        store
            .fail_settlement_item(&r1.id, &pid("p9"), "x", "x", at(58)?)
            .is_err(),
        "failing an item the run does not have is an error",
    )?;
    refused(store, 15, "a failed item settled", |w| {
        w.settlement_item = Some(settled(&r1.id, "p2", "PS-13", 59)?);
        Ok(())
    })?;

    // Publishing: running while items are pending; a second mark changes nothing.
    store
        .mark_settlement_published(&r1.id, at(60)?)
        .map_err(e)?;
    let r = run_of(&r1.id)?;
    ensure(
        r.state == RunState::Running && r.published_at == Some(at(60)?),
        "a published run with pending items runs",
    )?;
    ensure(
        store.unpublished_settlement_runs().map_err(e)?.is_empty(),
        "no unpublished run",
    )?;
    store
        .mark_settlement_published(&r1.id, at(70)?)
        .map_err(e)?;
    ensure(
        run_of(&r1.id)?.published_at == Some(at(60)?),
        "publishing twice keeps the first time",
    )?;
    ensure(
        store.mark_settlement_published("sr-none", at(70)?).is_err(),
        "publishing an unknown run is an error",
    )?;
    store
        .commit(resolve(settled(&r1.id, "p3", "PS-14", 80)?))
        .map_err(|e| format!("the last item is settled: {e}"))?;
    let r = run_of(&r1.id)?;
    ensure(
        r.state == RunState::Finished
            && r.finished_at == Some(at(80)?)
            && (r.settled, r.failed) == (2, 1),
        "the last item finishes a running run",
    )?;
    let failed = store.settlement_items(&r1.id, true, None, 10).map_err(e)?;
    ensure(failed == vec![p2], "only failed items when asked")?;

    // A run whose items are resolved before it is published finishes when published.
    let (r2, fresh) = store
        .create_settlement_run(new_run("m2", 1)?, &[pid("b1")], audit("settlement_run/m2")?)
        .map_err(e)?;
    ensure(
        fresh && r2.id == settlement_run_id(2),
        "run ids follow each other",
    )?;
    store
        .commit(resolve(settled(&r2.id, "b1", "PS-15", 85)?))
        .map_err(|e| format!("an item of a publishing run is settled: {e}"))?;
    ensure(
        run_of(&r2.id)?.state == RunState::Publishing,
        "a publishing run does not finish",
    )?;
    store
        .mark_settlement_published(&r2.id, at(90)?)
        .map_err(e)?;
    let r = run_of(&r2.id)?;
    ensure(
        r.state == RunState::Finished
            && r.published_at == Some(at(90)?)
            && r.finished_at == Some(at(90)?),
        "a run with every item resolved finishes when published",
    )?;

    // A run without partners finishes when published.
    let (r3, _) = store
        .create_settlement_run(new_run("m3", 0)?, &[], audit("settlement_run/m3")?)
        .map_err(e)?;
    store
        .mark_settlement_published(&r3.id, at(95)?)
        .map_err(e)?;
    ensure(
        run_of(&r3.id)?.state == RunState::Finished,
        "an empty run finishes when published",
    )?;

    let ids = |runs: Vec<SettlementRun>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    ensure(
        ids(store.settlement_runs(None, 10).map_err(e)?)
            == [r3.id.clone(), r2.id.clone(), r1.id.clone()],
        "runs newest first",
    )?;
    ensure(
        ids(store.settlement_runs(Some(&r3.id), 1).map_err(e)?) == [r2.id.clone()],
        "run paging: before an id, at most limit",
    )?;
    ensure(
        store
            .settlement_runs(Some(&r1.id), 10)
            .map_err(e)?
            .is_empty(),
        "nothing before the first run",
    )
}
