//! The subscriber actor: the only writer of one subscriber's balance.
//!
//! Each handler decides with pure `tollgate-domain` functions on a copy of the account, makes
//! the result durable (a commit the embedded store groups with other subscribers' commits), and
//! only then applies it and answers. Handlers run atomically: the actor takes its next message
//! only when the previous one is durable, so decisions never race on the balance. A restart (a
//! failed commit, or the supervisor) drops the in-memory state; it is reloaded from storage.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_domain::catalogue::Catalogue;
use tollgate_domain::cdr::Cdr;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{
    Account, AccountWrite, Effects, Fence, Grant, LedgerStore, Mode, Refusal, SessionRequest,
    Status, StoreError, Thresholds,
};
use tollgate_domain::money::Money;
use tollgate_domain::rating::{CounterKey, rate};
use tollgate_domain::subscriber::SubscriberProfile;

use crate::metrics::ActorMetrics;

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
    /// The catalogue in force (swapped atomically on publish).
    pub catalogue: RwLock<Arc<Catalogue>>,
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
}

impl Shared {
    fn catalogue(&self) -> Arc<Catalogue> {
        match self.catalogue.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Failures that are not answers (the caller may retry with the same idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    /// Storage failed; nothing was applied.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The subscriber is not provisioned.
    #[error("unknown subscriber {0}")]
    UnknownSubscriber(SubscriberId),
    /// The actor stopped or its mailbox is closed.
    #[error("subscriber actor unavailable: {0}")]
    Unavailable(String),
    /// The actor passivated itself (idle); the router retries on a fresh actor.
    #[error("subscriber actor passivated")]
    Retired,
}

impl ActorError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ActorError::Store(e) => e.code(),
            ActorError::UnknownSubscriber(_) => "subscriber.unknown",
            ActorError::Unavailable(_) | ActorError::Retired => "actor.unavailable",
        }
    }
}

/// The outcome of one CDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum CdrOutcome {
    /// Rated and durably charged.
    Rated {
        /// CDR id.
        cdr_id: SmolStr,
        /// Charge.
        charge: Money,
        /// Readable explanation.
        explanation: String,
    },
    /// Seen before: nothing charged again; the original charge is repeated.
    Duplicate {
        /// CDR id.
        cdr_id: SmolStr,
        /// Charge of the first time.
        charge: Money,
    },
    /// Not rateable: not charged, with a reason code.
    Suspended {
        /// CDR id.
        cdr_id: SmolStr,
        /// Reason code.
        reason: SmolStr,
        /// Message.
        message: String,
    },
}

/// Rate and charge CDRs of this subscriber; one durable write for the whole batch.
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<CdrOutcome>, ActorError>")]
pub struct RateCdrs(pub Vec<Cdr>);

/// A real-time charging request.
#[derive(Message, Clone)]
#[rtype(result = "Result<Result<Grant, Refusal>, ActorError>")]
pub struct Charge(pub SessionRequest);

/// A top-up (idempotent by id).
#[derive(Message, Clone)]
#[rtype(result = "Result<Result<BalanceView, Refusal>, ActorError>")]
pub struct TopUp {
    /// Idempotency key.
    pub id: SmolStr,
    /// Amount.
    pub amount: Money,
}

/// Read the balance.
#[derive(Message, Clone)]
#[rtype(result = "Result<BalanceView, ActorError>")]
pub struct GetBalance;

/// Free units left in an allowance this period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeUnits {
    /// Allowance id.
    pub allowance: SmolStr,
    /// Period.
    pub period: SmolStr,
    /// Units left.
    pub left: u64,
    /// Units per period.
    pub total: u64,
}

/// A subscriber's balances as care agents and network elements see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    /// Subscriber.
    pub subscriber: SubscriberId,
    /// Prepaid or postpaid.
    pub mode: Mode,
    /// Status.
    pub status: Status,
    /// Balance.
    pub balance: Money,
    /// Reserved by open sessions.
    pub reserved: Money,
    /// Available for new reservations.
    pub available: Money,
    /// Open sessions.
    pub open_sessions: usize,
    /// Free units left.
    pub free_units: Vec<FreeUnits>,
    /// Ledger entries so far.
    pub entries: u64,
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
                    let catalogue = self.shared.catalogue();
                    let currency = profile.currency.unwrap_or(catalogue.currency);
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

impl Handler<RateCdrs> for SubscriberActor {
    type Result = Reply<Vec<CdrOutcome>>;

    fn handle(&mut self, msg: RateCdrs, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return ready(Err(ActorError::Retired));
        }
        self.last_active = Instant::now();
        let catalogue = self.shared.catalogue();
        let thresholds = self.shared.settings.thresholds;
        let now = (self.shared.clock)();
        let mut outcomes = Vec::with_capacity(msg.0.len());
        let mut answers: Vec<(SmolStr, Vec<u8>)> = Vec::new();
        let mut usage: Vec<(SmolStr, Vec<u8>)> = Vec::new();
        let mut all = Effects::default();
        let mut batch_keys: HashSet<SmolStr> = HashSet::new();
        let (mut next, profile, first_seq) = match self.load() {
            Ok(l) => (l.account.clone(), l.profile.clone(), l.account.entry_count),
            Err(e) => return ready(Err(e)),
        };
        for cdr in msg.0 {
            let key = smol_str::format_smolstr!("cdr:{}", cdr.id);
            let earlier = if batch_keys.contains(&key) {
                answers
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, a)| a.clone())
            } else {
                match self.answer(&key) {
                    Ok(a) => a,
                    Err(e) => return ready(Err(e)),
                }
            };
            if let Some(stored) = earlier {
                let charge =
                    serde_json::from_slice::<CdrOutcome>(&stored)
                        .ok()
                        .and_then(|o| match o {
                            CdrOutcome::Rated { charge, .. } => Some(charge),
                            _ => None,
                        });
                self.shared
                    .metrics
                    .cdrs
                    .with_label_values(&["duplicate"])
                    .inc();
                outcomes.push(CdrOutcome::Duplicate {
                    cdr_id: SmolStr::new(cdr.id.as_str()),
                    charge: charge.unwrap_or(Money::zero(next.currency)),
                });
                continue;
            }
            let rated = rate(&catalogue, &profile, &cdr, &next.counters)
                .map_err(|e| (SmolStr::new(e.code()), e.to_string()))
                .and_then(|rating| {
                    next.charge(&rating, now)
                        .map(|effects| (rating, effects))
                        .map_err(|r| (SmolStr::new(r.code()), r.to_string()))
                });
            match rated {
                Ok((rating, effects)) => {
                    next.apply(&effects, &thresholds);
                    all.entries.extend(effects.entries);
                    let outcome = CdrOutcome::Rated {
                        cdr_id: SmolStr::new(cdr.id.as_str()),
                        charge: rating.charge,
                        explanation: rating.explanation.to_string(),
                    };
                    if let (Ok(answer), Ok(record)) =
                        (serde_json::to_vec(&outcome), serde_json::to_vec(&rating))
                    {
                        answers.push((key.clone(), answer));
                        usage.push((SmolStr::new(cdr.id.as_str()), record));
                    }
                    batch_keys.insert(key);
                    self.shared.metrics.cdrs.with_label_values(&["rated"]).inc();
                    outcomes.push(outcome);
                }
                Err((reason, message)) => {
                    self.shared
                        .metrics
                        .cdrs
                        .with_label_values(&["suspended"])
                        .inc();
                    outcomes.push(CdrOutcome::Suspended {
                        cdr_id: SmolStr::new(cdr.id.as_str()),
                        reason,
                        message,
                    });
                }
            }
        }
        if answers.is_empty() {
            return ready(Ok(outcomes));
        }
        let mut write = self.write(&next, &all, first_seq);
        write.answers = answers.clone();
        write.usage = usage;
        let fut = self.commit(write);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(
            move |result, act, _ctx| match result {
                Ok(()) => {
                    act.remember(answers);
                    if let Some(state) = act.state.as_mut() {
                        state.account = next;
                    }
                    Ok(outcomes)
                }
                Err(e) => {
                    act.state = None;
                    Err(e)
                }
            },
        )))
    }
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
        let catalogue = self.shared.catalogue();
        let answer = next.session(
            &catalogue,
            &profile,
            &request,
            now,
            settings.reservation_ttl_s,
            settings.grant_units_max,
        );
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
        next.apply(&effects, &thresholds);
        let mut write = self.write(&next, &effects, first_seq);
        write.answers = vec![(key.clone(), b"{}".to_vec())];
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

impl SubscriberActor {
    fn view(&mut self) -> Result<BalanceView, ActorError> {
        let now = (self.shared.clock)();
        let catalogue = self.shared.catalogue();
        let thresholds = self.shared.settings.thresholds;
        let loaded = self.load()?;
        // Lapsed reservations count as released in what we show, even before they are written.
        let mut account = loaded.account.clone();
        let expired = account.expire(now);
        account.apply(&expired, &thresholds);
        let money = |amount: Decimal| Money::new(amount, account.currency);
        let mut free_units = Vec::new();
        for offer in &loaded.profile.products {
            let products: Vec<u32> = match catalogue.offer(offer) {
                Some(tollgate_domain::catalogue::Offer::Product(p)) => vec![p],
                Some(tollgate_domain::catalogue::Offer::Bundle(b)) => catalogue
                    .bundles
                    .get(b as usize)
                    .map(|b| b.products.clone())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            for p in products {
                let Some(product) = catalogue.products.get(p as usize) else {
                    continue;
                };
                for &a in &product.allowances {
                    let Some(allowance) = catalogue.allowances.get(a as usize) else {
                        continue;
                    };
                    let period = allowance.period.key(&catalogue.timezone, now);
                    let used = account
                        .counters
                        .get(&CounterKey {
                            name: allowance.counter.clone(),
                            period: period.clone(),
                        })
                        .units;
                    free_units.push(FreeUnits {
                        allowance: allowance.id.clone(),
                        period,
                        left: allowance.units.saturating_sub(used),
                        total: allowance.units,
                    });
                }
            }
        }
        Ok(BalanceView {
            subscriber: account.subscriber.clone(),
            mode: account.mode,
            status: account.status,
            balance: money(account.balance),
            reserved: money(account.reserved),
            available: money(account.available()),
            open_sessions: account.reservations.len(),
            free_units,
            entries: account.entry_count,
        })
    }
}

impl Handler<GetBalance> for SubscriberActor {
    type Result = Result<BalanceView, ActorError>;

    fn handle(&mut self, _msg: GetBalance, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return Err(ActorError::Retired);
        }
        self.last_active = Instant::now();
        self.view()
    }
}
