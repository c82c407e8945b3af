//! [`AmqpJobQueue`]: the job queue on RabbitMQ (AMQP 0-9-1, `lapin`), for clusters.
//!
//! Per kind: a durable queue `{prefix}.{kind}` (quorum by default), a direct exchange
//! `{prefix}.{kind}.dlx` and a durable dead-letter queue `{prefix}.{kind}.dead`. Messages are
//! persistent and every publish waits for the broker's confirm. Consumers use manual acks and
//! `basic.qos(prefetch)`.
//!
//! Requeue and dead-letter are "publish (confirmed), then ack": a crash between the two leaves
//! both copies, never neither. Dead letters are published by the worker with the reason in
//! headers, rather than rejected into the dead-letter exchange, because a reject cannot carry a
//! reason; the broker's own dead-lettering (a quorum queue's `x-delivery-limit`, for a message
//! that crashes its worker every time) lands in the same queue with RabbitMQ's `x-death`
//! headers. [`JobQueue::dead_letters`] browses the dead-letter queue (get without ack, then
//! close the channel, which gives every message back), so dead letters stay until an operator
//! removes them.
//!
//! Reconnection: the publisher keeps one connection, reopened on the next call after it broke;
//! publish, depth and dead-letter reads retry with exponential backoff up to
//! [`AmqpConfig::retry_ms_max`], republishing only what was not confirmed. Each consumer has its
//! own connection and reconnects by itself with backoff for as long as it lives; the broker
//! redelivers what was unacked on the old connection.

mod consumer;
pub mod message;
mod retry;

use std::collections::HashSet;
use std::sync::Arc;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueDeleteOptions,
};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use self::message::{QueueNames, dead_properties, declare, job_properties, short};
pub(crate) use self::retry::{Backoff, Retry, connect, io_error, is_permanent};
use super::{BoxFuture, Consumer, DeadLetter, Job, JobError, JobKind, JobQueue, QueueDepth};

/// The queue type of the job queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmqpQueueType {
    /// Raft-replicated, the durable choice since RabbitMQ 3.8; delivery limit and
    /// at-least-once dead-lettering.
    Quorum,
    /// Classic durable queues, for brokers without quorum queues.
    Classic,
}

/// Where the broker is and the limits of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost` (vhost `/` is `%2f`).
    pub url: String,
    /// Prefix of every queue and exchange name; one per environment or test.
    pub queue_prefix: String,
    /// The prefetch workers use unless told otherwise.
    pub prefetch: u16,
    /// Quorum (default) or classic queues.
    pub queue_type: AmqpQueueType,
    /// Quorum queues: deliveries of one message before the broker dead-letters it.
    pub delivery_limit: u32,
    /// First reconnection delay; doubled on each failure.
    pub reconnect_backoff_ms_min: u64,
    /// Longest reconnection delay.
    pub reconnect_backoff_ms_max: u64,
    /// How long publish, depth and dead-letter reads keep retrying before they fail.
    pub retry_ms_max: u64,
    /// Longest wait for one connection attempt.
    pub connect_timeout_ms: u64,
    /// Most publishes awaiting their confirm at once.
    pub publish_window_len_max: usize,
    /// Most dead letters read by one [`JobQueue::dead_letters`] call.
    pub dead_letters_len_max: usize,
}

impl AmqpConfig {
    /// Defaults for a broker at `url`: quorum queues under `tollgate.jobs`, prefetch 16,
    /// delivery limit 20, backoff 100 ms to 5 s, retries for 60 s.
    #[must_use]
    pub fn new(url: impl Into<String>) -> AmqpConfig {
        AmqpConfig {
            url: url.into(),
            queue_prefix: "tollgate.jobs".to_owned(),
            prefetch: 16,
            queue_type: AmqpQueueType::Quorum,
            delivery_limit: 20,
            reconnect_backoff_ms_min: 100,
            reconnect_backoff_ms_max: 5_000,
            retry_ms_max: 60_000,
            connect_timeout_ms: 10_000,
            publish_window_len_max: 1_024,
            dead_letters_len_max: 100_000,
        }
    }

    fn validate(&self) -> Result<(), JobError> {
        // The longest name is `{prefix}.settlement.dead` and must fit an AMQP short string.
        if self.queue_prefix.is_empty() || self.queue_prefix.len() > 200 {
            return Err(JobError::invalid("queue_prefix must have 1 to 200 bytes"));
        }
        if self.prefetch == 0 {
            return Err(JobError::invalid("prefetch must be at least 1"));
        }
        if self.reconnect_backoff_ms_min == 0
            || self.reconnect_backoff_ms_min > self.reconnect_backoff_ms_max
        {
            return Err(JobError::invalid(
                "need 0 < reconnect_backoff_ms_min <= reconnect_backoff_ms_max",
            ));
        }
        if self.publish_window_len_max == 0 || self.connect_timeout_ms == 0 {
            return Err(JobError::invalid(
                "publish_window_len_max and connect_timeout_ms must be positive",
            ));
        }
        Ok(())
    }

    /// The broker objects of `kind`.
    #[must_use]
    pub fn names(&self, kind: JobKind) -> QueueNames {
        QueueNames::new(&self.queue_prefix, kind)
    }
}

/// The publisher's connection: one channel in confirm mode, the kinds declared on it.
struct Link {
    connection: Connection,
    channel: Channel,
    declared: HashSet<JobKind>,
}

impl Link {
    async fn open(config: &AmqpConfig) -> Result<Link, lapin::Error> {
        let connection = connect(config, "publisher").await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link {
            connection,
            channel,
            declared: HashSet::new(),
        })
    }

    async fn declare(
        &mut self,
        config: &AmqpConfig,
        kind: JobKind,
    ) -> Result<(u32, u32), lapin::Error> {
        let counts = declare(&self.channel, config, kind).await?;
        self.declared.insert(kind);
        Ok(counts)
    }

    async fn ensure_declared(
        &mut self,
        config: &AmqpConfig,
        kind: JobKind,
    ) -> Result<(), lapin::Error> {
        if !self.declared.contains(&kind) {
            self.declare(config, kind).await?;
        }
        Ok(())
    }
}

/// A message to publish with a confirm.
pub(crate) struct Outgoing {
    kind: JobKind,
    exchange: ShortString,
    routing_key: ShortString,
    body: Vec<u8>,
    properties: BasicProperties,
}

impl Outgoing {
    /// `job` to its kind's queue.
    pub(crate) fn job(config: &AmqpConfig, job: &Job) -> Result<Outgoing, JobError> {
        Ok(Outgoing {
            kind: job.kind,
            exchange: ShortString::default(),
            routing_key: short(&config.names(job.kind).main)?,
            body: job.payload.clone(),
            properties: job_properties(job),
        })
    }

    /// `dead` to its kind's dead-letter exchange.
    pub(crate) fn dead(config: &AmqpConfig, dead: &DeadLetter) -> Result<Outgoing, JobError> {
        Outgoing::dead_raw(
            config,
            dead.job.kind,
            dead.job.payload.clone(),
            dead_properties(dead),
        )
    }

    /// A raw message to `kind`'s dead-letter exchange.
    pub(crate) fn dead_raw(
        config: &AmqpConfig,
        kind: JobKind,
        body: Vec<u8>,
        properties: BasicProperties,
    ) -> Result<Outgoing, JobError> {
        let names = config.names(kind);
        Ok(Outgoing {
            kind,
            exchange: short(&names.dead_letter_exchange)?,
            routing_key: short(&names.dead)?,
            body,
            properties,
        })
    }
}

/// What the queue and its consumers share.
pub(crate) struct Shared {
    pub(crate) config: AmqpConfig,
    publisher: Mutex<Option<Link>>,
}

impl Shared {
    /// The publisher's link, opened if there is none or it broke.
    async fn link<'a>(
        slot: &'a mut Option<Link>,
        config: &AmqpConfig,
    ) -> Result<&'a mut Link, lapin::Error> {
        if slot.as_ref().is_some_and(|link| {
            !link.connection.status().connected() || !link.channel.status().connected()
        }) {
            *slot = None;
        }
        match slot {
            Some(link) => Ok(link),
            None => Ok(slot.insert(Link::open(config).await?)),
        }
    }

    /// Publishes every message and waits for the broker's confirms, retrying what was not
    /// confirmed (on a new connection) until [`AmqpConfig::retry_ms_max`].
    pub(crate) async fn publish_confirmed(
        &self,
        mut pending: Vec<Outgoing>,
    ) -> Result<(), JobError> {
        let mut retry = Retry::new(&self.config);
        let mut slot = self.publisher.lock().await;
        while !pending.is_empty() {
            if let Err(error) = self.publish_window(&mut slot, &mut pending).await {
                // Whatever state the channel is in, start over on a fresh connection.
                *slot = None;
                retry.failed(&error, "publish").await?;
            }
        }
        Ok(())
    }

    /// Publishes up to one window of `pending` and removes from it what the broker confirmed.
    async fn publish_window(
        &self,
        slot: &mut Option<Link>,
        pending: &mut Vec<Outgoing>,
    ) -> Result<(), lapin::Error> {
        let config = &self.config;
        let link = Shared::link(slot, config).await?;
        let window = pending.len().min(config.publish_window_len_max);
        let mut confirms = Vec::with_capacity(window);
        let mut failure = None;
        for message in &pending[..window] {
            let published = async {
                link.ensure_declared(config, message.kind).await?;
                link.channel
                    .basic_publish(
                        message.exchange.clone(),
                        message.routing_key.clone(),
                        // Mandatory: an unroutable message comes back instead of vanishing.
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        &message.body,
                        message.properties.clone(),
                    )
                    .await
            }
            .await;
            match published {
                Ok(confirm) => confirms.push(confirm),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let mut confirmed = vec![false; window];
        for (index, confirm) in confirms.into_iter().enumerate() {
            match confirm.await {
                Ok(Confirmation::Ack(None)) => confirmed[index] = true,
                Ok(Confirmation::Ack(Some(_))) => {
                    // The queue vanished (deleted by hand?): declare again on the retry.
                    failure.get_or_insert_with(|| io_error("a confirmed message was unroutable"));
                }
                Ok(Confirmation::Nack(_)) => {
                    failure.get_or_insert_with(|| io_error("the broker nacked a message"));
                }
                Ok(Confirmation::NotRequested) => {
                    failure.get_or_insert_with(|| io_error("publisher confirms are off"));
                }
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        let mut index = 0;
        pending.retain(|_| {
            let keep = index >= window || !confirmed[index];
            index += 1;
            keep
        });
        failure.map_or(Ok(()), Err)
    }

    /// Declares `kind` and returns its ready counts, retrying like publish.
    async fn depth(&self, kind: JobKind) -> Result<QueueDepth, JobError> {
        let mut retry = Retry::new(&self.config);
        let mut slot = self.publisher.lock().await;
        loop {
            let result = async {
                Shared::link(&mut slot, &self.config)
                    .await?
                    .declare(&self.config, kind)
                    .await
            }
            .await;
            match result {
                Ok((ready, dead)) => {
                    return Ok(QueueDepth {
                        ready: u64::from(ready),
                        dead_lettered: u64::from(dead),
                    });
                }
                Err(error) => {
                    *slot = None;
                    retry.failed(&error, "queue depth").await?;
                }
            }
        }
    }

    /// Browses `kind`'s dead-letter queue, retrying like publish.
    async fn dead_letters(
        &self,
        kind: JobKind,
        run_id: Option<&str>,
    ) -> Result<Vec<DeadLetter>, JobError> {
        let mut retry = Retry::new(&self.config);
        let mut slot = self.publisher.lock().await;
        loop {
            match self.browse_dead(&mut slot, kind).await {
                Ok(letters) => {
                    return Ok(letters
                        .into_iter()
                        .filter(|letter| run_id.is_none_or(|run| run == letter.job.run_id))
                        .collect());
                }
                Err(error) => {
                    *slot = None;
                    retry.failed(&error, "dead letters").await?;
                }
            }
        }
    }

    async fn browse_dead(
        &self,
        slot: &mut Option<Link>,
        kind: JobKind,
    ) -> Result<Vec<DeadLetter>, lapin::Error> {
        let config = &self.config;
        let link = Shared::link(slot, config).await?;
        link.ensure_declared(config, kind).await?;
        let queue = ShortString::try_new(config.names(kind).dead).unwrap_or_default();
        // A channel of its own: closing it hands every message it got back to the queue.
        let channel = link.connection.create_channel().await?;
        let mut letters = Vec::new();
        while letters.len() < config.dead_letters_len_max {
            let Some(got) = channel
                .basic_get(queue.clone(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            let delivery = got.delivery;
            letters.push(message::decode_dead(
                kind,
                &delivery.properties,
                &delivery.data,
            ));
        }
        channel.close(200, "dead letters read".into()).await?;
        letters.sort_by_key(|letter| letter.at);
        Ok(letters)
    }
}

/// The job queue on RabbitMQ. Cheap to clone; clones share the publisher connection.
#[derive(Clone)]
pub struct AmqpJobQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AmqpJobQueue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AmqpJobQueue")
            .field("queue_prefix", &self.shared.config.queue_prefix)
            .finish_non_exhaustive()
    }
}

impl AmqpJobQueue {
    /// A queue on the broker of `config`; connects on first use (so a node starts while the
    /// broker is down, and its first publish waits for it up to `retry_ms_max`).
    pub fn new(config: AmqpConfig) -> Result<AmqpJobQueue, JobError> {
        config.validate()?;
        Ok(AmqpJobQueue {
            shared: Arc::new(Shared {
                config,
                publisher: Mutex::new(None),
            }),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AmqpConfig {
        &self.shared.config
    }

    /// Deletes every queue and exchange of this prefix, messages included: for tests and for
    /// tearing an environment down, never for a running system.
    pub async fn delete_queues(&self) -> Result<(), JobError> {
        let config = &self.shared.config;
        let mut slot = self.shared.publisher.lock().await;
        let link = Shared::link(&mut slot, config)
            .await
            .map_err(|error| JobError::unavailable(error.to_string()))?;
        for kind in JobKind::ALL {
            let names = config.names(kind);
            let deleted = async {
                for queue in [&names.main, &names.dead] {
                    link.channel
                        .queue_delete(short(queue)?, QueueDeleteOptions::default())
                        .await
                        .map_err(|error| JobError::unavailable(error.to_string()))?;
                }
                link.channel
                    .exchange_delete(
                        short(&names.dead_letter_exchange)?,
                        ExchangeDeleteOptions::default(),
                    )
                    .await
                    .map_err(|error| JobError::unavailable(error.to_string()))
            }
            .await;
            if let Err(error) = deleted {
                *slot = None;
                return Err(error);
            }
            link.declared.remove(&kind);
        }
        Ok(())
    }

    /// Closes the publisher connection (consumers close when dropped).
    pub async fn close(&self) {
        if let Some(link) = self.shared.publisher.lock().await.take() {
            // Closing a connection the broker already dropped fails; nothing is lost either way.
            let _closed = link.connection.close(200, "closing".into()).await;
        }
    }
}

impl JobQueue for AmqpJobQueue {
    fn publish(&self, jobs: Vec<Job>) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let mut pending = Vec::with_capacity(jobs.len());
            for job in &jobs {
                job.validate()?;
                pending.push(Outgoing::job(&self.shared.config, job)?);
            }
            self.shared.publish_confirmed(pending).await
        })
    }

    fn consume(&self, kind: JobKind, prefetch: u16) -> BoxFuture<'_, Result<Consumer, JobError>> {
        Box::pin(consumer::consume(Arc::clone(&self.shared), kind, prefetch))
    }

    fn dead_letters<'a>(
        &'a self,
        kind: JobKind,
        run_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, JobError>> {
        Box::pin(self.shared.dead_letters(kind, run_id))
    }

    fn queue_depth(&self, kind: JobKind) -> BoxFuture<'_, Result<QueueDepth, JobError>> {
        Box::pin(self.shared.depth(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_validated() {
        assert!(AmqpConfig::new("amqp://127.0.0.1").validate().is_ok());
        let mut config = AmqpConfig::new("amqp://127.0.0.1");
        config.queue_prefix = "p".repeat(201);
        assert!(config.validate().is_err());
        let mut config = AmqpConfig::new("amqp://127.0.0.1");
        config.prefetch = 0;
        assert!(config.validate().is_err());
        let mut config = AmqpConfig::new("amqp://127.0.0.1");
        config.reconnect_backoff_ms_min = 10_000;
        assert!(config.validate().is_err());
    }

    #[test]
    fn errors_that_retrying_cannot_fix_are_permanent() {
        assert!(!is_permanent(&io_error("connection reset")));
    }
}
