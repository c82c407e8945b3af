//! The administration storage contract ([`AdminStore`]) on the embedded store.
//!
//! Tables (values are JSON unless noted):
//! - `admin_users`: user name -> user;
//! - `admin_tokens`: token id -> token (the secret's hash only);
//! - `admin_roles`: custom role name -> role;
//! - `catalogue_drafts`: draft id -> draft;
//! - `catalogue_versions`: version (8 bytes, big-endian) -> version;
//! - `catalogue_tables`: owner key, a zero byte, table name -> the CSV bytes, where the owner key
//!   is `d/<draft id>` or `v/<version, 20 digits zero-padded>`, so one owner's tables are one
//!   prefix;
//! - `audit`: [`AuditId::key`] (16 bytes, big-endian, so time-ordered) -> audit record.
//!
//! A commit is one [`WriteBatch`] holding every change and every audit record: the change and its
//! records are durable together or not at all. The ledger writes the audit records of actor-made
//! changes (top-ups) into the same `audit` table through [`put_audit`].

use std::sync::{Arc, Mutex, PoisonError};

use tollgate_domain::admin::{
    AdminChange, AdminStore, AdminWrite, ApiToken, AuditFilter, AuditId, AuditRecord,
    CatalogueDraft, CatalogueVersion, Role, TableOwner, User,
};
use tollgate_domain::ledger::StoreError;

use crate::embedded::{EmbeddedStore, WriteBatch};
use crate::ledger::convert;

const USERS: &str = "admin_users";
const TOKENS: &str = "admin_tokens";
const ROLES: &str = "admin_roles";
const DRAFTS: &str = "catalogue_drafts";
const VERSIONS: &str = "catalogue_versions";
const TABLES: &str = "catalogue_tables";
/// The audit trail table, shared by the admin store and the ledger.
pub(crate) const AUDIT: &str = "audit";
/// Rows read per scan when walking a table.
const CHUNK: usize = 1_000;

/// Serialises the check-then-commit of admin writes in this process, so that two writes
/// publishing the same version number cannot both pass the existence check. The store is
/// held by one process, and admin writes are rare, so one process-wide lock is enough.
static COMMIT_LOCK: Mutex<()> = Mutex::new(());

/// Administration storage on the embedded store; shares the store (one file, one writer
/// thread) with the ledger.
pub struct EmbeddedAdminStore {
    store: Arc<EmbeddedStore>,
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Adds `record` to `batch` under its id in the `audit` table.
pub(crate) fn put_audit(batch: &mut WriteBatch, record: &AuditRecord) -> Result<(), StoreError> {
    batch.put(AUDIT, &record.id.key(), &encode(record)?);
    Ok(())
}

/// The key prefix of every prefix table of `owner`: the owner key and a zero byte.
fn owner_prefix(owner: &TableOwner) -> Vec<u8> {
    let mut key = match owner {
        TableOwner::Draft(id) => format!("d/{id}"),
        TableOwner::Version(v) => format!("v/{v:020}"),
    }
    .into_bytes();
    key.push(0);
    key
}

fn table_key(owner: &TableOwner, name: &str) -> Vec<u8> {
    let mut key = owner_prefix(owner);
    key.extend_from_slice(name.as_bytes());
    key
}

impl EmbeddedAdminStore {
    /// Administration storage on `store` (typically the one the ledger uses).
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedAdminStore { store }
    }

    /// Every value of `table`, in key order, read in chunks.
    fn all<T: serde::de::DeserializeOwned>(&self, table: &str) -> Result<Vec<T>, StoreError> {
        let mut values = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self
                .store
                .scan_after(table, after.as_deref(), CHUNK)
                .map_err(convert)?;
            for (_, value) in &rows {
                values.push(decode(value)?);
            }
            match rows.last() {
                Some((last, _)) if rows.len() == CHUNK => after = Some(last.clone()),
                _ => break,
            }
        }
        Ok(values)
    }

    fn one<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.store
            .get(table, key)
            .map_err(convert)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every key of `table` starting with `prefix`, read in chunks.
    fn keys_with_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            // `scan_prefix` has no cursor: walk with `scan_after` from just before the prefix
            // and stop at the first key outside it.
            let rows = match &after {
                None => self.store.scan_prefix(table, prefix, CHUNK),
                Some(last) => self.store.scan_after(table, Some(last), CHUNK),
            }
            .map_err(convert)?;
            let full = rows.len() == CHUNK;
            let mut left_prefix = false;
            for (key, _) in rows {
                if !key.starts_with(prefix) {
                    left_prefix = true;
                    break;
                }
                after = Some(key.clone());
                keys.push(key);
            }
            if left_prefix || !full {
                break;
            }
        }
        Ok(keys)
    }

    /// Encodes `write` into one batch, refusing a version number that exists (or is given twice).
    fn batch(&self, write: &AdminWrite) -> Result<WriteBatch, StoreError> {
        let mut batch = WriteBatch::new();
        let mut new_versions = std::collections::BTreeSet::new();
        // Prefix tables put earlier in this write: a later `DeleteDraft` removes them too.
        let mut tables_put: Vec<Vec<u8>> = Vec::new();
        for change in &write.changes {
            match change {
                AdminChange::PutUser(user) => {
                    batch.put(USERS, user.name.as_bytes(), &encode(user)?);
                }
                AdminChange::PutToken(token) => {
                    batch.put(TOKENS, token.id.as_bytes(), &encode(token)?);
                }
                AdminChange::PutRole(role) => {
                    batch.put(ROLES, role.name.as_bytes(), &encode(role)?);
                }
                AdminChange::DeleteRole(name) => {
                    batch.delete(ROLES, name.as_bytes());
                }
                AdminChange::PutDraft(draft) => {
                    batch.put(DRAFTS, draft.id.as_bytes(), &encode(draft)?);
                }
                AdminChange::DeleteDraft(id) => {
                    batch.delete(DRAFTS, id.as_bytes());
                    let prefix = owner_prefix(&TableOwner::Draft(id.clone()));
                    for key in self.keys_with_prefix(TABLES, &prefix)? {
                        batch.delete(TABLES, &key);
                    }
                    for key in tables_put.iter().filter(|k| k.starts_with(&prefix)) {
                        batch.delete(TABLES, key);
                    }
                }
                AdminChange::PutPrefixTable { owner, name, csv } => {
                    let key = table_key(owner, name);
                    batch.put(TABLES, &key, csv);
                    tables_put.push(key);
                }
                AdminChange::DeletePrefixTable { owner, name } => {
                    batch.delete(TABLES, &table_key(owner, name));
                }
                AdminChange::PutVersion(version) => {
                    let key = version.version.to_be_bytes();
                    if !new_versions.insert(version.version)
                        || self.store.get(VERSIONS, &key).map_err(convert)?.is_some()
                    {
                        return Err(StoreError::Io(format!(
                            "catalogue version {} exists",
                            version.version
                        )));
                    }
                    batch.put(VERSIONS, &key, &encode(version)?);
                }
            }
        }
        for record in &write.audit {
            put_audit(&mut batch, record)?;
        }
        Ok(batch)
    }
}

impl AdminStore for EmbeddedAdminStore {
    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.all(USERS)
    }

    fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.all(TOKENS)
    }

    fn roles(&self) -> Result<Vec<Role>, StoreError> {
        self.all(ROLES)
    }

    fn drafts(&self) -> Result<Vec<CatalogueDraft>, StoreError> {
        self.all(DRAFTS)
    }

    fn draft(&self, id: &str) -> Result<Option<CatalogueDraft>, StoreError> {
        self.one(DRAFTS, id.as_bytes())
    }

    fn versions(&self) -> Result<Vec<CatalogueVersion>, StoreError> {
        self.all(VERSIONS)
    }

    fn version(&self, version: u64) -> Result<Option<CatalogueVersion>, StoreError> {
        self.one(VERSIONS, &version.to_be_bytes())
    }

    fn prefix_table(&self, owner: &TableOwner, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .get(TABLES, &table_key(owner, name))
            .map_err(convert)
    }

    fn audit(
        &self,
        filter: &AuditFilter,
        after: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        // Ids start with the time, so a `from` bound skips every earlier key: start just before
        // the first id of that microsecond, unless the cursor is already past it.
        let from_start = filter
            .from
            .and_then(|from| u64::try_from(from.as_microsecond()).ok())
            .filter(|&micros| micros > 0)
            .map(|micros| AuditId((u128::from(micros) << 64) - 1));
        let mut cursor = match (after, from_start) {
            (Some(a), Some(f)) => Some(a.max(f)),
            (a, f) => a.or(f),
        }
        .map(|id| id.key().to_vec());
        loop {
            let rows = self
                .store
                .scan_after(AUDIT, cursor.as_deref(), CHUNK)
                .map_err(convert)?;
            let full = rows.len() == CHUNK;
            for (key, value) in &rows {
                let record: AuditRecord = decode(value)?;
                if filter.matches(&record) {
                    found.push(record);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
                cursor = Some(key.clone());
            }
            if !full {
                return Ok(found);
            }
        }
    }

    fn commit(&self, write: AdminWrite) -> Result<(), StoreError> {
        let _serialised = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = self.batch(&write)?;
        if batch.is_empty() {
            return Ok(());
        }
        self.store.commit(batch).map(|_| ()).map_err(convert)
    }
}
