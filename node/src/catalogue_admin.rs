//! The catalogue managed at run time: drafts edited item by item (or as a whole TOML document),
//! validated with exactly the checks of `tollgate check-catalogue`, and published as immutable,
//! numbered versions with an effective date. Publishing swaps the node's version timeline in one
//! pointer store: actors take one snapshot per message, so traffic never waits and every record
//! is rated by exactly one version, the one in force at its start time.
//!
//! Every change is committed with its audit record in one durable write before the answer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde_json::{Value, json};
use smol_str::SmolStr;
use tollgate_actors::Shared;
use tollgate_domain::admin::{
    AdminChange, AdminStore, AdminWrite, CatalogueDraft, CatalogueVersion, PrefixTableInfo,
    TableOwner,
};
use tollgate_domain::catalogue::document::{self, DocumentError};
use tollgate_domain::catalogue::{Catalogue, Problems, Timeline};
use tollgate_domain::ledger::StoreError;

use crate::access::{Attribution, random_hex};

/// Why a catalogue operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// Storage failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such draft, version, item or table.
    #[error("{message}")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// An edit that does not fit the document.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The catalogue does not validate; every problem is listed.
    #[error("the catalogue has {} problem(s)", .0.0.len())]
    Invalid(Problems),
    /// A request that cannot be carried out as asked.
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// The draft changed since the revision the caller saw.
    #[error("the draft is at revision {current}, not {given}")]
    Stale {
        /// Current revision.
        current: u64,
        /// Given revision.
        given: u64,
    },
}

fn not_found(code: &'static str, message: String) -> CatalogueError {
    CatalogueError::NotFound { code, message }
}

/// The outcome of publishing.
pub struct Published {
    /// The version.
    pub version: CatalogueVersion,
    /// False when the draft had been published before (an idempotent replay).
    pub created: bool,
}

/// Drafts, versions and the node's timeline.
pub struct CatalogueAdmin {
    store: Arc<dyn AdminStore>,
    shared: Arc<Shared>,
    writes: Mutex<()>,
}

impl CatalogueAdmin {
    /// Loads every published version into the node's timeline. On a store with no version, the
    /// configured catalogue file becomes version 1 (effective from the start of time), audited
    /// as `catalogue.import` by `system`.
    pub fn open(
        store: Arc<dyn AdminStore>,
        shared: Arc<Shared>,
        file: Option<&Path>,
    ) -> Result<CatalogueAdmin, String> {
        let admin = CatalogueAdmin {
            store,
            shared,
            writes: Mutex::new(()),
        };
        let versions = admin.store.versions().map_err(|e| e.to_string())?;
        if let (true, Some(path)) = (versions.is_empty(), file) {
            admin.import(path)?;
        }
        admin.reload()?;
        Ok(admin)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn import(&self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("catalogue {}: {e}", path.display()))?;
        let doc = document::from_toml(&text)
            .map_err(|p| format!("catalogue {}:\n{p}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut tables = BTreeMap::new();
        for name in referenced_tables(&doc) {
            let csv =
                std::fs::read(dir.join(&name)).map_err(|e| format!("prefix table {name}: {e}"))?;
            tables.insert(name, csv);
        }
        let infos = table_infos(&tables).map_err(|p| format!("prefix tables:\n{p}"))?;
        let now = Timestamp::now();
        let version = CatalogueVersion {
            version: 1,
            effective_from: Timestamp::UNIX_EPOCH,
            published_at: now,
            published_by: "system".into(),
            draft: "bootstrap".into(),
            notes: format!("imported from {}", path.display()),
            document: doc,
            prefix_tables: infos,
        };
        let mut write = AdminWrite::default();
        write.audit.push(tollgate_domain::admin::AuditRecord::new(
            now,
            "system",
            "catalogue.import",
            "catalogue/version/1",
            "startup",
            None,
            Some(version_summary(&version)),
        ));
        write.changes.push(AdminChange::PutVersion(version));
        for (name, csv) in tables {
            write.changes.push(AdminChange::PutPrefixTable {
                owner: TableOwner::Version(1),
                name,
                csv,
            });
        }
        self.store.commit(write).map_err(|e| e.to_string())
    }

    /// Rebuilds the timeline from every stored version.
    fn reload(&self) -> Result<(), String> {
        let mut entries = Vec::new();
        for v in self.store.versions().map_err(|e| e.to_string())? {
            let catalogue = self
                .build_version(&v)
                .map_err(|e| format!("catalogue version {}: {e}", v.version))?;
            entries.push((v.version, v.effective_from, Arc::new(catalogue)));
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.swap(Timeline::new(entries));
        Ok(())
    }

    fn build_version(&self, v: &CatalogueVersion) -> Result<Catalogue, CatalogueError> {
        let tables = self.tables(&TableOwner::Version(v.version), v.prefix_tables.keys())?;
        document::build(&v.document, &tables, &format!("version {}", v.version))
            .map_err(CatalogueError::Invalid)
    }

    fn tables<'a>(
        &self,
        owner: &TableOwner,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<BTreeMap<String, Vec<u8>>, CatalogueError> {
        let mut out = BTreeMap::new();
        for name in names {
            if let Some(csv) = self.store.prefix_table(owner, name)? {
                out.insert(name.clone(), csv);
            }
        }
        Ok(out)
    }

    fn swap(&self, timeline: Timeline) {
        let mut slot = self
            .shared
            .catalogue
            .write()
            .unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(timeline);
    }

    fn timeline(&self) -> Arc<Timeline> {
        match self.shared.catalogue.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The version in force at `at`.
    pub fn in_force(&self, at: Timestamp) -> Option<u64> {
        self.timeline().at(at).map(|(v, _)| v)
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> Result<Vec<CatalogueVersion>, CatalogueError> {
        Ok(self.store.versions()?)
    }

    /// One version.
    pub fn version(&self, version: u64) -> Result<CatalogueVersion, CatalogueError> {
        self.store
            .version(version)?
            .ok_or_else(|| not_found("catalogue.unknown_version", format!("no version {version}")))
    }

    /// A prefix table of a draft or version, as CSV.
    pub fn prefix_table(&self, owner: &TableOwner, name: &str) -> Result<Vec<u8>, CatalogueError> {
        self.store.prefix_table(owner, name)?.ok_or_else(|| {
            not_found(
                "catalogue.unknown_table",
                format!("no prefix table {name:?}"),
            )
        })
    }

    /// Every draft.
    pub fn drafts(&self) -> Result<Vec<CatalogueDraft>, CatalogueError> {
        Ok(self.store.drafts()?)
    }

    /// One draft.
    pub fn draft(&self, id: &str) -> Result<CatalogueDraft, CatalogueError> {
        self.store
            .draft(id)?
            .ok_or_else(|| not_found("catalogue.unknown_draft", format!("no draft {id:?}")))
    }

    /// Creates a draft: a copy of a version (with its prefix tables), a TOML document, or empty.
    pub fn create_draft(
        &self,
        by: &Attribution<'_>,
        from_version: Option<u64>,
        toml: Option<&str>,
    ) -> Result<CatalogueDraft, CatalogueError> {
        let _guard = self.lock();
        let id: SmolStr = format!(
            "d-{}",
            random_hex(12).map_err(|e| StoreError::Io(e.to_string()))?
        )
        .into();
        let mut changes = Vec::new();
        let (document, prefix_tables) = match (from_version, toml) {
            (Some(_), Some(_)) => {
                return Err(CatalogueError::Refused {
                    code: "catalogue.ambiguous_source",
                    message: "give from_version or document, not both".into(),
                });
            }
            (Some(v), None) => {
                let version = self.version(v)?;
                for name in version.prefix_tables.keys() {
                    let csv = self.prefix_table(&TableOwner::Version(v), name)?;
                    changes.push(AdminChange::PutPrefixTable {
                        owner: TableOwner::Draft(id.clone()),
                        name: name.clone(),
                        csv,
                    });
                }
                (version.document, version.prefix_tables)
            }
            (None, Some(text)) => (
                document::from_toml(text).map_err(CatalogueError::Invalid)?,
                BTreeMap::new(),
            ),
            (None, None) => (json!({}), BTreeMap::new()),
        };
        let draft = CatalogueDraft {
            id: id.clone(),
            based_on: from_version,
            document,
            prefix_tables,
            created_at: by.at,
            created_by: by.principal.user.clone(),
            updated_at: by.at,
            revision: 1,
        };
        changes.insert(0, AdminChange::PutDraft(draft.clone()));
        let write = AdminWrite {
            audit: vec![by.record(
                "catalogue.draft.create",
                format!("catalogue/draft/{id}"),
                None,
                Some(json!({ "based_on": from_version, "revision": 1 })),
            )],
            changes,
        };
        self.store.commit(write)?;
        Ok(draft)
    }

    /// Deletes a draft and its prefix tables.
    pub fn delete_draft(&self, by: &Attribution<'_>, id: &str) -> Result<(), CatalogueError> {
        let _guard = self.lock();
        let draft = self.draft(id)?;
        let write = AdminWrite {
            audit: vec![by.record(
                "catalogue.draft.delete",
                format!("catalogue/draft/{id}"),
                Some(json!({ "revision": draft.revision, "based_on": draft.based_on })),
                None,
            )],
            changes: vec![AdminChange::DeleteDraft(draft.id)],
        };
        Ok(self.store.commit(write)?)
    }

    /// Applies `edit` to a draft's document and commits it with one audit record whose before
    /// and after are what `edit` returns.
    pub fn edit_draft(
        &self,
        by: &Attribution<'_>,
        id: &str,
        operation: &str,
        target: &str,
        edit: impl FnOnce(&mut Value) -> Result<(Option<Value>, Option<Value>), CatalogueError>,
    ) -> Result<CatalogueDraft, CatalogueError> {
        let _guard = self.lock();
        let mut draft = self.draft(id)?;
        let (before, after) = edit(&mut draft.document)?;
        draft.revision += 1;
        draft.updated_at = by.at;
        let write = AdminWrite {
            audit: vec![by.record(
                operation,
                format!("catalogue/draft/{id}/{target}"),
                before,
                after,
            )],
            changes: vec![AdminChange::PutDraft(draft.clone())],
        };
        self.store.commit(write)?;
        Ok(draft)
    }

    /// Stores (or replaces) a prefix table of a draft after checking every row.
    pub fn put_table(
        &self,
        by: &Attribution<'_>,
        id: &str,
        name: &str,
        csv: Vec<u8>,
    ) -> Result<(PrefixTableInfo, bool), CatalogueError> {
        if !crate::access::valid_name(name) {
            return Err(CatalogueError::Refused {
                code: "catalogue.invalid_table_name",
                message: "a table name is 1-64 of a-z A-Z 0-9 . _ - (not starting with .)".into(),
            });
        }
        let info = document::prefix_table_info(&csv).map_err(CatalogueError::Invalid)?;
        let _guard = self.lock();
        let mut draft = self.draft(id)?;
        let before = draft.prefix_tables.insert(name.to_string(), info.clone());
        let created = before.is_none();
        draft.revision += 1;
        draft.updated_at = by.at;
        let write = AdminWrite {
            audit: vec![by.record(
                "catalogue.draft.put_table",
                format!("catalogue/draft/{id}/prefix-tables/{name}"),
                before.and_then(|b| serde_json::to_value(b).ok()),
                serde_json::to_value(&info).ok(),
            )],
            changes: vec![
                AdminChange::PutDraft(draft),
                AdminChange::PutPrefixTable {
                    owner: TableOwner::Draft(id.into()),
                    name: name.to_string(),
                    csv,
                },
            ],
        };
        self.store.commit(write)?;
        Ok((info, created))
    }

    /// Deletes a prefix table of a draft.
    pub fn delete_table(
        &self,
        by: &Attribution<'_>,
        id: &str,
        name: &str,
    ) -> Result<(), CatalogueError> {
        let _guard = self.lock();
        let mut draft = self.draft(id)?;
        let Some(before) = draft.prefix_tables.remove(name) else {
            return Err(not_found(
                "catalogue.unknown_table",
                format!("draft {id} has no prefix table {name:?}"),
            ));
        };
        draft.revision += 1;
        draft.updated_at = by.at;
        let write = AdminWrite {
            audit: vec![by.record(
                "catalogue.draft.delete_table",
                format!("catalogue/draft/{id}/prefix-tables/{name}"),
                serde_json::to_value(before).ok(),
                None,
            )],
            changes: vec![
                AdminChange::PutDraft(draft),
                AdminChange::DeletePrefixTable {
                    owner: TableOwner::Draft(id.into()),
                    name: name.to_string(),
                },
            ],
        };
        Ok(self.store.commit(write)?)
    }

    /// Validates a draft as a whole (the checks of `tollgate check-catalogue`).
    pub fn validate(&self, id: &str) -> Result<Result<Catalogue, Problems>, CatalogueError> {
        let draft = self.draft(id)?;
        let tables = self.tables(
            &TableOwner::Draft(draft.id.clone()),
            draft.prefix_tables.keys(),
        )?;
        Ok(document::build(
            &draft.document,
            &tables,
            &format!("draft {id}"),
        ))
    }

    /// Validates and publishes a draft as the next version, effective from `effective_from`
    /// (not in the past: use rerating for the past). Idempotent per draft: publishing a draft
    /// that was published answers the version it became.
    pub fn publish(
        &self,
        by: &Attribution<'_>,
        id: &str,
        effective_from: Timestamp,
        revision: Option<u64>,
        notes: String,
        backdate: bool,
    ) -> Result<Published, CatalogueError> {
        let _guard = self.lock();
        let Some(draft) = self.store.draft(id)? else {
            if let Some(version) = self.store.versions()?.into_iter().find(|v| v.draft == id) {
                return Ok(Published {
                    version,
                    created: false,
                });
            }
            return Err(not_found(
                "catalogue.unknown_draft",
                format!("no draft {id:?}"),
            ));
        };
        if let Some(given) = revision.filter(|given| *given != draft.revision) {
            return Err(CatalogueError::Stale {
                current: draft.revision,
                given,
            });
        }
        if backdate && notes.trim().is_empty() {
            return Err(CatalogueError::Refused {
                code: "catalogue.backdate_needs_reason",
                message: "a backdated version needs notes saying why".into(),
            });
        }
        if effective_from < by.at && !backdate {
            return Err(CatalogueError::Refused {
                code: "catalogue.effective_in_past",
                message: format!(
                    "effective_from {effective_from} is in the past; a new version prices usage \
                     from now on; to correct the past, publish with \"backdate\": true and a reason, \
                     then recycle or rerate"
                ),
            });
        }
        let tables = self.tables(
            &TableOwner::Draft(draft.id.clone()),
            draft.prefix_tables.keys(),
        )?;
        let catalogue = document::build(&draft.document, &tables, &format!("draft {id}"))
            .map_err(CatalogueError::Invalid)?;
        let versions = self.store.versions()?;
        let number = versions.last().map_or(1, |v| v.version + 1);
        let previous = versions.last();
        let version = CatalogueVersion {
            version: number,
            effective_from,
            published_at: by.at,
            published_by: by.principal.user.clone(),
            draft: draft.id.clone(),
            notes,
            document: draft.document.clone(),
            prefix_tables: draft.prefix_tables.clone(),
        };
        let mut after = version_summary(&version);
        if let Some(obj) = after.as_object_mut() {
            obj.insert(
                "changes".into(),
                diff_documents(previous.map(|p| &p.document), &version.document),
            );
        }
        let mut changes = vec![AdminChange::PutVersion(version.clone())];
        for (name, csv) in tables {
            changes.push(AdminChange::PutPrefixTable {
                owner: TableOwner::Version(number),
                name,
                csv,
            });
        }
        changes.push(AdminChange::DeleteDraft(draft.id.clone()));
        let write = AdminWrite {
            audit: vec![by.record(
                "catalogue.publish",
                format!("catalogue/version/{number}"),
                previous.map(version_summary),
                Some(after),
            )],
            changes,
        };
        self.store.commit(write)?;
        let timeline = self
            .timeline()
            .with(number, effective_from, Arc::new(catalogue));
        self.swap(timeline);
        Ok(Published {
            version,
            created: true,
        })
    }
}

/// The prefix tables a document's destinations refer to.
pub fn referenced_tables(doc: &Value) -> Vec<String> {
    doc.get("destinations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("file").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn table_infos(
    tables: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, PrefixTableInfo>, Problems> {
    tables
        .iter()
        .map(|(name, csv)| Ok((name.clone(), document::prefix_table_info(csv)?)))
        .collect()
}

/// A version without its document: what the audit trail records of it.
pub fn version_summary(v: &CatalogueVersion) -> Value {
    let counts: serde_json::Map<String, Value> = document::SECTIONS
        .iter()
        .map(|s| {
            let n = v
                .document
                .get(*s)
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            ((*s).to_string(), json!(n))
        })
        .collect();
    json!({
        "version": v.version,
        "effective_from": v.effective_from.to_string(),
        "draft": v.draft,
        "notes": v.notes,
        "items": counts,
        "prefix_tables": v.prefix_tables,
    })
}

/// Items added, removed and changed per section between two documents.
pub fn diff_documents(before: Option<&Value>, after: &Value) -> Value {
    let empty = json!({});
    let before = before.unwrap_or(&empty);
    let mut out = serde_json::Map::new();
    let ids = |doc: &Value, section: &str| -> BTreeMap<String, Value> {
        doc.get(section)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let id = item.get("id")?.as_str()?.to_string();
                Some((id, item.clone()))
            })
            .collect()
    };
    for section in document::SECTIONS {
        let (old, new) = (ids(before, section), ids(after, section));
        let added: Vec<&String> = new.keys().filter(|k| !old.contains_key(*k)).collect();
        let removed: Vec<&String> = old.keys().filter(|k| !new.contains_key(*k)).collect();
        let changed: Vec<&String> = new
            .iter()
            .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
            .map(|(k, _)| k)
            .collect();
        if !(added.is_empty() && removed.is_empty() && changed.is_empty()) {
            out.insert(
                (*section).to_string(),
                json!({ "added": added, "removed": removed, "changed": changed }),
            );
        }
    }
    if before.get("catalogue") != after.get("catalogue") {
        out.insert("catalogue".into(), json!({ "changed": ["header"] }));
    }
    Value::Object(out)
}
