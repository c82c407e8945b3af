//! The finance contract on a fresh embedded store, and durability across reopening.

use tollgate_domain::admin::{AdminStore, AuditFilter};
use tollgate_domain::finance::contract;

use super::*;
use crate::admin::EmbeddedAdminStore;
use crate::embedded::StoreConfig;

fn open(path: &std::path::Path) -> Arc<EmbeddedStore> {
    Arc::new(EmbeddedStore::open(StoreConfig::new(path)).unwrap())
}

#[test]
fn embedded_store_keeps_the_finance_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("t.redb"));
    contract::run(&EmbeddedFinanceStore::new(Arc::clone(&store))).unwrap();
    let audit = EmbeddedAdminStore::new(store)
        .audit(&AuditFilter::default(), None, 10_000)
        .unwrap();
    contract::check_audit(&audit).unwrap();
}

#[test]
fn finance_state_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let memory = tollgate_domain::finance::MemoryFinanceStore::new();
    let store = open(&path);
    let finance = EmbeddedFinanceStore::new(Arc::clone(&store));
    // The same history on both; the memory store says what must read back.
    for backend in [&finance as &dyn FinanceStore, &memory] {
        contract::run(backend).unwrap();
    }
    drop(finance);
    Arc::try_unwrap(store).unwrap().close().unwrap();

    let store = open(&path);
    let finance = EmbeddedFinanceStore::new(Arc::clone(&store));
    let a1 = AccountId::new("a1");
    for backend in [&finance as &dyn FinanceStore, &memory] {
        let more = ArEntry {
            key: "after-reopen".into(),
            ..backend.entries(&a1).unwrap()[0].clone()
        };
        backend
            .commit(FinanceWrite {
                entries: vec![more],
                ..FinanceWrite::default()
            })
            .unwrap();
    }
    let both = |read: &dyn Fn(&dyn FinanceStore) -> String| {
        assert_eq!(read(&finance), read(&memory));
    };
    both(&|s| format!("{:?}", s.entries(&a1).unwrap()));
    both(&|s| format!("{:?}", s.entry("z-first").unwrap()));
    both(&|s| format!("{:?}", s.payments(&a1).unwrap()));
    both(&|s| format!("{:?}", s.payment_by_key("k1").unwrap()));
    both(&|s| format!("{:?}", s.refunds("pay-1").unwrap()));
    both(&|s| format!("{:?}", s.notes(&NoteFilter::default(), None, 100).unwrap()));
    both(&|s| format!("{:?}", s.note_by_key("nk1").unwrap()));
    both(&|s| format!("{:?}", s.cases(&a1).unwrap()));
    both(&|s| format!("{:?}", s.unconverged_accounts().unwrap()));
    both(&|s| format!("{:?}", s.pending_notifications(100).unwrap()));
    both(&|s| format!("{:?}", s.notifications(&a1).unwrap()));
    both(&|s| format!("{:?}", s.periods().unwrap()));
    both(&|s| format!("{:?}", s.counter("payment").unwrap()));
    both(&|s| format!("{:?}", s.collection_runs(None, 100).unwrap()));
    let run = collection_run_id(1);
    both(&|s| format!("{:?}", s.collection_items(&run, false, None, 100).unwrap()));
    assert_eq!(
        finance.entries(&a1).unwrap().last().unwrap().key,
        "after-reopen"
    );

    // Sequences continue after reopening: the next run is cr-4.
    let (next, fresh) = finance
        .create_collection_run(
            finance.collection_run(&run).unwrap().unwrap(),
            &[],
            AuditRecord::new(Timestamp::UNIX_EPOCH, "t", "t", "t", "t", None, None),
        )
        .unwrap();
    assert!(!fresh && next.id == run);
    let mut another = next;
    another.key = "after-reopen".into();
    let (another, fresh) = finance
        .create_collection_run(
            another,
            &[],
            AuditRecord::new(Timestamp::UNIX_EPOCH, "t", "t", "t", "t", None, None),
        )
        .unwrap();
    assert!(fresh);
    assert_eq!(another.id, collection_run_id(4));
}
