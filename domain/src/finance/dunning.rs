//! Collections (dunning): policies per customer credit class, the steps due on an overdue
//! invoice, and the state they leave on the invoice (a case) and on the account (service
//! suspended or disconnected).
//!
//! A policy gives a pay-by term (days after the issue date) and steps, each `after_days` past the
//! due date: a notification (SMS or e-mail through the outbox), a penalty (percentage of what
//! the invoice still owes, or a fixed amount per currency, rounded half-up to minor units), a
//! temporary suspension, or a permanent disconnection. A step is applied at most once per
//! (account, invoice, step): the case records it. A payment that settles everything overdue on
//! the account closes its cases and resumes suspended service; a disconnection is permanent.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::notification::Channel;
use crate::ids::{AccountId, SubscriptionId};
use crate::money::Currency;

/// A penalty's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PenaltyValue {
    /// Percent of what the invoice still owes (2 for 2 %).
    Percent(Decimal),
    /// A fixed amount per currency.
    Fixed(BTreeMap<Currency, Decimal>),
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DunningAction {
    /// Write a notification to the outbox.
    Notify {
        /// SMS or e-mail.
        channel: Channel,
        /// Template: `{customer}`, `{invoice}`, `{amount}`, `{currency}`, `{due_on}`,
        /// `{days_overdue}` are replaced.
        template: String,
    },
    /// Charge a penalty on the invoice.
    Penalty {
        /// How much.
        value: PenaltyValue,
    },
    /// Suspend the account's service (subscriptions suspended, reservations refused).
    Suspend,
    /// Disconnect for good (subscriptions deactivated).
    Disconnect,
}

impl AccountDunning {
    /// An account with service untouched by dunning.
    pub fn new(account: AccountId) -> AccountDunning {
        AccountDunning {
            account,
            suspended: false,
            disconnected: false,
            suspended_subscriptions: Vec::new(),
            changed_at: None,
            reason: None,
            converged: true,
        }
    }
}

impl DunningAction {
    /// As text (metric label, per-step counts).
    pub fn as_str(&self) -> &'static str {
        match self {
            DunningAction::Notify { .. } => "notify",
            DunningAction::Penalty { .. } => "penalty",
            DunningAction::Suspend => "suspend",
            DunningAction::Disconnect => "disconnect",
        }
    }
}

/// One step of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DunningStep {
    /// Step id, unique in the policy (`reminder`, `penalty`, ...).
    pub id: SmolStr,
    /// Days past the due date.
    pub after_days: u32,
    /// What it does.
    pub action: DunningAction,
}

/// A dunning policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DunningPolicy {
    /// Id.
    pub id: SmolStr,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Customer credit classes it applies to; empty: the default policy (at most one).
    #[serde(default)]
    pub credit_classes: Vec<SmolStr>,
    /// Pay-by term: days after the issue date.
    pub pay_by_days: u32,
    /// Steps, in any order (applied by `after_days`).
    pub steps: Vec<DunningStep>,
}

/// A step applied to an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedStep {
    /// Step id.
    pub step: SmolStr,
    /// Its action (`notify`, `penalty`, ...).
    pub action: SmolStr,
    /// The day it was due (due date + after_days).
    pub due_on: Date,
    /// The collection date it was applied as of.
    pub applied_on: Date,
    /// When written.
    pub at: Timestamp,
    /// The collection run.
    pub run: SmolStr,
    /// Penalty charged, notification id, or subscriptions touched.
    pub detail: String,
}

/// The dunning state of one overdue invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningCase {
    /// Account (the payer).
    pub account: AccountId,
    /// Invoice.
    pub invoice: SmolStr,
    /// Policy followed.
    pub policy: SmolStr,
    /// Pay-by date.
    pub due_on: Date,
    /// Steps applied, in order.
    pub applied: Vec<AppliedStep>,
    /// Settled (by payment or credit) on this date: no more steps.
    pub settled_on: Option<Date>,
}

/// The service state dunning left on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDunning {
    /// Account.
    pub account: AccountId,
    /// Service suspended by dunning.
    pub suspended: bool,
    /// Disconnected for good.
    pub disconnected: bool,
    /// Subscriptions dunning suspended (resumed on settlement; others are left alone).
    pub suspended_subscriptions: Vec<SubscriptionId>,
    /// Last change.
    pub changed_at: Option<Timestamp>,
    /// Why (the case and step that suspended or disconnected, or the settling payment).
    pub reason: Option<String>,
    /// Whether subscriptions and subscriber actors are known to follow this state. A write that
    /// changes the decision sets it to false; convergence sets it back once service follows,
    /// so a crash in between is finished on the next start.
    #[serde(default = "converged_default")]
    pub converged: bool,
}

fn converged_default() -> bool {
    true
}
