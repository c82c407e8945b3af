//! Partner settlement: partners and their versioned agreements, real-time positions kept by the
//! partner actors ([`tollgate_actors::partner`]), settlement runs handed to worker actors over
//! the job queue, statements (self-billing documents) with approval and release,
//! reconciliation with the partner's own statement, and disputes.
//!
//! The rules are pure functions of `tollgate_domain::partner`; this module reads what they
//! need, calls them and writes their result as one [`PartnerWrite`]. Check-then-write is
//! serialised on this node by one lock, and the store refuses a write decided from stale
//! versions or counters (a conflict is retried from fresh reads).
//!
//! Positions are written by the partner's actor (records) and by the settlement worker (shares
//! of invoice totals, at settlement); both writes are checked against the count read, so one
//! of two concurrent writers retries from fresh reads. Everything else here (partners,
//! agreements, statements, reconciliations, disputes, runs) is written under the lock.

pub mod admin;
pub mod review;
pub mod settlement;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use tollgate_actors::{ActorError, PartnerRouter};
use tollgate_adapters::jobs::JobQueue;
use tollgate_domain::billing::Period;
use tollgate_domain::billing::run::BillRunStore;
use tollgate_domain::billing::store::CustomerStore;
use tollgate_domain::finance::{FinanceStore, FinancialPeriod};
use tollgate_domain::ids::PartnerId;
use tollgate_domain::ledger::StoreError;
use tollgate_domain::partner::store::PartnerStoreError;
use tollgate_domain::partner::{PartnerError, PartnerRecord, PartnerStore, PartnerWrite};

use crate::clock::Clock;

/// Attempts of a write that keeps meeting conflicts.
const CONFLICT_RETRIES: usize = 5;

/// Who asks (for the audit trail and the history of statements and disputes).
pub use crate::finance::payments::Actor as Caller;

/// Everything partner settlement uses.
pub struct Partners {
    /// Partner state.
    pub store: Arc<dyn PartnerStore>,
    /// Partner actors (positions).
    pub router: Arc<PartnerRouter>,
    /// Invoices (shares of invoice totals).
    pub invoices: Arc<dyn BillRunStore>,
    /// Customers and accounts (which customers a partner brought), the billing setup (numbering,
    /// taxes).
    pub customers: Arc<dyn CustomerStore>,
    /// Financial periods (a settlement run needs its period closed).
    pub finance: Arc<dyn FinanceStore>,
    /// The job queue (settlement jobs).
    pub queue: Arc<dyn JobQueue>,
    /// Settlement time zone.
    pub timezone: TimeZone,
    /// The node's clock.
    pub clock: Clock,
    /// Storage failures of one settlement job before it is dead-lettered.
    pub attempts_max: u32,
    /// Counters.
    pub metrics: PartnerServiceMetrics,
    lock: Mutex<()>,
}

/// Settlement counters (bounded labels).
#[derive(Clone)]
pub struct PartnerServiceMetrics {
    /// `tollgate_partner_settlement_items_total{outcome}`: settlement jobs handled.
    pub items: prometheus::IntCounterVec,
    /// `tollgate_partner_statements_total{event}`: statements issued, approved, released.
    pub statements: prometheus::IntCounterVec,
}

impl PartnerServiceMetrics {
    /// Counters registered in `registry`.
    pub fn new(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let items = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "tollgate_partner_settlement_items_total",
                "Settlement jobs handled, by outcome (settled, already_done, failed, retried)",
            ),
            &["outcome"],
        )?;
        let statements = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "tollgate_partner_statements_total",
                "Partner statements by event (issued, approved, released)",
            ),
            &["event"],
        )?;
        registry.register(Box::new(items.clone()))?;
        registry.register(Box::new(statements.clone()))?;
        Ok(PartnerServiceMetrics { items, statements })
    }
}

/// Why a partner request was not carried out; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PartnerFailure {
    /// A settlement rule refused it.
    #[error(transparent)]
    Rule(#[from] PartnerError),
    /// Something named does not exist.
    #[error("{message}")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Refused for another reason than a rule (422).
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Refused because of the state of what it acts on (409).
    #[error("{message}")]
    State {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Concurrent changes kept conflicting; retry.
    #[error("concurrent changes: {0}; retry")]
    Busy(String),
    /// The partner's actor could not answer.
    #[error("partner actor: {0}")]
    Actor(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PartnerStoreError> for PartnerFailure {
    fn from(e: PartnerStoreError) -> Self {
        match e {
            PartnerStoreError::Conflict(m) => PartnerFailure::Busy(m),
            PartnerStoreError::Store(s) => PartnerFailure::Store(s),
        }
    }
}

impl From<ActorError> for PartnerFailure {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::Store(s) => PartnerFailure::Store(s),
            other => PartnerFailure::Actor(other.to_string()),
        }
    }
}

impl From<tollgate_domain::billing::CustomerStoreError> for PartnerFailure {
    fn from(e: tollgate_domain::billing::CustomerStoreError) -> Self {
        match e {
            tollgate_domain::billing::CustomerStoreError::Store(s) => PartnerFailure::Store(s),
            other => PartnerFailure::Refused {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl PartnerFailure {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PartnerFailure::Rule(e) => e.code(),
            PartnerFailure::NotFound { code, .. }
            | PartnerFailure::Refused { code, .. }
            | PartnerFailure::State { code, .. } => code,
            PartnerFailure::Busy(_) => "partner.busy",
            PartnerFailure::Actor(_) => "actor.unavailable",
            PartnerFailure::Store(e) => e.code(),
        }
    }
}

impl Partners {
    /// A partner-settlement service; see the field docs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn PartnerStore>,
        router: Arc<PartnerRouter>,
        invoices: Arc<dyn BillRunStore>,
        customers: Arc<dyn CustomerStore>,
        finance: Arc<dyn FinanceStore>,
        queue: Arc<dyn JobQueue>,
        timezone: TimeZone,
        clock: Clock,
        attempts_max: u32,
        metrics: PartnerServiceMetrics,
    ) -> Partners {
        Partners {
            store,
            router,
            invoices,
            customers,
            finance,
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

    /// The date of `at` in the settlement time zone.
    pub fn date_of(&self, at: Timestamp) -> Date {
        at.to_zoned(self.timezone.clone()).date()
    }

    /// Serialises check-then-write on this node.
    pub(crate) fn locked(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `attempt` (reads, decides, writes) until it does not meet a conflict.
    pub(crate) fn retrying<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, PartnerFailure>,
    ) -> Result<T, PartnerFailure> {
        let mut last = String::new();
        for _ in 0..CONFLICT_RETRIES {
            match attempt() {
                Err(PartnerFailure::Busy(why)) => last = why,
                other => return other,
            }
        }
        Err(PartnerFailure::Busy(last))
    }

    /// Commits `write`.
    pub(crate) fn commit(&self, write: PartnerWrite) -> Result<(), PartnerFailure> {
        Ok(self.store.commit(write)?)
    }

    /// A partner, or `partner.not_found`.
    pub fn partner(&self, id: &PartnerId) -> Result<PartnerRecord, PartnerFailure> {
        self.store
            .partner(id)?
            .ok_or_else(|| PartnerFailure::NotFound {
                code: "partner.not_found",
                message: format!("no partner {id}"),
            })
    }
}

/// Runs a blocking partner call off the async threads.
pub async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PartnerFailure> + Send + 'static,
) -> Result<T, PartnerFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PartnerFailure::Store(StoreError::Io(format!("partner task failed: {e}"))))?
}

/// The month `text` (`YYYY-MM`) as a settlement period (the financial period's days), or
/// `period.invalid`.
pub fn month(text: &str) -> Result<Period, PartnerFailure> {
    let p = FinancialPeriod::new(text).map_err(|e| PartnerFailure::Refused {
        code: e.code(),
        message: e.to_string(),
    })?;
    Ok(Period {
        start: p.start,
        end: p.end,
    })
}

/// The month containing `day` as a settlement period.
pub fn month_of(day: Date) -> Result<Period, PartnerFailure> {
    month(&FinancialPeriod::id_of(day))
}
