//! The ingestion storage contract on the embedded store (the in-memory store runs it in
//! `tollgate-domain`): ledger rows, suspense, positions, counters and audit records of a batch
//! are one transaction, and everything committed survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tollgate_adapters::admin::EmbeddedAdminStore;
use tollgate_adapters::embedded::{EmbeddedStore, StoreConfig};
use tollgate_adapters::ledger::EmbeddedLedgerStore;
use tollgate_adapters::mediation::EmbeddedIngestStore;
use tollgate_domain::admin::{AdminStore, AuditFilter};
use tollgate_domain::mediation::{IngestStore, IngestWrite, OutboxRow, SuspenseFilter, contract};

fn open(path: &std::path::Path) -> Arc<EmbeddedStore> {
    Arc::new(EmbeddedStore::open(StoreConfig::new(path)).unwrap())
}

#[test]
fn embedded_store_keeps_the_ingest_contract_and_a_restart_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ingest.redb");
    let (stats, suspense, outbox) = {
        let engine = open(&path);
        let store = EmbeddedIngestStore::new(engine.clone());
        let ledger = EmbeddedLedgerStore::with_store(engine.clone());
        let admin = EmbeddedAdminStore::new(engine);
        contract::run(&store, &ledger, &|| {
            admin
                .audit(&AuditFilter::default(), None, 10_000)
                .map_err(|e| e.to_string())
        })
        .unwrap();
        (
            store.stats().unwrap(),
            store
                .suspense(&SuspenseFilter::default(), None, 100)
                .unwrap(),
            store.outbox(None, 100).unwrap(),
        )
    };
    let store = EmbeddedIngestStore::new(open(&path));
    assert_eq!(store.stats().unwrap(), stats);
    assert_eq!(
        store
            .suspense(&SuspenseFilter::default(), None, 100)
            .unwrap(),
        suspense
    );
    assert_eq!(store.position("kafka:t", 0).unwrap(), Some(3));
    // The outbox survives the restart, and numbering resumes after the stored rows (a new row
    // never overwrites one not yet published).
    assert_eq!(outbox.len(), 1);
    assert_eq!(store.outbox(None, 100).unwrap(), outbox);
    assert_eq!(store.outbox_len().unwrap(), 1);
    let row = OutboxRow {
        topic: "cdr.rated".into(),
        key: b"k".to_vec(),
        payload: b"after restart".to_vec(),
    };
    contract::block_on(store.commit_ingest(IngestWrite {
        outbox: vec![row.clone()],
        ..IngestWrite::default()
    }))
    .unwrap();
    let rows = store.outbox(None, 100).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], outbox[0]);
    assert_eq!(rows[1].row, row);
    assert!(rows[1].seq > outbox[0].seq);
    assert_eq!(store.outbox_len().unwrap(), 2);
}
