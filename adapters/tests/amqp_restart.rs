//! RabbitMQ restarts in the middle of a run: nothing is lost and the consumer reconnects by
//! itself.
//!
//! The broker node is stopped for good (`rabbitmqctl stop`: the Erlang VM exits, connections
//! drop) and started again (`rabbitmq-server -detached`), while a worker consumes slowly and a
//! second batch is published during the outage. Every job must be processed at least once;
//! duplicates (acks lost with the old connection) are allowed and reported. The test holds the
//! broker lock exclusively (see `support/rabbitmq.rs`), so no other RabbitMQ test runs while
//! the broker is down, and it leaves the broker running even if it fails. It lives in a test
//! binary of its own so that its exclusive lock never waits on a shared lock held by a test
//! thread of the same process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::rabbitmq;
use tollgate_adapters::jobs::amqp::AmqpJobQueue;
use tollgate_adapters::jobs::{Job, JobError, JobKind, JobQueue, QueueDepth};

/// Starts the broker again if the test ends (or panics) while it is down.
struct LeaveRunning;

impl Drop for LeaveRunning {
    fn drop(&mut self) {
        rabbitmq::ensure_running();
    }
}

/// Waits until the broker accepts connections and its application is up.
fn await_broker(deadline: Duration) {
    let started = Instant::now();
    loop {
        let up = rabbitmq::port_open()
            && Command::new("rabbitmqctl")
                .args(["-q", "await_startup", "--timeout", "10"])
                .output()
                .is_ok_and(|output| output.status.success());
        if up {
            return;
        }
        assert!(
            started.elapsed() < deadline,
            "RabbitMQ not back within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[derive(Default)]
struct Progress {
    processed: BTreeSet<String>,
    deliveries: usize,
    stale_acks: usize,
}

fn jobs(range: std::ops::Range<usize>) -> Vec<Job> {
    range
        .map(|i| {
            let item = format!("acct-{i:04}");
            let payload = format!("{{\"account\":\"{item}\"}}").into_bytes();
            Job::new(JobKind::BillCycle, "run-restart", item, payload)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_broker_restart_and_the_consumer_reconnects() {
    let _lock = rabbitmq::exclusive_lock();
    rabbitmq::ensure_running();
    let _leave_running = LeaveRunning;
    let total = 400;
    let config = rabbitmq::config("restart");
    let queue = AmqpJobQueue::new(config).unwrap();
    queue.publish(jobs(0..300)).await.unwrap();

    // The worker: slow (5 ms per job), prefetch 10, records what it processed, then acks.
    let progress = Arc::new(Mutex::new(Progress::default()));
    let mut consumer = queue.consume(JobKind::BillCycle, 10).await.unwrap();
    let worker_progress = Arc::clone(&progress);
    let worker = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(180);
        while worker_progress.lock().unwrap().processed.len() < total {
            assert!(
                Instant::now() < deadline,
                "the worker did not finish within 180 s"
            );
            // A short poll drops pending `next()` futures, some in the middle of a reconnection
            // (connect, declare, consume can take more than a second on a loaded machine): the
            // consumer keeps the reconnection and resumes it on the next call.
            let Ok(next) = tokio::time::timeout(Duration::from_secs(1), consumer.next()).await
            else {
                continue;
            };
            let delivery = next.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            let item = delivery.job().item_key.clone();
            // "The result is durable" before the ack: recorded first.
            {
                let mut progress = worker_progress.lock().unwrap();
                progress.processed.insert(item);
                progress.deliveries += 1;
            }
            match delivery.ack().await {
                Ok(()) => {}
                Err(JobError::DeliveryStale) => worker_progress.lock().unwrap().stale_acks += 1,
                Err(error) => panic!("ack: {error}"),
            }
        }
        consumer
    });

    while progress.lock().unwrap().processed.len() < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed_before = progress.lock().unwrap().processed.len();
    let stop_started = Instant::now();
    tokio::task::spawn_blocking(|| rabbitmq::rabbitmqctl(&["stop"]))
        .await
        .unwrap();
    let stop_took = stop_started.elapsed();
    assert!(
        !rabbitmq::port_open(),
        "the broker still listens after rabbitmqctl stop"
    );

    // A second batch published while the broker is down: publish retries until it is back.
    let publisher = queue.clone();
    let publish_started = Instant::now();
    let late_batch = tokio::spawn(async move {
        publisher.publish(jobs(300..total)).await.unwrap();
        publish_started.elapsed()
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start_started = Instant::now();
    tokio::task::spawn_blocking(|| {
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .status()
            .unwrap();
        assert!(status.success(), "rabbitmq-server -detached: {status}");
        await_broker(Duration::from_secs(120));
    })
    .await
    .unwrap();
    let start_took = start_started.elapsed();
    let outage = stop_started.elapsed();

    // Bounded waits: a hang must fail the test, not stall the suite.
    let bound = Duration::from_secs(240);
    let publish_took = tokio::time::timeout(bound, late_batch)
        .await
        .unwrap()
        .unwrap();
    let consumer = tokio::time::timeout(bound, worker).await.unwrap().unwrap();
    let reconnects = consumer.reconnects();
    drop(consumer);
    let progress = Arc::try_unwrap(progress)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();
    let depth = queue.queue_depth(JobKind::BillCycle).await.unwrap();
    let dead = queue.dead_letters(JobKind::BillCycle, None).await.unwrap();
    queue.delete_queues().await.unwrap();
    queue.close().await;

    println!(
        "restart: {processed_before} of {total} processed before the stop; rabbitmqctl stop \
         {stop_took:?}; rabbitmq-server -detached to ready {start_took:?}; outage {outage:?}; \
         the batch published during the outage confirmed after {publish_took:?}; consumer \
         reconnects {reconnects}; deliveries {} for {} jobs; stale acks {}",
        progress.deliveries,
        progress.processed.len(),
        progress.stale_acks
    );
    let expected: BTreeSet<String> = jobs(0..total).into_iter().map(|job| job.item_key).collect();
    assert_eq!(
        progress.processed, expected,
        "every job processed at least once"
    );
    assert!(reconnects >= 1, "the consumer never reconnected");
    assert!(progress.deliveries >= total);
    assert_eq!(depth, QueueDepth::default(), "jobs left over");
    assert!(dead.is_empty(), "dead letters: {dead:?}");
}
