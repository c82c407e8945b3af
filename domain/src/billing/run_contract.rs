//! The contract every [`BillRunStore`] must keep; run it against each backend on a fresh store.
//! Returns the first broken promise instead of panicking, so any crate's tests can call it.

use jiff::Timestamp;
use jiff::civil::date;
use smol_str::SmolStr;

use super::cycle::Period;
use super::invoice::{Amount, InvoiceDraft, InvoiceTotals};
use super::numbering::NumberTemplate;
use super::run::{
    BillRun, BillRunStore, InvoiceCommit, InvoiceFilter, ItemState, NewInvoice, RunState, run_id,
};
use crate::admin::AuditRecord;
use crate::ids::{AccountId, BillCycleId, CustomerId};
use crate::money::Currency;

fn ensure(condition: bool, what: &str) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn at(offset_seconds: i64) -> Result<Timestamp, String> {
    Timestamp::from_second(1_800_000_000 + offset_seconds).map_err(|e| e.to_string())
}

fn period() -> Result<Period, String> {
    Period::new(date(2026, 10, 1), date(2026, 11, 1)).map_err(|e| e.to_string())
}

fn new_run(seq: u64, key: &str) -> Result<BillRun, String> {
    Ok(BillRun {
        id: run_id(seq),
        key: key.into(),
        cycle: BillCycleId::new("monthly"),
        period: period()?,
        state: RunState::Publishing,
        created_by: "finance".into(),
        created_at: at(0)?,
        published_at: None,
        finished_at: None,
        total: 0,
        billed: 0,
        already_billed: 0,
        failed: 0,
    })
}

fn audit(target: &str) -> Result<AuditRecord, String> {
    Ok(AuditRecord::new(
        at(0)?,
        "finance",
        "bill_run.create",
        target,
        "req-1",
        None,
        None,
    ))
}

fn draft(payer: &str, minor: i64) -> Result<InvoiceDraft, String> {
    let eur = Currency::from_code("EUR").map_err(|e| e.to_string())?;
    let amount = Amount::from_minor(minor, eur);
    Ok(InvoiceDraft {
        payer: AccountId::new(payer),
        customer: CustomerId::new(format!("c-{payer}")),
        currency: eur,
        period: period()?,
        next_period: Period::new(date(2026, 11, 1), date(2026, 12, 1))
            .map_err(|e| e.to_string())?,
        sections: Vec::new(),
        discounts: Vec::new(),
        tax_lines: Vec::new(),
        totals: InvoiceTotals {
            subtotal: amount,
            net: amount,
            tax: Amount::from_minor(0, eur),
            gross: amount,
        },
    })
}

fn invoice(run: &SmolStr, payer: &str, minor: i64) -> Result<NewInvoice, String> {
    Ok(NewInvoice {
        run: run.clone(),
        draft: draft(payer, minor)?,
        issued_on: date(2026, 11, 2),
        due_on: Some(date(2026, 11, 16)),
        issued_at: at(100)?,
        template: NumberTemplate::parse("INV-{yyyy}-{seq:06}").map_err(|e| e.to_string())?,
        series: String::new(),
    })
}

fn number(commit: &InvoiceCommit) -> Option<&str> {
    match commit {
        InvoiceCommit::Issued(i) => Some(i.number.as_str()),
        _ => None,
    }
}

/// Runs every check on `store`, which must be empty.
pub fn run(store: &dyn BillRunStore) -> Result<(), String> {
    let e = |e: crate::ledger::StoreError| e.to_string();
    let payers: Vec<AccountId> = ["a1", "a2", "a3"]
        .iter()
        .map(|p| AccountId::new(*p))
        .collect();
    let mut first = new_run(0, "oct-2026")?;
    first.total = 3;
    let (created, fresh) = store
        .create_run(first.clone(), &payers, audit("bill_run/1")?)
        .map_err(e)?;
    ensure(fresh && created.id == run_id(1), "the first run is br-1")?;
    first.id = created.id.clone();
    ensure(created == first, "a new run is created as given")?;
    let (again, fresh) = store
        .create_run(new_run(2, "oct-2026")?, &payers, audit("bill_run/2")?)
        .map_err(e)?;
    ensure(
        !fresh && again.id == first.id,
        "the same key answers with the first run",
    )?;
    ensure(
        store.run(&run_id(2)).map_err(e)?.is_none(),
        "a repeated key creates no run",
    )?;
    ensure(
        store.unpublished_runs().map_err(e)?.len() == 1,
        "a new run is unpublished",
    )?;
    let items = store.items(&first.id, false, None, 10).map_err(e)?;
    ensure(
        items.len() == 3 && items.iter().all(|i| i.state == ItemState::Pending),
        "one pending item per payer",
    )?;
    store.mark_published(&first.id, at(10)?).map_err(e)?;
    let r = store.run(&first.id).map_err(e)?.ok_or("run lost")?;
    ensure(
        r.state == RunState::Running && r.published_at == Some(at(10)?),
        "published",
    )?;
    ensure(
        store.unpublished_runs().map_err(e)?.is_empty(),
        "no unpublished run",
    )?;

    // Billing a1 twice (a redelivered job) writes one invoice.
    let c1 = store
        .commit_invoice(invoice(&first.id, "a1", 1000)?)
        .map_err(e)?;
    ensure(
        number(&c1) == Some("INV-2026-000001"),
        "first number of the series",
    )?;
    let c1b = store
        .commit_invoice(invoice(&first.id, "a1", 1000)?)
        .map_err(e)?;
    ensure(
        c1b == InvoiceCommit::Existing("INV-2026-000001".into()),
        "a redelivered job answers with the existing invoice",
    )?;
    let c2 = store
        .commit_invoice(invoice(&first.id, "a2", 2000)?)
        .map_err(e)?;
    ensure(
        number(&c2) == Some("INV-2026-000002"),
        "numbers have no gaps",
    )?;
    store
        .fail_item(
            &first.id,
            &AccountId::new("a3"),
            "billing.no_tax_rate",
            "no rate",
            at(20)?,
        )
        .map_err(e)?;
    store
        .fail_item(
            &first.id,
            &AccountId::new("a1"),
            "billing.no_tax_rate",
            "late",
            at(21)?,
        )
        .map_err(e)?;
    let r = store.run(&first.id).map_err(e)?.ok_or("run lost")?;
    ensure(
        (r.billed, r.failed, r.already_billed, r.state) == (2, 1, 0, RunState::Finished),
        "counts: 2 billed, 1 failed (a billed item does not fail later); finished",
    )?;
    let failed = store.items(&first.id, true, None, 10).map_err(e)?;
    ensure(
        failed.len() == 1
            && failed[0].payer.as_str() == "a3"
            && matches!(&failed[0].state, ItemState::Failed { reason, .. } if reason == "billing.no_tax_rate"),
        "the failed item keeps its reason",
    )?;

    // A second run for the same period (another key) bills only what is not billed yet.
    let mut second = new_run(0, "oct-2026-retry")?;
    second.total = 3;
    let (second, _) = store
        .create_run(second, &payers, audit("bill_run/3")?)
        .map_err(e)?;
    ensure(second.id == run_id(2), "run ids follow each other")?;
    store.mark_published(&second.id, at(30)?).map_err(e)?;
    let d1 = store
        .commit_invoice(invoice(&second.id, "a1", 1000)?)
        .map_err(e)?;
    ensure(
        d1 == InvoiceCommit::AlreadyBilled("INV-2026-000001".into()),
        "a payer invoiced for the period by another run is not invoiced again",
    )?;
    let d3 = store
        .commit_invoice(invoice(&second.id, "a3", 3000)?)
        .map_err(e)?;
    ensure(
        number(&d3) == Some("INV-2026-000003"),
        "a payer that failed before is billed",
    )?;
    store
        .commit_invoice(invoice(&second.id, "a2", 2000)?)
        .map_err(e)?;
    let r = store.run(&second.id).map_err(e)?.ok_or("run lost")?;
    ensure(
        (r.billed, r.already_billed, r.failed, r.state) == (1, 2, 0, RunState::Finished),
        "second run: 1 billed, 2 already billed",
    )?;

    // Reads.
    let inv = store
        .invoice("INV-2026-000002")
        .map_err(e)?
        .ok_or("invoice lost")?;
    ensure(
        inv.payer.as_str() == "a2" && inv.draft.totals.gross.minor == 2000 && inv.seq == 2,
        "an invoice reads back",
    )?;
    let all = store
        .invoices(&InvoiceFilter::default(), None, 10)
        .map_err(e)?;
    ensure(all.len() == 3, "three invoices in all")?;
    let page = store
        .invoices(&InvoiceFilter::default(), Some("INV-2026-000001"), 1)
        .map_err(e)?;
    ensure(
        page.len() == 1 && page[0].number == "INV-2026-000002",
        "invoice paging by number",
    )?;
    let of_a3 = store
        .invoices(
            &InvoiceFilter {
                payer: Some(AccountId::new("a3")),
                ..InvoiceFilter::default()
            },
            None,
            10,
        )
        .map_err(e)?;
    ensure(
        of_a3.len() == 1 && of_a3[0].run == second.id,
        "invoices by payer",
    )?;
    let runs = store.runs(None, 10).map_err(e)?;
    ensure(
        runs.len() == 2 && runs[0].id == second.id,
        "runs newest first",
    )?;
    let older = store.runs(Some(second.id.as_str()), 10).map_err(e)?;
    ensure(older.len() == 1 && older[0].id == first.id, "run paging")?;

    // A run without payers finishes when published.
    let (empty, _) = store
        .create_run(new_run(0, "empty")?, &[], audit("bill_run/4")?)
        .map_err(e)?;
    store.mark_published(&empty.id, at(40)?).map_err(e)?;
    let r = store.run(&empty.id).map_err(e)?.ok_or("run lost")?;
    ensure(
        r.state == RunState::Finished,
        "an empty run finishes when published",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_store_keeps_the_contract() {
        let store = super::super::run_memory::MemoryBillRunStore::new();
        super::run(&store).unwrap();
    }
}
