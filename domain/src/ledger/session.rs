//! Real-time charging sessions (the semantics of Diameter Gy, RFC 4006): an initial request
//! reserves money for granted units, updates report used units and ask for more, a terminate
//! reports the final usage, and an event charges one-shot usage (an SMS) at once.
//!
//! Used units are cumulative within a session: the session's charge is always the price of its
//! total usage so far (so 60/60 increments round the whole call, not each report), and each report
//! is charged the growth of that price.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::{Account, Effects, Entry, EntryKind, Mode, Refusal, Reservation, Status};
use crate::attrs::Attributes;
use crate::catalogue::Catalogue;
use crate::cdr::{Cdr, Direction};
use crate::ids::CdrId;
use crate::money::Money;
use crate::number::Number;
use crate::rating::{CounterUpdate, Rating, rate};
use crate::subscriber::SubscriberProfile;

/// What a session or event uses: everything of a CDR but its id and units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSpec {
    /// Service id.
    pub service: SmolStr,
    /// Direction.
    #[serde(default = "outbound")]
    pub direction: Direction,
    /// Calling number, E.164.
    #[serde(default)]
    pub caller: Option<Number>,
    /// Called number, E.164.
    #[serde(default)]
    pub callee: Option<Number>,
    /// Trunk.
    #[serde(default)]
    pub trunk: Option<SmolStr>,
    /// Attributes.
    #[serde(default)]
    pub attributes: Attributes,
    /// Start of the usage (set by the node to the request time when absent).
    #[serde(default)]
    pub start: Option<Timestamp>,
}

fn outbound() -> Direction {
    Direction::Outbound
}

/// A real-time charging request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SessionRequest {
    /// Start a session: reserve for `requested_units`.
    Initial {
        /// Session id.
        session: SmolStr,
        /// Request id (idempotency).
        request: SmolStr,
        /// What is used.
        usage: UsageSpec,
        /// Units asked for.
        requested_units: u64,
    },
    /// Report units used since the last report and ask for more.
    Update {
        /// Session id.
        session: SmolStr,
        /// Request id.
        request: SmolStr,
        /// Units used since the last report.
        used_units: u64,
        /// Units asked for next.
        requested_units: u64,
    },
    /// Report the final units and close the session.
    Terminate {
        /// Session id.
        session: SmolStr,
        /// Request id.
        request: SmolStr,
        /// Units used since the last report.
        used_units: u64,
    },
    /// Charge one-shot usage at once.
    Event {
        /// Request id.
        request: SmolStr,
        /// What is used.
        usage: UsageSpec,
        /// Units (1 for an SMS).
        units: u64,
    },
}

impl SessionRequest {
    /// The idempotency key of the request.
    pub fn key(&self) -> SmolStr {
        match self {
            SessionRequest::Initial {
                session, request, ..
            }
            | SessionRequest::Update {
                session, request, ..
            }
            | SessionRequest::Terminate {
                session, request, ..
            } => {
                smol_str::format_smolstr!("session:{session}:{request}")
            }
            SessionRequest::Event { request, .. } => smol_str::format_smolstr!("event:{request}"),
        }
    }
}

/// The answer to a session request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Session id (empty for events).
    pub session: SmolStr,
    /// Units granted from now on (0 after terminate and for events).
    pub granted_units: u64,
    /// Money reserved for them.
    pub reserved: Money,
    /// Charged by this request.
    pub charged: Money,
    /// Charged for the whole session so far.
    pub session_charged: Money,
    /// Money still available after this request (prepaid).
    pub available: Money,
    /// When the grant lapses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

struct Pricer<'a> {
    catalogue: &'a Catalogue,
    profile: &'a SubscriberProfile,
    account: &'a Account,
    usage: &'a UsageSpec,
    start: Timestamp,
    key: SmolStr,
}

impl Pricer<'_> {
    fn rating(&self, units: u64) -> Result<Rating, Refusal> {
        let u = self.usage;
        let cdr = Cdr {
            id: CdrId(self.key.clone()),
            subscriber: self.account.subscriber.clone(),
            service: u.service.clone(),
            direction: u.direction,
            caller: u.caller,
            callee: u.callee,
            start: self.start,
            units: Some(units),
            trunk: u.trunk.clone(),
            legs: Vec::new(),
            attributes: u.attributes.clone(),
        };
        let rating =
            rate(self.catalogue, self.profile, &cdr, &self.account.counters).map_err(|e| {
                Refusal::Rating {
                    reason: SmolStr::new(e.code()),
                    message: e.to_string(),
                }
            })?;
        if rating.charge.currency != self.account.currency {
            return Err(Refusal::CurrencyMismatch {
                given: rating.charge.currency,
                account: self.account.currency,
            });
        }
        Ok(rating)
    }

    fn price(&self, units: u64) -> Result<Decimal, Refusal> {
        if units == 0 {
            return Ok(Decimal::ZERO);
        }
        Ok(self.rating(units)?.charge.amount)
    }

    /// The most units in `0..=wanted` on top of `used` whose extra cost fits `budget`
    /// (everything for postpaid). Price is non-decreasing in units, so a binary search works.
    fn affordable(
        &self,
        used: u64,
        wanted: u64,
        budget: Option<Decimal>,
    ) -> Result<(u64, Decimal), Refusal> {
        let base = self.price(used)?;
        let extra =
            |units: u64| -> Result<Decimal, Refusal> { Ok(self.price(used + units)? - base) };
        let full = extra(wanted)?;
        let Some(budget) = budget else {
            return Ok((wanted, full));
        };
        if full <= budget {
            return Ok((wanted, full));
        }
        let (mut lo, mut hi) = (0u64, wanted);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if extra(mid)? <= budget {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        Ok((lo, extra(lo)?))
    }
}

fn entry(
    key: &SmolStr,
    suffix: &str,
    at: Timestamp,
    kind: EntryKind,
    amount: Decimal,
    reserved: Decimal,
    reference: &SmolStr,
) -> Entry {
    Entry {
        key: smol_str::format_smolstr!("{key}:{suffix}"),
        at,
        kind,
        amount,
        reserved,
        reference: reference.clone(),
    }
}

impl Account {
    /// Decides a real-time request. `ttl_s` is the reservation lifetime, `grant_max` the most
    /// units granted at once.
    ///
    /// A barred account (collections, see [`Account::barring`]) is refused initial and event
    /// requests with [`Refusal::Barred`], prepaid or postpaid. Sessions already open when the
    /// barring came are answered as before but get no more units: an update charges the units
    /// used and grants nothing (the network then ends the session), and a terminate charges the
    /// final usage as usual.
    pub fn session(
        &self,
        catalogue: &Catalogue,
        profile: &SubscriberProfile,
        request: &SessionRequest,
        now: Timestamp,
        ttl_s: u64,
        grant_max: u64,
    ) -> Result<(Effects, Grant), Refusal> {
        let key = request.key();
        let money = |amount: Decimal| Money::new(amount, self.currency);
        let expires =
            Timestamp::from_second(now.as_second().saturating_add(ttl_s as i64)).unwrap_or(now);
        let prepaid = self.mode == Mode::Prepaid;
        let budget =
            |extra_available: Decimal| prepaid.then_some(self.available() + extra_available);
        match request {
            SessionRequest::Initial {
                session,
                usage,
                requested_units,
                ..
            } => {
                if self.reservations.contains_key(session) {
                    return Err(Refusal::SessionExists(session.clone()));
                }
                self.check_not_barred()?;
                if prepaid && self.status == Status::Suspended {
                    return Err(Refusal::Suspended);
                }
                if *requested_units == 0 {
                    return Err(Refusal::InvalidAmount(
                        "requested units must be above zero".into(),
                    ));
                }
                let start = usage.start.unwrap_or(now);
                let pricer = Pricer {
                    catalogue,
                    profile,
                    account: self,
                    usage,
                    start,
                    key: key.clone(),
                };
                let (granted, amount) = pricer.affordable(
                    0,
                    (*requested_units).min(grant_max),
                    budget(Decimal::ZERO),
                )?;
                if granted == 0 {
                    return Err(Refusal::Insufficient(format!(
                        "available {} {} does not cover the first charging interval",
                        self.available(),
                        self.currency
                    )));
                }
                let mut usage = usage.clone();
                usage.start = Some(start);
                let reservation = Reservation {
                    session: session.clone(),
                    usage,
                    used_units: 0,
                    charged: Decimal::ZERO,
                    granted_units: granted,
                    amount,
                    expires_at: expires,
                };
                let effects = Effects {
                    entries: vec![entry(
                        &key,
                        "reserve",
                        now,
                        EntryKind::Reserve,
                        Decimal::ZERO,
                        amount,
                        session,
                    )],
                    upsert: vec![reservation],
                    ..Effects::default()
                };
                let grant = Grant {
                    session: session.clone(),
                    granted_units: granted,
                    reserved: money(amount),
                    charged: money(Decimal::ZERO),
                    session_charged: money(Decimal::ZERO),
                    available: money(self.available() - amount),
                    expires_at: Some(expires),
                };
                Ok((effects, grant))
            }
            SessionRequest::Update {
                session,
                used_units,
                requested_units,
                ..
            } => self.report(
                catalogue,
                profile,
                &key,
                session,
                *used_units,
                Some(*requested_units),
                now,
                expires,
                grant_max,
            ),
            SessionRequest::Terminate {
                session,
                used_units,
                ..
            } => self.report(
                catalogue,
                profile,
                &key,
                session,
                *used_units,
                None,
                now,
                expires,
                grant_max,
            ),
            SessionRequest::Event {
                request,
                usage,
                units,
            } => {
                self.check_not_barred()?;
                if prepaid && self.status == Status::Suspended {
                    return Err(Refusal::Suspended);
                }
                if *units == 0 {
                    return Err(Refusal::InvalidAmount("units must be above zero".into()));
                }
                let start = usage.start.unwrap_or(now);
                let pricer = Pricer {
                    catalogue,
                    profile,
                    account: self,
                    usage,
                    start,
                    key: key.clone(),
                };
                let rating = pricer.rating(*units)?;
                let cost = rating.charge.amount;
                if prepaid && cost > self.available() {
                    return Err(Refusal::Insufficient(format!(
                        "the event costs {cost} {}, available {}",
                        self.currency,
                        self.available()
                    )));
                }
                let effects = Effects {
                    entries: vec![entry(
                        &key,
                        "charge",
                        now,
                        EntryKind::Charge,
                        -cost,
                        Decimal::ZERO,
                        request,
                    )],
                    counters: rating.counter_updates.to_vec(),
                    ..Effects::default()
                };
                let grant = Grant {
                    session: SmolStr::default(),
                    granted_units: 0,
                    reserved: money(Decimal::ZERO),
                    charged: money(cost),
                    session_charged: money(cost),
                    available: money(self.available() - cost),
                    expires_at: None,
                };
                Ok((effects, grant))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        catalogue: &Catalogue,
        profile: &SubscriberProfile,
        key: &SmolStr,
        session: &SmolStr,
        used: u64,
        requested: Option<u64>,
        now: Timestamp,
        expires: Timestamp,
        grant_max: u64,
    ) -> Result<(Effects, Grant), Refusal> {
        let money = |amount: Decimal| Money::new(amount, self.currency);
        let r = self
            .reservations
            .get(session)
            .ok_or_else(|| Refusal::UnknownSession(session.clone()))?;
        if used > r.granted_units {
            return Err(Refusal::Overuse {
                used,
                granted: r.granted_units,
            });
        }
        let start = r.usage.start.unwrap_or(now);
        let pricer = Pricer {
            catalogue,
            profile,
            account: self,
            usage: &r.usage,
            start,
            key: key.clone(),
        };
        let total = r.used_units + used;
        let final_rating = if requested.is_none() && total > 0 {
            Some(pricer.rating(total)?)
        } else {
            None
        };
        let cost_total = match &final_rating {
            Some(rating) => rating.charge.amount,
            None => pricer.price(total)?,
        };
        let charge_now = cost_total - r.charged;
        let mut entries = vec![entry(
            key,
            "release",
            now,
            EntryKind::Release,
            Decimal::ZERO,
            -r.amount,
            session,
        )];
        if !charge_now.is_zero() {
            entries.push(entry(
                key,
                "charge",
                now,
                EntryKind::Charge,
                -charge_now,
                Decimal::ZERO,
                session,
            ));
        }
        let available_after = self.available() + r.amount - charge_now;
        let mut effects = Effects::default();
        let grant = match requested {
            Some(requested) => {
                let prepaid = self.mode == Mode::Prepaid;
                let (granted, amount) = if self.barring.is_some()
                    || (prepaid && self.status_after_charge(charge_now) == Status::Suspended)
                {
                    (0, Decimal::ZERO)
                } else {
                    let budget = prepaid.then_some(available_after.max(Decimal::ZERO));
                    pricer.affordable(total, requested.min(grant_max), budget)?
                };
                if amount > Decimal::ZERO || granted > 0 {
                    entries.push(entry(
                        key,
                        "reserve",
                        now,
                        EntryKind::Reserve,
                        Decimal::ZERO,
                        amount,
                        session,
                    ));
                }
                let mut next = r.clone();
                next.used_units = total;
                next.charged = cost_total;
                next.granted_units = granted;
                next.amount = amount;
                next.expires_at = expires;
                effects.upsert.push(next);
                Grant {
                    session: session.clone(),
                    granted_units: granted,
                    reserved: money(amount),
                    charged: money(charge_now),
                    session_charged: money(cost_total),
                    available: money(available_after - amount),
                    expires_at: Some(expires),
                }
            }
            None => {
                effects.remove.push(session.clone());
                if let Some(rating) = &final_rating {
                    effects.counters = rating
                        .counter_updates
                        .iter()
                        .cloned()
                        .collect::<Vec<CounterUpdate>>();
                }
                Grant {
                    session: session.clone(),
                    granted_units: 0,
                    reserved: money(Decimal::ZERO),
                    charged: money(charge_now),
                    session_charged: money(cost_total),
                    available: money(available_after),
                    expires_at: None,
                }
            }
        };
        effects.entries = entries;
        Ok((effects, grant))
    }

    /// The status after debiting `charge` (thresholds at their default of zero are checked by
    /// the caller through [`Account::apply`]; this only tells whether the balance went negative).
    fn status_after_charge(&self, charge: Decimal) -> Status {
        if self.status == Status::Suspended || self.balance - charge < Decimal::ZERO {
            Status::Suspended
        } else {
            Status::Active
        }
    }
}
