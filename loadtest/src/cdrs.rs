//! `cdrs`: batches of generated voice CDRs for many postpaid subscribers, posted as fast as the
//! node acknowledges them (closed loop). A 2xx answer means every record in it is durable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::client::{self, Answer, Target};
use crate::generate::{self, Rng};
use crate::limits::{BATCH_LEN_MAX, CONCURRENCY_MAX, DURATION_S_MAX};
use crate::machine::Machine;
use crate::report::{self, LatencySummary, Report, count_error, record_us};
use crate::{LoadError, run_workers};

/// Everything a `cdrs` run needs.
#[derive(Debug, Clone)]
pub struct CdrsPlan {
    /// The node.
    pub target: Target,
    /// Postpaid subscribers; each record picks one at random.
    pub subscribers: Vec<String>,
    /// Records per request.
    pub batch_len: usize,
    /// How long to keep posting.
    pub duration_s: u64,
    /// Worker threads (batches in flight).
    pub concurrency: usize,
    /// Distinguishes the CDR ids of this run from earlier runs.
    pub run_tag: String,
}

/// The counts of a `POST /v1/cdrs` answer (the outcomes are skipped).
#[derive(Debug, Deserialize)]
struct Counts {
    records: u64,
    rated: u64,
    duplicates: u64,
    suspended: u64,
    #[serde(default)]
    outcomes: Vec<OutcomeReason>,
}

/// Only the reason of a suspended outcome is read.
#[derive(Debug, Deserialize)]
struct OutcomeReason {
    #[serde(default)]
    reason: Option<String>,
}

struct Tally {
    batch: Histogram<u64>,
    generate: Histogram<u64>,
    records: u64,
    rated: u64,
    duplicates: u64,
    suspended: u64,
    suspended_reasons: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    response_bytes: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the plan and reports.
pub fn run(plan: &CdrsPlan) -> Result<Report, LoadError> {
    let machine = Machine::now();
    if !(1..=DURATION_S_MAX).contains(&plan.duration_s) {
        return Err(LoadError::Usage(format!(
            "duration {} s is out of range: 1 to {DURATION_S_MAX}",
            plan.duration_s
        )));
    }
    if !(1..=CONCURRENCY_MAX).contains(&plan.concurrency) {
        return Err(LoadError::Usage(format!(
            "concurrency {} is out of range: 1 to {CONCURRENCY_MAX}",
            plan.concurrency
        )));
    }
    if !(1..=BATCH_LEN_MAX).contains(&plan.batch_len) {
        return Err(LoadError::Usage(format!(
            "batch length {} is out of range: 1 to {BATCH_LEN_MAX}",
            plan.batch_len
        )));
    }
    if plan.subscribers.is_empty() {
        return Err(LoadError::Usage("no subscribers to load".into()));
    }
    let mut report = Report::new("cdrs", machine);
    report.parameter("url", plan.target.url(""));
    report.parameter("batch_len", plan.batch_len);
    report.parameter("duration_s", plan.duration_s);
    report.parameter("concurrency", plan.concurrency);
    report.parameter("subscribers", plan.subscribers.len());

    let url = plan.target.url("/v1/cdrs");
    let now_s = jiff::Timestamp::now().as_second();
    let start = Instant::now();
    let until = start + Duration::from_secs(plan.duration_s);
    let tallies = run_workers(plan.concurrency, |worker| {
        let agent = client::agent();
        let mut rng = Rng::new(0xCD2 ^ ((worker as u64 + 1) << 20));
        let mut tally = Tally {
            batch: report::latency_histogram()?,
            generate: report::latency_histogram()?,
            records: 0,
            rated: 0,
            duplicates: 0,
            suspended: 0,
            suspended_reasons: BTreeMap::new(),
            errors: BTreeMap::new(),
            response_bytes: 0,
        };
        let mut batch_number = 0u64;
        while Instant::now() < until {
            let began = Instant::now();
            let prefix = format!("lt-{}-{worker}-{batch_number}", plan.run_tag);
            batch_number += 1;
            let body =
                generate::cdr_batch(&mut rng, &plan.subscribers, plan.batch_len, now_s, &prefix)
                    .map_err(|e| LoadError::Usage(format!("cannot encode a batch: {e}")))?;
            let sent = Instant::now();
            record_us(&mut tally.generate, micros(sent - began));
            let answer = client::post_json(&agent, &url, &body);
            record_us(&mut tally.batch, micros(sent.elapsed()));
            match answer {
                Answer::Success(text) => {
                    tally.response_bytes += text.len() as u64;
                    match serde_json::from_str::<Counts>(&text) {
                        Ok(c) => {
                            tally.records += c.records;
                            tally.rated += c.rated;
                            tally.duplicates += c.duplicates;
                            tally.suspended += c.suspended;
                            if c.suspended > 0 {
                                for reason in c.outcomes.into_iter().filter_map(|o| o.reason) {
                                    count_error(&mut tally.suspended_reasons, reason, 1);
                                }
                            }
                        }
                        Err(e) => {
                            count_error(&mut tally.errors, format!("unreadable answer: {e}"), 1)
                        }
                    }
                }
                Answer::Refused(key) | Answer::Transport(key) => {
                    count_error(&mut tally.errors, format!("batch {key}"), 1)
                }
            }
        }
        Ok(tally)
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    let mut batch = report::latency_histogram()?;
    let mut generate = report::latency_histogram()?;
    let (mut records, mut rated, mut duplicates, mut suspended, mut bytes) = (0, 0, 0, 0, 0);
    let mut reasons = BTreeMap::new();
    for t in tallies {
        batch
            .add(&t.batch)
            .map_err(|e| LoadError::Histogram(e.to_string()))?;
        generate
            .add(&t.generate)
            .map_err(|e| LoadError::Histogram(e.to_string()))?;
        records += t.records;
        rated += t.rated;
        duplicates += t.duplicates;
        suspended += t.suspended;
        bytes += t.response_bytes;
        for (k, v) in t.errors {
            count_error(&mut report.errors, k, v);
        }
        for (k, v) in t.suspended_reasons {
            count_error(&mut reasons, k, v);
        }
    }
    let failed: u64 = report.errors.values().sum();
    report
        .counters
        .insert("batches_ok".into(), batch.len().saturating_sub(failed));
    report.counters.insert("records_durable".into(), records);
    report.counters.insert("rated".into(), rated);
    report.counters.insert("duplicates".into(), duplicates);
    report.counters.insert("suspended".into(), suspended);
    for (reason, n) in reasons {
        report.counters.insert(format!("suspended {reason}"), n);
    }
    report.rates.insert("elapsed_s".into(), elapsed);
    if elapsed > 0.0 {
        report
            .rates
            .insert("cdrs_durable_per_s".into(), records as f64 / elapsed);
        report
            .rates
            .insert("cdrs_rated_per_s".into(), rated as f64 / elapsed);
    }
    if records > 0 {
        report
            .rates
            .insert("answer_bytes_per_cdr".into(), bytes as f64 / records as f64);
    }
    report
        .latencies
        .insert("batch (post to answer)".into(), LatencySummary::of(&batch));
    report.latencies.insert(
        "generate batch (client)".into(),
        LatencySummary::of(&generate),
    );
    report.notes.push(
        "closed loop: each worker posts its next batch when the previous one is answered; the \
         answer comes only after every record in it is durable"
            .into(),
    );
    Ok(report)
}
