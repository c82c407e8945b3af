//! The administration storage contract on the embedded store (the in-memory store runs it in
//! `tollgate-domain`); a restart recovers what was committed; the ledger and the admin store share
//! one embedded store and one audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tollgate_adapters::admin::EmbeddedAdminStore;
use tollgate_adapters::embedded::{EmbeddedStore, StoreConfig};
use tollgate_adapters::ledger::EmbeddedLedgerStore;
use tollgate_domain::admin::{
    AdminChange, AdminStore, AdminWrite, AuditFilter, AuditRecord, TableOwner, contract,
};
use tollgate_domain::ledger::LedgerStore;

fn open(path: &std::path::Path) -> Arc<EmbeddedStore> {
    Arc::new(EmbeddedStore::open(StoreConfig::new(path)).unwrap())
}

#[test]
fn embedded_store_keeps_the_admin_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedAdminStore::new(open(&dir.path().join("admin.redb")));
    contract::run(&store).unwrap();
}

#[test]
fn admin_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.redb");
    let (users, tokens, roles, drafts, versions, audit, table) = {
        let store = EmbeddedAdminStore::new(open(&path));
        contract::run(&store).unwrap();
        (
            store.users().unwrap(),
            store.tokens().unwrap(),
            store.roles().unwrap(),
            store.drafts().unwrap(),
            store.versions().unwrap(),
            store
                .audit(&AuditFilter::default(), None, usize::MAX)
                .unwrap(),
            store
                .prefix_table(&TableOwner::Version(10), "de")
                .unwrap()
                .unwrap(),
        )
        // The last handle is dropped here: the writer drains and the file is released.
    };
    assert!(!audit.is_empty() && !versions.is_empty() && !drafts.is_empty());
    let reopened = EmbeddedAdminStore::new(open(&path));
    assert_eq!(reopened.users().unwrap(), users);
    assert_eq!(reopened.tokens().unwrap(), tokens);
    assert_eq!(reopened.roles().unwrap(), roles);
    assert_eq!(reopened.drafts().unwrap(), drafts);
    assert_eq!(reopened.versions().unwrap(), versions);
    assert_eq!(
        reopened
            .audit(&AuditFilter::default(), None, usize::MAX)
            .unwrap(),
        audit
    );
    assert_eq!(
        reopened
            .prefix_table(&TableOwner::Version(10), "de")
            .unwrap()
            .unwrap(),
        table
    );
    // A version that existed before the restart is still refused.
    let again = reopened.versions().unwrap().remove(0);
    assert!(
        reopened
            .commit(AdminWrite {
                changes: vec![AdminChange::PutVersion(again)],
                audit: Vec::new(),
            })
            .is_err()
    );
}

#[test]
fn large_prefix_tables_are_one_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedAdminStore::new(open(&dir.path().join("admin.redb")));
    let mut csv = b"prefix,zone\n".to_vec();
    let mut n = 0u64;
    while csv.len() < 6 * 1024 * 1024 {
        csv.extend_from_slice(format!("49{n:08},zone-{}\n", n % 97).as_bytes());
        n += 1;
    }
    let owner = TableOwner::Draft("big".into());
    store
        .commit(AdminWrite {
            changes: vec![AdminChange::PutPrefixTable {
                owner: owner.clone(),
                name: "world".into(),
                csv: csv.clone(),
            }],
            audit: Vec::new(),
        })
        .unwrap();
    assert_eq!(store.prefix_table(&owner, "world").unwrap(), Some(csv));
    store
        .commit(AdminWrite {
            changes: vec![AdminChange::DeleteDraft("big".into())],
            audit: Vec::new(),
        })
        .unwrap();
    assert_eq!(store.prefix_table(&owner, "world").unwrap(), None);
}

#[test]
fn a_draft_deleted_in_the_write_that_added_its_table_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedAdminStore::new(open(&dir.path().join("admin.redb")));
    let owner = TableOwner::Draft("d".into());
    store
        .commit(AdminWrite {
            changes: vec![
                AdminChange::PutPrefixTable {
                    owner: owner.clone(),
                    name: "de".into(),
                    csv: b"prefix\n49\n".to_vec(),
                },
                AdminChange::DeleteDraft("d".into()),
            ],
            audit: Vec::new(),
        })
        .unwrap();
    assert_eq!(store.prefix_table(&owner, "de").unwrap(), None);
}

#[test]
fn ledger_and_admin_share_one_store_and_one_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.redb");
    let shared = open(&path);
    let ledger = EmbeddedLedgerStore::with_store(Arc::clone(&shared));
    let admin = EmbeddedAdminStore::new(Arc::clone(&shared));
    drop(shared);
    tollgate_domain::ledger::contract::run_with_audit(&ledger, &|| {
        admin
            .audit(&AuditFilter::default(), None, usize::MAX)
            .map_err(|e| e.to_string())
    })
    .unwrap();
    // An admin write lands in the same trail, after the ledger's records in id order.
    let record = AuditRecord::new(
        jiff::Timestamp::now(),
        "alice",
        "user.create",
        "user/bob",
        "req-1",
        None,
        None,
    );
    admin
        .commit(AdminWrite {
            changes: Vec::new(),
            audit: vec![record.clone()],
        })
        .unwrap();
    let trail = admin
        .audit(&AuditFilter::default(), None, usize::MAX)
        .unwrap();
    assert_eq!(trail.len(), 4);
    assert_eq!(trail.last(), Some(&record));
    let a = tollgate_domain::ids::SubscriberId::new("contract-a");
    assert!(ledger.load_account(&a).unwrap().is_some());
    drop((ledger, admin));
    // Both survive a restart of the shared file, opened through the ledger this time.
    let ledger = EmbeddedLedgerStore::open(&path, 512, std::time::Duration::ZERO).unwrap();
    let admin = EmbeddedAdminStore::new(ledger.shared_store());
    assert!(ledger.load_account(&a).unwrap().is_some());
    assert_eq!(
        admin
            .audit(&AuditFilter::default(), None, usize::MAX)
            .unwrap(),
        trail
    );
}
