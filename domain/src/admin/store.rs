//! The storage contract of administration data: users, tokens, custom roles, catalogue drafts
//! and versions, and the audit trail. Every write carries its audit records and is durable as
//! one transaction before `commit` returns.

use smol_str::SmolStr;

use super::{
    ApiToken, AuditFilter, AuditId, AuditRecord, CatalogueDraft, CatalogueVersion, Role,
    TableOwner, User,
};
use crate::ledger::StoreError;

/// One change in an [`AdminWrite`].
#[derive(Debug, Clone, PartialEq)]
pub enum AdminChange {
    /// Create or replace a user.
    PutUser(User),
    /// Create or replace a token.
    PutToken(ApiToken),
    /// Create or replace a custom role.
    PutRole(crate::admin::Role),
    /// Delete a custom role.
    DeleteRole(SmolStr),
    /// Create or replace a draft (not its prefix tables).
    PutDraft(CatalogueDraft),
    /// Delete a draft and every prefix table it owns.
    DeleteDraft(SmolStr),
    /// Store a prefix table's CSV.
    PutPrefixTable {
        /// Owner.
        owner: TableOwner,
        /// Table name.
        name: String,
        /// CSV bytes.
        csv: Vec<u8>,
    },
    /// Delete a prefix table.
    DeletePrefixTable {
        /// Owner.
        owner: TableOwner,
        /// Table name.
        name: String,
    },
    /// Store a published version (its prefix tables go in `PutPrefixTable` changes of the same
    /// write). Refused if the version number exists.
    PutVersion(CatalogueVersion),
}

/// Changes and the audit records that describe them, made durable together or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminWrite {
    /// Changes, applied in order.
    pub changes: Vec<AdminChange>,
    /// Audit records.
    pub audit: Vec<AuditRecord>,
}

/// Administration storage.
pub trait AdminStore: Send + Sync {
    /// Every user.
    fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Every token (revoked ones included).
    fn tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Every custom role.
    fn roles(&self) -> Result<Vec<Role>, StoreError>;
    /// Every draft.
    fn drafts(&self) -> Result<Vec<CatalogueDraft>, StoreError>;
    /// One draft.
    fn draft(&self, id: &str) -> Result<Option<CatalogueDraft>, StoreError>;
    /// Every version, oldest first.
    fn versions(&self) -> Result<Vec<CatalogueVersion>, StoreError>;
    /// One version.
    fn version(&self, version: u64) -> Result<Option<CatalogueVersion>, StoreError>;
    /// A prefix table's CSV.
    fn prefix_table(&self, owner: &TableOwner, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Audit records matching `filter` with an id greater than `after`, oldest first, at most
    /// `limit`.
    fn audit(
        &self,
        filter: &AuditFilter,
        after: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Applies `write` durably, with its audit records, in one transaction.
    fn commit(&self, write: AdminWrite) -> Result<(), StoreError>;
}
