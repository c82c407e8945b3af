//! The job-queue contract against the real RabbitMQ, plus what only a broker does: quorum
//! queues with a dead-letter exchange, the delivery limit, foreign messages.
//!
//! Each test uses its own queue prefix and deletes its queues at the end; every test holds the
//! shared broker lock (see `support/rabbitmq.rs`) so the restart test never runs meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use support::rabbitmq;
use tollgate_adapters::jobs::amqp::{AmqpConfig, AmqpJobQueue};
use tollgate_adapters::jobs::contract::{Check, Timing};
use tollgate_adapters::jobs::{Job, JobKind, JobQueue, QueueDepth};

fn timing() -> Timing {
    Timing {
        quiet: Duration::from_millis(400),
        patience: Duration::from_secs(20),
    }
}

/// Runs `check` on a fresh prefix, deletes the queues, then reports.
async fn contract(check: Check) {
    let _lock = rabbitmq::prepare();
    let queue = AmqpJobQueue::new(rabbitmq::config("contract")).unwrap();
    let result = check.run(Arc::new(queue.clone()), timing()).await;
    queue.delete_queues().await.unwrap();
    queue.close().await;
    result.unwrap_or_else(|error| panic!("{check:?}: {error}"));
}

#[tokio::test]
async fn contract_publish_then_consume_exactly_once() {
    contract(Check::PublishThenConsumeExactlyOnce).await;
}

#[tokio::test]
async fn contract_prefetch_bound() {
    contract(Check::PrefetchBound).await;
}

#[tokio::test]
async fn contract_unacked_comes_back_after_consumer_dropped() {
    contract(Check::UnackedComesBackAfterConsumerDropped).await;
}

#[tokio::test]
async fn contract_requeue_increments_attempt() {
    contract(Check::RequeueIncrementsAttempt).await;
}

#[tokio::test]
async fn contract_dead_letter_keeps_job_and_reason() {
    contract(Check::DeadLetterKeepsJobAndReason).await;
}

#[tokio::test]
async fn contract_kinds_are_separate() {
    contract(Check::KindsAreSeparate).await;
}

#[tokio::test]
async fn queues_are_durable_quorum_queues_with_a_dead_letter_exchange() {
    let _lock = rabbitmq::prepare();
    let config = rabbitmq::config("topology");
    let queue = AmqpJobQueue::new(config.clone()).unwrap();
    for kind in JobKind::ALL {
        assert_eq!(
            queue.queue_depth(kind).await.unwrap(),
            QueueDepth::default()
        );
    }
    let listing = rabbitmq::rabbitmqctl(&[
        "-q",
        "list_queues",
        "name",
        "type",
        "durable",
        "arguments",
        "--no-table-headers",
    ]);
    queue.delete_queues().await.unwrap();
    queue.close().await;
    for kind in JobKind::ALL {
        let names = config.names(kind);
        let main = listing
            .lines()
            .find(|line| line.split('\t').next() == Some(names.main.as_str()))
            .unwrap_or_else(|| panic!("{} not listed in {listing}", names.main));
        assert!(main.contains("\tquorum\ttrue\t"), "{main}");
        assert!(main.contains(&names.dead_letter_exchange), "{main}");
        assert!(main.contains("at-least-once"), "{main}");
        let dead = listing
            .lines()
            .find(|line| line.split('\t').next() == Some(names.dead.as_str()))
            .unwrap_or_else(|| panic!("{} not listed", names.dead));
        assert!(dead.contains("\tquorum\ttrue\t"), "{dead}");
    }
}

#[tokio::test]
async fn a_job_that_keeps_killing_its_worker_is_dead_lettered_by_the_broker() {
    let _lock = rabbitmq::prepare();
    let mut config = rabbitmq::config("delivery-limit");
    config.delivery_limit = 2;
    let queue = AmqpJobQueue::new(config).unwrap();
    let job = Job::new(
        JobKind::BillCycle,
        "run-poison",
        "acct-crash",
        b"{}".to_vec(),
    );
    queue.publish(vec![job.clone()]).await.unwrap();
    let mut deliveries = 0;
    let mut letters = Vec::new();
    for _ in 0..10 {
        let mut consumer = queue.consume(JobKind::BillCycle, 1).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
            // The worker "crashes" holding it: the consumer goes away unacked.
            Ok(delivery) => {
                assert_eq!(delivery.unwrap().job(), &job);
                deliveries += 1;
            }
            Err(_) => {
                letters = queue.dead_letters(JobKind::BillCycle, None).await.unwrap();
                if !letters.is_empty() {
                    break;
                }
            }
        }
    }
    queue.delete_queues().await.unwrap();
    queue.close().await;
    assert_eq!(letters.len(), 1, "after {deliveries} deliveries");
    assert_eq!(letters[0].job, job);
    assert_eq!(letters[0].reason_code, "jobs.delivery_limit");
    assert!(
        deliveries >= 2,
        "dead-lettered after {deliveries} deliveries"
    );
}

#[tokio::test]
async fn a_message_that_is_not_a_job_is_dead_lettered_not_delivered() {
    let _lock = rabbitmq::prepare();
    let config: AmqpConfig = rabbitmq::config("malformed");
    let queue = AmqpJobQueue::new(config.clone()).unwrap();
    queue.queue_depth(JobKind::Collection).await.unwrap();
    // Another client puts a message without our headers into the queue.
    let connection = Connection::connect(&config.url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            "".into(),
            config.names(JobKind::Collection).main.as_str().into(),
            BasicPublishOptions::default(),
            b"not a job",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
    let good = Job::new(JobKind::Collection, "run-m", "acct-1", b"{}".to_vec());
    queue.publish(vec![good.clone()]).await.unwrap();
    let mut consumer = queue.consume(JobKind::Collection, 4).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.job(), &good);
    delivery.ack().await.unwrap();
    let letters = queue.dead_letters(JobKind::Collection, None).await.unwrap();
    drop(consumer);
    queue.delete_queues().await.unwrap();
    queue.close().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].reason_code, "jobs.malformed");
    assert_eq!(letters[0].job.payload, b"not a job");
}
