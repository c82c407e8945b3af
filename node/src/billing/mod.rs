//! Bill runs: finance starts a run through the API; the run is recorded durably with one item per
//! top-level payer of its cycle, and one job per payer goes to the job queue (RabbitMQ, or the
//! embedded queue). Worker actors ([`worker`]) build each payer's convergent invoice and write it
//! exactly once (see [`tollgate_domain::billing::run`]), then acknowledge the job.
//!
//! A run whose jobs could not all be published (broker down, node crash between the run record
//! and the last confirm) stays `publishing`; the node publishes its jobs again, on start and
//! every `billing.republish_interval_ms`, until the queue confirms them. Publishing twice is
//! harmless: billing is idempotent per (run, payer).

pub mod invoice_html;
pub mod worker;

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_actors::Profiles;
use tollgate_adapters::jobs::{Job, JobKind, JobQueue};
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::run::{BillRun, BillRunStore, RunState};
use tollgate_domain::billing::store::CustomerStore;
use tollgate_domain::billing::{BillingError, PeriodSpec, find_cycle};
use tollgate_domain::ids::{AccountId, BillCycleId};
use tollgate_domain::ledger::{LedgerStore, StoreError};

/// Everything bill runs and their workers use.
pub struct Billing {
    /// Runs, items and invoices.
    pub runs: Arc<dyn BillRunStore>,
    /// Customers, accounts, subscriptions and the billing setup.
    pub customers: Arc<dyn CustomerStore>,
    /// Rated usage.
    pub ledger: Arc<dyn LedgerStore>,
    /// Subscriber profiles (prepaid usage is not invoiced again).
    pub profiles: Arc<dyn Profiles>,
    /// The job queue.
    pub queue: Arc<dyn JobQueue>,
    /// Time zone of period boundaries and issue dates.
    pub timezone: TimeZone,
    /// `{series}` of invoice numbers.
    pub series: String,
    /// Storage failures of one job before it is dead-lettered.
    pub attempts_max: u32,
    /// Counters.
    pub metrics: BillingMetrics,
    /// The node's clock.
    pub clock: crate::clock::Clock,
}

/// Bill-run counters (bounded labels: the outcome only).
#[derive(Clone)]
pub struct BillingMetrics {
    /// `tollgate_billing_items_total{outcome}`: billed, already_billed, failed, retried.
    pub items: prometheus::IntCounterVec,
    /// `tollgate_billing_runs_total`: runs created.
    pub runs: prometheus::IntCounter,
}

impl BillingMetrics {
    /// Counters registered in `registry`.
    pub fn new(registry: &prometheus::Registry) -> Result<BillingMetrics, prometheus::Error> {
        let items = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "tollgate_billing_items_total",
                "Bill-run jobs handled, by outcome (billed, already_billed, failed, retried)",
            ),
            &["outcome"],
        )?;
        let runs = prometheus::IntCounter::new("tollgate_billing_runs_total", "Bill runs created")?;
        registry.register(Box::new(items.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        Ok(BillingMetrics { items, runs })
    }
}

/// A request to start a run.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// Bill cycle id.
    pub cycle: String,
    /// The period: `2026-10` (monthly: the period starting in October 2026), `2026-Q4`, `2026`,
    /// `2026-W42`, or `{"start": "2026-10-01", "end": "2026-11-01"}`.
    #[schema(value_type = Object)]
    pub period: PeriodSpec,
    /// Idempotency key: the same key answers with the same run and bills nothing again.
    pub key: String,
}

/// Why a run was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad request (unknown cycle, period not ended, period not of the cycle).
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// The key names a run with another cycle or period.
    #[error("key {key:?} was used for run {run} ({cycle}, {period}); use a new key")]
    KeyReused {
        /// The key.
        key: String,
        /// That run.
        run: SmolStr,
        /// Its cycle.
        cycle: BillCycleId,
        /// Its period.
        period: String,
    },
    /// A bad key.
    #[error("the key must be 1 to 128 printable characters")]
    BadKey,
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StartError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Billing(e) => e.code(),
            StartError::KeyReused { .. } => "billing.key_reused",
            StartError::BadKey => "billing.bad_key",
            StartError::Store(e) => e.code(),
        }
    }
}

impl Billing {
    /// Today in the billing time zone.
    pub fn today(&self, now: Timestamp) -> jiff::civil::Date {
        now.to_zoned(self.timezone.clone()).date()
    }

    /// Records a run (or finds the one with the same key) and publishes its jobs. Blocking
    /// storage calls: call off the async workers. Returns the run and whether it is new.
    pub fn create(
        &self,
        request: &StartRun,
        principal: &str,
        request_id: &str,
        now: Timestamp,
    ) -> Result<(BillRun, bool), StartError> {
        let key = request.key.trim();
        if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
            return Err(StartError::BadKey);
        }
        let setup = self.customers.setup()?;
        let cycle = find_cycle(&setup.cycles, &BillCycleId::new(&request.cycle))?.clone();
        let period = cycle.billable_period(&request.period, self.today(now))?;
        let forest = self.customers.forest()?;
        let payers: Vec<AccountId> = forest.payers_for_cycle(&cycle.id);
        let run = BillRun {
            id: SmolStr::default(),
            key: key.into(),
            cycle: cycle.id.clone(),
            period,
            state: RunState::Publishing,
            created_by: principal.into(),
            created_at: now,
            published_at: None,
            finished_at: None,
            total: payers.len() as u64,
            billed: 0,
            already_billed: 0,
            failed: 0,
        };
        let audit = AuditRecord::new(
            now,
            principal,
            "bill_run.create",
            format!("bill_run/{key}"),
            request_id,
            None,
            Some(serde_json::json!({
                "cycle": cycle.id, "period": period, "key": key, "payers": payers.len(),
            })),
        );
        let (run, created) = self.runs.create_run(run, &payers, audit)?;
        if created {
            self.metrics.runs.inc();
        }
        if !created && (run.cycle != cycle.id || run.period != period) {
            return Err(StartError::KeyReused {
                key: key.to_string(),
                run: run.id.clone(),
                cycle: run.cycle.clone(),
                period: format!("{} to {}", run.period.start, run.period.end),
            });
        }
        Ok((run, created))
    }

    /// Publishes the jobs of a run still `publishing` and marks it published; an error leaves
    /// it `publishing` for the next attempt.
    pub async fn publish(self: &Arc<Self>, run: &BillRun) -> Result<(), String> {
        let this = self.clone();
        let id = run.id.clone();
        let items = off_thread(move || {
            let mut all = Vec::new();
            let mut after: Option<AccountId> = None;
            loop {
                let page = this.runs.items(&id, false, after.as_ref(), 1_000)?;
                let full = page.len() == 1_000;
                after = page.last().map(|i| i.payer.clone());
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
            .filter(|i| matches!(i.state, tollgate_domain::billing::run::ItemState::Pending))
            .map(|i| {
                Job::new(
                    JobKind::BillCycle,
                    run.id.as_str(),
                    i.payer.as_str(),
                    Vec::new(),
                )
            })
            .collect();
        self.queue.publish(jobs).await.map_err(|e| e.to_string())?;
        let this = self.clone();
        let id = run.id.clone();
        off_thread(move || this.runs.mark_published(&id, this.clock.now()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Publishes every run still `publishing` (after a restart or a broker outage).
    pub async fn republish(self: &Arc<Self>) {
        let this = self.clone();
        let runs = off_thread(move || this.runs.unpublished_runs()).await;
        match runs {
            Ok(runs) => {
                for run in runs {
                    if let Err(e) = self.publish(&run).await {
                        eprintln!("billing: run {} not published yet: {e}", run.id);
                    }
                }
            }
            Err(e) => eprintln!("billing: cannot read unpublished runs: {e}"),
        }
    }
}

/// Runs blocking storage work on the blocking pool.
pub async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(format!("storage task failed: {e}")))?
}
