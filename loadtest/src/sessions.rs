//! `sessions`: reserve requests (each a new session, optionally terminated) at a fixed
//! open-loop rate, latency measured from each request's intended start.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{self, Answer, Target};
use crate::generate::{self, Rng};
use crate::limits::{CONCURRENCY_MAX, DRAIN_S};
use crate::machine::Machine;
use crate::report::{self, LatencySummary, Report, count_error, record_us};
use crate::schedule::Schedule;
use crate::{LoadError, run_workers};

/// A request that starts later than this after its intended time counts as sent late: the
/// generator (or the node, through full workers) fell behind the schedule.
const LATE_US: u64 = 1000;

/// Everything a `sessions` run needs.
#[derive(Debug, Clone)]
pub struct SessionsPlan {
    /// The node.
    pub target: Target,
    /// Prepaid subscribers, used round-robin so consecutive sessions land on different actors.
    pub subscribers: Vec<String>,
    /// Reservations per second.
    pub rate_per_s: u64,
    /// Length of the schedule.
    pub duration_s: u64,
    /// Worker threads (requests in flight at most).
    pub concurrency: usize,
    /// Units asked for by each reservation.
    pub requested_units: u64,
    /// Terminate each granted session (half the requested units used) right after its grant.
    pub terminate: bool,
    /// Top up every subscriber first, idempotently: `(key, amount, currency)`.
    pub top_up: Option<(String, String, String)>,
    /// Distinguishes the session ids of this run from earlier runs.
    pub run_tag: String,
}

/// Totals of one worker.
struct Tally {
    reserve: Histogram<u64>,
    reserve_service: Histogram<u64>,
    terminate: Histogram<u64>,
    granted: u64,
    refused: u64,
    late: u64,
    abandoned: u64,
    terminated: u64,
    errors: BTreeMap<String, u64>,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Result<Tally, LoadError> {
        Ok(Tally {
            reserve: report::latency_histogram()?,
            reserve_service: report::latency_histogram()?,
            terminate: report::latency_histogram()?,
            granted: 0,
            refused: 0,
            late: 0,
            abandoned: 0,
            terminated: 0,
            errors: BTreeMap::new(),
            last_done: None,
        })
    }

    fn merge(&mut self, other: Tally) -> Result<(), LoadError> {
        let add = |a: &mut Histogram<u64>, b: &Histogram<u64>| {
            a.add(b).map_err(|e| LoadError::Histogram(e.to_string()))
        };
        add(&mut self.reserve, &other.reserve)?;
        add(&mut self.reserve_service, &other.reserve_service)?;
        add(&mut self.terminate, &other.terminate)?;
        self.granted += other.granted;
        self.refused += other.refused;
        self.late += other.late;
        self.abandoned += other.abandoned;
        self.terminated += other.terminated;
        for (k, v) in other.errors {
            count_error(&mut self.errors, k, v);
        }
        self.last_done = self.last_done.max(other.last_done);
        Ok(())
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Tops up every subscriber with an idempotent id; returns (succeeded, errors, elapsed).
fn top_up_all(
    plan: &SessionsPlan,
    key: &str,
    amount: &str,
    currency: &str,
) -> Result<(u64, BTreeMap<String, u64>, Duration), LoadError> {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let workers = plan.concurrency.min(32);
    let results = run_workers(workers, |_| {
        let agent = client::agent();
        let mut ok = 0u64;
        let mut errors = BTreeMap::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(subscriber) = usize::try_from(i)
                .ok()
                .and_then(|i| plan.subscribers.get(i))
            else {
                break;
            };
            let url = plan
                .target
                .url(&format!("/v1/accounts/{subscriber}/top-ups"));
            let body = generate::top_up_body(&format!("{key}-{subscriber}"), amount, currency);
            match client::post_json(&agent, &url, &body) {
                Answer::Success(_) => ok += 1,
                Answer::Refused(k) | Answer::Transport(k) => {
                    count_error(&mut errors, format!("top-up {k}"), 1)
                }
            }
        }
        Ok((ok, errors))
    })?;
    let mut ok = 0;
    let mut errors = BTreeMap::new();
    for (n, e) in results {
        ok += n;
        for (k, v) in e {
            count_error(&mut errors, k, v);
        }
    }
    Ok((ok, errors, started.elapsed()))
}

/// Runs the plan and reports.
pub fn run(plan: &SessionsPlan) -> Result<Report, LoadError> {
    let machine = Machine::now();
    let schedule = Schedule::new(plan.rate_per_s, plan.duration_s)?;
    if !(1..=CONCURRENCY_MAX).contains(&plan.concurrency) {
        return Err(LoadError::Usage(format!(
            "concurrency {} is out of range: 1 to {CONCURRENCY_MAX}",
            plan.concurrency
        )));
    }
    if plan.subscribers.is_empty() {
        return Err(LoadError::Usage("no subscribers to load".into()));
    }
    let mut report = Report::new("sessions", machine);
    report.parameter("url", plan.target.url(""));
    report.parameter("rate_per_s", plan.rate_per_s);
    report.parameter("duration_s", plan.duration_s);
    report.parameter("concurrency", plan.concurrency);
    report.parameter("subscribers", plan.subscribers.len());
    report.parameter("requested_units", plan.requested_units);
    report.parameter("terminate", plan.terminate);

    if let Some((key, amount, currency)) = &plan.top_up {
        let (ok, errors, took) = top_up_all(plan, key, amount, currency)?;
        report.counters.insert("top_ups_ok".into(), ok);
        report
            .rates
            .insert("top_up_seconds".into(), took.as_secs_f64());
        let failed: u64 = errors.values().sum();
        for (k, v) in errors {
            count_error(&mut report.errors, k, v);
        }
        if ok == 0 {
            return Err(LoadError::Node(format!(
                "all {failed} top-ups failed; is the node up at {} with these subscribers?",
                plan.target.url("")
            )));
        }
    }

    let next = AtomicU64::new(0);
    // A short lead so every worker is parked before the first request is due.
    let start = Instant::now() + Duration::from_millis(20);
    let deadline = start + schedule.span() + Duration::from_secs(DRAIN_S);
    let tallies = run_workers(plan.concurrency, |worker| {
        let agent = client::agent();
        let mut tally = Tally::new()?;
        let mut rng = Rng::new(0x5EED ^ (worker as u64 + 1));
        let reserve_units = plan.requested_units;
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= schedule.count() {
                break;
            }
            let intended = start + schedule.offset(index);
            let now = Instant::now();
            if now >= deadline {
                tally.abandoned += 1;
                continue;
            }
            if intended > now {
                std::thread::sleep(intended - now);
            }
            let sent = Instant::now();
            if sent.saturating_duration_since(intended) > Duration::from_micros(LATE_US) {
                tally.late += 1;
            }
            let n = usize::try_from(index % plan.subscribers.len() as u64).unwrap_or(0);
            let Some(subscriber) = plan.subscribers.get(n) else {
                break;
            };
            let session = format!("lt-{}-{index}", plan.run_tag);
            let body = generate::reserve_body(
                subscriber,
                &format!("{session}-r"),
                &generate::callee(&mut rng),
                reserve_units,
            );
            let answer = client::post_json(
                &agent,
                &plan.target.url(&format!("/v1/sessions/{session}/reserve")),
                &body,
            );
            let done = Instant::now();
            record_us(&mut tally.reserve, micros(done - intended));
            record_us(&mut tally.reserve_service, micros(done - sent));
            tally.last_done = Some(done);
            match answer {
                Answer::Success(_) => tally.granted += 1,
                Answer::Refused(key) => {
                    tally.refused += 1;
                    count_error(&mut tally.errors, format!("reserve {key}"), 1);
                    continue;
                }
                Answer::Transport(key) => {
                    count_error(&mut tally.errors, format!("reserve {key}"), 1);
                    continue;
                }
            }
            if plan.terminate {
                let body = generate::terminate_body(
                    subscriber,
                    &format!("{session}-t"),
                    reserve_units / 2,
                );
                let began = Instant::now();
                let answer = client::post_json(
                    &agent,
                    &plan
                        .target
                        .url(&format!("/v1/sessions/{session}/terminate")),
                    &body,
                );
                let done = Instant::now();
                record_us(&mut tally.terminate, micros(done - began));
                tally.last_done = Some(done);
                match answer {
                    Answer::Success(_) => tally.terminated += 1,
                    Answer::Refused(key) | Answer::Transport(key) => {
                        count_error(&mut tally.errors, format!("terminate {key}"), 1)
                    }
                }
            }
        }
        Ok(tally)
    })?;
    let mut total = Tally::new()?;
    for t in tallies {
        total.merge(t)?;
    }
    let elapsed = total
        .last_done
        .map_or(Duration::ZERO, |d| d.saturating_duration_since(start));
    let answered = total.reserve.len();
    report.counters.insert("scheduled".into(), schedule.count());
    report.counters.insert("answered".into(), answered);
    report.counters.insert("granted".into(), total.granted);
    report.counters.insert("refused".into(), total.refused);
    report
        .counters
        .insert("sent_late_over_1ms".into(), total.late);
    report
        .counters
        .insert("abandoned_after_drain".into(), total.abandoned);
    if plan.terminate {
        report
            .counters
            .insert("terminated".into(), total.terminated);
    }
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        report
            .rates
            .insert("answered_per_s".into(), answered as f64 / seconds);
        report
            .rates
            .insert("granted_per_s".into(), total.granted as f64 / seconds);
    }
    report.rates.insert("elapsed_s".into(), seconds);
    report.latencies.insert(
        "reserve (from intended)".into(),
        LatencySummary::of(&total.reserve),
    );
    report.latencies.insert(
        "reserve (service time)".into(),
        LatencySummary::of(&total.reserve_service),
    );
    if plan.terminate {
        report.latencies.insert(
            "terminate (service)".into(),
            LatencySummary::of(&total.terminate),
        );
    }
    for (k, v) in total.errors {
        count_error(&mut report.errors, k, v);
    }
    report.notes.push(
        "latency from intended start includes waiting for a free worker: it is what a network \
         element sending at this rate would see; service time is from the actual send"
            .into(),
    );
    if total.late > schedule.count() / 100 {
        report.notes.push(format!(
            "{} requests started over 1 ms late: the schedule was not kept (node saturated or \
             too few workers); the latency from intended start shows the queueing",
            total.late
        ));
    }
    Ok(report)
}
