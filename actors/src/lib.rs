//! Supervised actors of a Tollgate node.
//!
//! Job: one `SubscriberActor` per active subscriber (owns its balance: dedupe, rate through
//! `tollgate-domain`, apply to the ledger, group-commit to storage, answer), one `PartnerActor`
//! per active partner (real-time revenue share), worker actors for bill-cycle, collection and
//! settlement jobs, their supervisors and a watchdog.
//!
//! Invariants kept here: one writer per subscriber (the actor is the only writer, fenced by the
//! shard epoch); a reply or acknowledgement only after the effect is durable; handlers are thin
//! and panic-free, the rules live in `tollgate-domain`.
//!
//! Built so far: the subscriber actor and its router, the partner actor and its router
//! ([`partner`]). The worker actors of bill-cycle, collection and settlement jobs live in the
//! node, next to the job queue they consume.

mod batch;
mod messages;
mod metrics;
pub mod partner;
mod router;
mod subscriber;

pub use batch::{BatchTx, Coordinator, Offer, Participant, RateCdrsIn};
pub use messages::{
    ActorError, BalanceView, CdrOutcome, Charge, FreeUnits, GetBalance, RateCdrs, Rerate,
    RerateReport, SetBarring, TopUp,
};
pub use metrics::ActorMetrics;
pub use partner::{PartnerRouter, PartnerShared, PartnerWake};
pub use router::Router;
pub use subscriber::{Profiles, Settings, Shared, SubscriberActor};
