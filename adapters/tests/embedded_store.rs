//! The embedded store against real files: group commit, fencing, restart, reads, fsync probe.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tollgate_adapters::embedded::{
    EmbeddedStore, StoreConfig, StoreError, WriteBatch, measure_fsync_latency,
};

fn config(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig::new(dir.path().join("tollgate.redb"))
}

fn key(thread: u32, number: u32) -> Vec<u8> {
    let mut key = thread.to_be_bytes().to_vec();
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// 8 threads x 500 commits; returns (transactions, commits) after checking every write.
fn concurrent_commits(flush_interval: Duration) -> (u64, u64) {
    const THREADS: u32 = 8;
    const COMMITS_PER_THREAD: u32 = 500;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.flush_interval = flush_interval;
    config.batch_len_max = 64;
    let store = Arc::new(EmbeddedStore::open(config).unwrap());

    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for number in 0..COMMITS_PER_THREAD {
                    let mut batch = WriteBatch::new();
                    batch
                        .put("ledger", &key(thread, number), &number.to_le_bytes())
                        .put("index", &key(thread, number), b"");
                    store.commit(batch).unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = started.elapsed();

    for thread in 0..THREADS {
        for number in 0..COMMITS_PER_THREAD {
            let value = store.get("ledger", &key(thread, number)).unwrap();
            assert_eq!(value, Some(number.to_le_bytes().to_vec()));
        }
        let scanned = store
            .scan_prefix("index", &thread.to_be_bytes(), usize::MAX)
            .unwrap();
        assert_eq!(scanned.len(), COMMITS_PER_THREAD as usize);
    }

    let stats = store.stats();
    let commits = u64::from(THREADS * COMMITS_PER_THREAD);
    println!(
        "{commits} commits from {THREADS} threads, flush_interval {flush_interval:?}, \
         in {elapsed:?}: {} transactions, \
         group length buckets {:?}, last commit+fsync {:?}, max {:?}",
        stats.transactions_total,
        stats.group_len_buckets,
        stats.commit_fsync_duration_last,
        stats.commit_fsync_duration_max,
    );
    assert_eq!(stats.batches_committed_total, commits);
    assert_eq!(stats.transactions_failed_total, 0);
    assert_eq!(
        stats.group_len_buckets.iter().sum::<u64>(),
        stats.transactions_total
    );
    (stats.transactions_total, commits)
}

#[test]
fn concurrent_commits_are_grouped_within_the_flush_interval() {
    let (transactions, commits) = concurrent_commits(Duration::from_millis(1));
    assert!(
        transactions * 4 <= commits,
        "group commit did not group: {transactions} transactions for {commits} commits"
    );
}

#[test]
fn concurrent_commits_are_grouped_naturally_without_a_flush_interval() {
    // With no added wait, a group is whatever queued during the previous fsync.
    let (transactions, commits) = concurrent_commits(Duration::ZERO);
    assert!(
        transactions * 2 <= commits,
        "group commit did not group: {transactions} transactions for {commits} commits"
    );
}

#[test]
fn stale_epoch_is_fenced_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(config(&dir)).unwrap();
    assert_eq!(store.shard_epoch(7).unwrap(), 0);

    let mut takeover = WriteBatch::new();
    takeover.expect_epoch(7, 5).set_epoch(7, 5);
    store.commit(takeover).unwrap();
    assert_eq!(store.shard_epoch(7).unwrap(), 5);

    let mut stale = WriteBatch::new();
    stale.put("balances", b"sub-1", b"100").expect_epoch(7, 4);
    let error = store.commit(stale).unwrap_err();
    assert_eq!(
        error,
        StoreError::Fenced {
            shard: 7,
            stored: 5,
            given: 4
        }
    );
    assert_eq!(error.code(), "storage.fenced");
    assert_eq!(store.get("balances", b"sub-1").unwrap(), None);

    let mut current = WriteBatch::new();
    current.expect_epoch(7, 5).put("balances", b"sub-1", b"90");
    store.commit(current).unwrap();
    assert_eq!(
        store.get("balances", b"sub-1").unwrap(),
        Some(b"90".to_vec())
    );

    // Epochs only rise.
    let mut lower = WriteBatch::new();
    lower.set_epoch(7, 2);
    store.commit(lower).unwrap();
    assert_eq!(store.shard_epoch(7).unwrap(), 5);
    // Other shards are independent.
    let mut other = WriteBatch::new();
    other.expect_epoch(8, 0).put("balances", b"sub-2", b"1");
    store.commit(other).unwrap();

    let stats = store.stats();
    assert_eq!(stats.batches_fenced_total, 1);
}

#[test]
fn fenced_batch_fails_alone_within_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    // Long enough that the three batches below land in one group.
    config.flush_interval = Duration::from_millis(300);
    let store = EmbeddedStore::open(config).unwrap();

    let mut takeover = WriteBatch::new();
    takeover
        .set_epoch(2, 10)
        .put("balances", b"new-owner", b"1");
    let mut stale = WriteBatch::new();
    stale.expect_epoch(2, 9).put("balances", b"old-owner", b"1");
    let mut unrelated = WriteBatch::new();
    unrelated.put("audit", b"entry", b"1");

    let takeover = store.commit_async(takeover);
    let stale = store.commit_async(stale);
    let unrelated = store.commit_async(unrelated);
    let takeover = takeover.wait().unwrap();
    let stale = stale.wait().unwrap_err();
    let unrelated = unrelated.wait().unwrap();

    assert_eq!(takeover.transaction_id, unrelated.transaction_id);
    assert_eq!(takeover.group_len, 3);
    assert_eq!(stale.code(), "storage.fenced");
    assert_eq!(
        store.get("balances", b"new-owner").unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(store.get("balances", b"old-owner").unwrap(), None);
    assert_eq!(store.get("audit", b"entry").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn restart_recovers_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(config(&dir)).unwrap();
        for number in 0..100_u32 {
            let mut batch = WriteBatch::new();
            batch.put("cdrs", &number.to_be_bytes(), b"rated");
            store.commit(batch).unwrap();
        }
        let mut batch = WriteBatch::new();
        batch.delete("cdrs", &7_u32.to_be_bytes()).set_epoch(1, 3);
        store.commit(batch).unwrap();
        store.close().unwrap();
    }
    let store = EmbeddedStore::open(config(&dir)).unwrap();
    for number in 0..100_u32 {
        let expected = (number != 7).then(|| b"rated".to_vec());
        assert_eq!(store.get("cdrs", &number.to_be_bytes()).unwrap(), expected);
    }
    assert_eq!(store.shard_epoch(1).unwrap(), 3);
}

#[test]
fn close_commits_everything_already_queued() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.batch_len_max = 4;
    let store = EmbeddedStore::open(config.clone()).unwrap();
    let handles: Vec<_> = (0..200_u32)
        .map(|number| {
            let mut batch = WriteBatch::new();
            batch.put("queued", &number.to_be_bytes(), b"v");
            store.commit_async(batch)
        })
        .collect();
    store.close().unwrap();
    for handle in handles {
        handle.wait().unwrap();
    }
    let store = EmbeddedStore::open(config).unwrap();
    assert_eq!(store.scan_prefix("queued", b"", 1000).unwrap().len(), 200);
}

#[test]
fn scan_prefix_stops_at_prefix_end_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(config(&dir)).unwrap();
    assert!(store.scan_prefix("absent", b"a", 10).unwrap().is_empty());
    assert_eq!(store.get("absent", b"a").unwrap(), None);
    let mut batch = WriteBatch::new();
    for key in ["a", "ab", "abc", "abd", "b", "aa"] {
        batch.put("t", key.as_bytes(), key.as_bytes());
    }
    store.commit(batch).unwrap();
    let keys = |entries: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<String> {
        entries
            .into_iter()
            .map(|(key, _)| String::from_utf8(key).unwrap())
            .collect()
    };
    assert_eq!(
        keys(store.scan_prefix("t", b"ab", 10).unwrap()),
        ["ab", "abc", "abd"]
    );
    assert_eq!(
        keys(store.scan_prefix("t", b"ab", 2).unwrap()),
        ["ab", "abc"]
    );
    assert_eq!(keys(store.scan_prefix("t", b"", 10).unwrap()).len(), 6);
    assert!(store.scan_prefix("t", b"c", 10).unwrap().is_empty());
}

#[test]
fn writes_to_one_key_keep_their_batch_order() {
    // The writer applies a batch's writes in key order; writes to the same key must still take
    // effect in the order they were added, whatever other keys sit between them.
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(config(&dir)).unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put("t", b"z", b"1")
        .put("t", b"a", b"1")
        .put("t", b"z", b"2")
        .delete("t", b"a")
        .put("u", b"m", b"first")
        .put("t", b"m", b"1")
        .delete("t", b"m")
        .put("t", b"m", b"3")
        .add_counters("c", b"k", &[1, 2])
        .put("t", b"b", b"1")
        .add_counters("c", b"k", &[10]);
    store.commit(batch).unwrap();
    assert_eq!(store.get("t", b"z").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get("t", b"a").unwrap(), None);
    assert_eq!(store.get("t", b"m").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.get("t", b"b").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get("u", b"m").unwrap(), Some(b"first".to_vec()));
    let counters = store.get("c", b"k").unwrap().unwrap();
    assert_eq!(
        tollgate_adapters::embedded::decode_counters(&counters),
        Some(vec![11, 2])
    );
}

#[test]
fn batches_of_one_group_see_each_others_writes_in_queue_order() {
    // Many batches grouped into one commit (a long flush interval): counter additions, puts,
    // deletes and epoch raises of earlier batches are what later batches of the group build on.
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.flush_interval = Duration::from_millis(300);
    let store = EmbeddedStore::open(config).unwrap();
    let mut handles = Vec::new();
    let mut first = WriteBatch::new();
    first.put("c", b"k", &7i64.to_be_bytes()).set_epoch(4, 2);
    handles.push(store.commit_async(first));
    for i in 0..50i64 {
        let mut batch = WriteBatch::new();
        batch
            .add_counters("c", b"k", &[i])
            .put("t", b"last", &i.to_be_bytes());
        if i == 20 {
            batch.delete("t", b"last");
        }
        handles.push(store.commit_async(batch));
    }
    let mut stale = WriteBatch::new();
    stale.expect_epoch(4, 1).put("t", b"stale", b"x");
    let stale = store.commit_async(stale);
    let receipts: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    assert!(
        receipts.iter().any(|r| r.group_len > 1),
        "the batches were not grouped: {receipts:?}"
    );
    assert_eq!(stale.wait().unwrap_err().code(), "storage.fenced");
    let counters = store.get("c", b"k").unwrap().unwrap();
    assert_eq!(
        tollgate_adapters::embedded::decode_counters(&counters),
        Some(vec![7 + (0..50).sum::<i64>()])
    );
    assert_eq!(
        store.get("t", b"last").unwrap(),
        Some(49i64.to_be_bytes().to_vec())
    );
    assert_eq!(store.get("t", b"stale").unwrap(), None);
    assert_eq!(store.shard_epoch(4).unwrap(), 2);
}

#[test]
fn repeated_epoch_checks_and_raises_act_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(config(&dir)).unwrap();
    let mut batch = WriteBatch::new();
    for _ in 0..3 {
        batch
            .expect_epoch(1, 5)
            .set_epoch(1, 5)
            .put("t", b"k", b"v");
    }
    batch.expect_epoch(2, 1).set_epoch(2, 1);
    assert_eq!(batch.len(), 5, "two raises and three puts");
    store.commit(batch).unwrap();
    assert_eq!(store.shard_epoch(1).unwrap(), 5);
    assert_eq!(store.shard_epoch(2).unwrap(), 1);
    // A stale writer is still refused, however many accounts its batch carries.
    let mut stale = WriteBatch::new();
    stale
        .expect_epoch(1, 4)
        .expect_epoch(1, 4)
        .put("t", b"k", b"stale");
    assert!(matches!(
        store.commit(stale),
        Err(StoreError::Fenced { shard: 1, .. })
    ));
    assert_eq!(store.get("t", b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn invalid_requests_are_refused_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = config(&dir);
    bad.batch_len_max = 0;
    assert_eq!(
        EmbeddedStore::open(bad).unwrap_err().code(),
        "storage.invalid"
    );

    let store = EmbeddedStore::open(config(&dir)).unwrap();
    let mut batch = WriteBatch::new();
    batch.put("shard_epochs", b"k", b"v");
    assert_eq!(store.commit(batch).unwrap_err().code(), "storage.invalid");
    assert_eq!(store.get("", b"k").unwrap_err().code(), "storage.invalid");
    // The directory is locked: a second store on it is refused, not silently shared.
    assert_eq!(
        EmbeddedStore::open(config(&dir)).unwrap_err().code(),
        "storage.io"
    );
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives a future on this thread without any runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn commit_handle_can_be_awaited() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(config(&dir)).unwrap();
    let mut batch = WriteBatch::new();
    batch.put("t", b"k", b"v");
    let receipt = block_on(store.commit_async(batch)).unwrap();
    assert_eq!(receipt.group_len, 1);
    assert_eq!(store.get("t", b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn fsync_probe_returns_the_requested_samples() {
    let dir = tempfile::tempdir().unwrap();
    let samples = measure_fsync_latency(dir.path(), 20).unwrap();
    assert_eq!(samples.len(), 20);
    let mut sorted = samples.clone();
    sorted.sort();
    println!("fsync floor: p50 {:?}, max {:?}", sorted[10], sorted[19]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(measure_fsync_latency(dir.path(), 0).unwrap().is_empty());
}
