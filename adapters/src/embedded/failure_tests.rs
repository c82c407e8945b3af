//! Storage failures, injected through an in-memory redb backend (no files, no real IO).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redb::StorageBackend;
use redb::backends::InMemoryBackend;

use super::{EmbeddedStore, StoreConfig, StoreError, WriteBatch};

/// Memory that starts refusing writes and syncs when `failing` is set, like a full or dying disk.
#[derive(Debug)]
struct FlakyBackend {
    inner: InMemoryBackend,
    failing: Arc<AtomicBool>,
}

impl FlakyBackend {
    fn check(&self) -> Result<(), io::Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected disk failure"));
        }
        Ok(())
    }
}

impl StorageBackend for FlakyBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        self.inner.read(offset, len)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self, eventual: bool) -> Result<(), io::Error> {
        self.check()?;
        self.inner.sync_data(eventual)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

fn flaky_store(flush_interval: Duration) -> (EmbeddedStore, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(false));
    let backend = FlakyBackend {
        inner: InMemoryBackend::new(),
        failing: Arc::clone(&failing),
    };
    let database = redb::Database::builder()
        .create_with_backend(backend)
        .unwrap();
    let mut config = StoreConfig::new("memory");
    config.flush_interval = flush_interval;
    (EmbeddedStore::start(database, config).unwrap(), failing)
}

fn put(key: &[u8]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put("t", key, b"v");
    batch
}

#[test]
fn a_failed_fsync_fails_the_whole_group_and_the_store_stays_failed() {
    let (store, failing) = flaky_store(Duration::from_millis(200));
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

    // A failed fsync is never retried on the same handle: the store refuses writes until it is
    // reopened, which re-reads the file from its last durable commit.
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
    let (store, failing) = flaky_store(Duration::ZERO);
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
