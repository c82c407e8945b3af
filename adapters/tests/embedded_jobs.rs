//! The job-queue contract on the embedded store, plus what only a restart shows: unacked,
//! requeued and dead-lettered jobs as they were after the redb file is reopened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tollgate_adapters::embedded::{EmbeddedStore, StoreConfig};
use tollgate_adapters::jobs::contract::{self, Timing};
use tollgate_adapters::jobs::embedded::EmbeddedJobQueue;
use tollgate_adapters::jobs::{Job, JobKind, JobQueue, QueueDepth};

fn open(path: &Path) -> EmbeddedJobQueue {
    let store = EmbeddedStore::open(StoreConfig::new(path)).unwrap();
    EmbeddedJobQueue::open(Arc::new(store)).unwrap()
}

fn timing() -> Timing {
    Timing {
        quiet: Duration::from_millis(150),
        patience: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn embedded_queue_keeps_the_job_queue_contract() {
    let dir = tempfile::tempdir().unwrap();
    let mut made = 0;
    contract::run_all(
        || {
            made += 1;
            let queue: Arc<dyn JobQueue> =
                Arc::new(open(&dir.path().join(format!("q{made}.redb"))));
            async move { Ok(queue) }
        },
        timing(),
    )
    .await
    .unwrap();
}

fn job(item: &str) -> Job {
    Job::new(
        JobKind::BillCycle,
        "run-1",
        item,
        format!("{{\"a\":\"{item}\"}}").into_bytes(),
    )
}

#[tokio::test]
async fn after_a_restart_every_job_not_acked_is_ready_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    {
        let queue = open(&path);
        let items = ["a", "b", "c", "d", "e"];
        queue
            .publish(items.iter().map(|i| job(i)).collect())
            .await
            .unwrap();
        let mut consumer = queue.consume(JobKind::BillCycle, 5).await.unwrap();
        let mut deliveries = Vec::new();
        for _ in 0..4 {
            deliveries.push(consumer.next().await.unwrap());
        }
        let mut deliveries = deliveries.into_iter();
        deliveries.next().unwrap().ack().await.unwrap(); // a: done
        deliveries.next().unwrap().requeue().await.unwrap(); // b: attempt 1
        deliveries
            .next()
            .unwrap()
            .dead_letter("billing.x", "poison")
            .await
            .unwrap(); // c
        // d is held unacked and e never delivered when the node "crashes".
        let held = deliveries.next().unwrap();
        drop(held);
        drop(consumer);
    }
    let queue = open(&path);
    assert_eq!(
        queue.queue_depth(JobKind::BillCycle).await.unwrap(),
        QueueDepth {
            ready: 3,
            dead_lettered: 1
        }
    );
    let letters = queue
        .dead_letters(JobKind::BillCycle, Some("run-1"))
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (
            letters[0].job.item_key.as_str(),
            letters[0].reason_code.as_str()
        ),
        ("c", "billing.x")
    );
    let mut consumer = queue.consume(JobKind::BillCycle, 5).await.unwrap();
    let mut got = BTreeSet::new();
    for _ in 0..3 {
        let delivery = consumer.next().await.unwrap();
        assert!(delivery.redelivered(), "{:?}", delivery.job());
        let expected_attempt = u32::from(delivery.job().item_key == "b");
        assert_eq!(
            delivery.job().attempt,
            expected_attempt,
            "{:?}",
            delivery.job()
        );
        got.insert(delivery.job().item_key.clone());
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        got,
        BTreeSet::from(["b".to_owned(), "d".to_owned(), "e".to_owned()])
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), consumer.next())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consumers_share_the_work_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir.path().join("jobs.redb"));
    let count = 300;
    let jobs: Vec<Job> = (0..count).map(|i| job(&format!("acct-{i}"))).collect();
    // Published in several transactions, while consumers already run.
    let mut workers = Vec::new();
    for _ in 0..3 {
        let mut consumer = queue.consume(JobKind::BillCycle, 4).await.unwrap();
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Ok(Ok(delivery)) =
                tokio::time::timeout(Duration::from_millis(500), consumer.next()).await
            {
                seen.push(delivery.job().item_key.clone());
                delivery.ack().await.unwrap();
            }
            seen
        }));
    }
    for chunk in jobs.chunks(50) {
        queue.publish(chunk.to_vec()).await.unwrap();
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), count, "deliveries");
    assert_eq!(unique.len(), count, "distinct jobs");
    assert_eq!(
        queue.queue_depth(JobKind::BillCycle).await.unwrap(),
        QueueDepth::default()
    );
}
