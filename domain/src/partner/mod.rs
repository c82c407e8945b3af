//! Partner settlement: partners, versioned revenue-share agreements, the share of each rated
//! record, period positions and statements (self-billing), reconciliation with the partner's
//! own statement, and disputes.
//!
//! Like [`crate::finance`], everything here is pure: no IO and no clock (callers pass dates
//! and "now"), so the partner actor, the settlement worker, the API and tests share the same
//! rules. Errors are one [`PartnerError`] with stable codes (`partner.*`, `agreement.*`,
//! `statement.*`, `reconcile.*`, `dispute.*`).
//!
//! Money rules: shares are exact per record and accumulated unrounded per (partner, period,
//! target); each statement line is rounded once, half-up to the currency's minor units, and
//! guarantee, cap, tax and totals are computed from the rounded lines (see [`share`] and
//! [`statement`]). Nothing is counted twice: a [`Position`] keeps the ids it has counted.

pub mod agreement;
pub mod contract;
pub mod dispute;
mod error;
#[cfg(test)]
mod fixtures;
pub mod inbox;
pub mod memory;
// The partner record itself; re-exported below, so callers write `partner::Partner`.
#[allow(clippy::module_inception)]
pub mod partner;
pub mod reconcile;
pub mod run;
pub mod share;
pub mod statement;
pub mod store;

pub use agreement::{
    Agreement, AgreementVersion, ShareRule, ShareTarget, ShareValue, check_agreement,
    check_overlap, check_shares_within_price,
};
pub use dispute::{Dispute, DisputeAction, DisputeEvent, DisputeState, Resolution};
pub use error::PartnerError;
pub use inbox::{InboxRecord, OldCharge};
pub use memory::MemoryPartnerStore;
pub use partner::{Partner, PartnerStatus, PartnerTax};
pub use reconcile::{
    Claim, ClaimFormat, ClaimKey, ClaimProblem, Claims, Reconciliation, parse_claims, reconcile,
};
pub use run::{SettlementItem, SettlementItemState, SettlementRun};
pub use share::{
    Accumulated, InvoiceTotal, ItemShare, LineTotals, Position, RatedRecord, invoice_share,
    share_of,
};
pub use statement::{
    PartnerStatement, StatementLine, StatementStage, StatementStep, StatementTax, build_statement,
};
pub use store::{PartnerRecord, PartnerStore, PartnerWrite, ReconciliationReport, StoredShare};
