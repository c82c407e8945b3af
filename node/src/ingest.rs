//! The ingestor: turns a batch of raw records from a source (a Kafka partition, a file, an HTTP
//! request, a recycle of suspense) into one durable transaction: the ledger writes of every
//! subscriber in the batch, the records put in suspense (reason code, raw bytes), the source's
//! position and its counters. Either all of it is durable or none of it is, and the source
//! resumes from the stored position, so every record is accounted for exactly once:
//! `ingested = rated + suspended + duplicates + filtered`, per source, always.
//!
//! Batches prepare one at a time (see `tollgate_actors::batch`): the lock is held from sending
//! the batch to the actors until every actor has offered its write, then released, so the
//! commit of one batch overlaps the preparation of the next.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};
use smol_str::SmolStr;
use tollgate_actors::{ActorError, BatchTx, CdrOutcome, RateCdrsIn, Router};
use tollgate_config::{DuplicateKey, EnrichRule, FilterRule, MediationConfig};
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::cdr::{Cdr, CdrMapping, CsvDecoder, JsonDecoder};
use tollgate_domain::ids::CdrId;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::StoreError;
use tollgate_domain::mediation::{
    IngestStore, IngestWrite, SourcePosition, SourceStats, StatsDelta, SuspenseRecord,
    SuspenseState,
};

mod output;

pub use output::Output;

/// Why a batch was not made durable. Nothing of it was applied: the source retries it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Storage refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A subscriber actor could not take part (it failed or stopped); retry the batch.
    #[error("a subscriber could not take part in the batch: {0}")]
    Participant(String),
    /// The rated output's outbox is full (the brokers are down or slow): new batches wait
    /// (backpressure) rather than grow it without bound; retry the batch later.
    #[error(
        "the rated output outbox holds {rows} rows (kafka.output_outbox_len_max = {limit}): \
         waiting for the brokers to take them"
    )]
    OutputBacklog {
        /// Rows waiting.
        rows: u64,
        /// The limit.
        limit: u64,
    },
}

/// How records of a source are encoded.
#[derive(Debug, Clone)]
pub enum RecordFormat {
    /// One JSON object per record.
    Json,
    /// One CSV line per record, with these column names.
    Csv(Vec<String>),
}

impl RecordFormat {
    /// The format name kept with suspended records (to decode them again when recycled).
    pub fn label(&self) -> SmolStr {
        match self {
            RecordFormat::Json => "application/json".into(),
            RecordFormat::Csv(header) => format!("text/csv; header={}", header.join(",")).into(),
        }
    }

    /// Reads a label back.
    pub fn from_label(label: &str) -> Option<RecordFormat> {
        if label == "application/json" {
            return Some(RecordFormat::Json);
        }
        let header = label.strip_prefix("text/csv; header=")?;
        Some(RecordFormat::Csv(
            header.split(',').map(str::to_string).collect(),
        ))
    }
}

/// One raw record of a batch.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Stable id of the record at its source (`<source>/<partition>/<offset>`, ...): the key of
    /// its suspense row.
    pub suspense_id: String,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Set when the record comes out of suspense (a recycle): its stored row.
    pub recycled: Option<SuspenseRecord>,
}

/// A batch to ingest.
pub struct Batch {
    /// Source name (`kafka:cdr.raw`, `http`, ...).
    pub source: SmolStr,
    /// Encoding of the records.
    pub format: RecordFormat,
    /// Records, in source order.
    pub records: Vec<Incoming>,
    /// The positions after this batch (one per partition it holds), stored in the same write.
    pub positions: Vec<SourcePosition>,
    /// Who asked, for recycles.
    pub by: SmolStr,
    /// The audit record of a batch a person asked for (a recycle): its `after` is filled with
    /// the outcome of every record, and it is committed in the same write.
    pub audit: Option<AuditRecord>,
}

/// Limits on record timestamps: records outside land in suspense.
#[derive(Debug, Clone, Copy)]
pub struct TimeWindow {
    /// How far in the past a record may start.
    pub past: SignedDuration,
    /// How far in the future a record may start.
    pub future: SignedDuration,
}

/// The text of a record field that rules compare (`None` when the record has no such value).
fn field_value(cdr: &Cdr, field: &str) -> Option<String> {
    match field {
        "subscriber" => Some(cdr.subscriber.as_str().to_string()),
        "callee" => cdr.callee.as_ref().map(|n| n.as_str().to_string()),
        "caller" => cdr.caller.as_ref().map(|n| n.as_str().to_string()),
        "service" => Some(cdr.service.to_string()),
        "direction" => Some(cdr.direction.as_str().to_string()),
        "id" => Some(cdr.id.as_str().to_string()),
        "trunk" => cdr.trunk.as_ref().map(|t| t.to_string()),
        _ => None,
    }
}

/// Mediation rules applied to every record of every source (see `[mediation]` in
/// docs/configuration.md).
#[derive(Debug, Clone)]
pub struct Rules {
    /// Accepted record start times.
    pub window: TimeWindow,
    /// Records dropped on purpose, counted as `filtered` with a reason.
    pub filters: Vec<FilterRule>,
    /// What makes two records the same.
    pub duplicate_key: DuplicateKey,
    /// Attributes set on matching records before filters and rating.
    pub enrich: Vec<EnrichRule>,
}

impl Rules {
    /// The rules of a node's configuration.
    pub fn from_config(c: &MediationConfig) -> Rules {
        Rules {
            window: TimeWindow {
                past: SignedDuration::from_hours(i64::from(c.past_days) * 24),
                future: SignedDuration::from_hours(i64::from(c.future_hours)),
            },
            filters: c.filters.clone(),
            duplicate_key: c.duplicate_key,
            enrich: c.enrich.clone(),
        }
    }

    /// Sets the attributes of the enrichment rules that match `cdr`: rules in order, the first
    /// match per attribute wins; an attribute the record already carries is kept.
    fn enrich(&self, mut cdr: Cdr) -> Cdr {
        for rule in &self.enrich {
            if cdr.attributes.get(&rule.attribute).is_some() {
                continue;
            }
            if field_value(&cdr, &rule.field).is_some_and(|v| rule.matches(&v)) {
                cdr.attributes
                    .set(rule.attribute.as_str(), rule.value.as_str());
            }
        }
        cdr
    }

    /// The first filter that drops `cdr`.
    fn filter(&self, cdr: &Cdr) -> Option<&FilterRule> {
        self.filters
            .iter()
            .find(|f| field_value(cdr, &f.field).is_some_and(|v| f.matches(&v)))
    }

    /// Applies the duplicate key: with `content`, the record's id becomes a digest of its
    /// subscriber, start, callee and service, so a resent record with a new id is a duplicate.
    fn keyed(&self, mut cdr: Cdr) -> Cdr {
        if matches!(self.duplicate_key, DuplicateKey::Content) {
            let text = format!(
                "{}|{}|{}|{}",
                cdr.subscriber.as_str(),
                cdr.start,
                cdr.callee.as_ref().map_or("", |n| n.as_str()),
                cdr.service
            );
            let digest = crate::access::sha256_hex(text.as_bytes());
            cdr.id = CdrId::new(format!("c:{}", &digest[..32]));
        }
        cdr
    }
}

/// A record decoder built for one mapping and format.
enum Decoder {
    Json(JsonDecoder),
    /// With the field delimiter.
    Csv(CsvDecoder, u8),
}

/// A batch whose subscribers have offered their writes, waiting to be committed
/// ([`Ingestor::finish`]).
pub struct Prepared {
    write: IngestWrite,
    coordinator: tollgate_actors::Coordinator,
    sends: Vec<tokio::task::JoinHandle<Result<Vec<CdrOutcome>, ActorError>>>,
    outcomes: Vec<CdrOutcome>,
    outside: u64,
}

/// The decoder of a mapping, or why the mapping cannot decode (every record of it is suspended
/// with that reason).
type DecoderFor = Result<Decoder, (SmolStr, String)>;

/// Ingests batches exactly once.
pub struct Ingestor {
    router: Arc<Router>,
    store: Arc<dyn IngestStore>,
    mapping: CdrMapping,
    mappings: HashMap<SmolStr, CdrMapping>,
    rules: Rules,
    stats: Mutex<HashMap<SmolStr, SourceStats>>,
    prepare: tokio::sync::Mutex<()>,
    recycle: tokio::sync::Mutex<()>,
    gauges: std::sync::OnceLock<prometheus::IntGaugeVec>,
    output: Option<Output>,
}

fn failed(reason: &str, message: impl Into<String>) -> (SmolStr, String) {
    (SmolStr::new(reason), message.into())
}

/// Best-effort id and subscriber of a record that did not decode.
fn identify(raw: &[u8]) -> (Option<SmolStr>, Option<SmolStr>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return (None, None);
    };
    let text = |k: &str| value.get(k).and_then(|v| v.as_str()).map(SmolStr::new);
    (text("id"), text("subscriber"))
}

impl Ingestor {
    /// An ingestor over `router`, persisting to `store`; counters are loaded from it.
    pub fn new(
        router: Arc<Router>,
        store: Arc<dyn IngestStore>,
        mapping: CdrMapping,
        rules: Rules,
    ) -> Result<Ingestor, StoreError> {
        let stats = store.stats()?.into_iter().collect();
        Ok(Ingestor {
            router,
            store,
            mapping,
            mappings: HashMap::new(),
            rules,
            stats: Mutex::new(stats),
            prepare: tokio::sync::Mutex::new(()),
            recycle: tokio::sync::Mutex::new(()),
            gauges: std::sync::OnceLock::new(),
            output: None,
        })
    }

    /// Writes rated output (outbox rows) with every batch from now on.
    pub fn set_output(&mut self, output: Output) {
        self.output = Some(output);
    }

    /// The store behind it.
    pub fn store(&self) -> &Arc<dyn IngestStore> {
        &self.store
    }

    /// Registers `tollgate_mediation_records{source, outcome}` (ingested, rated, suspended,
    /// duplicates, filtered: the durable per-source counters) in `registry`.
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> Result<(), String> {
        let gauges = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "tollgate_mediation_records",
                "What became of every record of each source (durable counters): \
                 ingested = rated + suspended + duplicates + filtered",
            ),
            &["source", "outcome"],
        )
        .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(gauges.clone()))
            .map_err(|e| e.to_string())?;
        let _ = self.gauges.set(gauges);
        for (source, stats) in self.stats() {
            self.publish(&source, &stats);
        }
        Ok(())
    }

    fn publish(&self, source: &str, s: &SourceStats) {
        let Some(g) = self.gauges.get() else { return };
        for (outcome, v) in [
            ("ingested", s.ingested),
            ("rated", s.rated),
            ("suspended", s.suspended),
            ("duplicates", s.duplicates),
            ("filtered", s.filtered),
        ] {
            g.with_label_values(&[source, outcome])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }

    /// Held by a recycle from reading the open records until they are durable, so two recycles
    /// never take the same record.
    pub async fn recycle_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.recycle.lock().await
    }

    /// The counters of every source.
    pub fn stats(&self) -> Vec<(SmolStr, SourceStats)> {
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = stats.iter().map(|(k, v)| (k.clone(), *v)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Uses `mapping` (field names, number rewrites) for the records of `source` instead of the
    /// node's default mapping.
    pub fn set_source_mapping(&mut self, source: &str, mapping: CdrMapping) {
        self.mappings.insert(SmolStr::new(source), mapping);
    }

    /// The mapping records of `source` are decoded with.
    pub fn source_mapping(&self, source: &str) -> CdrMapping {
        self.mapping_for(source).clone()
    }

    fn mapping_for(&self, source: &str) -> &CdrMapping {
        self.mappings.get(source).unwrap_or(&self.mapping)
    }

    /// Builds the decoder of `format` for records of `mapping` (once per mapping and batch:
    /// building one checks the mapping and resolves its time zone).
    fn decoder(mapping: &CdrMapping, format: &RecordFormat) -> DecoderFor {
        let bad =
            |e: tollgate_domain::cdr::MappingError| failed("mediation.bad_mapping", e.to_string());
        Ok(match format {
            RecordFormat::Json => Decoder::Json(JsonDecoder::new(mapping).map_err(bad)?),
            RecordFormat::Csv(header) => {
                let names: Vec<&str> = header.iter().map(String::as_str).collect();
                Decoder::Csv(
                    CsvDecoder::new(mapping, &names).map_err(bad)?,
                    mapping.delimiter.map_or(b',', |c| c as u8),
                )
            }
        })
    }

    fn decode(
        &self,
        decoder: &DecoderFor,
        raw: &[u8],
        now: Timestamp,
    ) -> Result<Cdr, (SmolStr, String)> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Err(failed("cdr.empty", "the record is empty"));
        }
        let text = std::str::from_utf8(raw)
            .map_err(|e| failed("cdr.bad_encoding", format!("the record is not UTF-8: {e}")))?;
        let cdr = match decoder.as_ref().map_err(Clone::clone)? {
            Decoder::Json(decoder) => decoder
                .decode_str(text.trim())
                .map_err(|e| failed(e.code(), e.to_string()))?,
            Decoder::Csv(decoder, delimiter) => {
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(*delimiter)
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(text.as_bytes());
                let record = reader
                    .records()
                    .next()
                    .ok_or_else(|| failed("cdr.empty", "the record is empty"))?
                    .map_err(|e| failed("cdr.malformed", e.to_string()))?;
                decoder
                    .decode(&record)
                    .map_err(|e| failed(e.code(), e.to_string()))?
            }
        };
        if cdr.start > now + self.rules.window.future {
            return Err(failed(
                "cdr.time_in_future",
                format!(
                    "starts at {}, more than {} ahead",
                    cdr.start, self.rules.window.future
                ),
            ));
        }
        if cdr.start < now - self.rules.window.past {
            return Err(failed(
                "cdr.time_too_old",
                format!(
                    "starts at {}, more than {} ago",
                    cdr.start, self.rules.window.past
                ),
            ));
        }
        Ok(cdr)
    }

    /// Ingests one batch: returns one outcome per record, in order, once everything is durable.
    pub async fn ingest(&self, batch: Batch) -> Result<Vec<CdrOutcome>, IngestError> {
        let prepared = self.prepare(batch).await?;
        self.finish(prepared, true).await
    }

    /// The first half of [`Ingestor::ingest`]: decodes the batch and has every subscriber of it
    /// offer its write (one batch prepares at a time). The subscribers then wait for
    /// [`Ingestor::finish`] to commit or abort it; the next batch can be prepared meanwhile.
    pub async fn prepare(&self, batch: Batch) -> Result<Prepared, IngestError> {
        if let Some(o) = &self.output {
            let rows = o.pending.load(Ordering::SeqCst);
            if rows >= o.outbox_len_max {
                return Err(IngestError::OutputBacklog {
                    rows,
                    limit: o.outbox_len_max,
                });
            }
        }
        let now = Timestamp::now();
        let Batch {
            source,
            format,
            records,
            positions,
            by,
            audit,
        } = batch;
        let mut outcomes: Vec<Option<CdrOutcome>> = vec![None; records.len()];
        let mut by_subscriber: HashMap<SubscriberId, (Vec<usize>, Vec<Cdr>)> = HashMap::new();
        // The subscriber of each record that reached an actor (the key of its rated output).
        let mut subscribers: Vec<Option<SubscriberId>> = vec![None; records.len()];
        // One decoder per mapping in the batch (recycled records may come from other sources).
        let mut decoders: Vec<(&str, DecoderFor)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            // A recycled record decodes with the mapping of the source it came from.
            let from = record
                .recycled
                .as_ref()
                .map_or(source.as_str(), |row| row.source.as_str());
            let at = match decoders.iter().position(|(name, _)| *name == from) {
                Some(at) => at,
                None => {
                    decoders.push((from, Self::decoder(self.mapping_for(from), &format)));
                    decoders.len() - 1
                }
            };
            // Decode, enrich, filter (test calls of unknown numbers are dropped, not
            // suspended), then the subscriber must be known; the duplicate key comes last.
            let decoded = self
                .decode(&decoders[at].1, &record.raw, now)
                .map(|cdr| self.rules.enrich(cdr));
            if let Ok(cdr) = &decoded
                && let Some(rule) = self.rules.filter(cdr)
            {
                outcomes[i] = Some(CdrOutcome::Filtered {
                    cdr_id: SmolStr::new(cdr.id.as_str()),
                    reason: SmolStr::new(&rule.reason),
                    rule: SmolStr::new(&rule.name),
                });
                continue;
            }
            let decoded = decoded.and_then(|cdr| {
                if self.router.shared().profiles.get(&cdr.subscriber).is_none() {
                    Err(failed(
                        "rating.unknown_subscriber",
                        format!("unknown subscriber {}", cdr.subscriber),
                    ))
                } else {
                    Ok(self.rules.keyed(cdr))
                }
            });
            match decoded {
                Ok(cdr) => {
                    subscribers[i] = Some(cdr.subscriber.clone());
                    let slot = by_subscriber.entry(cdr.subscriber.clone()).or_default();
                    slot.0.push(i);
                    slot.1.push(cdr);
                }
                Err((reason, message)) => {
                    let (cdr_id, _) = identify(&record.raw);
                    outcomes[i] = Some(CdrOutcome::Suspended {
                        cdr_id: cdr_id.unwrap_or_default(),
                        reason,
                        message,
                    });
                }
            }
        }

        // Prepare: every subscriber offers its write; one batch prepares at a time.
        let outside = outcomes.iter().filter(|o| o.is_some()).count() as u64;
        let guard = self.prepare.lock().await;
        let (tx, mut coordinator) = BatchTx::new(by_subscriber.len());
        let mut groups: HashMap<SubscriberId, Vec<usize>> = HashMap::new();
        let mut sends = Vec::with_capacity(by_subscriber.len());
        for (subscriber, (indices, cdrs)) in by_subscriber {
            let router = self.router.clone();
            let msg = RateCdrsIn {
                cdrs,
                tx: tx.clone(),
            };
            groups.insert(subscriber.clone(), indices);
            sends.push(actix::spawn(async move {
                router.send(&subscriber, msg).await.and_then(|r| r)
            }));
        }
        drop(tx);
        let offers = coordinator.offers().await;
        drop(guard);

        let usable = offers.iter().filter(|o| o.write.is_ok()).count();
        if offers.len() != groups.len() || usable != groups.len() {
            coordinator.decide(Err(StoreError::Io("batch aborted".into())));
            let results = join_all(sends).await;
            let why = results
                .into_iter()
                .find_map(|r| match r {
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(e.to_string()),
                    Ok(Ok(_)) => None,
                })
                .unwrap_or_else(|| format!("{usable} of {} subscribers offered", groups.len()));
            return Err(IngestError::Participant(why));
        }
        let mut write = IngestWrite::default();
        for offer in offers {
            if let Some(indices) = groups.get(&offer.subscriber) {
                for (i, outcome) in indices.iter().zip(offer.outcomes) {
                    outcomes[*i] = Some(outcome);
                }
            }
            if let Ok(Some(w)) = offer.write {
                write.accounts.push(w);
            }
        }
        let outcomes: Vec<CdrOutcome> = outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(CdrOutcome::Suspended {
                    cdr_id: SmolStr::default(),
                    reason: "mediation.lost".into(),
                    message: "no outcome (a bug): kept in suspense".into(),
                })
            })
            .collect();

        if let Some(mut record) = audit {
            let items: Vec<serde_json::Value> = records
                .iter()
                .zip(&outcomes)
                .map(|(r, o)| {
                    let (outcome, reason) = match o {
                        CdrOutcome::Rated { .. } => ("rated", None),
                        CdrOutcome::Duplicate { .. } => ("duplicate", None),
                        CdrOutcome::Filtered { reason, .. } => ("filtered", Some(reason)),
                        CdrOutcome::Suspended { reason, .. } => ("suspended", Some(reason)),
                    };
                    serde_json::json!({"id": r.suspense_id, "outcome": outcome, "reason": reason})
                })
                .collect();
            record.after = Some(serde_json::json!({ "records": items }));
            write.audit.push(record);
        }
        // Suspense rows, counters and the position, in the same write.
        let mut delta = SourceStats::default();
        let mut recycled_delta = SourceStats::default();
        for ((record, outcome), subscriber) in records.into_iter().zip(&outcomes).zip(&subscribers)
        {
            let Incoming {
                suspense_id,
                raw,
                recycled,
            } = record;
            // Rated output: a rated record (also one recycled out of suspense, under its own
            // source) and a newly suspended one. Duplicates and filtered records have none (a
            // duplicate's output went with its first rating); a recycled record suspended again
            // was published when it was first suspended.
            if let (Some(o), Some(subscriber)) = (&self.output, subscriber) {
                let (from, id) = match &recycled {
                    Some(row) => (row.source.as_str(), row.id.as_str()),
                    None => (source.as_str(), suspense_id.as_str()),
                };
                if let Some(row) = o.rated(outcome, subscriber.as_str(), from, id, now) {
                    write.outbox.push(row);
                }
            }
            match (recycled, outcome) {
                (None, CdrOutcome::Filtered { .. }) => delta.filtered += 1,
                (Some(mut row), CdrOutcome::Filtered { reason, .. }) => {
                    // A recycled record a filter now drops leaves suspense as filtered.
                    recycled_delta.suspended += 1;
                    recycled_delta.filtered += 1;
                    row.last_tried_at = now;
                    row.attempts += 1;
                    row.state = SuspenseState::Recycled {
                        at: now,
                        by: by.clone(),
                        outcome: smol_str::format_smolstr!("filtered:{reason}"),
                    };
                    write.suspense.push(row);
                }
                (None, CdrOutcome::Rated { .. }) => delta.rated += 1,
                (None, CdrOutcome::Duplicate { .. }) => delta.duplicates += 1,
                (
                    None,
                    CdrOutcome::Suspended {
                        cdr_id,
                        reason,
                        message,
                    },
                ) => {
                    delta.suspended += 1;
                    let (_, subscriber) = identify(&raw);
                    write.suspense.push(SuspenseRecord {
                        id: suspense_id,
                        source: source.clone(),
                        reason: reason.clone(),
                        message: message.clone(),
                        raw,
                        format: format.label(),
                        received_at: now,
                        last_tried_at: now,
                        attempts: 1,
                        cdr_id: (!cdr_id.is_empty()).then(|| cdr_id.clone()),
                        subscriber,
                        state: SuspenseState::Open,
                    });
                    if let (Some(o), Some(row)) = (&self.output, write.suspense.last()) {
                        write.outbox.push(o.suspended(row));
                    }
                }
                (
                    Some(mut row),
                    CdrOutcome::Suspended {
                        reason, message, ..
                    },
                ) => {
                    row.reason = reason.clone();
                    row.message = message.clone();
                    row.last_tried_at = now;
                    row.attempts += 1;
                    write.suspense.push(row);
                }
                (Some(mut row), rated_or_duplicate) => {
                    // Out of suspense: the record now counts as rated (or duplicate) in its
                    // own source's counters.
                    let outcome = if matches!(rated_or_duplicate, CdrOutcome::Rated { .. }) {
                        recycled_delta.rated += 1;
                        "rated"
                    } else {
                        recycled_delta.duplicates += 1;
                        "duplicate"
                    };
                    recycled_delta.suspended += 1;
                    row.last_tried_at = now;
                    row.attempts += 1;
                    row.state = SuspenseState::Recycled {
                        at: now,
                        by: by.clone(),
                        outcome: outcome.into(),
                    };
                    write.suspense.push(row);
                }
            }
        }
        delta.ingested = delta.rated + delta.duplicates + delta.suspended + delta.filtered;
        let mut changes: Vec<(SmolStr, StatsDelta)> = Vec::new();
        let mut change =
            |source: &SmolStr, d: StatsDelta| match changes.iter_mut().find(|(s, _)| s == source) {
                Some((_, c)) => c.add(&d),
                None => changes.push((source.clone(), d)),
            };
        if delta.ingested > 0 {
            change(
                &source,
                StatsDelta {
                    ingested: delta.ingested as i64,
                    rated: delta.rated as i64,
                    suspended: delta.suspended as i64,
                    duplicates: delta.duplicates as i64,
                    filtered: delta.filtered as i64,
                },
            );
        }
        if recycled_delta.suspended > 0 {
            // Recycled rows keep their original source: move their counts there.
            for row in &write.suspense {
                if let SuspenseState::Recycled { at, outcome, .. } = &row.state
                    && *at == now
                {
                    let (rated, filtered) = (outcome == "rated", outcome.starts_with("filtered"));
                    change(
                        &row.source,
                        StatsDelta {
                            suspended: -1,
                            rated: i64::from(rated),
                            filtered: i64::from(filtered),
                            duplicates: i64::from(!rated && !filtered),
                            ..StatsDelta::default()
                        },
                    );
                }
            }
        }
        write.stats = changes;
        write.positions.extend(positions);
        Ok(Prepared {
            write,
            coordinator,
            sends,
            outcomes,
            outside,
        })
    }

    /// The second half of [`Ingestor::ingest`]: commits a prepared batch (or aborts it when
    /// `earlier_durable` is false: a batch of the same source before it did not become durable,
    /// so this one must not either, or its position would pass over the earlier records) and
    /// tells its subscribers.
    pub async fn finish(
        &self,
        prepared: Prepared,
        earlier_durable: bool,
    ) -> Result<Vec<CdrOutcome>, IngestError> {
        let Prepared {
            write,
            coordinator,
            sends,
            outcomes,
            outside,
        } = prepared;
        let outbox_rows = write.outbox.len() as u64;
        let changes = write.stats.clone();
        let result = if earlier_durable {
            self.store.commit_ingest(write).await
        } else {
            Err(StoreError::Io(
                "an earlier batch of the same source is not durable: this one waits for it".into(),
            ))
        };
        coordinator.decide(result.clone());
        let results = join_all(sends).await;
        result?;
        if let Some(o) = &self.output {
            o.pending.fetch_add(outbox_rows, Ordering::SeqCst);
        }
        {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            for (source, d) in &changes {
                let s = stats.entry(source.clone()).or_default();
                s.apply(d);
                self.publish(source, s);
            }
        }
        // Records suspended before reaching an actor are counted here (the actors count theirs).
        self.router
            .shared()
            .metrics
            .cdrs
            .with_label_values(&["suspended"])
            .inc_by(outside);
        // The batch is durable: that is the answer, whatever a participant did afterwards (an
        // actor that failed to take the decision in drops its state and reloads it from the
        // store). Answering an error here would make the source resend a durable batch.
        for r in results {
            match r {
                Ok(Err(e)) => eprintln!("ingest: a participant failed after the commit: {e}"),
                Err(e) => eprintln!("ingest: a participant task failed after the commit: {e}"),
                Ok(Ok(_)) => {}
            }
        }
        Ok(outcomes)
    }
}

impl From<ActorError> for IngestError {
    fn from(e: ActorError) -> IngestError {
        IngestError::Participant(e.to_string())
    }
}
