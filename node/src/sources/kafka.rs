//! The node's Kafka source: consumes the partitions of the shards this node owns, each from the
//! position stored with the ledger, and ingests every batch as one durable write (effects,
//! suspense rows, counters and the next offset).
//!
//! The consumer runs on its own thread (see [`tollgate_adapters::kafka`]); its batches cross
//! into the actor system through a bounded channel, and the consumer waits for each batch to be
//! durable before reading on, so a slow store slows consumption and drops nothing.

use std::sync::Arc;
use std::time::Duration;

use smol_str::SmolStr;
use tollgate_adapters::kafka::{
    Delivery, KafkaMetrics, KafkaSettings, KafkaSource, PartitionedRecords, RecordSink,
    partition_count,
};
use tollgate_cluster::ShardMap;
use tollgate_config::KafkaConfig;
use tollgate_domain::mediation::SourcePosition;

use super::IngestBridge;
use crate::ingest::{Batch, Incoming, Ingestor, RecordFormat};

/// The source name of a topic in counters, positions and suspense ids.
pub fn source_name(topic: &str) -> SmolStr {
    smol_str::format_smolstr!("kafka:{topic}")
}

/// The partitions of a topic with `partitions` partitions that belong to shards `node` owns:
/// partition `p` carries shard `p % shards` (producers partition by murmur2 of the subscriber,
/// like [`tollgate_cluster::shard_of`]; see docs/configuration.md).
pub fn owned_partitions(partitions: u32, map: &ShardMap, node: u32) -> Vec<i32> {
    let shards = map.shards().max(1);
    (0..partitions)
        .filter(|p| map.owner(p % shards).is_some_and(|o| o.node == node))
        .map(|p| p as i32)
        .collect()
}

/// Hands the consumer thread's batches to the ingest task and waits for their durability.
struct Sink {
    bridge: IngestBridge,
    topic: String,
    source: SmolStr,
}

impl RecordSink for Sink {
    fn submit(&self, records: &PartitionedRecords) -> Delivery {
        // The consumer only needs "durable or not", not the outcomes.
        let (tx, rx) = std::sync::mpsc::channel();
        self.bridge.submit(
            batch(&self.topic, &self.source, records),
            Box::new(move |result| {
                let _ = tx.send(result.map(|_| ()));
            }),
        );
        rx
    }
}

/// One ingest batch of every partition's records: each record's suspense id names its partition
/// and offset, and the batch stores each partition's next offset in the same write.
fn batch(topic: &str, source: &SmolStr, records: &PartitionedRecords) -> Batch {
    let mut incoming = Vec::with_capacity(records.values().map(Vec::len).sum());
    let mut positions = Vec::with_capacity(records.len());
    for (partition, records) in records {
        let Some(last) = records.last() else { continue };
        positions.push(SourcePosition {
            source: source.clone(),
            partition: *partition as u32,
            next_offset: (last.offset + 1).max(0) as u64,
        });
        incoming.extend(records.iter().map(|r| Incoming {
            suspense_id: format!("kafka:{topic}/{partition}/{}", r.offset),
            raw: r.payload.clone().unwrap_or_default(),
            recycled: None,
        }));
    }
    Batch {
        source: source.clone(),
        format: RecordFormat::Json,
        records: incoming,
        positions,
        by: "kafka".into(),
        audit: None,
    }
}

/// A running Kafka source of the node.
pub struct NodeKafka {
    source: Arc<std::sync::Mutex<Option<KafkaSource>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl NodeKafka {
    /// Starts the source in the background: discovers the topic's partitions (retrying while
    /// the broker is unreachable), seeks each owned partition to its stored position and
    /// consumes. Must be called inside the actor system.
    pub fn start(
        config: &KafkaConfig,
        node_id: &str,
        map: ShardMap,
        node: u32,
        ingestor: Arc<Ingestor>,
        metrics: Option<KafkaMetrics>,
    ) -> NodeKafka {
        let topic = config.topic.clone();
        let source = source_name(&topic);
        let sink = Arc::new(Sink {
            bridge: IngestBridge::spawn(ingestor.clone()),
            topic: topic.clone(),
            source,
        });
        let settings = KafkaSettings {
            brokers: config.brokers.clone(),
            topic: topic.clone(),
            group_id: config.group_id.clone(),
            client_id: format!("tollgate-{node_id}"),
            batch_len_max: config.batch_len_max,
            batch_wait: Duration::from_millis(config.batch_wait_ms),
        };
        let slot = Arc::new(std::sync::Mutex::new(None));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (slot_t, stop_t) = (slot.clone(), stop.clone());
        let store = ingestor.store().clone();
        let spawned = std::thread::Builder::new()
            .name("kafka-start".into())
            .spawn(move || {
                let mut wait = Duration::from_millis(200);
                while !stop_t.load(std::sync::atomic::Ordering::SeqCst) {
                    match start_source(&settings, &map, node, store.as_ref(), &sink, &metrics) {
                        Ok(s) => {
                            eprintln!("kafka: consuming {} ({})", settings.topic, settings.brokers);
                            if let Ok(mut g) = slot_t.lock() {
                                *g = Some(s);
                            }
                            return;
                        }
                        Err(e) => {
                            eprintln!("kafka: not started, retrying in {wait:?}: {e}");
                            std::thread::sleep(wait);
                            wait = (wait * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("kafka: cannot start the source thread: {e}");
        }
        NodeKafka { source: slot, stop }
    }

    /// Stops consuming (blocking: call it off the actor threads). A batch in flight finishes
    /// or is read again on the next start.
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let source = self.source.lock().ok().and_then(|mut g| g.take());
        if let Some(s) = source {
            s.stop();
        }
    }
}

fn start_source(
    settings: &KafkaSettings,
    map: &ShardMap,
    node: u32,
    store: &dyn tollgate_domain::mediation::IngestStore,
    sink: &Arc<Sink>,
    metrics: &Option<KafkaMetrics>,
) -> Result<KafkaSource, String> {
    let count = partition_count(&settings.brokers, &settings.topic, Duration::from_secs(5))?;
    let source = source_name(&settings.topic);
    let mut partitions = Vec::new();
    for p in owned_partitions(count, map, node) {
        let next = store
            .position(&source, p as u32)
            .map_err(|e| format!("stored position of {source}/{p}: {e}"))?;
        partitions.push((p, next));
    }
    KafkaSource::start(settings.clone(), partitions, sink.clone(), metrics.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_adapters::kafka::RawRecord;

    #[test]
    fn partitions_follow_shard_ownership() {
        let map = ShardMap::single_node(4, 0);
        assert_eq!(owned_partitions(8, &map, 0), (0..8).collect::<Vec<_>>());
        assert!(owned_partitions(8, &map, 1).is_empty());
    }

    #[test]
    fn a_batch_keeps_offsets_as_ids_and_stores_each_partitions_next_offset() {
        let records = vec![
            RawRecord {
                partition: 2,
                offset: 7,
                key: None,
                payload: Some(b"{}".to_vec()),
            },
            RawRecord {
                partition: 2,
                offset: 9,
                key: None,
                payload: None,
            },
        ];
        let other = RawRecord {
            partition: 5,
            offset: 0,
            key: None,
            payload: Some(b"{}".to_vec()),
        };
        let records = PartitionedRecords::from([(2, records), (5, vec![other])]);
        let b = batch("cdr.raw", &source_name("cdr.raw"), &records);
        assert_eq!(b.records[0].suspense_id, "kafka:cdr.raw/2/7");
        assert_eq!(b.records[1].suspense_id, "kafka:cdr.raw/2/9");
        assert!(
            b.records[1].raw.is_empty(),
            "a tombstone is an empty record"
        );
        assert_eq!(b.records[2].suspense_id, "kafka:cdr.raw/5/0");
        let positions: Vec<_> = b
            .positions
            .iter()
            .map(|p| (p.source.as_str(), p.partition, p.next_offset))
            .collect();
        assert_eq!(
            positions,
            [("kafka:cdr.raw", 2, 10), ("kafka:cdr.raw", 5, 1)],
            "one batch stores the next offset of every partition it holds"
        );
    }
}
