//! The demo's bill run: last month's invoices of the demo corporate, through the same run
//! record, embedded job queue and worker actor a production node uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tollgate_domain::billing::run::{InvoiceFilter, RunState};

use crate::billing::{Billing, StartRun, off_thread};

/// Bills the previous month of the `monthly` cycle and returns the summary lines.
pub async fn bill_last_month(billing: Arc<Billing>) -> Result<String, String> {
    let today = billing.today(Timestamp::now());
    let first = today.first_of_month();
    let last_month = first
        .checked_sub(jiff::Span::new().months(1))
        .map_err(|e| e.to_string())?;
    let period = format!("{:04}-{:02}", last_month.year(), last_month.month());
    let request = StartRun {
        cycle: "monthly".into(),
        period: serde_json::from_value(serde_json::json!(period)).map_err(|e| e.to_string())?,
        key: format!("demo-{period}"),
    };
    let b = billing.clone();
    let (run, _) = tokio::task::spawn_blocking(move || {
        b.create(&request, "demo", "demo", Timestamp::now())
            .map_err(|e| format!("{}: {e}", e.code()))
    })
    .await
    .map_err(|e| e.to_string())??;
    billing.publish(&run).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let (b, id) = (billing.clone(), run.id.clone());
        let now = off_thread(move || b.runs.run(&id))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("bill run lost")?;
        if now.state == RunState::Finished || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (b, id) = (billing.clone(), run.id.clone());
    let filter = InvoiceFilter {
        run: Some(id),
        ..InvoiceFilter::default()
    };
    let invoices = off_thread(move || b.runs.invoices(&filter, None, 100))
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = format!(
        "bill run {} ({period}, monthly): {} payers, {} billed, {} failed, state {:?}",
        run.id, run.total, run.billed, run.failed, run.state
    );
    for i in &invoices {
        lines.push_str(&format!(
            "\n  invoice {} for {}: {} sections, net {} + tax {} = {} {}",
            i.number,
            i.payer,
            i.draft.sections.len(),
            i.draft.totals.net.money.amount,
            i.draft.totals.tax.money.amount,
            i.draft.totals.gross.money.amount,
            i.draft.currency.code()
        ));
    }
    Ok(lines)
}

/// Pays the first invoice of last month's run by card token (allocated to it, oldest first) and
/// returns the payer's statement lines: what a cashier and a care agent see.
pub async fn pay_first_invoice(
    billing: Arc<Billing>,
    finance: Arc<crate::finance::Finance>,
) -> Result<String, String> {
    let b = billing.clone();
    let invoices = off_thread(move || b.runs.invoices(&InvoiceFilter::default(), None, 1))
        .await
        .map_err(|e| e.to_string())?;
    let Some(invoice) = invoices.into_iter().next() else {
        return Ok("no invoice to pay".into());
    };
    let request = crate::finance::payments::PaymentRequest {
        key: format!("demo-pay-{}", invoice.number),
        account: invoice.payer.to_string(),
        subscriber: None,
        amount: invoice.draft.totals.gross.money.amount,
        currency: invoice.draft.currency,
        method: tollgate_domain::finance::PaymentMethod::Card {
            token: "tok_demo_visa".into(),
            gateway: Some("demo".into()),
        },
        received_on: None,
        cashier: None,
        reference: Some("demo".into()),
        allocations: None,
    };
    let by = crate::finance::payments::Actor {
        principal: "demo".into(),
        request_id: "demo".into(),
    };
    let f = finance.clone();
    let payer = invoice.payer.clone();
    let statement = crate::finance::off_thread(move || {
        let (payment, _) = f.record_payment(&request, &by)?;
        let r = f.receivables(&payment.account)?;
        let today = f.today();
        let from = r
            .invoices
            .iter()
            .map(|i| i.issued_on)
            .min()
            .unwrap_or(today);
        Ok((
            payment,
            tollgate_domain::finance::statement::build_statement(
                &payer,
                r.account.currency,
                &r.invoices,
                &r.entries,
                from,
                today,
            )?,
        ))
    })
    .await
    .map_err(|e| format!("{}: {e}", e.code()))?;
    let (payment, statement) = statement;
    let mut lines = format!(
        "payment {} by card token: {} {} allocated to {}",
        payment.id,
        payment.amount.amount,
        payment.amount.currency.code(),
        payment
            .allocations
            .iter()
            .map(|a| a.invoice.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    lines.push_str(&format!("\n  statement of {}:", statement.account));
    for l in &statement.lines {
        lines.push_str(&format!(
            "\n    {} {:<12} {:<26} debit {:>8} credit {:>8} balance {:>8}",
            l.on,
            serde_json::to_value(l.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            l.document,
            l.debit.amount,
            l.credit.amount,
            l.balance.amount
        ));
    }
    Ok(lines)
}
