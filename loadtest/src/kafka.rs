//! `kafka`: the Kafka source's end-to-end rate against the broker's raw consume rate, in one run.
//!
//! 1. Produce `records` voice CDRs keyed by subscriber to the topic (our idempotent producer,
//!    murmur2 partitioning), and time it.
//! 2. Raw consume: read every record of the topic from the beginning with a consumer that does
//!    nothing with them — the ceiling of any consumer on this machine and broker.
//! 3. Start the node (`tollgate run --config ...`, Kafka source enabled on that topic), and poll
//!    `GET /v1/mediation/stats` until every record is ingested (rated and durable, with its
//!    position); the rate counts from the first ingested record to the last.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_adapters::kafka::{produce_all, producer, raw_consume};

use crate::LoadError;
use crate::client::{Target, agent, token};
use crate::generate::{Rng, callee};
use crate::machine::Machine;
use crate::report::Report;

/// What to run.
pub struct KafkaPlan {
    /// Brokers (`127.0.0.1:PORT`).
    pub brokers: String,
    /// Topic the node consumes (create it first, partitions a multiple of the shard count).
    pub topic: String,
    /// Records to produce and consume.
    pub records: u64,
    /// Subscribers the records are for (postpaid, known to the node).
    pub subscribers: Vec<String>,
    /// The node binary.
    pub node_binary: PathBuf,
    /// Its configuration (with `[kafka] enabled = true` and this topic).
    pub node_config: PathBuf,
    /// Its API.
    pub target: Target,
    /// Tag in record ids.
    pub run_tag: String,
}

/// Most records of one run.
pub const RECORDS_MAX: u64 = 20_000_000;

struct NodeGuard(Child);

impl Drop for NodeGuard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn ingested(agent: &ureq::Agent, url: &str, source: &str) -> Option<u64> {
    let body: serde_json::Value = agent
        .get(url)
        .set("Authorization", &format!("Bearer {}", token()))
        .call()
        .ok()?
        .into_json()
        .ok()?;
    body["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == source)
        .and_then(|s| s["ingested"].as_u64())
        .or(Some(0))
}

/// Runs the three phases and reports their rates.
pub fn run(plan: &KafkaPlan) -> Result<Report, LoadError> {
    if !(1..=RECORDS_MAX).contains(&plan.records) {
        return Err(LoadError::Usage(format!(
            "--records must be 1 to {RECORDS_MAX}"
        )));
    }
    if plan.subscribers.is_empty() {
        return Err(LoadError::Usage("no subscribers".into()));
    }
    let mut report = Report::new("kafka", Machine::now());
    report.parameter("records", plan.records);
    report.parameter("topic", &plan.topic);
    report.parameter("subscribers", plan.subscribers.len());

    // 1. Produce.
    let producer = producer(&plan.brokers).map_err(LoadError::Node)?;
    let mut rng = Rng::new(plan.records ^ 0x5eed);
    let now_s = jiff::Timestamp::now().as_second();
    let started = Instant::now();
    let chunk = 20_000u64;
    let mut done = 0u64;
    while done < plan.records {
        let n = chunk.min(plan.records - done);
        let batch: Vec<(String, Vec<u8>)> = (done..done + n)
            .map(|i| {
                let index = usize::try_from(rng.below(plan.subscribers.len() as u64)).unwrap_or(0);
                let subscriber = plan.subscribers.get(index).cloned().unwrap_or_default();
                let offset = i64::try_from(rng.below(3600)).unwrap_or(0);
                let start = jiff::Timestamp::from_second(now_s - 3600 + offset)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                let body = serde_json::json!({
                    "id": format!("{}-{i}", plan.run_tag),
                    "subscriber": subscriber,
                    "service": "voice",
                    "direction": "outbound",
                    "caller": subscriber,
                    "callee": callee(&mut rng),
                    "start": start.to_string(),
                    "units": 1 + rng.below(600),
                });
                (subscriber, body.to_string().into_bytes())
            })
            .collect();
        produce_all(
            &producer,
            &plan.topic,
            batch.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
            Duration::from_secs(120),
        )
        .map_err(LoadError::Node)?;
        done += n;
    }
    let produce_s = started.elapsed().as_secs_f64();
    report
        .rates
        .insert("produce_per_s".into(), plan.records as f64 / produce_s);

    // 2. Raw consume.
    let (read, took) = raw_consume(
        &plan.brokers,
        &plan.topic,
        plan.records,
        Duration::from_secs(600),
    )
    .map_err(LoadError::Node)?;
    let raw_rate = read as f64 / took.as_secs_f64();
    report.rates.insert("raw_consume_per_s".into(), raw_rate);
    report.counters.insert("raw_consumed".into(), read);

    // 3. The node, end to end.
    let node_started = Instant::now();
    let child = Command::new(&plan.node_binary)
        .args(["run", "--config"])
        .arg(&plan.node_config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| LoadError::Node(format!("{}: {e}", plan.node_binary.display())))?;
    let _node = NodeGuard(child);
    let agent = agent();
    let url = plan.target.url("/v1/mediation/stats");
    let source = format!("kafka:{}", plan.topic);
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first: Option<(Instant, u64)> = None;
    let last = loop {
        if Instant::now() > deadline {
            return Err(LoadError::Node(
                "the node did not ingest every record in 30 min".into(),
            ));
        }
        if let Some(n) = ingested(&agent, &url, &source) {
            if n > 0 && first.is_none() {
                first = Some((Instant::now(), n));
            }
            if n >= plan.records {
                break Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (first_at, first_n) = first.unwrap_or((node_started, 0));
    let e2e_s = last.duration_since(first_at).as_secs_f64().max(1e-6);
    let e2e_rate = (plan.records - first_n) as f64 / e2e_s;
    let with_start = plan.records as f64 / last.duration_since(node_started).as_secs_f64();
    report.rates.insert("end_to_end_per_s".into(), e2e_rate);
    report
        .rates
        .insert("end_to_end_incl_start_per_s".into(), with_start);
    report.rates.insert(
        "end_to_end_vs_raw_percent".into(),
        100.0 * e2e_rate / raw_rate,
    );
    report.counters.insert("ingested".into(), plan.records);
    report.notes.push(
        "end_to_end counts rated-and-durable records (charges, suspense, counters and the \
         partition position in one write) from the first ingested record to the last; raw \
         consume reads the same records and does nothing with them"
            .into(),
    );
    Ok(report)
}
