//! The subscriber actor: the only writer of one subscriber's balance.
//!
//! Each handler decides with pure `tollgate-domain` functions on a copy of the account, makes
//! the result durable (a commit the embedded store groups with other subscribers' commits), and
//! only then applies it and answers. Handlers run atomically: the actor takes its next message
//! only when the previous one is durable, so decisions never race on the balance. A restart (a
//! failed commit, or the supervisor) drops the in-memory state; it is reloaded from storage.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_domain::catalogue::Timeline;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{
    Account, AccountWrite, Effects, Fence, Grant, LedgerStore, Refusal, SessionRequest, StoreError,
    Thresholds,
};
use tollgate_domain::money::Money;
use tollgate_domain::rating::{Rating, RatingError};
use tollgate_domain::subscriber::SubscriberProfile;

use crate::messages::{ActorError, BalanceView, Charge, TopUp};
use crate::metrics::ActorMetrics;

mod balance;
mod barring;
mod rating;
mod rerate;

/// Limits and policies of subscriber actors.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lifetime of a reservation without a report.
    pub reservation_ttl_s: u64,
    /// Most units granted at once.
    pub grant_units_max: u64,
    /// Suspension and resumption thresholds (prepaid).
    pub thresholds: Thresholds,
    /// An actor without messages for this long stops (it is recreated on demand).
    pub idle_timeout: Duration,
    /// Bounded mailbox: senders wait when it is full (backpressure).
    pub mailbox_capacity: usize,
    /// Answers kept in memory per actor (in front of the durable index) before the cache is cleared.
    pub answer_cache_len_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reservation_ttl_s: 300,
            grant_units_max: 3600,
            thresholds: Thresholds::default(),
            idle_timeout: Duration::from_secs(300),
            mailbox_capacity: 1024,
            answer_cache_len_max: 100_000,
        }
    }
}

/// Where subscriber profiles come from.
pub trait Profiles: Send + Sync + 'static {
    /// The profile of a subscriber, if provisioned.
    fn get(&self, id: &SubscriberId) -> Option<SubscriberProfile>;
}

/// What every subscriber actor of a node shares.
pub struct Shared {
    /// Published catalogue versions (the whole timeline is swapped atomically on publish).
    pub catalogue: RwLock<Arc<Timeline>>,
    /// Profiles.
    pub profiles: Arc<dyn Profiles>,
    /// Durable storage.
    pub store: Arc<dyn LedgerStore>,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: ActorMetrics,
    /// The clock (injectable for tests).
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Who is told that partners' inboxes have new records (the partner actors), once they
    /// run; until then the records wait in the inboxes.
    pub partners: OnceLock<Arc<dyn crate::partner::PartnerWake>>,
}

impl Shared {
    /// A snapshot of the catalogue versions. A handler takes one per message and never holds
    /// the lock while it rates.
    pub fn timeline(&self) -> Arc<Timeline> {
        match self.catalogue.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Tells the partner actors that their inboxes have new records.
    pub fn wake_partners(&self, partners: &[tollgate_domain::ids::PartnerId]) {
        if partners.is_empty() {
            return;
        }
        if let Some(wake) = self.partners.get() {
            wake.wake(partners);
        }
    }

    /// Installs new catalogue versions (on publish); messages being handled keep their snapshot.
    pub fn set_timeline(&self, timeline: Arc<Timeline>) {
        match self.catalogue.write() {
            Ok(mut t) => *t = timeline,
            Err(poisoned) => *poisoned.into_inner() = timeline,
        }
    }
}

/// What a rated CDR's usage record holds: the rating, the catalogue version that priced it,
/// the record itself (for rerating) and, for a rerated charge, the rerate job.
#[derive(Serialize)]
struct UsageRecord<'a> {
    #[serde(flatten)]
    rating: &'a Rating,
    catalogue_version: u64,
    cdr: &'a tollgate_domain::cdr::Cdr,
    #[serde(skip_serializing_if = "Option::is_none")]
    rerate: Option<&'a str>,
}

/// What a rated CDR's stored answer holds: only what a duplicate repeats (the charge and the
/// version that priced it). Answers stored before this carry the whole [`CdrOutcome::Rated`]
/// (with its explanation); both read as [`StoredRated`].
///
/// [`CdrOutcome::Rated`]: crate::messages::CdrOutcome::Rated
#[derive(Serialize)]
struct StoredRatedOut<'a> {
    outcome: &'static str,
    charge: &'a Money,
    catalogue_version: u64,
}

/// The parts of a stored CDR answer a duplicate repeats (older answers have no version).
#[derive(Deserialize)]
struct StoredRated {
    outcome: SmolStr,
    charge: Money,
    #[serde(default)]
    catalogue_version: Option<u64>,
}

struct Loaded {
    account: Account,
    profile: SubscriberProfile,
}

/// Live actors by subscriber: the router's map, which an idle actor leaves before it stops.
pub type Registry = Arc<std::sync::Mutex<HashMap<SubscriberId, Addr<SubscriberActor>>>>;

/// Removes `addr` from the registry, unless the subscriber already has a newer actor there.
pub(crate) fn forget(registry: &Registry, id: &SubscriberId, addr: &Addr<SubscriberActor>) {
    if let Ok(mut actors) = registry.lock()
        && actors.get(id).is_some_and(|a| a == addr)
    {
        actors.remove(id);
    }
}

/// The actor owning one subscriber's balance.
pub struct SubscriberActor {
    id: SubscriberId,
    registry: Registry,
    /// Set when the actor passivates: from then on it answers `Retired` to anything still
    /// reaching it, so it can never write next to its successor.
    retired: bool,
    fence: Fence,
    shared: Arc<Shared>,
    state: Option<Loaded>,
    /// Answers written since the state was loaded: a cache in front of the durable index.
    recent: HashMap<SmolStr, Vec<u8>>,
    last_active: Instant,
}

impl SubscriberActor {
    /// An actor for `id`, writing with `fence`, listed in `registry` while alive.
    pub fn new(
        id: SubscriberId,
        fence: Fence,
        shared: Arc<Shared>,
        registry: Registry,
    ) -> SubscriberActor {
        SubscriberActor {
            id,
            registry,
            retired: false,
            fence,
            shared,
            state: None,
            recent: HashMap::new(),
            last_active: Instant::now(),
        }
    }

    fn load(&mut self) -> Result<&mut Loaded, ActorError> {
        if self.state.is_none() {
            let profile = self
                .shared
                .profiles
                .get(&self.id)
                .ok_or_else(|| ActorError::UnknownSubscriber(self.id.clone()))?;
            let account = match self.shared.store.load_account(&self.id)? {
                Some(account) => account,
                None => {
                    let now = (self.shared.clock)();
                    let currency = match profile.currency {
                        Some(c) => c,
                        None => self
                            .shared
                            .timeline()
                            .in_force_or_first(now)
                            .map(|(_, catalogue)| catalogue.currency)
                            .ok_or_else(|| {
                                ActorError::Unavailable("no catalogue version is published".into())
                            })?,
                    };
                    Account::new(self.id.clone(), currency, profile.mode)
                }
            };
            self.state = Some(Loaded { account, profile });
        }
        self.state
            .as_mut()
            .ok_or_else(|| ActorError::Unavailable("state not loaded".into()))
    }

    /// The stored answer for an idempotency key: in-memory cache first, then the durable index.
    fn answer(&self, key: &str) -> Result<Option<Vec<u8>>, ActorError> {
        if let Some(answer) = self.recent.get(key) {
            return Ok(Some(answer.clone()));
        }
        Ok(self.shared.store.answer(&self.id, key)?)
    }

    fn remember(&mut self, answers: impl IntoIterator<Item = (SmolStr, Vec<u8>)>) {
        if self.recent.len() > self.shared.settings.answer_cache_len_max {
            self.recent.clear();
        }
        self.recent.extend(answers);
    }

    fn write(&self, next: &Account, effects: &Effects, first_seq: u64) -> AccountWrite {
        AccountWrite {
            fence: self.fence,
            account: next.clone(),
            entries: effects.entries.clone(),
            first_seq,
            answers: Vec::new(),
            at: (self.shared.clock)(),
            usage: Vec::new(),
            audit: Vec::new(),
            partner_inbox: Vec::new(),
        }
    }

    fn commit(
        &self,
        write: AccountWrite,
    ) -> impl Future<Output = Result<(), ActorError>> + 'static {
        let store = self.shared.store.clone();
        let metrics = self.shared.metrics.clone();
        async move {
            let started = Instant::now();
            let writes = write.entries.len().max(1) as f64;
            // The store's writer thread makes it durable; the actor only awaits completion.
            let result = store.commit_async(vec![write]).await;
            metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            metrics.commit_writes.observe(writes);
            result.map_err(ActorError::from)
        }
    }

    /// Effects of reservations that lapsed by `now`, applied to `account` (not yet durable).
    fn expire_into(
        account: &mut Account,
        thresholds: &Thresholds,
        now: Timestamp,
        all: &mut Effects,
    ) {
        let expired = account.expire(now);
        if !expired.entries.is_empty() {
            account.apply(&expired, thresholds);
            all.entries.extend(expired.entries);
            all.remove.extend(expired.remove);
        }
    }
}

impl Actor for SubscriberActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.shared.metrics.alive.inc();
        let idle = self.shared.settings.idle_timeout;
        ctx.run_interval(
            idle.min(Duration::from_secs(30))
                .max(Duration::from_millis(50)),
            move |act, ctx| {
                if act.retired || act.last_active.elapsed() >= idle {
                    // Leave the registry first (new messages go to a fresh actor), then stop;
                    // the supervisor restarts us only while someone still holds our address,
                    // and a retired actor refuses everything, so it never writes next to its
                    // successor.
                    act.retired = true;
                    forget(&act.registry, &act.id, &ctx.address());
                    act.state = None;
                    ctx.stop();
                }
            },
        );
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.shared.metrics.alive.dec();
    }
}

impl Supervised for SubscriberActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // Whatever was in memory may be ahead of or behind storage: reload on the next message.
        self.state = None;
        self.recent.clear();
    }
}

type Reply<T> = AtomicResponse<SubscriberActor, Result<T, ActorError>>;

fn ready<T: 'static>(value: Result<T, ActorError>) -> Reply<T> {
    AtomicResponse::new(Box::pin(actix::fut::ready(value)))
}

impl Handler<Charge> for SubscriberActor {
    type Result = Reply<Result<Grant, Refusal>>;

    fn handle(&mut self, msg: Charge, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return ready(Err(ActorError::Retired));
        }
        self.last_active = Instant::now();
        let request = msg.0;
        let key = request.key();
        let kind = match &request {
            SessionRequest::Initial { .. } => "initial",
            SessionRequest::Update { .. } => "update",
            SessionRequest::Terminate { .. } => "terminate",
            SessionRequest::Event { .. } => "event",
        };
        let (mut next, profile) = match self.load() {
            Ok(l) => (l.account.clone(), l.profile.clone()),
            Err(e) => return ready(Err(e)),
        };
        match self.answer(&key) {
            Ok(Some(stored)) => {
                return match serde_json::from_slice::<Result<Grant, Refusal>>(&stored) {
                    Ok(answer) => {
                        self.shared
                            .metrics
                            .sessions
                            .with_label_values(&[kind, "replay"])
                            .inc();
                        ready(Ok(answer))
                    }
                    Err(e) => ready(Err(ActorError::Store(StoreError::Corrupt(e.to_string())))),
                };
            }
            Ok(None) => {}
            Err(e) => return ready(Err(e)),
        }
        let settings = &self.shared.settings;
        let thresholds = settings.thresholds;
        let now = (self.shared.clock)();
        let first_seq = next.entry_count;
        let mut all = Effects::default();
        Self::expire_into(&mut next, &thresholds, now, &mut all);
        // A session is priced by the version in force when its usage started (the same for all
        // its reports), an event by the one in force at its time.
        let timeline = self.shared.timeline();
        let at = usage_start(&next, &request).unwrap_or(now);
        let answer = match timeline.at(at) {
            Some((_, catalogue)) => next.session(
                catalogue,
                &profile,
                &request,
                now,
                settings.reservation_ttl_s,
                settings.grant_units_max,
            ),
            None => {
                let e = RatingError::NoCatalogueVersion(at);
                Err(Refusal::Rating {
                    reason: SmolStr::new(e.code()),
                    message: e.to_string(),
                })
            }
        };
        if let Ok((effects, _)) = &answer {
            next.apply(effects, &thresholds);
            all.entries.extend(effects.entries.iter().cloned());
        }
        let answer = answer.map(|(_, grant)| grant);
        let result = if answer.is_ok() { "granted" } else { "refused" };
        self.shared
            .metrics
            .sessions
            .with_label_values(&[kind, result])
            .inc();
        let stored = match serde_json::to_vec(&answer) {
            Ok(s) => s,
            Err(e) => return ready(Err(ActorError::Store(StoreError::Corrupt(e.to_string())))),
        };
        let mut write = self.write(&next, &all, first_seq);
        write.answers = vec![(key.clone(), stored.clone())];
        let fut = self.commit(write);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(
            move |result, act, _ctx| match result {
                Ok(()) => {
                    act.remember([(key, stored)]);
                    if let Some(state) = act.state.as_mut() {
                        state.account = next;
                    }
                    Ok(answer)
                }
                Err(e) => {
                    act.state = None;
                    Err(e)
                }
            },
        )))
    }
}

impl Handler<TopUp> for SubscriberActor {
    type Result = Reply<Result<BalanceView, Refusal>>;

    fn handle(&mut self, msg: TopUp, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return ready(Err(ActorError::Retired));
        }
        self.last_active = Instant::now();
        let key = smol_str::format_smolstr!("topup:{}", msg.id);
        let mut next = match self.load() {
            Ok(l) => l.account.clone(),
            Err(e) => return ready(Err(e)),
        };
        let replay = match self.answer(&key) {
            Ok(a) => a.is_some(),
            Err(e) => return ready(Err(e)),
        };
        if replay {
            // Same answer as the first time: the top-up is applied once; the view is current.
            return ready(self.view().map(Ok));
        }
        let thresholds = self.shared.settings.thresholds;
        let now = (self.shared.clock)();
        let first_seq = next.entry_count;
        let effects = match next.top_up(&msg.id, msg.amount, now) {
            Ok(e) => e,
            Err(refusal) => return ready(Ok(Err(refusal))),
        };
        let before = balance_summary(&next);
        next.apply(&effects, &thresholds);
        let mut write = self.write(&next, &effects, first_seq);
        write.answers = vec![(key.clone(), b"{}".to_vec())];
        if let Some(mut record) = msg.audit {
            record.before = Some(before);
            record.after = Some(balance_summary(&next));
            write.audit.push(record);
        }
        let fut = self.commit(write);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(
            move |result, act, _ctx| match result {
                Ok(()) => {
                    act.remember([(key, b"{}".to_vec())]);
                    if let Some(state) = act.state.as_mut() {
                        state.account = next;
                    }
                    act.view().map(Ok)
                }
                Err(e) => {
                    act.state = None;
                    Err(e)
                }
            },
        )))
    }
}

/// What an audit record keeps of an account: balance, reserved amount, status.
fn balance_summary(account: &Account) -> serde_json::Value {
    serde_json::json!({
        "balance": account.balance.to_string(),
        "reserved": account.reserved.to_string(),
        "currency": account.currency,
        "status": account.status,
        "entry_count": account.entry_count,
    })
}

/// When the usage a request prices started: given, or (reports) the open session's start.
fn usage_start(account: &Account, request: &SessionRequest) -> Option<Timestamp> {
    match request {
        SessionRequest::Initial { usage, .. } | SessionRequest::Event { usage, .. } => usage.start,
        SessionRequest::Update { session, .. } | SessionRequest::Terminate { session, .. } => {
            account
                .reservations
                .get(session)
                .and_then(|r| r.usage.start)
        }
    }
}
