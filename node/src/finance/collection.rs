//! Collection runs: finance starts one through the API (or the node's daily schedule) as of a
//! date; the run is recorded with one item per account that has an overdue invoice, and one
//! job per account goes to the job queue. The collection worker actor applies each account's
//! due dunning steps exactly once (the cases record them), writes penalties, notifications and
//! the suspension decision with the item in one write, converges service, then acknowledges.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Supervised};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_adapters::jobs::{Delivery, Job, JobKind};
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::SubscriptionStatus;
use tollgate_domain::billing::run::{InvoiceFilter, RunState};
use tollgate_domain::finance::allocation::invoice_balances;
use tollgate_domain::finance::collect::{CollectInput, find_policy, plan_collection};
use tollgate_domain::finance::{
    CollectionItem, CollectionItemState, CollectionRun, FinanceError, FinanceWrite, Notification,
};
use tollgate_domain::ids::AccountId;

use super::payments::Actor as Caller;
use super::{Finance, FinanceFailure, off_thread};
use crate::workers::{JobEnd, settle};

/// A request to start a collection run.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCollection {
    /// Collection date (default: today); steps due on or before it are applied. Not in the
    /// future.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<Date>,
    /// Idempotency key: the same key answers with the same run.
    pub key: String,
}

/// What became of one collection job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Processed now: the actions applied (possibly none).
    Processed(Vec<SmolStr>),
    /// Processed before (a redelivery): nothing written.
    AlreadyDone,
    /// Cannot be processed: recorded on the run; the job is dead-lettered.
    Failed {
        /// Reason code.
        reason: String,
        /// Message.
        message: String,
    },
    /// Storage failure or conflict: try again.
    Retry(String),
}

impl Finance {
    /// Payers with an invoice overdue on `as_of` (something still owed after its pay-by date).
    pub fn overdue_payers(&self, as_of: Date) -> Result<Vec<AccountId>, FinanceFailure> {
        let setup = self.customers.setup()?;
        let mut candidates: BTreeSet<AccountId> = BTreeSet::new();
        let mut after: Option<SmolStr> = None;
        loop {
            let page = self
                .runs
                .invoices(&InvoiceFilter::default(), after.as_deref(), 1_000)?;
            let full = page.len() == 1_000;
            after = page.last().map(|i| i.number.clone());
            for invoice in &page {
                let due = match invoice.due_on {
                    Some(d) => d,
                    None => invoice
                        .issued_on
                        .checked_add(jiff::Span::new().days(i64::from(setup.payment_terms_days)))
                        .unwrap_or(invoice.issued_on),
                };
                if as_of > due && !invoice.draft.totals.gross.money.is_zero() {
                    candidates.insert(invoice.payer.clone());
                }
            }
            if !full {
                break;
            }
        }
        let mut overdue = Vec::new();
        for payer in candidates {
            let invoices = self.invoices_of(&payer)?;
            let payments = self.store.payments(&payer)?;
            let entries = self.store.entries(&payer)?;
            let balances =
                invoice_balances(&invoices, &payments, &entries, setup.payment_terms_days)?;
            if balances.iter().any(|b| b.overdue_on(as_of)) {
                overdue.push(payer);
            }
        }
        Ok(overdue)
    }

    /// Records a collection run (or finds the one with the same key). Blocking. Returns the run
    /// and whether it is new.
    pub fn create_collection(
        &self,
        request: &StartCollection,
        by: &Caller,
    ) -> Result<(CollectionRun, bool), FinanceFailure> {
        let key = request.key.trim();
        if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
            return Err(FinanceFailure::Refused {
                code: "request.bad_key",
                message: "the key must be 1 to 128 printable characters".into(),
            });
        }
        let now = self.now();
        let today = self.date_of(now);
        let as_of = request.as_of.unwrap_or(today);
        if as_of > today {
            return Err(FinanceError::FutureDate { as_of, today }.into());
        }
        let accounts = self.overdue_payers(as_of)?;
        let run = CollectionRun {
            id: SmolStr::default(),
            key: key.into(),
            as_of,
            state: RunState::Publishing,
            created_by: by.principal.clone(),
            created_at: now,
            published_at: None,
            finished_at: None,
            total: accounts.len() as u64,
            processed: 0,
            failed: 0,
            steps: Default::default(),
        };
        let audit = AuditRecord::new(
            now,
            &by.principal,
            "collection_run.create",
            format!("collection_run/{key}"),
            &by.request_id,
            None,
            Some(serde_json::json!({"as_of": as_of, "key": key, "accounts": accounts.len()})),
        );
        let (run, created) = self.store.create_collection_run(run, &accounts, audit)?;
        if !created && run.as_of != as_of {
            return Err(FinanceFailure::Refused {
                code: "request.key_reused",
                message: format!(
                    "key {key:?} was used for run {} as of {}; use a new key",
                    run.id, run.as_of
                ),
            });
        }
        Ok((run, created))
    }

    /// Publishes the jobs of a run still `publishing` and marks it published.
    pub async fn publish_collection(self: &Arc<Self>, run: &CollectionRun) -> Result<(), String> {
        let this = self.clone();
        let id = run.id.clone();
        let items = off_thread(move || {
            let mut all = Vec::new();
            let mut after: Option<AccountId> = None;
            loop {
                let page = this
                    .store
                    .collection_items(&id, false, after.as_ref(), 1_000)?;
                let full = page.len() == 1_000;
                after = page.last().map(|i| i.account.clone());
                all.extend(page);
                if !full {
                    return Ok(all);
                }
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        let jobs: Vec<Job> = items
            .iter()
            .filter(|i| matches!(i.state, CollectionItemState::Pending))
            .map(|i| {
                Job::new(
                    JobKind::Collection,
                    run.id.as_str(),
                    i.account.as_str(),
                    Vec::new(),
                )
            })
            .collect();
        self.queue.publish(jobs).await.map_err(|e| e.to_string())?;
        let this = self.clone();
        let id = run.id.clone();
        off_thread(move || {
            let at = this.now();
            Ok(this.store.mark_collection_published(&id, at)?)
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// Publishes every collection run still `publishing`.
    pub async fn republish_collections(self: &Arc<Self>) {
        let this = self.clone();
        match off_thread(move || Ok(this.store.unpublished_collection_runs()?)).await {
            Ok(runs) => {
                for run in runs {
                    if let Err(e) = self.publish_collection(&run).await {
                        eprintln!("finance: collection run {} not published yet: {e}", run.id);
                    }
                }
            }
            Err(e) => eprintln!("finance: cannot read unpublished collection runs: {e}"),
        }
    }

    /// Applies the due dunning steps of `account` for run `run_id`. Blocking.
    pub fn collect_item(&self, run_id: &str, account: &AccountId) -> ItemOutcome {
        let _guard = self.locked();
        let outcome = self.retrying(|| self.try_collect(run_id, account));
        match outcome {
            Ok(outcome) => outcome,
            Err(FinanceFailure::Store(e)) => ItemOutcome::Retry(e.to_string()),
            Err(FinanceFailure::Busy(why)) => ItemOutcome::Retry(why),
            Err(e) => {
                let (reason, message) = (e.code().to_string(), e.to_string());
                let now = self.now();
                match self
                    .store
                    .fail_collection_item(run_id, account, &reason, &message, now)
                {
                    Ok(()) => ItemOutcome::Failed { reason, message },
                    Err(e) => ItemOutcome::Retry(e.to_string()),
                }
            }
        }
    }

    fn try_collect(
        &self,
        run_id: &str,
        account: &AccountId,
    ) -> Result<ItemOutcome, FinanceFailure> {
        let Some(run) = self.store.collection_run(run_id)? else {
            return Ok(ItemOutcome::Failed {
                reason: "collection.unknown_run".into(),
                message: format!("no collection run {run_id}"),
            });
        };
        let Some(item) = self.store.collection_item(run_id, account)? else {
            return Ok(ItemOutcome::Failed {
                reason: "collection.unknown_item".into(),
                message: format!("run {run_id} has no account {account}"),
            });
        };
        if !matches!(item.state, CollectionItemState::Pending) {
            return Ok(ItemOutcome::AlreadyDone);
        }
        let r = self.receivables(account)?;
        let now = self.now();
        let class = r.customer.credit_class.as_deref();
        let applied_item = |applied: Vec<SmolStr>| CollectionItem {
            run: run.id.clone(),
            account: account.clone(),
            state: CollectionItemState::Processed { applied },
            updated_at: now,
        };
        let Some(policy) = find_policy(&r.setup.dunning_policies, class) else {
            // No policy for this customer: nothing to apply; the item is done.
            self.commit(FinanceWrite {
                collection_item: Some((applied_item(Vec::new()), Vec::new())),
                ..FinanceWrite::default()
            })?;
            return Ok(ItemOutcome::Processed(Vec::new()));
        };
        let cases = self.store.cases(account)?;
        let name = r.customer.display_name();
        let plan = plan_collection(&CollectInput {
            account,
            customer_name: &name,
            policy,
            balances: &r.balances,
            cases: &cases,
            state: &r.dunning,
            as_of: run.as_of,
            run: &run.id,
            now,
        })?;
        let mut write = FinanceWrite {
            cases: plan.cases.clone(),
            entries: plan.penalties.clone(),
            ..FinanceWrite::default()
        };
        for notice in &plan.notices {
            let to = match notice.channel {
                tollgate_domain::finance::Channel::Sms => r.customer.phone.clone(),
                tollgate_domain::finance::Channel::Email => r.customer.email.clone(),
            };
            write.notifications.push(Notification {
                id: smol_str::format_smolstr!(
                    "dunning:{account}:{}:{}",
                    notice.invoice,
                    notice.step
                ),
                account: account.clone(),
                customer: r.customer.id.clone(),
                channel: notice.channel,
                to,
                body: notice.body.clone(),
                created_at: now,
                delivered_at: None,
                attempts: 0,
                last_error: None,
            });
        }
        if plan.suspend || plan.disconnect {
            let mut state = r.dunning.clone();
            if plan.suspend && !state.suspended {
                state.suspended = true;
                state.suspended_subscriptions = self
                    .subtree_subscriptions(account)?
                    .into_iter()
                    .filter(|s| s.status() == SubscriptionStatus::Active)
                    .map(|s| s.id)
                    .collect();
            }
            if plan.disconnect {
                state.disconnected = true;
            }
            state.changed_at = Some(now);
            state.converged = false;
            state.reason = Some(format!(
                "collection run {} as of {}: {}",
                run.id,
                run.as_of,
                if plan.disconnect {
                    "disconnected"
                } else {
                    "suspended"
                }
            ));
            write.accounts.push(state);
        }
        let actions: Vec<SmolStr> = plan.applied.iter().map(|(_, _, a)| a.clone()).collect();
        let applied: Vec<SmolStr> = plan
            .applied
            .iter()
            .map(|(invoice, step, _)| smol_str::format_smolstr!("{invoice}:{step}"))
            .collect();
        if !applied.is_empty() {
            write.audit.push(AuditRecord::new(
                now,
                "collections",
                "dunning.apply",
                format!("account/{account}"),
                &run.id,
                None,
                Some(serde_json::json!({"run": run.id, "as_of": run.as_of, "applied": applied})),
            ));
        }
        write.collection_item = Some((applied_item(applied), actions.clone()));
        self.commit(write)?;
        for action in &actions {
            self.metrics
                .steps
                .with_label_values(&[action.as_str()])
                .inc();
        }
        Ok(ItemOutcome::Processed(actions))
    }
}

/// Handles one delivery: apply the steps, converge service, then settle the job.
pub async fn handle(finance: Arc<Finance>, delivery: Delivery) {
    let job = delivery.job().clone();
    if job.kind != JobKind::Collection {
        let _ = delivery
            .dead_letter("collection.wrong_job_kind", "not a collection job")
            .await;
        return;
    }
    let account = AccountId::new(&job.item_key);
    let f = finance.clone();
    let (run, a) = (job.run_id.clone(), account.clone());
    let outcome = tokio::task::spawn_blocking(move || f.collect_item(&run, &a))
        .await
        .unwrap_or_else(|e| ItemOutcome::Retry(format!("collection task failed: {e}")));
    // Service follows the recorded decision, also on a redelivery (a crash after the write).
    let outcome = match outcome {
        ItemOutcome::Processed(_) | ItemOutcome::AlreadyDone => {
            match finance.converge(&account).await {
                Ok(_) => outcome,
                Err(e) => ItemOutcome::Retry(format!("service not converged: {e}")),
            }
        }
        other => other,
    };
    let label = match &outcome {
        ItemOutcome::Processed(_) => "processed",
        ItemOutcome::AlreadyDone => "already_done",
        ItemOutcome::Failed { .. } => "failed",
        ItemOutcome::Retry(_) => "retried",
    };
    finance.metrics.items.with_label_values(&[label]).inc();
    let end = match outcome {
        ItemOutcome::Processed(_) | ItemOutcome::AlreadyDone => JobEnd::Done,
        ItemOutcome::Failed { reason, message } => JobEnd::Failed { reason, message },
        ItemOutcome::Retry(why) => JobEnd::Retry(why),
    };
    let what = format!(
        "finance: collection run {} account {}",
        job.run_id, job.item_key
    );
    let f = finance.clone();
    settle(
        delivery,
        end,
        finance.attempts_max,
        &what,
        move |reason, message| {
            f.store
                .fail_collection_item(&job.run_id, &account, reason, message, f.now())
        },
    )
    .await;
}

/// The collection worker actor: one consumer of collection jobs, each delivery handled in its
/// own task, at most `prefetch` at a time.
pub struct CollectionWorker {
    /// Shared finance state.
    pub finance: Arc<Finance>,
    /// Unacknowledged jobs at most.
    pub prefetch: u16,
}

impl Actor for CollectionWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let finance = self.finance.clone();
        let prefetch = self.prefetch;
        ctx.spawn(actix::fut::wrap_future(consume(finance, prefetch)));
    }
}

impl Supervised for CollectionWorker {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        eprintln!("finance: collection worker restarting");
    }
}

async fn consume(finance: Arc<Finance>, prefetch: u16) {
    let queue = finance.queue.clone();
    crate::workers::consume_forever(queue, JobKind::Collection, prefetch, move |delivery| {
        handle(finance.clone(), delivery)
    })
    .await;
}

/// The day whose daily collection run is due at `now` (local time in the billing zone) for a
/// run time of `time` (`HH:MM`): today once the time has passed, none before.
pub fn daily_run_due(now: &jiff::Zoned, time: &str) -> Option<Date> {
    let (hour, minute) = time
        .split_once(':')
        .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))?;
    let at = now.date().at(hour, minute, 0, 0);
    (now.datetime() >= at).then(|| now.date())
}

/// Starts a collection run every day at `time` (`HH:MM`, billing time zone) under the key
/// `daily-<date>`, so a node restarted the same day does not start a second one; a day missed
/// while the node was down is caught up by the next run (steps due earlier are applied then).
pub async fn daily(finance: Arc<Finance>, time: String) {
    loop {
        let now = finance.now().to_zoned(finance.timezone.clone());
        if let Some(today) = daily_run_due(&now, &time) {
            let request = StartCollection {
                as_of: Some(today),
                key: format!("daily-{today}"),
            };
            let by = Caller {
                principal: "scheduler".into(),
                request_id: SmolStr::new(format!("daily-{today}")),
            };
            let f = finance.clone();
            match off_thread(move || f.create_collection(&request, &by)).await {
                Ok((run, true)) => {
                    if let Err(e) = finance.publish_collection(&run).await {
                        eprintln!(
                            "finance: daily collection run {} not published yet: {e}",
                            run.id
                        );
                    }
                }
                Ok((_, false)) => {}
                Err(e) => eprintln!("finance: daily collection run not started: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::daily_run_due;

    fn at(text: &str) -> jiff::Zoned {
        text.parse().unwrap()
    }

    #[test]
    fn the_daily_run_is_due_from_its_time_on_in_the_billing_zone() {
        let zone = "[Europe/Berlin]";
        assert_eq!(
            daily_run_due(&at(&format!("2026-03-10T05:59:59+01:00{zone}")), "06:00"),
            None
        );
        assert_eq!(
            daily_run_due(&at(&format!("2026-03-10T06:00:00+01:00{zone}")), "06:00"),
            Some(jiff::civil::date(2026, 3, 10))
        );
        assert_eq!(
            daily_run_due(&at(&format!("2026-03-10T23:30:00+01:00{zone}")), "06:00"),
            Some(jiff::civil::date(2026, 3, 10))
        );
        assert_eq!(
            daily_run_due(&at(&format!("2026-03-10T23:30:00+01:00{zone}")), "6h"),
            None
        );
    }
}
