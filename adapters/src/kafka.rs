//! The Kafka source: consumes a topic's partitions **by assignment** (the partitions of the
//! shards this node owns, not the broker's group rebalancing), starting from positions the
//! caller read from its own durable store, and hands records to a [`RecordSink`] in batches per
//! partition.
//!
//! Exactly-once accounting rests on the sink: [`RecordSink::deliver`] returns `Ok` only once the
//! records' effects **and** the position after them are durable in one write. The source retries
//! a failed delivery of the same batch (with backoff) until it succeeds or the source is stopped,
//! so a slow or failing store slows consumption and never skips a record. After a delivery the
//! offset is also committed to the broker's consumer group, only so that standard tooling and
//! `tollgate_kafka_consumer_lag` see the progress; the broker's offset is never read back.
//!
//! Records are read on a dedicated thread with librdkafka's `BaseConsumer`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

/// Where and how to consume.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port]`.
    pub brokers: String,
    /// Topic of raw records.
    pub topic: String,
    /// Consumer group, for offset commits (lag) only.
    pub group_id: String,
    /// Client id shown by the broker.
    pub client_id: String,
    /// Most records in one delivered batch.
    pub batch_len_max: usize,
    /// Longest wait for a batch to fill once its first record arrived.
    pub batch_wait: Duration,
}

/// One record as consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Key (the subscriber, by convention), if any.
    pub key: Option<Vec<u8>>,
    /// Payload; `None` for a tombstone (it is still a record and must be accounted for).
    pub payload: Option<Vec<u8>>,
}

/// Where consumed records go.
pub trait RecordSink: Send + Sync + 'static {
    /// Makes the records' effects durable together with the position `last offset + 1` of
    /// `partition`, in one write; `Ok` only when that write is durable. Bad records are the
    /// sink's to put in suspense: `Err` means "nothing was applied, retry the same batch".
    fn deliver(&self, partition: i32, records: &[RawRecord]) -> Result<(), String>;
}

/// Metrics of the Kafka source.
#[derive(Clone)]
pub struct KafkaMetrics {
    records: IntCounterVec,
    batches: IntCounterVec,
    retries: IntCounterVec,
    errors: IntCounterVec,
    lag: IntGaugeVec,
}

impl KafkaMetrics {
    /// Creates and registers `tollgate_kafka_*` in `registry`.
    pub fn new(registry: &Registry) -> Result<KafkaMetrics, prometheus::Error> {
        let records = IntCounterVec::new(
            Opts::new(
                "tollgate_kafka_records_total",
                "Records consumed and made durable",
            ),
            &["topic"],
        )?;
        let batches = IntCounterVec::new(
            Opts::new("tollgate_kafka_batches_total", "Batches delivered"),
            &["topic"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "tollgate_kafka_deliver_retries_total",
                "Deliveries retried because the store refused or failed (backpressure)",
            ),
            &["topic"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "tollgate_kafka_errors_total",
                "Consumer errors reported by the client (it reconnects by itself)",
            ),
            &["topic", "kind"],
        )?;
        let lag = IntGaugeVec::new(
            Opts::new(
                "tollgate_kafka_consumer_lag",
                "Records in the partition not yet durable here: high watermark - next offset",
            ),
            &["topic", "partition"],
        )?;
        for m in [&records, &batches, &retries] {
            registry.register(Box::new(m.clone()))?;
        }
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        Ok(KafkaMetrics {
            records,
            batches,
            retries,
            errors,
            lag,
        })
    }
}

fn client(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4")
        .set("socket.keepalive.enable", "true");
    c
}

/// Number of partitions of `topic`.
pub fn partition_count(brokers: &str, topic: &str, timeout: Duration) -> Result<u32, String> {
    let consumer: BaseConsumer = client(brokers)
        .create()
        .map_err(|e| format!("kafka client: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("kafka metadata of {topic} from {brokers}: {e}"))?;
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} not in the metadata"))?;
    if let Some(e) = t.error() {
        return Err(format!("topic {topic}: {e:?}"));
    }
    match t.partitions().len() {
        0 => Err(format!("topic {topic} has no partitions (does it exist?)")),
        n => Ok(n as u32),
    }
}

/// A running source; stop it with [`KafkaSource::stop`] (also on drop).
pub struct KafkaSource {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KafkaSource {
    /// Starts consuming `partitions` of the topic, each from its given next offset (`None`:
    /// from the beginning), delivering to `sink`.
    pub fn start(
        settings: KafkaSettings,
        partitions: Vec<(i32, Option<u64>)>,
        sink: Arc<dyn RecordSink>,
        metrics: Option<KafkaMetrics>,
    ) -> Result<KafkaSource, String> {
        let consumer: BaseConsumer = client(&settings.brokers)
            .set("group.id", &settings.group_id)
            .set("client.id", &settings.client_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .map_err(|e| format!("kafka consumer: {e}"))?;
        let mut tpl = TopicPartitionList::new();
        for (p, next) in &partitions {
            let offset = match next {
                Some(n) => Offset::Offset(*n as i64),
                None => Offset::Beginning,
            };
            tpl.add_partition_offset(&settings.topic, *p, offset)
                .map_err(|e| format!("kafka assignment: {e}"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| format!("kafka assignment of {}: {e}", settings.topic))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let next: BTreeMap<i32, i64> = partitions
            .iter()
            .map(|(p, n)| (*p, n.map_or(0, |n| n as i64)))
            .collect();
        let thread = std::thread::Builder::new()
            .name(format!("kafka-{}", settings.topic))
            .spawn(move || {
                Loop {
                    consumer,
                    settings,
                    sink,
                    metrics,
                    stop: flag,
                    next,
                    logged_at: None,
                }
                .run()
            })
            .map_err(|e| format!("kafka thread: {e}"))?;
        Ok(KafkaSource {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops consuming: a batch being delivered finishes (or its retries end); nothing after it
    /// is delivered. Returns when the consumer thread has ended.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Loop {
    consumer: BaseConsumer,
    settings: KafkaSettings,
    sink: Arc<dyn RecordSink>,
    metrics: Option<KafkaMetrics>,
    stop: Arc<AtomicBool>,
    /// Next offset per assigned partition, as durable in the sink.
    next: BTreeMap<i32, i64>,
    /// When an error was last written to the log (errors are counted always, logged at most
    /// every 10 s).
    logged_at: Option<Instant>,
}

const LAG_INTERVAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

impl Loop {
    fn run(mut self) {
        let mut pending: BTreeMap<i32, Vec<RawRecord>> = BTreeMap::new();
        let mut count = 0usize;
        let mut first_at: Option<Instant> = None;
        let mut lag_at = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let wait = match first_at {
                None => Duration::from_millis(100),
                Some(t) => self.settings.batch_wait.saturating_sub(t.elapsed()),
            };
            match self.consumer.poll(wait) {
                Some(Ok(m)) => {
                    pending.entry(m.partition()).or_default().push(RawRecord {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                    });
                    count += 1;
                    first_at.get_or_insert_with(Instant::now);
                }
                Some(Err(e)) => self.error(&e),
                None => {}
            }
            let due = first_at.is_some_and(|t| t.elapsed() >= self.settings.batch_wait);
            if count >= self.settings.batch_len_max.max(1) || (count > 0 && due) {
                if !self.flush(&mut pending) {
                    return;
                }
                count = 0;
                first_at = None;
            }
            if lag_at.elapsed() >= LAG_INTERVAL {
                self.update_lag();
                lag_at = Instant::now();
            }
        }
    }

    fn error(&mut self, e: &KafkaError) {
        let kind = match e.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => "client".to_string(),
        };
        if let Some(m) = &self.metrics {
            m.errors
                .with_label_values(&[self.settings.topic.as_str(), kind.as_str()])
                .inc();
        }
        if self
            .logged_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            eprintln!(
                "kafka {}: {e} (further errors within 10 s only counted in \
                 tollgate_kafka_errors_total)",
                self.settings.topic
            );
            self.logged_at = Some(Instant::now());
        }
        if e.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Delivers every pending batch, retrying each until it is durable. `false` when stopped
    /// before everything was delivered (the undelivered records are read again on restart).
    fn flush(&mut self, pending: &mut BTreeMap<i32, Vec<RawRecord>>) -> bool {
        let topic = self.settings.topic.clone();
        for (partition, records) in std::mem::take(pending) {
            let Some(last) = records.last().map(|r| r.offset) else {
                continue;
            };
            let mut backoff = Duration::from_millis(10);
            loop {
                match self.sink.deliver(partition, &records) {
                    Ok(()) => break,
                    Err(e) => {
                        if let Some(m) = &self.metrics {
                            m.retries.with_label_values(&[topic.as_str()]).inc();
                        }
                        eprintln!(
                            "kafka {topic}/{partition}: batch at offsets {}..={last} not \
                             durable, retrying in {backoff:?}: {e}",
                            records[0].offset
                        );
                        if self.stop.load(Ordering::SeqCst) {
                            return false;
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
            self.next.insert(partition, last + 1);
            if let Some(m) = &self.metrics {
                m.records
                    .with_label_values(&[topic.as_str()])
                    .inc_by(records.len() as u64);
                m.batches.with_label_values(&[topic.as_str()]).inc();
            }
            // For lag tooling only: the durable position is the sink's.
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(&topic, partition, Offset::Offset(last + 1))
                .is_ok()
                && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
            {
                self.error(&e);
            }
        }
        true
    }

    fn update_lag(&self) {
        let Some(m) = &self.metrics else { return };
        for (partition, next) in &self.next {
            if let Ok((_, high)) = self.consumer.fetch_watermarks(
                &self.settings.topic,
                *partition,
                Duration::from_millis(500),
            ) {
                m.lag
                    .with_label_values(&[self.settings.topic.as_str(), &partition.to_string()])
                    .set((high - next).max(0));
            }
        }
    }
}

/// An idempotent producer that partitions by key like the Java client (murmur2), so that a
/// subscriber's records land in the partition of its shard (see `tollgate_cluster::shard_of`).
pub fn producer(brokers: &str) -> Result<BaseProducer, String> {
    client(brokers)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| format!("kafka producer: {e}"))
}

/// Produces every `(key, payload)` to `topic` and waits until all are acknowledged.
pub fn produce_all<'a>(
    producer: &BaseProducer,
    topic: &str,
    records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    timeout: Duration,
) -> Result<(), String> {
    for (key, payload) in records {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(format!("kafka produce to {topic}: {e}")),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(timeout)
        .map_err(|e| format!("kafka flush to {topic}: {e}"))
}

/// Reads `expected` records of every partition of `topic` from the beginning, as fast as the
/// client can, doing nothing with them: the broker's raw consume rate, the ceiling the source's
/// end-to-end rate is compared with. Returns the records read and the time taken.
pub fn raw_consume(
    brokers: &str,
    topic: &str,
    expected: u64,
    timeout: Duration,
) -> Result<(u64, Duration), String> {
    let partitions = partition_count(brokers, topic, Duration::from_secs(10))?;
    let consumer: BaseConsumer = client(brokers)
        .set("group.id", "tollgate-raw-consume")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0usize;
    while n < expected {
        if started.elapsed() > timeout {
            return Err(format!("read {n} of {expected} records in {timeout:?}"));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                n += 1;
                bytes += m.payload().map_or(0, <[u8]>::len);
            }
            Some(Err(e)) => return Err(format!("kafka consume: {e}")),
            None => {}
        }
    }
    std::hint::black_box(bytes);
    Ok((n, started.elapsed()))
}
