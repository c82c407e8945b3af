//! What subscriber actors are asked and what they answer.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_domain::cdr::Cdr;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{Grant, Mode, Refusal, SessionRequest, Status, StoreError};
use tollgate_domain::money::Money;

use actix::prelude::*;

/// Failures that are not answers (the caller may retry with the same idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    /// Storage failed; nothing was applied.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The subscriber is not provisioned.
    #[error("unknown subscriber {0}")]
    UnknownSubscriber(SubscriberId),
    /// The actor stopped or its mailbox is closed.
    #[error("subscriber actor unavailable: {0}")]
    Unavailable(String),
    /// The actor passivated itself (idle); the router retries on a fresh actor.
    #[error("subscriber actor passivated")]
    Retired,
}

impl ActorError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ActorError::Store(e) => e.code(),
            ActorError::UnknownSubscriber(_) => "subscriber.unknown",
            ActorError::Unavailable(_) | ActorError::Retired => "actor.unavailable",
        }
    }
}

/// The outcome of one CDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum CdrOutcome {
    /// Rated and durably charged.
    Rated {
        /// CDR id.
        cdr_id: SmolStr,
        /// Charge.
        charge: Money,
        /// Readable explanation.
        explanation: String,
        /// The catalogue version that priced it (the one in force at the CDR's start).
        catalogue_version: u64,
    },
    /// Seen before: nothing charged again; the original charge is repeated.
    Duplicate {
        /// CDR id.
        cdr_id: SmolStr,
        /// Charge of the first time.
        charge: Money,
        /// Catalogue version of the first time (absent for CDRs rated before versions existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        catalogue_version: Option<u64>,
    },
    /// Dropped on purpose by a mediation filter (e.g. a test call): not charged, counted as
    /// `filtered` with the filter's reason.
    Filtered {
        /// CDR id.
        cdr_id: SmolStr,
        /// Reason code of the filter.
        reason: SmolStr,
        /// Name of the filter rule.
        rule: SmolStr,
    },
    /// Not rateable: not charged, with a reason code.
    Suspended {
        /// CDR id.
        cdr_id: SmolStr,
        /// Reason code.
        reason: SmolStr,
        /// Message.
        message: String,
    },
}

/// Rate and charge CDRs of this subscriber; one durable write for the whole batch.
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<CdrOutcome>, ActorError>")]
pub struct RateCdrs(pub Vec<Cdr>);

/// A real-time charging request.
#[derive(Message, Clone)]
#[rtype(result = "Result<Result<Grant, Refusal>, ActorError>")]
pub struct Charge(pub SessionRequest);

/// A top-up (idempotent by id).
#[derive(Message, Clone)]
#[rtype(result = "Result<Result<BalanceView, Refusal>, ActorError>")]
pub struct TopUp {
    /// Idempotency key.
    pub id: SmolStr,
    /// Amount.
    pub amount: Money,
    /// The audit record of an admin top-up (who, request, target); the actor fills in the
    /// balance before and after and writes it in the same durable write as the entry.
    pub audit: Option<tollgate_domain::admin::AuditRecord>,
}

/// Bar the subscriber's service for collections (dunning), or lift the barring; idempotent by
/// `key`. While barred, new sessions and events are refused with `account.barred`; usage records
/// are still charged. Answers the balance view after the change (`barred` shows the reason).
///
/// Barring again for the reason in force, or clearing an unbarred account, changes nothing (only
/// the key is remembered). A disconnection (`dunning.disconnected`) is for good: clearing it or
/// replacing it by another reason is refused by the ledger, and the actor then writes nothing and
/// answers the current view, which still shows the disconnection.
#[derive(Message, Clone)]
#[rtype(result = "Result<BalanceView, ActorError>")]
pub struct SetBarring {
    /// Idempotency key (a replayed key answers the current view and writes nothing).
    pub key: SmolStr,
    /// `Some(reason)` bars (e.g. `dunning.suspended`), `None` lifts the barring.
    pub barring: Option<SmolStr>,
    /// The audit record of the change (who, request, target); the actor fills in the account
    /// before and after and writes it in the same durable write as the change.
    pub audit: Option<tollgate_domain::admin::AuditRecord>,
}

/// Read the balance.
#[derive(Message, Clone)]
#[rtype(result = "Result<BalanceView, ActorError>")]
pub struct GetBalance;

/// Free units left in an allowance this period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeUnits {
    /// Allowance id.
    pub allowance: SmolStr,
    /// Period.
    pub period: SmolStr,
    /// Units left.
    pub left: u64,
    /// Units per period.
    pub total: u64,
}

/// A subscriber's balances as care agents and network elements see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    /// Subscriber.
    pub subscriber: SubscriberId,
    /// Prepaid or postpaid.
    pub mode: Mode,
    /// Status.
    pub status: Status,
    /// Balance.
    pub balance: Money,
    /// Reserved by open sessions.
    pub reserved: Money,
    /// Available for new reservations.
    pub available: Money,
    /// Open sessions.
    pub open_sessions: usize,
    /// Free units left.
    pub free_units: Vec<FreeUnits>,
    /// Ledger entries so far.
    pub entries: u64,
    /// The reason of the barring by collections in force (e.g. `dunning.suspended`), if any.
    pub barred: Option<SmolStr>,
}

/// Rate a subscriber's records of `[from, to)` again with the versions in force at their start;
/// changed charges are reversed and charged anew (never edited). Idempotent per `job`.
#[derive(Message, Clone)]
#[rtype(result = "Result<RerateReport, ActorError>")]
pub struct Rerate {
    /// The rerate job (its idempotency key).
    pub job: SmolStr,
    /// Records starting at or after.
    pub from: jiff::Timestamp,
    /// Records starting before.
    pub to: jiff::Timestamp,
    /// Compute the report only; write nothing.
    pub dry_run: bool,
    /// The audit record of the job (who, request); the actor fills before/after.
    pub audit: Option<tollgate_domain::admin::AuditRecord>,
}

/// What a rerate did for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerateReport {
    /// Subscriber.
    pub subscriber: SmolStr,
    /// Job.
    pub job: SmolStr,
    /// Range start.
    pub from: jiff::Timestamp,
    /// Range end.
    pub to: jiff::Timestamp,
    /// Nothing was written.
    pub dry_run: bool,
    /// The job had already been applied: this is its first report, nothing was written now.
    pub replayed: bool,
    /// Records in the range.
    pub records: usize,
    /// Records whose charge did not change.
    pub unchanged: usize,
    /// Records whose charge changed: old and new charge and version, credit.
    pub changed: Vec<tollgate_domain::rating::rerate::RerateLine>,
    /// Records that could not be rated again (they keep their charge).
    pub failed: Vec<tollgate_domain::rating::rerate::RerateFailure>,
    /// Stored records without the record itself (rated before records were kept), not rerated.
    pub not_rerateable: usize,
    /// Sum of `old - new` over changed records: positive when the customer is credited.
    pub credit: Money,
}
