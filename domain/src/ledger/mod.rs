//! The balance ledger of one subscriber: immutable entries, balances derived from them, and the
//! pure rules of prepaid and postpaid charging — usage, real-time reservations (the semantics of
//! Diameter Gy / RFC 4006: initial, update, terminate, event), top-ups, thresholds that suspend
//! and resume service, and reservation expiry.
//!
//! Collections (dunning) can bar an account ([`Barring`]): new usage is refused with
//! [`Refusal::Barred`] until the barring is cleared, independently of the prepaid [`Status`];
//! usage records that arrive anyway are still charged.
//!
//! Every operation is a pure function from the current [`Account`] to an [`Effects`] value (the
//! new entries and state changes) or a [`Refusal`]; the owner (the subscriber actor) makes the
//! effects durable and only then applies them and answers. Balances are never edited directly:
//! `balance` and `reserved` are sums over entries, and [`Account::check`] proves it.

mod memory;
mod session;
mod store;

pub use memory::MemoryLedgerStore;
pub use session::{Grant, SessionRequest, UsageSpec};
pub use store::{
    AccountWrite, CommitFuture, Fence, LedgerStore, PartnerInboxRow, StoreError, contract,
};

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ids::SubscriberId;
use crate::money::{Currency, Money};
use crate::rating::{CounterUpdate, Counters, Rating};

/// Prepaid (spend what was paid, never more in real time) or postpaid (charges accrue for the bill).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Balance must cover reservations.
    Prepaid,
    /// Charges accrue; no real-time limit.
    #[default]
    Postpaid,
}

/// Service status driven by the prepaid thresholds (collections bar service through [`Barring`],
/// independently of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Service allowed.
    #[default]
    Active,
    /// Balance fell below the suspension threshold; reservations are refused.
    Suspended,
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// Rated usage (a CDR, or a session's used units).
    Charge,
    /// Money set aside for a session.
    Reserve,
    /// Reservation given back (used, replaced, terminated or expired).
    Release,
    /// Money paid in.
    TopUp,
    /// A previous charge given back by rerating (its replacement is a new `Charge`).
    Reversal,
}

/// One immutable ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Idempotency key of the operation that wrote it (`cdr:ID`, `session:S:R`, `topup:ID`).
    pub key: SmolStr,
    /// When.
    pub at: Timestamp,
    /// What.
    pub kind: EntryKind,
    /// Effect on the balance (negative: debit).
    pub amount: Decimal,
    /// Effect on the reserved amount.
    pub reserved: Decimal,
    /// CDR id, session id or top-up id.
    pub reference: SmolStr,
}

/// A session's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Session id.
    pub session: SmolStr,
    /// What the session uses (service, numbers, start).
    pub usage: UsageSpec,
    /// Units used so far (reported by updates).
    pub used_units: u64,
    /// Amount charged so far for `used_units`.
    pub charged: Decimal,
    /// Units granted on top of `used_units`.
    pub granted_units: u64,
    /// Money reserved for the granted units.
    pub amount: Decimal,
    /// When the grant lapses if the network does not report.
    pub expires_at: Timestamp,
}

/// Thresholds on the prepaid balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Below this balance the account is suspended.
    pub suspend_below: Decimal,
    /// At or above this balance a suspended account resumes.
    pub resume_at_or_above: Decimal,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            suspend_below: Decimal::ZERO,
            resume_at_or_above: Decimal::ZERO,
        }
    }
}

/// A service barring set by collections (dunning): new real-time usage is refused while it is in
/// force, whatever the balance and the prepaid [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Barring {
    /// Why: e.g. [`Barring::SUSPENDED`] or [`Barring::DISCONNECTED`].
    pub reason: SmolStr,
    /// Since when.
    pub since: Timestamp,
    /// The idempotency key of the request that set it.
    pub key: SmolStr,
}

impl Barring {
    /// Reason of a dunning suspension: lifted when the overdue invoices are paid.
    pub const SUSPENDED: &'static str = "dunning.suspended";
    /// Reason of a permanent disconnection: never lifted.
    pub const DISCONNECTED: &'static str = "dunning.disconnected";

    /// Whether this barring is for good (a disconnection): it can be neither cleared nor
    /// replaced by a lesser one.
    pub fn is_permanent(&self) -> bool {
        self.reason == Barring::DISCONNECTED
    }
}

/// A change of an account's barring, carried by [`Effects`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum BarringChange {
    /// Bar the account (or replace the barring in force).
    Set(Barring),
    /// Lift the barring.
    Clear,
}

/// The state of one subscriber's balance, derived from its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Subscriber.
    pub subscriber: SubscriberId,
    /// Account currency.
    pub currency: Currency,
    /// Prepaid or postpaid.
    pub mode: Mode,
    /// Sum of entry amounts.
    pub balance: Decimal,
    /// Sum of entry reserved effects.
    pub reserved: Decimal,
    /// Status.
    pub status: Status,
    /// Open reservations by session id.
    pub reservations: BTreeMap<SmolStr, Reservation>,
    /// Period counters (tiers, free units).
    #[serde(with = "counters_serde")]
    pub counters: Counters,
    /// Entries applied so far.
    pub entry_count: u64,
    /// Service barring by collections, if any (absent in accounts stored before barring existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barring: Option<Barring>,
}

/// Why an operation is refused. Codes are stable: API error codes and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "message")]
pub enum Refusal {
    /// Not enough balance for even the smallest grant.
    #[error("insufficient balance: {0}")]
    #[serde(rename = "balance.insufficient")]
    Insufficient(String),
    /// The account is suspended.
    #[error("account suspended: balance below the threshold; top up to resume")]
    #[serde(rename = "account.suspended")]
    Suspended,
    /// No such session (never started, terminated, or expired).
    #[error("unknown session {0} (never started, already terminated or expired)")]
    #[serde(rename = "session.unknown")]
    UnknownSession(SmolStr),
    /// A session id that is already open was started again.
    #[error("session {0} is already open")]
    #[serde(rename = "session.exists")]
    SessionExists(SmolStr),
    /// Used units beyond what was granted.
    #[error("reported {used} units but only {granted} were granted")]
    #[serde(rename = "session.overuse")]
    Overuse {
        /// Units reported.
        used: u64,
        /// Units granted.
        granted: u64,
    },
    /// The usage cannot be rated.
    #[error("{message}")]
    #[serde(rename = "rating.failed")]
    Rating {
        /// The rating error code.
        reason: SmolStr,
        /// Its message.
        message: String,
    },
    /// Service is barred by collections (dunning) until the barring is cleared.
    #[error("service barred by collections ({reason}): {}", barred_advice(.reason))]
    #[serde(rename = "account.barred")]
    Barred {
        /// The barring reason (e.g. `dunning.suspended`).
        reason: SmolStr,
    },
    /// Money in another currency than the account's.
    #[error("amount in {given}, account in {account}")]
    #[serde(rename = "money.currency_mismatch")]
    CurrencyMismatch {
        /// Given currency.
        given: Currency,
        /// Account currency.
        account: Currency,
    },
    /// A non-positive or absurd amount or unit count.
    #[error("invalid amount: {0}")]
    #[serde(rename = "request.invalid_amount")]
    InvalidAmount(String),
}

impl Refusal {
    /// Stable code.
    pub fn code(&self) -> &str {
        match self {
            Refusal::Insufficient(_) => "balance.insufficient",
            Refusal::Suspended => "account.suspended",
            Refusal::UnknownSession(_) => "session.unknown",
            Refusal::SessionExists(_) => "session.exists",
            Refusal::Overuse { .. } => "session.overuse",
            Refusal::Rating { reason, .. } => reason,
            Refusal::Barred { .. } => "account.barred",
            Refusal::CurrencyMismatch { .. } => "money.currency_mismatch",
            Refusal::InvalidAmount(_) => "request.invalid_amount",
        }
    }
}

/// What a barred customer is told to do.
fn barred_advice(reason: &str) -> &'static str {
    if reason == Barring::DISCONNECTED {
        "the account is disconnected for good"
    } else {
        "pay the overdue invoices to resume"
    }
}

/// What an operation changes, to be made durable before it is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    /// New entries.
    pub entries: Vec<Entry>,
    /// Reservations created or changed.
    pub upsert: Vec<Reservation>,
    /// Reservations closed.
    pub remove: Vec<SmolStr>,
    /// Counter updates.
    pub counters: Vec<CounterUpdate>,
    /// Barring set or lifted, if it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barring: Option<BarringChange>,
}

impl Account {
    /// A new, empty account.
    pub fn new(subscriber: SubscriberId, currency: Currency, mode: Mode) -> Account {
        Account {
            subscriber,
            currency,
            mode,
            balance: Decimal::ZERO,
            reserved: Decimal::ZERO,
            status: Status::Active,
            reservations: BTreeMap::new(),
            counters: Counters::new(),
            entry_count: 0,
            barring: None,
        }
    }

    /// Money that can still be reserved or spent in real time.
    pub fn available(&self) -> Decimal {
        self.balance - self.reserved
    }

    /// Applies durable effects, then re-evaluates the thresholds.
    pub fn apply(&mut self, effects: &Effects, thresholds: &Thresholds) {
        for e in &effects.entries {
            self.balance += e.amount;
            self.reserved += e.reserved;
            self.entry_count += 1;
        }
        for session in &effects.remove {
            self.reservations.remove(session);
        }
        for r in &effects.upsert {
            self.reservations.insert(r.session.clone(), r.clone());
        }
        self.counters.apply(&effects.counters);
        match &effects.barring {
            Some(BarringChange::Set(barring)) => self.barring = Some(barring.clone()),
            Some(BarringChange::Clear) => self.barring = None,
            None => {}
        }
        self.status = self.status_after(thresholds);
    }

    /// The status the thresholds give for the current balance (prepaid accounts only).
    pub fn status_after(&self, thresholds: &Thresholds) -> Status {
        if self.mode == Mode::Postpaid {
            return self.status;
        }
        match self.status {
            Status::Active if self.balance < thresholds.suspend_below => Status::Suspended,
            Status::Suspended if self.balance >= thresholds.resume_at_or_above => Status::Active,
            s => s,
        }
    }

    /// Checks the derived balances against the entries they come from.
    pub fn check(&self, entries: &[Entry]) -> Result<(), String> {
        let balance: Decimal = entries.iter().map(|e| e.amount).sum();
        let reserved: Decimal = entries.iter().map(|e| e.reserved).sum();
        let open: Decimal = self.reservations.values().map(|r| r.amount).sum();
        if balance != self.balance || reserved != self.reserved || open != self.reserved {
            return Err(format!(
                "ledger mismatch for {}: balance {} vs entries {}, reserved {} vs entries {} vs open reservations {}",
                self.subscriber, self.balance, balance, self.reserved, reserved, open
            ));
        }
        Ok(())
    }

    /// Charges a rated record. Postpaid and prepaid alike: usage that happened is charged even if
    /// it takes a prepaid balance below zero (real-time sessions are what prevent overspend).
    pub fn charge(&self, rating: &Rating, at: Timestamp) -> Result<Effects, Refusal> {
        if rating.charge.currency != self.currency {
            return Err(Refusal::CurrencyMismatch {
                given: rating.charge.currency,
                account: self.currency,
            });
        }
        let key = smol_str::format_smolstr!("cdr:{}", rating.cdr_id);
        Ok(Effects {
            entries: vec![Entry {
                key,
                at,
                kind: EntryKind::Charge,
                amount: -rating.charge.amount,
                reserved: Decimal::ZERO,
                reference: SmolStr::new(rating.cdr_id.as_str()),
            }],
            counters: rating.counter_updates.to_vec(),
            ..Effects::default()
        })
    }

    /// Pays money in (prepaid top-up, or a payment towards postpaid charges).
    pub fn top_up(&self, id: &str, amount: Money, at: Timestamp) -> Result<Effects, Refusal> {
        if amount.currency != self.currency {
            return Err(Refusal::CurrencyMismatch {
                given: amount.currency,
                account: self.currency,
            });
        }
        if amount.amount <= Decimal::ZERO {
            return Err(Refusal::InvalidAmount(format!(
                "a top-up must be positive, got {}",
                amount.amount
            )));
        }
        Ok(Effects {
            entries: vec![Entry {
                key: smol_str::format_smolstr!("topup:{id}"),
                at,
                kind: EntryKind::TopUp,
                amount: amount.amount,
                reserved: Decimal::ZERO,
                reference: SmolStr::new(id),
            }],
            ..Effects::default()
        })
    }

    /// Bars the account (`Some`) or lifts its barring (`None`). Answers empty effects when that
    /// state is already in force (barred for the same reason, or not barred): the first barring
    /// keeps its `since` and `key`. A permanent barring (a disconnection) is never lifted nor
    /// replaced by another reason: that is refused with [`Refusal::Barred`].
    pub fn set_barring(&self, barring: Option<Barring>) -> Result<Effects, Refusal> {
        let change = match (&self.barring, barring) {
            (None, None) => None,
            (Some(current), Some(next)) if current.reason == next.reason => None,
            (Some(current), _) if current.is_permanent() => {
                return Err(Refusal::Barred {
                    reason: current.reason.clone(),
                });
            }
            (_, Some(next)) => Some(BarringChange::Set(next)),
            (Some(_), None) => Some(BarringChange::Clear),
        };
        Ok(Effects {
            barring: change,
            ..Effects::default()
        })
    }

    /// Refuses new usage (initial and event reservations) of a barred account.
    pub fn check_not_barred(&self) -> Result<(), Refusal> {
        match &self.barring {
            Some(barring) => Err(Refusal::Barred {
                reason: barring.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Releases every reservation whose grant lapsed at `now`.
    pub fn expire(&self, now: Timestamp) -> Effects {
        let mut effects = Effects::default();
        for r in self.reservations.values().filter(|r| r.expires_at <= now) {
            effects.entries.push(Entry {
                key: smol_str::format_smolstr!("expire:{}", r.session),
                at: now,
                kind: EntryKind::Release,
                amount: Decimal::ZERO,
                reserved: -r.amount,
                reference: r.session.clone(),
            });
            effects.remove.push(r.session.clone());
        }
        effects
    }

    /// The earliest expiry among open reservations.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.reservations.values().map(|r| r.expires_at).min()
    }
}

/// Counters serialise as a list of (key, value) pairs.
mod counters_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::rating::{CounterKey, CounterValue, Counters};

    pub fn serialize<S: Serializer>(counters: &Counters, s: S) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<(&CounterKey, &CounterValue)> = counters.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Counters, D::Error> {
        let pairs: Vec<(CounterKey, CounterValue)> = Vec::deserialize(d)?;
        let mut counters = Counters::new();
        for (k, v) in pairs {
            counters.set(k, v);
        }
        Ok(counters)
    }
}

#[cfg(test)]
mod tests;
