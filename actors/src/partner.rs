//! Partner actors: one per partner with records to share, supervised, on the partners' arbiter.
//!
//! A subscriber actor that charges a record a partner shares puts the record into the partner's
//! inbox **in the same durable write as the charge** (a transactional outbox, see
//! [`tollgate_domain::ledger::PartnerInboxRow`]) and, once the write is durable, wakes the
//! partner's actor ([`PartnerWake`]). The actor drains its inbox in chunks: each record is
//! shared under the partner's agreement in force on its start day (in the settlement time
//! zone) and counted once into the position of its month (a record whose item share is stored
//! was counted: that row is the durable dedupe index, the position itself stays small);
//! the positions and the exact share of every counted record are written in one
//! [`PartnerWrite`]; only then are the records removed from the inbox. A crash anywhere
//! leaves the records in the inbox and the next drain counts what was not counted yet: nothing
//! lost, nothing counted twice.
//!
//! A record is left in the inbox (and counted in `tollgate_partner_records_total{outcome}`)
//! when it cannot be shared yet: no agreement of the partner is in force on its day
//! (`unassigned`: an agreement created later picks it up) or the agreement refuses it
//! (`refused`, e.g. another currency). The actor is the only writer of its partner's
//! positions; the settlement worker asks it to drain ([`Drain`]) before it reads a position.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;
use smol_str::SmolStr;
use tollgate_domain::billing::Period;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::ledger::LedgerStore;
use tollgate_domain::partner::store::{PartnerStoreError, StoredShare, position_count};
use tollgate_domain::partner::{
    Accumulated, Agreement, InboxRecord, PartnerStore, PartnerWrite, Position,
};

use crate::messages::ActorError;

/// Inbox rows read and counted per write.
pub const DRAIN_CHUNK: usize = 2_000;
/// Attempts of a chunk whose write meets a conflict (positions changed under the actor).
const CONFLICT_RETRIES: usize = 5;
/// After a drain left records waiting (no agreement for them yet), wakes drain at most this
/// often by default: each drain reads the waiting rows again.
pub const WAITING_DRAIN_INTERVAL: Duration = Duration::from_secs(10);

/// The first day of the month after the one starting on `month`.
fn next_month(month: Date) -> Result<Date, ActorError> {
    month
        .last_of_month()
        .tomorrow()
        .map_err(|e| ActorError::Unavailable(format!("month after {month}: {e}")))
}

/// Told when partners' inboxes have new records.
pub trait PartnerWake: Send + Sync {
    /// `partners` have new records in their inboxes.
    fn wake(&self, partners: &[PartnerId]);
}

/// Partner counters (bounded labels: never a partner id).
#[derive(Clone)]
pub struct PartnerMetrics {
    /// `tollgate_partner_records_total{outcome}`: inbox records counted (of which late),
    /// duplicate, not_shared, unassigned, refused, unreadable.
    pub records: IntCounterVec,
    /// `tollgate_partner_drains_total{result}`: drains done or failed.
    pub drains: IntCounterVec,
}

impl PartnerMetrics {
    /// Creates and registers the counters.
    pub fn new(registry: &Registry) -> Result<PartnerMetrics, prometheus::Error> {
        let records = IntCounterVec::new(
            Opts::new(
                "tollgate_partner_records_total",
                "Partner inbox records by outcome",
            ),
            &["outcome"],
        )?;
        let drains = IntCounterVec::new(
            Opts::new(
                "tollgate_partner_drains_total",
                "Partner inbox drains by result",
            ),
            &["result"],
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(drains.clone()))?;
        Ok(PartnerMetrics { records, drains })
    }
}

/// What every partner actor shares.
pub struct PartnerShared {
    /// Partner state (agreements, positions).
    pub store: Arc<dyn PartnerStore>,
    /// The ledger (the partners' inboxes).
    pub ledger: Arc<dyn LedgerStore>,
    /// Settlement time zone: a record's day, hence its month and agreement version.
    pub timezone: TimeZone,
    /// Counters.
    pub metrics: PartnerMetrics,
    /// After a drain left records waiting, how long wakes wait before the next drain
    /// ([`WAITING_DRAIN_INTERVAL`] by default); explicit drains are never delayed.
    pub waiting_drain_interval: Duration,
}

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// Records counted into positions now.
    pub counted: u64,
    /// Of those, records of a month already settled, counted into the first later month that
    /// is not (settled with it).
    pub late: u64,
    /// Records counted before (redelivered): removed from the inbox, nothing changed.
    pub duplicate: u64,
    /// Records no rule of the agreement shares: removed from the inbox.
    pub not_shared: u64,
    /// Records left in the inbox: no agreement in force on their day.
    pub unassigned: u64,
    /// Records left in the inbox: the agreement refuses them (reason in `problems`).
    pub refused: u64,
    /// Rows left in the inbox that do not decode.
    pub unreadable: u64,
    /// Up to 20 explanations of refused or unreadable records (`cdr id: reason`).
    pub problems: Vec<String>,
}

impl DrainReport {
    fn problem(&mut self, text: String) {
        if self.problems.len() < 20 {
            self.problems.push(text);
        }
    }

    fn add(&mut self, other: DrainReport) {
        self.counted += other.counted;
        self.late += other.late;
        self.duplicate += other.duplicate;
        self.not_shared += other.not_shared;
        self.unassigned += other.unassigned;
        self.refused += other.refused;
        self.unreadable += other.unreadable;
        for p in other.problems {
            self.problem(p);
        }
    }

    /// Records still waiting in the inbox after the drain.
    pub fn waiting(&self) -> u64 {
        self.unassigned + self.refused + self.unreadable
    }
}

/// Drain the inbox now; answers what was done.
#[derive(Debug, Clone, Copy, Default)]
pub struct Drain;

impl Message for Drain {
    type Result = Result<DrainReport, ActorError>;
}

/// New records are in the inbox (sent by [`PartnerWake`]): drain now, or a little later when
/// records are waiting for an agreement (so they are not read again for every batch).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wake;

impl Message for Wake {
    type Result = ();
}

/// The partner's agreements changed: reload them and drain (records waiting for an agreement
/// may be shared now).
#[derive(Debug, Clone, Copy, Default)]
pub struct AgreementsChanged;

impl Message for AgreementsChanged {
    type Result = Result<DrainReport, ActorError>;
}

/// One partner's actor.
pub struct PartnerActor {
    id: PartnerId,
    shared: Arc<PartnerShared>,
    agreements: Option<Vec<Agreement>>,
    /// When the last drain left records waiting.
    waiting_since: Option<Instant>,
    /// A delayed drain is scheduled.
    drain_scheduled: bool,
}

impl PartnerActor {
    /// The actor of partner `id`.
    pub fn new(id: PartnerId, shared: Arc<PartnerShared>) -> PartnerActor {
        PartnerActor {
            id,
            shared,
            agreements: None,
            waiting_since: None,
            drain_scheduled: false,
        }
    }

    fn agreements(&mut self) -> Result<&[Agreement], ActorError> {
        if self.agreements.is_none() {
            self.agreements = Some(self.shared.store.agreements(&self.id)?);
        }
        Ok(self.agreements.as_deref().unwrap_or_default())
    }

    /// Drains the whole inbox, chunk by chunk.
    fn drain(&mut self) -> Result<DrainReport, ActorError> {
        let mut report = DrainReport::default();
        let mut after: Option<SmolStr> = None;
        loop {
            let rows = self
                .shared
                .ledger
                .partner_inbox(&self.id, after.as_deref(), DRAIN_CHUNK)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            let full = rows.len() >= DRAIN_CHUNK;
            report.add(self.drain_chunk(rows)?);
            if !full {
                break;
            }
        }
        let m = &self.shared.metrics.records;
        for (outcome, n) in [
            ("counted", report.counted),
            ("late", report.late),
            ("duplicate", report.duplicate),
            ("not_shared", report.not_shared),
            ("unassigned", report.unassigned),
            ("refused", report.refused),
            ("unreadable", report.unreadable),
        ] {
            if n > 0 {
                m.with_label_values(&[outcome]).inc_by(n);
            }
        }
        Ok(report)
    }

    /// Counts one chunk of inbox rows, retrying from fresh positions on a conflict.
    fn drain_chunk(&mut self, rows: Vec<(SmolStr, Vec<u8>)>) -> Result<DrainReport, ActorError> {
        let mut attempt = 0;
        loop {
            let (report, write, done) = self.plan_chunk(&rows)?;
            if !write.is_empty() {
                match self.shared.store.commit(write) {
                    Ok(()) => {}
                    Err(PartnerStoreError::Conflict(message)) => {
                        attempt += 1;
                        if attempt >= CONFLICT_RETRIES {
                            return Err(ActorError::Unavailable(format!(
                                "partner {} positions keep changing: {message}",
                                self.id
                            )));
                        }
                        continue;
                    }
                    Err(PartnerStoreError::Store(e)) => return Err(ActorError::Store(e)),
                }
            }
            self.shared.ledger.ack_partner_inbox(&self.id, &done)?;
            return Ok(report);
        }
    }

    /// Whether `month` has a statement for this partner (cached for one chunk).
    fn settled(&self, cache: &mut HashMap<Date, bool>, month: Date) -> Result<bool, ActorError> {
        if let Some(s) = cache.get(&month) {
            return Ok(*s);
        }
        let s = !self
            .shared
            .store
            .statements(&self.id, Some(month))?
            .is_empty();
        cache.insert(month, s);
        Ok(s)
    }

    /// What a chunk does: the report, the write, and the inbox keys it settles.
    fn plan_chunk(
        &mut self,
        rows: &[(SmolStr, Vec<u8>)],
    ) -> Result<(DrainReport, PartnerWrite, Vec<SmolStr>), ActorError> {
        let timezone = self.shared.timezone.clone();
        let store = self.shared.store.clone();
        let id = self.id.clone();
        let agreements = self.agreements()?.to_vec();
        let mut report = DrainReport::default();
        let mut done: Vec<SmolStr> = Vec::new();
        // Positions touched by this chunk, with the count read (the write's check).
        let mut positions: BTreeMap<Date, (Position, u64)> = BTreeMap::new();
        let mut items: Vec<StoredShare> = Vec::new();
        let mut settled: HashMap<Date, bool> = HashMap::new();
        for (key, bytes) in rows {
            let inbox: InboxRecord = match serde_json::from_slice(bytes) {
                Ok(r) => r,
                Err(e) => {
                    report.unreadable += 1;
                    report.problem(format!("{key}: unreadable inbox row: {e}"));
                    continue;
                }
            };
            let record = inbox.rated(&timezone);
            let Some(agreement) = agreements.iter().find(|a| a.in_term(record.start)) else {
                report.unassigned += 1;
                continue;
            };
            // A record of a month already settled (its statement issued) is settled with the
            // first later month that is not: it is counted into that month's position.
            let own_month = record.start.first_of_month();
            let mut period_start = own_month;
            let mut visited = vec![own_month];
            while self.settled(&mut settled, period_start)? {
                period_start = next_month(period_start)?;
                visited.push(period_start);
            }
            // The durable dedupe index: a counted item has its share stored (in its own month,
            // or in a later one if it came late).
            let mut seen = false;
            for month in &visited {
                if store
                    .item_share(&id, *month, record.cdr_id.as_str())?
                    .is_some()
                {
                    seen = true;
                    break;
                }
            }
            if seen {
                report.duplicate += 1;
                done.push(key.clone());
                continue;
            }
            let late = period_start != own_month;
            let month_end = next_month(period_start)?;
            // The agreement of the month the record is settled with (for a late record, it
            // may not be the one of its day; none: it waits for one).
            let Some(of_month) = (if late {
                agreements
                    .iter()
                    .find(|a| a.from < month_end && a.to.is_none_or(|to| to > period_start))
            } else {
                Some(agreement)
            }) else {
                report.unassigned += 1;
                continue;
            };
            let position = match positions.get_mut(&period_start) {
                Some((p, _)) => p,
                None => {
                    let stored = store.position(&id, period_start)?;
                    let (position, count) = match stored {
                        Some(p) => {
                            let count = position_count(&p);
                            (p, count)
                        }
                        None => {
                            let period = Period::new(period_start, month_end)
                                .map_err(|e| ActorError::Unavailable(format!("period: {e}")))?;
                            (Position::new(of_month, period), 0)
                        }
                    };
                    &mut positions.entry(period_start).or_insert((position, count)).0
                }
            };
            if position.agreement != agreement.id {
                report.refused += 1;
                report.problem(format!(
                    "{}: the {} position is under agreement {}, the record's day under {}",
                    record.cdr_id, period_start, position.agreement, agreement.id
                ));
                continue;
            }
            let accumulated = if late {
                position.accumulate_late(agreement, &record)
            } else {
                position.accumulate(agreement, &record)
            };
            if late && matches!(accumulated, Ok(Accumulated::Counted(_))) {
                report.late += 1;
            }
            match accumulated {
                Ok(Accumulated::Counted(share)) => {
                    report.counted += 1;
                    items.push(StoredShare {
                        partner: id.clone(),
                        period_start,
                        share,
                    });
                    done.push(key.clone());
                }
                Ok(Accumulated::Duplicate) => {
                    report.duplicate += 1;
                    done.push(key.clone());
                }
                Ok(Accumulated::NotShared) => {
                    report.not_shared += 1;
                    done.push(key.clone());
                }
                Err(e) => {
                    report.refused += 1;
                    report.problem(format!("{}: {} ({})", record.cdr_id, e, e.code()));
                }
            }
        }
        let write = PartnerWrite {
            positions: positions
                .into_values()
                .filter(|(p, count)| position_count(p) != *count)
                .collect(),
            items,
            ..PartnerWrite::default()
        };
        Ok((report, write, done))
    }
}

impl Actor for PartnerActor {
    type Context = Context<Self>;
}

impl Supervised for PartnerActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.agreements = None;
    }
}

impl Handler<Drain> for PartnerActor {
    type Result = Result<DrainReport, ActorError>;

    fn handle(&mut self, _msg: Drain, _ctx: &mut Self::Context) -> Self::Result {
        let result = self.drain();
        let label = if result.is_ok() { "ok" } else { "failed" };
        self.shared.metrics.drains.with_label_values(&[label]).inc();
        self.waiting_since = match &result {
            Ok(report) if report.waiting() > 0 => Some(Instant::now()),
            _ => None,
        };
        result
    }
}

impl Handler<Wake> for PartnerActor {
    type Result = ();

    fn handle(&mut self, _msg: Wake, ctx: &mut Self::Context) {
        let due = self
            .waiting_since
            .map(|at| at + self.shared.waiting_drain_interval)
            .filter(|due| *due > Instant::now());
        match due {
            None => {
                // Failures are counted; the records stay in the inbox for the next drain.
                let _ = self.handle(Drain, ctx);
            }
            Some(due) if !self.drain_scheduled => {
                self.drain_scheduled = true;
                ctx.run_later(due - Instant::now(), |act, ctx| {
                    act.drain_scheduled = false;
                    let _ = act.handle(Drain, ctx);
                });
            }
            Some(_) => {}
        }
    }
}

impl Handler<AgreementsChanged> for PartnerActor {
    type Result = Result<DrainReport, ActorError>;

    fn handle(&mut self, _msg: AgreementsChanged, ctx: &mut Self::Context) -> Self::Result {
        self.agreements = None;
        self.handle(Drain, ctx)
    }
}

/// Finds or starts partner actors, all on one arbiter (their store calls block it, never a
/// subscriber's arbiter).
pub struct PartnerRouter {
    shared: Arc<PartnerShared>,
    arbiter: ArbiterHandle,
    actors: Mutex<HashMap<PartnerId, Addr<PartnerActor>>>,
    /// Whether a partner exists: records of a partner the store does not know (a catalogue
    /// naming a partner not created yet) wait in its inbox without waking anything; creating
    /// the partner's agreement drains them.
    known: Mutex<HashMap<PartnerId, bool>>,
}

impl PartnerRouter {
    /// A router starting actors on `arbiter`.
    pub fn new(shared: Arc<PartnerShared>, arbiter: ArbiterHandle) -> PartnerRouter {
        PartnerRouter {
            shared,
            arbiter,
            actors: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
        }
    }

    fn mark_known(&self, partner: &PartnerId) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(partner.clone(), true);
        }
    }

    fn is_known(&self, partner: &PartnerId) -> bool {
        let Ok(mut known) = self.known.lock() else {
            return true;
        };
        if let Some(k) = known.get(partner) {
            return *k;
        }
        // A read error counts as known: a drain that fails is retried, a skipped wake is not.
        let exists = self
            .shared
            .store
            .partner(partner)
            .map_or(true, |p| p.is_some());
        if known.len() > 100_000 {
            known.clear();
        }
        known.insert(partner.clone(), exists);
        exists
    }

    /// What the actors share.
    pub fn shared(&self) -> &Arc<PartnerShared> {
        &self.shared
    }

    /// The actor of `partner`, started (supervised) if needed.
    pub fn actor(&self, partner: &PartnerId) -> Result<Addr<PartnerActor>, ActorError> {
        let mut actors = self
            .actors
            .lock()
            .map_err(|_| ActorError::Unavailable("partner router lock poisoned".into()))?;
        if let Some(addr) = actors.get(partner).filter(|a| a.connected()) {
            return Ok(addr.clone());
        }
        let shared = self.shared.clone();
        let id = partner.clone();
        let addr =
            Supervisor::start_in_arbiter(&self.arbiter, move |_| PartnerActor::new(id, shared));
        actors.insert(partner.clone(), addr.clone());
        Ok(addr)
    }

    /// Drains `partner`'s inbox now and answers what was done.
    pub async fn drain(&self, partner: &PartnerId) -> Result<DrainReport, ActorError> {
        self.mark_known(partner);
        let addr = self.actor(partner)?;
        addr.send(Drain)
            .await
            .map_err(|e| ActorError::Unavailable(e.to_string()))?
    }

    /// Tells `partner`'s actor that its agreements changed; answers its drain.
    pub async fn agreements_changed(&self, partner: &PartnerId) -> Result<DrainReport, ActorError> {
        let addr = self.actor(partner)?;
        addr.send(AgreementsChanged)
            .await
            .map_err(|e| ActorError::Unavailable(e.to_string()))?
    }
}

impl PartnerWake for PartnerRouter {
    fn wake(&self, partners: &[PartnerId]) {
        for partner in partners {
            if !self.is_known(partner) {
                continue;
            }
            if let Ok(addr) = self.actor(partner) {
                // A full mailbox already holds a wake that will see these records.
                let _ = addr.try_send(Wake);
            }
        }
    }
}
