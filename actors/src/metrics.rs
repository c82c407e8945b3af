//! Metrics of the actors: every event is counted with bounded labels (never a subscriber id).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// Counters and histograms registered once per node.
#[derive(Clone)]
pub struct ActorMetrics {
    /// `tollgate_ingest_cdrs_total{outcome}`: rated, duplicate, suspended.
    pub cdrs: IntCounterVec,
    /// `tollgate_sessions_requests_total{kind,result}`.
    pub sessions: IntCounterVec,
    /// `tollgate_actors_subscribers_alive`.
    pub alive: IntGauge,
    /// `tollgate_actors_mailbox_messages`: messages sent to subscriber actors and not yet
    /// answered (queued in mailboxes or being handled), over all actors.
    pub mailbox: IntGauge,
    /// `tollgate_ledger_commit_writes`: subscriber writes per durable commit call.
    pub commit_writes: Histogram,
    /// `tollgate_ledger_commit_seconds`: time to make a change durable.
    pub commit_seconds: Histogram,
}

impl ActorMetrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Result<ActorMetrics, prometheus::Error> {
        let cdrs = IntCounterVec::new(
            Opts::new("tollgate_ingest_cdrs_total", "CDRs by outcome"),
            &["outcome"],
        )?;
        let sessions = IntCounterVec::new(
            Opts::new(
                "tollgate_sessions_requests_total",
                "Real-time charging requests by kind and result",
            ),
            &["kind", "result"],
        )?;
        let alive = IntGauge::new(
            "tollgate_actors_subscribers_alive",
            "Subscriber actors alive",
        )?;
        let mailbox = IntGauge::new(
            "tollgate_actors_mailbox_messages",
            "Messages queued in or being handled by subscriber actors",
        )?;
        let commit_writes = Histogram::with_opts(
            HistogramOpts::new(
                "tollgate_ledger_commit_writes",
                "Records made durable per ledger write",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0,
            ]),
        )?;
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "tollgate_ledger_commit_seconds",
                "Latency of durable ledger writes",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16)?),
        )?;
        registry.register(Box::new(cdrs.clone()))?;
        registry.register(Box::new(sessions.clone()))?;
        registry.register(Box::new(alive.clone()))?;
        registry.register(Box::new(mailbox.clone()))?;
        registry.register(Box::new(commit_writes.clone()))?;
        registry.register(Box::new(commit_seconds.clone()))?;
        Ok(ActorMetrics {
            cdrs,
            sessions,
            alive,
            mailbox,
            commit_writes,
            commit_seconds,
        })
    }
}
