//! The Kafka source: consumes a topic's partitions **by assignment** (the partitions of the
//! shards this node owns, not the broker's group rebalancing), starting from positions the
//! caller read from its own durable store, and hands records to a [`RecordSink`] in batches (the
//! records of every assigned partition read since the last batch, grouped by partition).
//!
//! Exactly-once accounting rests on the sink: a [`RecordSink::submit`] completes with `Ok` only
//! once the records' effects **and** the position after them (per partition) are durable in one
//! write. The source retries a failed batch (with backoff) until it succeeds or the source is
//! stopped, so a slow or failing store slows consumption and never skips a record.
//!
//! Up to [`BATCHES_IN_FLIGHT`] batches are in flight while the next one is read from the broker:
//! fetching, rating and the store's work overlap, yet batches become durable strictly in order
//! (the sink commits a batch only after the one submitted before it is durable, and fails it if
//! that one failed; the source then resubmits the failed batches in order). After a batch the
//! offset is also committed to the broker's consumer group, only so that standard tooling and
//! `tollgate_kafka_consumer_lag` see the progress; the broker's offset is never read back.
//!
//! Records are read on a dedicated thread with librdkafka's `BaseConsumer`.

use std::collections::{BTreeMap, VecDeque};
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

/// Records of one batch, per partition, each partition's records in offset order.
pub type PartitionedRecords = BTreeMap<i32, Vec<RawRecord>>;

/// The completion of a submitted batch: `Ok` once it is durable.
pub type Delivery = std::sync::mpsc::Receiver<Result<(), String>>;

/// Where consumed records go.
pub trait RecordSink: Send + Sync + 'static {
    /// Starts making the records' effects durable together with the position `last offset + 1`
    /// of every partition in `records`, in one write; the returned [`Delivery`] completes with
    /// `Ok` only when that write is durable. Bad records are the sink's to put in suspense: `Err`
    /// (or a dropped sender) means "nothing was applied, retry the same batch".
    ///
    /// Batches submitted while earlier ones are in flight must become durable after them, and
    /// only if they did (a batch whose predecessor failed fails too).
    fn submit(&self, records: &PartitionedRecords) -> Delivery;

    /// Submits and waits until the batch is durable.
    fn deliver(&self, records: &PartitionedRecords) -> Result<(), String> {
        wait_durable(&self.submit(records))
    }
}

fn wait_durable(delivery: &Delivery) -> Result<(), String> {
    delivery
        .recv()
        .map_err(|_| "the sink dropped the batch before it was durable".to_string())?
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
/// Batches submitted to the sink and not yet durable, at most: one being committed while the
/// next is rated.
pub const BATCHES_IN_FLIGHT: usize = 2;
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A submitted batch, kept until it is durable so that it can be submitted again.
struct InFlight {
    records: PartitionedRecords,
    delivery: Delivery,
}

impl Loop {
    fn run(mut self) {
        let mut pending = PartitionedRecords::new();
        let mut count = 0usize;
        let mut first_at: Option<Instant> = None;
        let mut lag_at = Instant::now();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        while !self.stop.load(Ordering::SeqCst) {
            // While a batch is in flight, poll in short steps to notice its completion.
            let wait = match (first_at, in_flight.is_empty()) {
                (_, false) => Duration::from_millis(2),
                (None, true) => Duration::from_millis(100),
                (Some(t), true) => self.settings.batch_wait.saturating_sub(t.elapsed()),
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
            // Finished batches are settled as soon as they are seen, oldest first, so that
            // positions, metrics and the broker's lag view follow without waiting for the next
            // batch to fill.
            while let Some(front) = in_flight.front() {
                let done = match front.delivery.try_recv() {
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    done => done.unwrap_or_else(|_| Err("the sink dropped the batch".into())),
                };
                if !self.settle_front(&mut in_flight, done) {
                    return;
                }
            }
            // A batch goes when full, or when its wait is over and the store has room: while
            // the store is busy the next batch keeps growing (up to its limit), so a slow store
            // gets fewer, larger writes.
            let due = first_at.is_some_and(|t| t.elapsed() >= self.settings.batch_wait);
            let full = count >= self.settings.batch_len_max.max(1);
            if full || (count > 0 && due && in_flight.len() < BATCHES_IN_FLIGHT) {
                // Room for the batch: the oldest one in flight must be durable first.
                while in_flight.len() >= BATCHES_IN_FLIGHT {
                    let Some(front) = in_flight.front() else {
                        break;
                    };
                    let done = wait_durable(&front.delivery);
                    if !self.settle_front(&mut in_flight, done) {
                        return;
                    }
                }
                let records = std::mem::take(&mut pending);
                let delivery = self.sink.submit(&records);
                in_flight.push_back(InFlight { records, delivery });
                count = 0;
                first_at = None;
            }
            if lag_at.elapsed() >= LAG_INTERVAL {
                self.update_lag();
                lag_at = Instant::now();
            }
        }
        // Stopping: the batches in flight finish (or are read again on the next start).
        while let Some(front) = in_flight.front() {
            let done = wait_durable(&front.delivery);
            if !self.settle_front(&mut in_flight, done) {
                return;
            }
        }
    }

    /// Settles the oldest batch in flight, which finished with `result`. When it failed, the
    /// batches after it fail too (the sink chains them): they are waited for, then every one is
    /// delivered again in order. Returns `false` when the source is stopping.
    fn settle_front(
        &mut self,
        in_flight: &mut VecDeque<InFlight>,
        result: Result<(), String>,
    ) -> bool {
        let Some(front) = in_flight.pop_front() else {
            return true;
        };
        if result.is_ok() {
            return self.settle(front.records, result);
        }
        let later: Vec<PartitionedRecords> = in_flight
            .drain(..)
            .map(|f| {
                // Whatever they answer, they are delivered again after the failed one (a batch
                // that did become durable is then a batch of duplicates, positions unchanged).
                let _ = wait_durable(&f.delivery);
                f.records
            })
            .collect();
        if !self.settle(front.records, result) {
            return false;
        }
        for records in later {
            let result = self.sink.deliver(&records);
            if !self.settle(records, result) {
                return false;
            }
        }
        true
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

    /// Completes a submitted batch: on failure submits it again (with backoff) until it is
    /// durable, then records the new positions. `false` when stopped before the batch was
    /// durable (its records are read again on restart).
    fn settle(&mut self, records: PartitionedRecords, mut result: Result<(), String>) -> bool {
        let topic = self.settings.topic.clone();
        let mut backoff = Duration::from_millis(10);
        while let Err(e) = result {
            if let Some(m) = &self.metrics {
                m.retries.with_label_values(&[topic.as_str()]).inc();
            }
            let span: Vec<String> = records
                .iter()
                .filter_map(|(p, r)| {
                    Some(format!("{p}:{}..={}", r.first()?.offset, r.last()?.offset))
                })
                .collect();
            eprintln!(
                "kafka {topic}: batch at {} not durable, retrying in {backoff:?}: {e}",
                span.join(" ")
            );
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            result = self.sink.deliver(&records);
        }
        let mut tpl = TopicPartitionList::new();
        let mut total = 0u64;
        for (partition, records) in &records {
            let Some(last) = records.last().map(|r| r.offset) else {
                continue;
            };
            total += records.len() as u64;
            self.next.insert(*partition, last + 1);
            // For lag tooling only: the durable position is the sink's.
            if let Err(e) = tpl.add_partition_offset(&topic, *partition, Offset::Offset(last + 1)) {
                self.error(&e);
            }
        }
        if let Some(m) = &self.metrics {
            m.records.with_label_values(&[topic.as_str()]).inc_by(total);
            m.batches.with_label_values(&[topic.as_str()]).inc();
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            self.error(&e);
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
