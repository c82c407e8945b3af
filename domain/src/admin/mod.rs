//! Administration: who may do what ([`access`]), what was done by whom ([`audit`]), the
//! catalogue's drafts and published versions ([`catalogue`]), and the storage contract that keeps
//! them ([`store`]).
//!
//! Invariant 7 (every change is attributable) lives here: an [`AdminWrite`] carries its audit
//! records, and every backend makes the change and its records durable in one transaction.

pub mod access;
pub mod audit;
pub mod catalogue;
pub mod contract;
pub mod memory;
pub mod store;

pub use access::{ApiToken, Permission, Role, User};
pub use audit::{AuditFilter, AuditId, AuditRecord};
pub use catalogue::{CatalogueDraft, CatalogueVersion, PrefixTableInfo, TableOwner};
pub use memory::MemoryAdminStore;
pub use store::{AdminChange, AdminStore, AdminWrite};
