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
