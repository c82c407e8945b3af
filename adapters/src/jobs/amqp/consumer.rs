//! The AMQP consumer: its own connection and channel with `basic.qos(prefetch)` and manual
//! acks, reopened with backoff whenever it breaks (broker restart, network loss).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Acker, Channel, Connection};

use super::message::{declare, decode_job, malformed_properties};
use super::{Backoff, Outgoing, Retry, Shared, connect, is_permanent};
use crate::jobs::{
    BoxFuture, Consumer, DeadLetter, Delivery, DeliverySource, Job, JobError, JobKind, Settle,
};

/// Opens a consumer, failing if the first connection cannot be made within
/// `retry_ms_max` (so a wrong URL shows at start-up); later losses are handled by reconnecting.
pub(super) async fn consume(
    shared: Arc<Shared>,
    kind: JobKind,
    prefetch: u16,
) -> Result<Consumer, JobError> {
    if prefetch == 0 {
        return Err(JobError::invalid("prefetch must be at least 1"));
    }
    let mut retry = Retry::new(&shared.config);
    let link = loop {
        match ConsumerLink::open(&shared, kind, prefetch).await {
            Ok(link) => break link,
            Err(error) => retry.failed(&error, "consume").await?,
        }
    };
    let source = AmqpSource {
        shared,
        kind,
        prefetch,
        link: Some(link),
        opening: None,
        reconnects: 0,
    };
    Ok(Consumer::new(kind, prefetch, Box::new(source)))
}

/// How often a waiting consumer checks that its connection is still alive: lapin may end a
/// connection's I/O loop without ending the consumer's stream, which would wait forever.
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// Longest wait for an ack to be handed to the connection. An ack issued while the connection
/// dies may never be answered by lapin; after this the delivery is reported stale (the broker
/// redelivers it if the ack did not get through, which idempotent workers absorb).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection of a consumer. Dropping it closes the connection, and the broker requeues
/// whatever was delivered on it and not acked.
struct ConsumerLink {
    // Field order is drop order: the consumer and channel close before the connection.
    consumer: lapin::Consumer,
    channel: Channel,
    connection: Connection,
}

impl ConsumerLink {
    async fn open(
        shared: &Shared,
        kind: JobKind,
        prefetch: u16,
    ) -> Result<ConsumerLink, lapin::Error> {
        let config = &shared.config;
        let connection = connect(config, &format!("consumer-{kind}")).await?;
        let channel = connection.create_channel().await?;
        declare(&channel, config, kind).await?;
        channel
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await?;
        let queue = ShortString::try_new(config.names(kind).main).unwrap_or_default();
        let tag = format!("tollgate-{kind}-{}-{}", std::process::id(), next_tag());
        let consumer = channel
            .basic_consume(
                queue,
                ShortString::try_new(tag).unwrap_or_default(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(ConsumerLink {
            consumer,
            channel,
            connection,
        })
    }

    /// The next item of the stream; `None` when the stream ended or the link is dead.
    async fn next(&mut self) -> Option<lapin::Result<lapin::message::Delivery>> {
        loop {
            match tokio::time::timeout(LIVENESS_CHECK, self.consumer.next()).await {
                Ok(item) => return item,
                Err(_) => {
                    if !self.connection.status().connected() || !self.channel.status().connected() {
                        return None;
                    }
                }
            }
        }
    }
}

fn next_tag() -> u64 {
    static TAGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    TAGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

struct AmqpSource {
    shared: Arc<Shared>,
    kind: JobKind,
    prefetch: u16,
    link: Option<ConsumerLink>,
    /// A reconnection in progress. Kept here, not on the stack of `next_delivery`, so that a
    /// caller that drops a pending `next()` (a timeout, a `select!`) does not abort it: the next
    /// call resumes it instead of starting over.
    opening: Option<BoxFuture<'static, Result<ConsumerLink, lapin::Error>>>,
    reconnects: u64,
}

impl AmqpSource {
    async fn next_delivery(&mut self) -> Result<Delivery, JobError> {
        let mut backoff = Backoff::new(&self.shared.config);
        loop {
            let Some(link) = self.link.as_mut() else {
                let (shared, kind, prefetch) = (Arc::clone(&self.shared), self.kind, self.prefetch);
                let opening = self.opening.get_or_insert_with(move || {
                    Box::pin(async move { ConsumerLink::open(&shared, kind, prefetch).await })
                });
                let opened = opening.await;
                self.opening = None;
                match opened {
                    Ok(link) => {
                        self.link = Some(link);
                        self.reconnects += 1;
                        backoff.reset();
                    }
                    Err(error) if is_permanent(&error) => {
                        return Err(JobError::Refused {
                            message: format!("consume {}: {error}", self.kind),
                        });
                    }
                    Err(_) => backoff.wait().await,
                }
                continue;
            };
            let delivery = match link.next().await {
                Some(Ok(delivery)) => delivery,
                // The channel or connection broke (or the broker cancelled the consumer, e.g.
                // the queue was deleted): start over on a new connection.
                Some(Err(_)) | None => {
                    self.link = None;
                    continue;
                }
            };
            match decode_job(self.kind, &delivery.properties, &delivery.data) {
                Ok(job) => {
                    let settle = AmqpSettle {
                        shared: Arc::clone(&self.shared),
                        acker: delivery.acker,
                    };
                    return Ok(Delivery::new(job, delivery.redelivered, Box::new(settle)));
                }
                Err(reason) => {
                    // Not a job: it must not block the queue nor vanish, so it goes to the
                    // dead-letter queue with the reason, then is acked.
                    let properties = malformed_properties(&delivery.properties, self.kind, &reason);
                    let outgoing = Outgoing::dead_raw(
                        &self.shared.config,
                        self.kind,
                        delivery.data,
                        properties,
                    )?;
                    self.shared.publish_confirmed(vec![outgoing]).await?;
                    if !matches!(
                        delivery.acker.ack(BasicAckOptions::default()).await,
                        Ok(true)
                    ) {
                        self.link = None;
                    }
                }
            }
        }
    }
}

impl DeliverySource for AmqpSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, JobError>> {
        Box::pin(self.next_delivery())
    }

    fn reconnects(&self) -> u64 {
        self.reconnects
    }
}

/// Settles one AMQP delivery through its channel's acker.
struct AmqpSettle {
    shared: Arc<Shared>,
    acker: Acker,
}

impl AmqpSettle {
    async fn ack(acker: Acker) -> Result<(), JobError> {
        if !acker.usable() {
            return Err(JobError::DeliveryStale);
        }
        match tokio::time::timeout(ACK_TIMEOUT, acker.ack(BasicAckOptions::default())).await {
            Ok(Ok(true)) => Ok(()),
            // The acker's channel is closed: the broker already requeued the message.
            Ok(Ok(false) | Err(_)) | Err(_) => Err(JobError::DeliveryStale),
        }
    }

    async fn forward(self, outgoing: Result<Outgoing, JobError>) -> Result<(), JobError> {
        // A copy published for a delivery whose channel is gone would be a needless duplicate.
        if !self.acker.usable() {
            return Err(JobError::DeliveryStale);
        }
        self.shared.publish_confirmed(vec![outgoing?]).await?;
        AmqpSettle::ack(self.acker).await
    }
}

impl Settle for AmqpSettle {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), JobError>> {
        Box::pin(AmqpSettle::ack(self.acker))
    }

    fn requeue(self: Box<Self>, next: Job) -> BoxFuture<'static, Result<(), JobError>> {
        let outgoing = Outgoing::job(&self.shared.config, &next);
        Box::pin(self.forward(outgoing))
    }

    fn dead_letter(self: Box<Self>, dead: DeadLetter) -> BoxFuture<'static, Result<(), JobError>> {
        let outgoing = Outgoing::dead(&self.shared.config, &dead);
        Box::pin(self.forward(outgoing))
    }
}
