//! The partner contract on a fresh embedded store, and durability across reopening.

use tollgate_domain::admin::{AdminStore, AuditFilter};
use tollgate_domain::partner::{MemoryPartnerStore, contract};

use super::*;
use crate::admin::EmbeddedAdminStore;
use crate::embedded::StoreConfig;

fn open(path: &std::path::Path) -> Arc<EmbeddedStore> {
    Arc::new(EmbeddedStore::open(StoreConfig::new(path)).unwrap())
}

#[test]
fn embedded_store_keeps_the_partner_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("t.redb"));
    contract::run(&EmbeddedPartnerStore::new(Arc::clone(&store))).unwrap();
    let audit = EmbeddedAdminStore::new(store)
        .audit(&AuditFilter::default(), None, 10_000)
        .unwrap();
    contract::check_audit(&audit).unwrap();
}

#[test]
fn partner_state_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let memory = MemoryPartnerStore::new();
    let store = open(&path);
    let partners = EmbeddedPartnerStore::new(Arc::clone(&store));
    // The same history on both; the memory store says what must read back.
    for backend in [&partners as &dyn PartnerStore, &memory] {
        contract::run(backend).unwrap();
    }
    drop(partners);
    Arc::try_unwrap(store).unwrap().close().unwrap();

    let store = open(&path);
    let partners = EmbeddedPartnerStore::new(Arc::clone(&store));
    let both = |read: &dyn Fn(&dyn PartnerStore) -> String| {
        assert_eq!(read(&partners), read(&memory));
    };
    let p1 = PartnerId::new("p1");
    let p2 = PartnerId::new("p2");
    let march = jiff::civil::date(2026, 3, 1);
    both(&|s| format!("{:?}", s.partners(None, 100).unwrap()));
    both(&|s| format!("{:?}", s.counter("statement").unwrap()));
    both(&|s| format!("{:?}", s.agreements(&p1).unwrap()));
    both(&|s| format!("{:?}", s.agreement("agr-3").unwrap()));
    both(&|s| format!("{:?}", s.position(&p1, march).unwrap()));
    both(&|s| format!("{:?}", s.statements(&p1, None).unwrap()));
    both(&|s| format!("{:?}", s.statement("PS-3").unwrap()));
    both(&|s| format!("{:?}", s.statement("PS-1").unwrap()));
    let p3 = PartnerId::new("p3");
    both(&|s| format!("{:?}", s.statements(&p3, None).unwrap()));
    both(&|s| format!("{:?}", s.item_shares(&p1, march, None, 100).unwrap()));
    both(&|s| format!("{:?}", s.item_shares(&p2, march, None, 100).unwrap()));
    both(&|s| format!("{:?}", s.reconciliations("PS-1").unwrap()));
    both(&|s| format!("{:?}", s.disputes(&p2).unwrap()));
    both(&|s| format!("{:?}", s.settlement_runs(None, 100).unwrap()));
    let run = settlement_run_id(1);
    both(&|s| format!("{:?}", s.settlement_items(&run, false, None, 100).unwrap()));
    assert!(partners.partner(&p1).unwrap().unwrap().version == 2);
    assert!(
        !partners
            .item_shares(&p1, march, None, 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        partners.statement("PS-1").unwrap().unwrap().stage(),
        tollgate_domain::partner::StatementStage::Released
    );

    // Sequences continue after reopening: the next run is sr-4.
    let audit = || AuditRecord::new(Timestamp::UNIX_EPOCH, "t", "t", "t", "t", None, None);
    let first = partners.settlement_run(&run).unwrap().unwrap();
    let (again, fresh) = partners
        .create_settlement_run(first.clone(), &[], audit())
        .unwrap();
    assert!(!fresh && again.id == run);
    let another = SettlementRun {
        key: "after-reopen".into(),
        ..first
    };
    let (another, fresh) = partners
        .create_settlement_run(another, &[], audit())
        .unwrap();
    assert!(fresh);
    assert_eq!(another.id, settlement_run_id(4));
}
