//! The engine's tables: one fjall keyspace (an LSM tree) per table name, opened once and shared
//! by the writer thread and readers.

use std::collections::HashMap;
use std::sync::RwLock;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use smol_str::SmolStr;

use super::error::{StoreError, StoreResultExt};

/// The open keyspaces of a database, by table name.
pub(crate) struct Tables {
    pub(crate) database: Database,
    open: RwLock<HashMap<SmolStr, Keyspace>>,
}

impl Tables {
    pub(crate) fn new(database: Database) -> Self {
        Self {
            database,
            open: RwLock::new(HashMap::new()),
        }
    }

    fn cached(&self, name: &str) -> Option<Keyspace> {
        self.open
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The table `name` if it exists (reads of a table never written are empty, not an error,
    /// and do not create it).
    pub(crate) fn existing(&self, name: &str) -> Result<Option<Keyspace>, StoreError> {
        if let Some(keyspace) = self.cached(name) {
            return Ok(Some(keyspace));
        }
        if !self.database.keyspace_exists(name) {
            return Ok(None);
        }
        self.create(name).map(Some)
    }

    /// The table `name`, created empty if it does not exist yet (writer side).
    pub(crate) fn create(&self, name: &str) -> Result<Keyspace, StoreError> {
        if let Some(keyspace) = self.cached(name) {
            return Ok(keyspace);
        }
        // Names are checked before they get here (`validate_table_name`): fjall panics on an
        // empty name or one longer than 255 bytes.
        let keyspace = self
            .database
            .keyspace(name, KeyspaceCreateOptions::default)
            .store()?;
        self.open
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(SmolStr::new(name), keyspace.clone());
        Ok(keyspace)
    }
}
