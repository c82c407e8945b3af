//! The ledger storage contract on the embedded store (and on the in-memory one, so the contract
//! itself is known to be satisfiable); a restart recovers what was committed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tollgate_adapters::ledger::EmbeddedLedgerStore;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{LedgerStore, MemoryLedgerStore, contract};

#[test]
fn embedded_store_keeps_the_ledger_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    {
        let store = EmbeddedLedgerStore::open(&path, 512, Duration::ZERO).unwrap();
        contract::run(&store).unwrap();
    }
    let reopened = EmbeddedLedgerStore::open(&path, 512, Duration::ZERO).unwrap();
    let a = SubscriberId::new("contract-a");
    assert!(reopened.load_account(&a).unwrap().is_some());
    assert_eq!(
        reopened.entries(&a).unwrap().len(),
        4,
        "all committed entries survive a restart"
    );
}

#[test]
fn memory_store_keeps_the_ledger_contract() {
    contract::run(&MemoryLedgerStore::new()).unwrap();
    let store = MemoryLedgerStore::new();
    contract::run_with_audit(&store, &|| Ok(store.audit_records())).unwrap();
}
