//! The bill-cycle worker actor: consumes bill-cycle jobs with a bounded prefetch, builds each
//! payer's convergent invoice from the hierarchy, subscriptions, the billing setup and the
//! ledger's rated usage, writes it exactly once, then acknowledges the job.
//!
//! - A payer that cannot be billed (no tax rate, no price in its currency, ...) is marked failed
//!   on the run with the reason code, and its job is dead-lettered with the same reason; the rest
//!   of the run goes on.
//! - A storage failure requeues the job; after `attempts_max` deliveries it is dead-lettered
//!   (`storage.*`) and marked failed, so a broken item never stalls a run.
//! - A job is acknowledged only after its invoice (or failure) is durable: a crash before the ack
//!   means redelivery, and the store answers a redelivered job with the invoice already written.

use std::sync::Arc;

use actix::{Actor, AsyncContext, Context, Supervised};
use jiff::Timestamp;
use smol_str::SmolStr;
use tollgate_adapters::jobs::{Delivery, JobKind};
use tollgate_domain::billing::run::{InvoiceCommit, ItemState, NewInvoice};
use tollgate_domain::billing::{
    AccountCharges, BillingError, InvoiceInput, NumberTemplate, build_invoice, find_cycle,
    merge_usage, summarize_usage,
};
use tollgate_domain::finance::collect::find_policy;
use tollgate_domain::ids::AccountId;
use tollgate_domain::ledger::{Mode, StoreError};

use super::Billing;
use crate::workers::{JobEnd, settle};

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Invoiced now.
    Billed(SmolStr),
    /// Resolved before (redelivery, or invoiced by another run): nothing written.
    AlreadyDone(SmolStr),
    /// Not billable: recorded on the run; the job goes to the dead-letter queue.
    Failed {
        /// Reason code.
        reason: String,
        /// Explanation.
        message: String,
    },
    /// A storage failure: try again later.
    Retry(String),
}

fn failed(e: &BillingError) -> ItemOutcome {
    ItemOutcome::Failed {
        reason: e.code().to_string(),
        message: e.to_string(),
    }
}

impl Billing {
    /// Bills `payer` for `run` (blocking storage calls; call off the async workers).
    pub fn bill_item(&self, run: &str, payer: &AccountId, now: Timestamp) -> ItemOutcome {
        let outcome = match self.try_bill(run, payer, now) {
            Ok(outcome) => outcome,
            Err(e) => return ItemOutcome::Retry(e.to_string()),
        };
        if let ItemOutcome::Failed { reason, message } = &outcome
            && reason != "billing.unknown_run"
            && reason != "billing.unknown_run_item"
            && let Err(e) = self.runs.fail_item(run, payer, reason, message, now)
        {
            return ItemOutcome::Retry(e.to_string());
        }
        outcome
    }

    fn try_bill(
        &self,
        run_id: &str,
        payer: &AccountId,
        now: Timestamp,
    ) -> Result<ItemOutcome, StoreError> {
        let Some(run) = self.runs.run(run_id)? else {
            return Ok(ItemOutcome::Failed {
                reason: "billing.unknown_run".into(),
                message: format!("no bill run {run_id}"),
            });
        };
        let Some(item) = self.runs.item(run_id, payer)? else {
            return Ok(ItemOutcome::Failed {
                reason: "billing.unknown_run_item".into(),
                message: format!("run {run_id} has no payer {payer}"),
            });
        };
        match item.state {
            ItemState::Billed { invoice } | ItemState::AlreadyBilled { invoice } => {
                return Ok(ItemOutcome::AlreadyDone(invoice));
            }
            ItemState::Pending | ItemState::Failed { .. } => {}
        }
        let setup = self.customers.setup()?;
        let cycle = match find_cycle(&setup.cycles, &run.cycle) {
            Ok(c) => c.clone(),
            Err(e) => return Ok(failed(&e)),
        };
        let template = match NumberTemplate::parse(&setup.invoice_number_template) {
            Ok(t) => t,
            Err(e) => return Ok(failed(&e)),
        };
        let forest = self.customers.forest()?;
        let subtree = match forest.billed_subtree(payer) {
            Ok(s) => s,
            Err(e) => return Ok(failed(&e)),
        };
        let Some(payer_account) = forest.get(payer) else {
            return Ok(failed(&BillingError::UnknownAccount(payer.clone())));
        };
        let currency = payer_account.currency;
        let zone = |d: jiff::civil::Date| {
            d.to_zoned(self.timezone.clone())
                .map(|z| z.timestamp())
                .map_err(|e| StoreError::Io(format!("period boundary: {e}")))
        };
        let (from, to) = (zone(run.period.start)?, zone(run.period.end)?);
        let mut accounts = Vec::with_capacity(subtree.len());
        for billed in &subtree {
            let Some(account) = forest.get(&billed.account).cloned() else {
                return Ok(failed(&BillingError::UnknownAccount(
                    billed.account.clone(),
                )));
            };
            let customer_name = self
                .customers
                .customer(&account.customer)?
                .map(|c| c.display_name())
                .unwrap_or_else(|| account.customer.to_string());
            let subscriptions = self.customers.subscriptions_of(&account.id)?;
            let mut usage = Vec::new();
            for sub in &subscriptions {
                let Some(subscriber) = &sub.subscriber else {
                    continue;
                };
                // Prepaid usage was paid from the balance when it was rated.
                if self
                    .profiles
                    .get(subscriber)
                    .is_some_and(|p| p.mode == Mode::Prepaid)
                {
                    continue;
                }
                let rows = self.ledger.recent_usage(subscriber, usize::MAX)?;
                let (summary, unreadable) = match summarize_usage(
                    rows.iter().map(Vec::as_slice),
                    from,
                    to,
                    &account.id,
                    currency,
                ) {
                    Ok(s) => s,
                    Err(e) => return Ok(failed(&e)),
                };
                if unreadable > 0 {
                    return Ok(ItemOutcome::Failed {
                        reason: "billing.unreadable_usage".into(),
                        message: format!(
                            "{unreadable} stored usage records of subscriber {subscriber} cannot \
                             be read; refusing to invoice without them"
                        ),
                    });
                }
                if let Err(e) = merge_usage(&mut usage, summary) {
                    return Ok(failed(&e));
                }
            }
            accounts.push(AccountCharges {
                account,
                customer_name,
                subscriptions,
                usage,
            });
        }
        let input = InvoiceInput {
            payer: payer.clone(),
            cycle,
            period: run.period,
            accounts,
            price_list: setup.price_list.clone(),
            discounts: setup.discounts.clone(),
            tax_scheme: setup.tax_scheme.clone(),
        };
        let draft = match build_invoice(&input) {
            Ok(d) => d,
            Err(e) => return Ok(failed(&e)),
        };
        // The pay-by date: the payer's dunning policy's term, or the default payment term.
        let issued_on = self.today(now);
        let class = match self.customers.customer(&payer_account.customer)? {
            Some(c) => c.credit_class,
            None => None,
        };
        let terms = find_policy(&setup.dunning_policies, class.as_deref())
            .map_or(setup.payment_terms_days, |p| p.pay_by_days);
        let due_on = issued_on
            .checked_add(jiff::Span::new().days(i64::from(terms)))
            .ok();
        let commit = self.runs.commit_invoice(NewInvoice {
            run: run.id.clone(),
            draft,
            issued_on,
            due_on,
            issued_at: now,
            template,
            series: self.series.clone(),
        })?;
        Ok(match commit {
            InvoiceCommit::Issued(invoice) => ItemOutcome::Billed(invoice.number),
            InvoiceCommit::Existing(n) | InvoiceCommit::AlreadyBilled(n) => {
                ItemOutcome::AlreadyDone(n)
            }
        })
    }
}

/// Handles one delivery: bill, then settle the job according to the outcome.
pub async fn handle(billing: Arc<Billing>, delivery: Delivery) {
    let job = delivery.job().clone();
    if job.kind != JobKind::BillCycle {
        let _ = delivery
            .dead_letter("billing.wrong_job_kind", "not a bill-cycle job")
            .await;
        return;
    }
    let payer = AccountId::new(&job.item_key);
    let b = billing.clone();
    let (run, p) = (job.run_id.clone(), payer.clone());
    let outcome = tokio::task::spawn_blocking(move || b.bill_item(&run, &p, b.clock.now()))
        .await
        .unwrap_or_else(|e| ItemOutcome::Retry(format!("billing task failed: {e}")));
    let label = match &outcome {
        ItemOutcome::Billed(_) => "billed",
        ItemOutcome::AlreadyDone(_) => "already_billed",
        ItemOutcome::Failed { .. } => "failed",
        ItemOutcome::Retry(_) => "retried",
    };
    billing.metrics.items.with_label_values(&[label]).inc();
    let end = match outcome {
        ItemOutcome::Billed(_) | ItemOutcome::AlreadyDone(_) => JobEnd::Done,
        ItemOutcome::Failed { reason, message } => JobEnd::Failed { reason, message },
        ItemOutcome::Retry(why) => JobEnd::Retry(why),
    };
    let what = format!("billing: run {} payer {}", job.run_id, job.item_key);
    let b = billing.clone();
    settle(
        delivery,
        end,
        billing.attempts_max,
        &what,
        move |reason, message| {
            b.runs
                .fail_item(&job.run_id, &payer, reason, message, b.clock.now())
        },
    )
    .await;
}

/// The worker actor: one consumer of bill-cycle jobs; each delivery is billed in its own task,
/// at most `prefetch` at a time (the queue hands out no more unacknowledged jobs).
pub struct BillWorker {
    /// Shared billing state.
    pub billing: Arc<Billing>,
    /// Unacknowledged jobs at most.
    pub prefetch: u16,
}

impl Actor for BillWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let billing = self.billing.clone();
        let prefetch = self.prefetch;
        ctx.spawn(actix::fut::wrap_future(consume(billing, prefetch)));
    }
}

impl Supervised for BillWorker {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        eprintln!("billing: worker restarting");
    }
}

async fn consume(billing: Arc<Billing>, prefetch: u16) {
    let queue = billing.queue.clone();
    crate::workers::consume_forever(queue, JobKind::BillCycle, prefetch, move |delivery| {
        handle(billing.clone(), delivery)
    })
    .await;
}
