//! Rated output: the outbox publisher. Ingestion writes one outbox row per rated and per
//! suspended record **in the same durable write** as the record's effects (see
//! [`tollgate_domain::mediation::IngestWrite::outbox`]); this thread reads the outbox in
//! sequence order, in chunks, produces every row with an idempotent producer, waits for the
//! broker's delivery report of each, and deletes the delivered rows in one write.
//!
//! Delivery is **at least once**: a crash (or a failed delete) after the broker acknowledged a
//! row and before the row is deleted sends it again on the next pass, so consumers deduplicate
//! by the record's id (`cdr_id` on the rated topic, `record_id` on the suspense topic), the
//! usual outbox contract. Nothing is lost: a row leaves the outbox only after its delivery
//! report said it is stored by the broker (`acks=all`). While the brokers are unreachable rows
//! stay and the publisher retries with backoff, recreating its producer after every failed pass
//! (a producer whose idempotence state failed cannot be used again).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use tollgate_domain::mediation::{IngestStore, OutboxEntry, contract::block_on};

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    /// Bootstrap brokers, `host:port[,host:port]`.
    pub brokers: String,
    /// Client id shown by the broker.
    pub client_id: String,
    /// Most rows produced per pass (one delete write per pass).
    pub chunk_len_max: usize,
    /// How long an empty outbox is left alone before it is read again.
    pub idle_wait: Duration,
    /// How long the producer keeps trying one message (`message.timeout.ms`) before the pass
    /// counts it as failed and keeps the row for the next pass.
    pub message_timeout: Duration,
}

impl OutputSettings {
    /// Settings with the publisher's defaults for `brokers`.
    pub fn new(brokers: &str, client_id: &str) -> OutputSettings {
        OutputSettings {
            brokers: brokers.to_string(),
            client_id: client_id.to_string(),
            chunk_len_max: 1_000,
            idle_wait: Duration::from_millis(20),
            message_timeout: Duration::from_secs(30),
        }
    }
}

/// Metrics of the rated output.
#[derive(Clone)]
pub struct OutputMetrics {
    rows: IntGauge,
    records: IntCounterVec,
    errors: IntCounterVec,
}

impl OutputMetrics {
    /// Creates and registers `tollgate_kafka_outbox_rows`, `tollgate_kafka_output_records_total`
    /// and `tollgate_kafka_output_errors_total` in `registry`.
    pub fn new(registry: &Registry) -> Result<OutputMetrics, prometheus::Error> {
        let rows = IntGauge::new(
            "tollgate_kafka_outbox_rows",
            "Rated output waiting in the outbox (durable, not yet acknowledged by the broker)",
        )?;
        let records = IntCounterVec::new(
            Opts::new(
                "tollgate_kafka_output_records_total",
                "Outbox rows acknowledged by the broker and removed from the outbox",
            ),
            &["topic"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "tollgate_kafka_output_errors_total",
                "Rated output failures (the rows stay in the outbox and are sent again)",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(rows.clone()))?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(OutputMetrics {
            rows,
            records,
            errors,
        })
    }

    fn error(&self, kind: &str, n: u64) {
        self.errors.with_label_values(&[kind]).inc_by(n);
    }
}

/// Collects the delivery report of every message produced in a pass, by sequence number.
#[derive(Default)]
struct Reports {
    done: Mutex<Vec<(u64, Result<(), String>)>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Box<u64>) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.to_string()),
        };
        if let Ok(mut done) = self.done.lock() {
            done.push((*seq, outcome));
        }
    }
}

type OutputProducer = BaseProducer<Reports>;

fn producer(settings: &OutputSettings) -> Result<OutputProducer, String> {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("broker.address.family", "v4")
        .set("socket.keepalive.enable", "true")
        .set("client.id", &settings.client_id)
        // Idempotent (acks=all, ordered, no duplicates from the producer's own retries) and
        // keyed like the Java client, so a subscriber's output lands in one partition in order.
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            settings.message_timeout.as_millis().to_string(),
        )
        .create_with_context(Reports::default())
        .map_err(|e| format!("kafka output producer: {e}"))
}

/// The running publisher; stop it with [`OutboxPublisher::stop`] (also on drop).
pub struct OutboxPublisher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OutboxPublisher {
    /// Starts publishing the outbox of `store`. `pending` is kept equal to the number of rows
    /// in the outbox after every pass (ingestion reads it for backpressure).
    pub fn start(
        settings: OutputSettings,
        store: Arc<dyn IngestStore>,
        metrics: Option<OutputMetrics>,
        pending: Arc<AtomicU64>,
    ) -> Result<OutboxPublisher, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-output".into())
            .spawn(move || {
                Publisher {
                    settings,
                    store,
                    metrics,
                    pending,
                    stop: flag,
                    producer: None,
                    logged_at: None,
                }
                .run()
            })
            .map_err(|e| format!("kafka output thread: {e}"))?;
        Ok(OutboxPublisher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops publishing; returns when the thread has ended. Rows of an unfinished pass stay in
    /// the outbox and are sent again on the next start.
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

impl Drop for OutboxPublisher {
    fn drop(&mut self) {
        self.halt();
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct Publisher {
    settings: OutputSettings,
    store: Arc<dyn IngestStore>,
    metrics: Option<OutputMetrics>,
    pending: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    producer: Option<OutputProducer>,
    /// When a failure was last logged (failures are counted always, logged every 10 s at most).
    logged_at: Option<Instant>,
}

/// How a pass ended.
enum Pass {
    /// The outbox was empty.
    Idle,
    /// Every row of the chunk was delivered and deleted.
    Done,
    /// Something failed; the rows not delivered stay.
    Failed,
    /// Stopping.
    Stopped,
}

impl Publisher {
    fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        while !self.stop.load(Ordering::SeqCst) {
            let pass = self.pass();
            self.refresh_pending();
            match pass {
                Pass::Idle => self.sleep(self.settings.idle_wait),
                Pass::Done => backoff = BACKOFF_MIN,
                Pass::Failed => {
                    // A fresh producer for the next pass: a failed one may hold a fatal
                    // idempotence error.
                    self.producer = None;
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Pass::Stopped => break,
            }
        }
    }

    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.stop.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn refresh_pending(&self) {
        if let Ok(n) = self.store.outbox_len() {
            self.pending.store(n, Ordering::SeqCst);
            if let Some(m) = &self.metrics {
                m.rows.set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    fn fail(&mut self, kind: &str, n: u64, message: &str) -> Pass {
        if let Some(m) = &self.metrics {
            m.error(kind, n);
        }
        if self
            .logged_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            eprintln!(
                "kafka output ({}): {message} (rows kept, retrying; further failures within \
                 10 s only counted in tollgate_kafka_output_errors_total)",
                self.settings.brokers
            );
            self.logged_at = Some(Instant::now());
        }
        Pass::Failed
    }

    /// Publishes one chunk of the outbox and deletes what the broker acknowledged.
    fn pass(&mut self) -> Pass {
        let rows = match self.store.outbox(None, self.settings.chunk_len_max.max(1)) {
            Ok(rows) if rows.is_empty() => return Pass::Idle,
            Ok(rows) => rows,
            Err(e) => return self.fail("store", 1, &format!("reading the outbox: {e}")),
        };
        if self.producer.is_none() {
            match producer(&self.settings) {
                Ok(p) => self.producer = Some(p),
                Err(e) => return self.fail("client", 1, &e),
            }
        }
        let Some(producer) = self.producer.as_ref() else {
            return Pass::Failed;
        };
        let (sent, refused) = send_all(producer, &rows, &self.stop);
        // Wait for the report of every message sent (the producer gives up on a message after
        // `message_timeout`, which is a failed report).
        let deadline = Instant::now() + self.settings.message_timeout + Duration::from_secs(5);
        let mut reports = Vec::with_capacity(sent);
        let mut refreshed_at = Instant::now();
        while reports.len() < sent {
            if self.stop.load(Ordering::SeqCst) {
                return Pass::Stopped;
            }
            if Instant::now() >= deadline {
                break;
            }
            // Rows keep arriving while the brokers are slow: keep the count (and the
            // backpressure it drives) current.
            if refreshed_at.elapsed() >= Duration::from_secs(1) {
                self.refresh_pending();
                refreshed_at = Instant::now();
            }
            producer.poll(Duration::from_millis(20));
            if let Ok(mut done) = producer.context().done.lock() {
                reports.append(&mut done);
            }
        }
        let mut delivered: Vec<u64> = reports
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(seq, _)| *seq)
            .collect();
        delivered.sort_unstable();
        let failed: Vec<&String> = reports
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .collect();
        let first_failure = failed.first().map(|e| e.to_string());
        let unreported = sent - reports.len();
        if !delivered.is_empty() {
            if let Err(e) = block_on(self.store.delete_outbox(&delivered)) {
                // Delivered but still stored: sent again next pass (consumers deduplicate).
                return self.fail("store", 1, &format!("deleting delivered rows: {e}"));
            }
            if let Some(m) = &self.metrics {
                for entry in rows
                    .iter()
                    .filter(|r| delivered.binary_search(&r.seq).is_ok())
                {
                    m.records
                        .with_label_values(&[entry.row.topic.as_str()])
                        .inc();
                }
            }
        }
        if let Some(e) = refused {
            return self.fail("produce", (rows.len() - sent) as u64, &e);
        }
        if let Some(e) = first_failure {
            return self.fail(
                "delivery",
                failed.len() as u64,
                &format!("{} of {} rows not delivered: {e}", failed.len(), rows.len()),
            );
        }
        if unreported > 0 {
            return self.fail(
                "delivery",
                unreported as u64,
                &format!("{unreported} rows without a delivery report in time"),
            );
        }
        Pass::Done
    }
}

/// Produces the rows in order; returns how many were handed to the producer and, if it refused
/// one, why (the rest of the chunk is not sent, to keep each key's order).
fn send_all(
    producer: &OutputProducer,
    rows: &[OutboxEntry],
    stop: &AtomicBool,
) -> (usize, Option<String>) {
    for (i, entry) in rows.iter().enumerate() {
        let row = &entry.row;
        let mut record = BaseRecord::with_opaque_to(row.topic.as_str(), Box::new(entry.seq))
            .key(row.key.as_slice())
            .payload(row.payload.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    if stop.load(Ordering::SeqCst) {
                        return (i, Some("stopping".into()));
                    }
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return (i, Some(format!("produce to {}: {e}", row.topic))),
            }
        }
        producer.poll(Duration::ZERO);
    }
    (rows.len(), None)
}
