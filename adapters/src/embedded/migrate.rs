//! Migration of a database written by an earlier version (one redb file) into the fjall
//! directory that replaced it, on open: the redb file is either at the store's path itself or,
//! when that path does not exist, at `<path>.redb` (the earlier default was
//! `<data_dir>/ledger.redb`, the directory is now `<data_dir>/ledger`).
//!
//! Every table is copied row by row into `<path>.migrating`; the copy is fsynced and marked
//! complete; the redb file is renamed to `<file>.before-migration` (kept: the operator deletes
//! it once satisfied) and the copy takes its place. A crash before the mark leaves the redb file
//! in place (the copy starts again on the next open); a crash after it is finished by
//! [`finish_interrupted`] on the next open.

use std::path::{Path, PathBuf};

use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use redb::{ReadableTable, TableDefinition, TableHandle};

use super::batch::SHARD_EPOCHS_TABLE;
use super::error::{StoreError, StoreResultExt};
use super::writer::epoch_key;

/// Rows copied per journal write.
const CHUNK_ROWS: usize = 10_000;

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the copy is built.
fn staging(path: &Path) -> PathBuf {
    sibling(path, ".migrating")
}

/// Where the redb file is kept after the migration.
fn kept_file(file: &Path) -> PathBuf {
    sibling(file, ".before-migration")
}

/// The file inside a finished copy that marks it complete.
const DONE_MARK: &str = "tollgate-migrated-from-redb";

/// The redb file of an earlier version to migrate into the store at `path`, if there is one.
pub(crate) fn legacy_file(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    let beside = sibling(path, ".redb");
    (!path.exists() && beside.is_file()).then_some(beside)
}

/// Completes a migration that stopped after its copy was marked complete: the copy waits under
/// its staging name (the redb file may or may not have been renamed yet).
pub(crate) fn finish_interrupted(path: &Path) -> Result<(), StoreError> {
    let staging = staging(path);
    if !staging.join(DONE_MARK).is_file() {
        return Ok(());
    }
    let file = if path.is_file() {
        Some(path.to_path_buf())
    } else {
        Some(sibling(path, ".redb")).filter(|beside| beside.is_file())
    };
    if let Some(file) = file {
        std::fs::rename(&file, kept_file(&file))?;
    }
    if !path.exists() {
        std::fs::rename(&staging, path)?;
    }
    Ok(())
}

/// Copies the redb database in `file` into a new fjall database at `path` (which may be the
/// file's own path) and keeps the file aside.
pub(crate) fn from_redb(file: &Path, path: &Path) -> Result<(), StoreError> {
    let staging = staging(path);
    if staging.exists() {
        // An earlier attempt stopped before it finished: start again from the redb file.
        std::fs::remove_dir_all(&staging)?;
    }
    let source = redb::Database::open(file).map_err(|e| StoreError::Invalid {
        reason: format!(
            "`{}` is a file but not a Tollgate database of an earlier version (redb): {e}",
            file.display()
        ),
    })?;
    let target = Database::builder(&staging)
        .manual_journal_persist(true)
        .open()
        .store()?;
    let read = source.begin_read().store()?;
    let names: Vec<String> = read
        .list_tables()
        .store()?
        .map(|table| table.name().to_owned())
        .collect();
    for name in names {
        let keyspace = target
            .keyspace(&name, KeyspaceCreateOptions::default)
            .store()?;
        let mut batch = target.batch();
        if name == SHARD_EPOCHS_TABLE {
            let table = read
                .open_table(TableDefinition::<u32, u64>::new(SHARD_EPOCHS_TABLE))
                .store()?;
            for row in table.iter().store()? {
                let (shard, epoch) = row.store()?;
                batch.insert(
                    &keyspace,
                    epoch_key(shard.value()),
                    epoch.value().to_be_bytes(),
                );
            }
        } else {
            let table = read
                .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                .store()?;
            for row in table.iter().store()? {
                let (key, value) = row.store()?;
                batch.insert(&keyspace, key.value(), value.value());
                if batch.len() >= CHUNK_ROWS {
                    std::mem::replace(&mut batch, target.batch())
                        .commit()
                        .store()?;
                }
            }
        }
        batch.commit().store()?;
    }
    target.persist(PersistMode::SyncAll).store()?;
    drop(target);
    drop(read);
    drop(source);
    let mark = std::fs::File::create(staging.join(DONE_MARK))?;
    mark.sync_all()?;
    std::fs::File::open(&staging)?.sync_all()?;
    finish_interrupted(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{EmbeddedStore, StoreConfig};

    fn write_redb(file: &Path) {
        let db = redb::Database::create(file).unwrap();
        let write = db.begin_write().unwrap();
        {
            let mut table = write
                .open_table(TableDefinition::<&[u8], &[u8]>::new("accounts"))
                .unwrap();
            for i in 0..25_000u32 {
                table.insert(&i.to_be_bytes()[..], &b"account"[..]).unwrap();
            }
            let mut epochs = write
                .open_table(TableDefinition::<u32, u64>::new(SHARD_EPOCHS_TABLE))
                .unwrap();
            epochs.insert(7, 3).unwrap();
        }
        write.commit().unwrap();
    }

    #[test]
    fn a_redb_file_at_the_path_is_migrated_in_place_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        write_redb(&path);
        let store = EmbeddedStore::open(StoreConfig::new(&path)).unwrap();
        assert!(path.is_dir());
        assert!(kept_file(&path).is_file());
        assert_eq!(
            store.get("accounts", &24_999u32.to_be_bytes()).unwrap(),
            Some(b"account".to_vec())
        );
        assert_eq!(
            store.scan_after("accounts", None, 100_000).unwrap().len(),
            25_000
        );
        assert_eq!(store.shard_epoch(7).unwrap(), 3);
        drop(store);
        // Opened again: nothing to migrate, the data is there.
        let store = EmbeddedStore::open(StoreConfig::new(&path)).unwrap();
        assert_eq!(store.shard_epoch(7).unwrap(), 3);
    }

    #[test]
    fn the_earlier_default_file_beside_the_path_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ledger.redb");
        write_redb(&file);
        let path = dir.path().join("ledger");
        let store = EmbeddedStore::open(StoreConfig::new(&path)).unwrap();
        assert_eq!(store.scan_after("accounts", None, 10).unwrap().len(), 10);
        assert!(!file.exists());
        assert!(kept_file(&file).is_file());
    }

    #[test]
    fn a_copy_marked_complete_is_put_in_place_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ledger.redb");
        write_redb(&file);
        let path = dir.path().join("ledger");
        // A finished copy whose renames did not happen (a crash right after the mark).
        let staging = staging(&path);
        {
            let db = Database::builder(&staging).open().unwrap();
            let keyspace = db
                .keyspace("accounts", KeyspaceCreateOptions::default)
                .unwrap();
            keyspace.insert(b"copied", b"yes").unwrap();
            db.persist(PersistMode::SyncAll).unwrap();
        }
        std::fs::File::create(staging.join(DONE_MARK)).unwrap();
        let store = EmbeddedStore::open(StoreConfig::new(&path)).unwrap();
        assert_eq!(
            store.get("accounts", b"copied").unwrap(),
            Some(b"yes".to_vec())
        );
        assert!(kept_file(&file).is_file());
        assert!(!staging.exists());
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        std::fs::write(&path, b"not a database").unwrap();
        let error = EmbeddedStore::open(StoreConfig::new(&path)).unwrap_err();
        assert_eq!(error.code(), "storage.invalid", "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a database");
    }
}
