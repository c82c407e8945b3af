//! Storage failures, injected at the writer's commit (as if the disk refused the journal write).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{EmbeddedStore, StoreConfig, StoreError, WriteBatch};

fn flaky_store(flush_interval: Duration) -> (EmbeddedStore, Arc<AtomicBool>, tempfile::TempDir) {
    let failing = Arc::new(AtomicBool::new(false));
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().join("db"));
    config.flush_interval = flush_interval;
    let store = EmbeddedStore::open_with_failures(config, Arc::clone(&failing)).unwrap();
    (store, failing, dir)
}

fn put(key: &[u8]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put("t", key, b"v");
    batch
}

#[test]
fn a_failed_fsync_fails_the_whole_group_and_the_store_stays_failed() {
    let (store, failing, _dir) = flaky_store(Duration::from_millis(200));
    store.commit(put(b"before")).unwrap();

    failing.store(true, Ordering::SeqCst);
    let handles: Vec<_> = [&b"a"[..], b"b", b"c"]
        .into_iter()
        .map(|key| store.commit_async(put(key)))
        .collect();
    for handle in handles {
        let error = handle.wait().unwrap_err();
        assert_eq!(error.code(), "storage.io", "{error}");
    }

    // A failed fsync is never retried: the store refuses writes until it is reopened, which
    // replays the journal up to its last durable record.
    failing.store(false, Ordering::SeqCst);
    assert_eq!(
        store.commit(put(b"after")).unwrap_err().code(),
        "storage.io"
    );

    let stats = store.stats();
    assert_eq!(stats.transactions_total, 1);
    assert_eq!(stats.batches_failed_total, 4);
    assert!(stats.transactions_failed_total >= 1);
}

#[test]
fn a_fenced_only_group_needs_no_fsync() {
    let (store, failing, _dir) = flaky_store(Duration::ZERO);
    let mut takeover = WriteBatch::new();
    takeover.set_epoch(1, 2);
    store.commit(takeover).unwrap();

    // Even with a dead disk, a refused batch is answered `Fenced`, not `Io`: nothing to write.
    failing.store(true, Ordering::SeqCst);
    let mut stale = put(b"stale");
    stale.expect_epoch(1, 1);
    assert_eq!(
        store.commit(stale),
        Err(StoreError::Fenced {
            shard: 1,
            stored: 2,
            given: 1
        })
    );
    assert_eq!(store.stats().transactions_total, 1);
}
