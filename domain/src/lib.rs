//! Tollgate's pure domain logic: exact money, identities, the product catalogue, usage records
//! and their decoding, and rating.
//!
//! Nothing here does IO or depends on a runtime: every function takes its inputs and returns its
//! results (TigerBeetle's "keep leaf functions pure"), so actors, the offline CLI, tests and
//! benchmarks share exactly the same rules.
//!
//! Invariants kept here:
//! - money is `rust_decimal`, tagged with its currency; arithmetic never mixes currencies and
//!   rounding happens at explicit points only (see [`rating`] for the one place a charge is
//!   rounded);
//! - every rejection carries a stable code (`cdr.*`, `rating.*`, `money.*`, `billing.*`,
//!   `hierarchy.*`, `subscription.*`) used as suspense reason, API error code, dead-letter reason
//!   and metric label.

pub mod admin;
pub mod attrs;
pub mod billing;
pub mod calendar;
pub mod catalogue;
pub mod cdr;
pub mod finance;
pub mod ids;
pub mod ledger;
pub mod mediation;
pub mod money;
pub mod number;
pub mod partner;
pub mod prefix;
pub mod rating;
pub mod subscriber;
