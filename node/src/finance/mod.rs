//! Finance after the invoice: payments, refunds and reversals; financial periods; credit notes
//! from rerating; account statements; and collections (dunning) run by worker actors over the
//! job queue, with customer notifications delivered from a durable outbox.
//!
//! The rules are pure functions of `tollgate_domain::finance`; this module reads what they need,
//! calls them, and writes their result as one [`FinanceWrite`]. Check-then-write is serialised
//! on this node by one lock, and the store refuses a write decided from stale counters or
//! period versions (a conflict is retried from fresh reads), so concurrent requests never
//! number two payments alike or allocate the same money twice.
//!
//! Service effects of dunning (subscriptions suspended or deactivated, subscribers barred in
//! their actors) live in other stores. The finance write records the decision first
//! ([`AccountDunning`]); [`service`] then converges subscriptions and actors to it, idempotently,
//! after every write that may change it, on every redelivered collection job, and on start.

pub mod collection;
pub mod notes;
pub mod notify;
pub mod payments;
pub mod periods;
pub mod service;
pub mod usage;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use smol_str::SmolStr;
use tollgate_actors::{Profiles, Router};
use tollgate_adapters::jobs::JobQueue;
use tollgate_domain::billing::run::{BillRunStore, Invoice, InvoiceFilter};
use tollgate_domain::billing::store::CustomerStore;
use tollgate_domain::billing::{Account, BillingSetup, Customer};
use tollgate_domain::finance::allocation::invoice_balances;
use tollgate_domain::finance::store::FinanceStoreError;
use tollgate_domain::finance::{
    AccountDunning, ArEntry, FinanceError, FinanceStore, FinanceWrite, InvoiceBalance, Payment,
};
use tollgate_domain::ids::AccountId;
use tollgate_domain::ledger::{LedgerStore, StoreError};

use crate::clock::Clock;

/// Attempts of a write that keeps meeting conflicts (another request moved the same counters).
const CONFLICT_RETRIES: usize = 5;
/// Invoices read per page.
const PAGE: usize = 1_000;

/// Everything payments, periods, notes and collections use.
pub struct Finance {
    /// Finance state.
    pub store: Arc<dyn FinanceStore>,
    /// Invoices.
    pub runs: Arc<dyn BillRunStore>,
    /// Customers, accounts, subscriptions, the billing setup (payment terms, dunning policies).
    pub customers: Arc<dyn CustomerStore>,
    /// Rated usage (un-billed usage check of a period close).
    pub ledger: Arc<dyn LedgerStore>,
    /// Subscriber profiles (prepaid usage is never invoiced).
    pub profiles: Arc<dyn Profiles>,
    /// Subscriber actors (barring on suspension, prepaid top-ups).
    pub router: Arc<Router>,
    /// The job queue (collection jobs).
    pub queue: Arc<dyn JobQueue>,
    /// Time zone of dates (pay-by, value dates, periods).
    pub timezone: TimeZone,
    /// The node's clock.
    pub clock: Clock,
    /// Storage failures of one collection job before it is dead-lettered.
    pub attempts_max: u32,
    /// Counters.
    pub metrics: FinanceMetrics,
    /// Serialises check-then-write on this node.
    lock: Mutex<()>,
}

/// Finance counters (bounded labels).
#[derive(Clone)]
pub struct FinanceMetrics {
    /// `tollgate_finance_payments_total{method}`: payments recorded.
    pub payments: prometheus::IntCounterVec,
    /// `tollgate_finance_refunds_total`: refunds and reversals recorded.
    pub refunds: prometheus::IntCounterVec,
    /// `tollgate_finance_dunning_steps_total{action}`: dunning steps applied.
    pub steps: prometheus::IntCounterVec,
    /// `tollgate_finance_collection_items_total{outcome}`: collection jobs handled.
    pub items: prometheus::IntCounterVec,
    /// `tollgate_finance_notifications_total{channel,outcome}`: notifications delivered or
    /// failed.
    pub notifications: prometheus::IntCounterVec,
    /// `tollgate_finance_credit_notes_total{kind}`: credit and debit notes issued.
    pub notes: prometheus::IntCounterVec,
}

impl FinanceMetrics {
    /// Counters registered in `registry`.
    pub fn new(registry: &prometheus::Registry) -> Result<FinanceMetrics, prometheus::Error> {
        let vec = |name: &str, help: &str, labels: &[&str]| {
            let c = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(FinanceMetrics {
            payments: vec(
                "tollgate_finance_payments_total",
                "Payments recorded, by method",
                &["method"],
            )?,
            refunds: vec(
                "tollgate_finance_refunds_total",
                "Refunds and payment reversals recorded, by kind",
                &["kind"],
            )?,
            steps: vec(
                "tollgate_finance_dunning_steps_total",
                "Dunning steps applied, by action",
                &["action"],
            )?,
            items: vec(
                "tollgate_finance_collection_items_total",
                "Collection jobs handled, by outcome (processed, already_done, failed, retried)",
                &["outcome"],
            )?,
            notifications: vec(
                "tollgate_finance_notifications_total",
                "Outbox notifications, by channel and outcome (delivered, failed)",
                &["channel", "outcome"],
            )?,
            notes: vec(
                "tollgate_finance_credit_notes_total",
                "Credit and debit notes issued, by kind",
                &["kind"],
            )?,
        })
    }
}

/// Why a finance request was not carried out; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum FinanceFailure {
    /// A finance rule refused it.
    #[error(transparent)]
    Rule(#[from] FinanceError),
    /// Something named does not exist.
    #[error("{message}")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Refused for another reason than a finance rule (code and message).
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Concurrent changes kept conflicting; retry.
    #[error("concurrent changes: {0}; retry")]
    Busy(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FinanceStoreError> for FinanceFailure {
    fn from(e: FinanceStoreError) -> Self {
        match e {
            FinanceStoreError::Conflict(m) => FinanceFailure::Busy(m),
            FinanceStoreError::Store(s) => FinanceFailure::Store(s),
        }
    }
}

impl From<tollgate_domain::billing::CustomerStoreError> for FinanceFailure {
    fn from(e: tollgate_domain::billing::CustomerStoreError) -> Self {
        match e {
            tollgate_domain::billing::CustomerStoreError::Store(s) => FinanceFailure::Store(s),
            other => FinanceFailure::Refused {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl FinanceFailure {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            FinanceFailure::Rule(e) => e.code(),
            FinanceFailure::NotFound { code, .. } | FinanceFailure::Refused { code, .. } => code,
            FinanceFailure::Busy(_) => "finance.busy",
            FinanceFailure::Store(e) => e.code(),
        }
    }
}

/// A payer's receivables as read now.
pub struct Receivables {
    /// The payer.
    pub account: Account,
    /// Its customer.
    pub customer: Customer,
    /// Its invoices.
    pub invoices: Vec<Invoice>,
    /// Its payments.
    pub payments: Vec<Payment>,
    /// Its receivable entries.
    pub entries: Vec<ArEntry>,
    /// What each invoice still owes, oldest first.
    pub balances: Vec<InvoiceBalance>,
    /// Its dunning state.
    pub dunning: AccountDunning,
    /// The billing setup.
    pub setup: BillingSetup,
}

impl Finance {
    /// A finance service; see the field docs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn FinanceStore>,
        runs: Arc<dyn BillRunStore>,
        customers: Arc<dyn CustomerStore>,
        ledger: Arc<dyn LedgerStore>,
        router: Arc<Router>,
        queue: Arc<dyn JobQueue>,
        timezone: TimeZone,
        clock: Clock,
        attempts_max: u32,
        metrics: FinanceMetrics,
    ) -> Finance {
        Finance {
            store,
            runs,
            customers,
            ledger,
            profiles: router.shared().profiles.clone(),
            router,
            queue,
            timezone,
            clock,
            attempts_max,
            metrics,
            lock: Mutex::new(()),
        }
    }

    /// Now, by the node's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The date of `at` in the billing time zone.
    pub fn date_of(&self, at: Timestamp) -> Date {
        at.to_zoned(self.timezone.clone()).date()
    }

    /// Today in the billing time zone.
    pub fn today(&self) -> Date {
        self.date_of(self.now())
    }

    /// Holds the node's finance write lock.
    pub(crate) fn locked(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `attempt` (reads, decides, writes) until it does not meet a conflict.
    pub(crate) fn retrying<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, FinanceFailure>,
    ) -> Result<T, FinanceFailure> {
        let mut last = String::new();
        for _ in 0..CONFLICT_RETRIES {
            match attempt() {
                Err(FinanceFailure::Busy(why)) => last = why,
                other => return other,
            }
        }
        Err(FinanceFailure::Busy(last))
    }

    /// An account that exists.
    pub fn account(&self, id: &AccountId) -> Result<Account, FinanceFailure> {
        self.customers
            .account(id)?
            .ok_or_else(|| FinanceFailure::NotFound {
                code: "account.not_found",
                message: format!("no account {id}"),
            })
    }

    /// Every invoice billed to `payer`, in number order.
    pub fn invoices_of(&self, payer: &AccountId) -> Result<Vec<Invoice>, StoreError> {
        let filter = InvoiceFilter {
            payer: Some(payer.clone()),
            ..InvoiceFilter::default()
        };
        let mut all = Vec::new();
        let mut after: Option<SmolStr> = None;
        loop {
            let page = self.runs.invoices(&filter, after.as_deref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|i| i.number.clone());
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Reads `payer`'s receivables. `payer` must exist.
    pub fn receivables(&self, payer: &AccountId) -> Result<Receivables, FinanceFailure> {
        let account = self.account(payer)?;
        let customer = self.customers.customer(&account.customer)?.ok_or_else(|| {
            FinanceFailure::NotFound {
                code: "customer.not_found",
                message: format!(
                    "account {payer} names unknown customer {}",
                    account.customer
                ),
            }
        })?;
        let setup = self.customers.setup()?;
        let invoices = self.invoices_of(payer)?;
        let payments = self.store.payments(payer)?;
        let entries = self.store.entries(payer)?;
        let balances = invoice_balances(&invoices, &payments, &entries, setup.payment_terms_days)?;
        let dunning = self
            .store
            .account_dunning(payer)?
            .unwrap_or_else(|| AccountDunning::new(payer.clone()));
        Ok(Receivables {
            account,
            customer,
            invoices,
            payments,
            entries,
            balances,
            dunning,
            setup,
        })
    }

    /// Commits `write` (nothing when empty).
    pub(crate) fn commit(&self, write: FinanceWrite) -> Result<(), FinanceFailure> {
        if write.is_empty() {
            return Ok(());
        }
        self.store.commit(write).map_err(FinanceFailure::from)
    }
}

/// Runs blocking finance work on the blocking pool.
pub async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FinanceFailure> + Send + 'static,
) -> Result<T, FinanceFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FinanceFailure::Store(StoreError::Io(format!("finance task failed: {e}"))))?
}
