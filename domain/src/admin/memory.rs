//! An in-memory [`AdminStore`] for unit tests and tools; not durable.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::store::{AdminChange, AdminStore, AdminWrite};
use super::{
    ApiToken, AuditFilter, AuditId, AuditRecord, CatalogueDraft, CatalogueVersion, Role,
    TableOwner, User,
};
use crate::ledger::StoreError;

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    tokens: BTreeMap<String, ApiToken>,
    roles: BTreeMap<String, Role>,
    drafts: BTreeMap<String, CatalogueDraft>,
    versions: BTreeMap<u64, CatalogueVersion>,
    tables: BTreeMap<(String, String), Vec<u8>>,
    audit: BTreeMap<AuditId, AuditRecord>,
}

fn owner_key(owner: &TableOwner) -> String {
    match owner {
        TableOwner::Draft(id) => format!("d/{id}"),
        TableOwner::Version(v) => format!("v/{v:020}"),
    }
}

/// Administration data in memory.
#[derive(Default)]
pub struct MemoryAdminStore {
    state: Mutex<State>,
}

impl MemoryAdminStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| StoreError::Io("admin store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl AdminStore for MemoryAdminStore {
    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|s| s.users.values().cloned().collect())
    }

    fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.with(|s| s.tokens.values().cloned().collect())
    }

    fn roles(&self) -> Result<Vec<Role>, StoreError> {
        self.with(|s| s.roles.values().cloned().collect())
    }

    fn drafts(&self) -> Result<Vec<CatalogueDraft>, StoreError> {
        self.with(|s| s.drafts.values().cloned().collect())
    }

    fn draft(&self, id: &str) -> Result<Option<CatalogueDraft>, StoreError> {
        self.with(|s| s.drafts.get(id).cloned())
    }

    fn versions(&self) -> Result<Vec<CatalogueVersion>, StoreError> {
        self.with(|s| s.versions.values().cloned().collect())
    }

    fn version(&self, version: u64) -> Result<Option<CatalogueVersion>, StoreError> {
        self.with(|s| s.versions.get(&version).cloned())
    }

    fn prefix_table(&self, owner: &TableOwner, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|s| s.tables.get(&(owner_key(owner), name.to_string())).cloned())
    }

    fn audit(
        &self,
        filter: &AuditFilter,
        after: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.with(|s| {
            let start = after.map_or(AuditId(0), |a| AuditId(a.0.saturating_add(1)));
            s.audit
                .range(start..)
                .map(|(_, r)| r)
                .filter(|r| filter.matches(r))
                .take(limit)
                .cloned()
                .collect()
        })
    }

    fn commit(&self, write: AdminWrite) -> Result<(), StoreError> {
        self.with(|s| {
            let mut new_versions = std::collections::BTreeSet::new();
            for change in &write.changes {
                if let AdminChange::PutVersion(v) = change
                    && (s.versions.contains_key(&v.version) || !new_versions.insert(v.version))
                {
                    return Err(StoreError::Io(format!(
                        "catalogue version {} exists",
                        v.version
                    )));
                }
            }
            for change in write.changes {
                match change {
                    AdminChange::PutUser(u) => {
                        s.users.insert(u.name.to_string(), u);
                    }
                    AdminChange::PutToken(t) => {
                        s.tokens.insert(t.id.to_string(), t);
                    }
                    AdminChange::PutRole(r) => {
                        s.roles.insert(r.name.to_string(), r);
                    }
                    AdminChange::DeleteRole(name) => {
                        s.roles.remove(name.as_str());
                    }
                    AdminChange::PutDraft(d) => {
                        s.drafts.insert(d.id.to_string(), d);
                    }
                    AdminChange::DeleteDraft(id) => {
                        s.drafts.remove(id.as_str());
                        let prefix = owner_key(&TableOwner::Draft(id));
                        s.tables.retain(|(owner, _), _| *owner != prefix);
                    }
                    AdminChange::PutPrefixTable { owner, name, csv } => {
                        s.tables.insert((owner_key(&owner), name), csv);
                    }
                    AdminChange::DeletePrefixTable { owner, name } => {
                        s.tables.remove(&(owner_key(&owner), name));
                    }
                    AdminChange::PutVersion(v) => {
                        s.versions.insert(v.version, v);
                    }
                }
            }
            for record in write.audit {
                s.audit.insert(record.id, record);
            }
            Ok(())
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_the_admin_contract() {
        super::super::contract::run(&MemoryAdminStore::new()).unwrap();
    }
}
