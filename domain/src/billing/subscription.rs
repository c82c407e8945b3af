//! Subscriptions: an account's use of a product, its dated lifecycle and the charges attached
//! to it by reference to price list items.
//!
//! Lifecycle: `pending -> active <-> suspended -> deactivated` (pending may also be cancelled
//! straight to deactivated). Every transition is dated with a civil date and takes effect for
//! the **whole** of that day: the activation day is an active day, the deactivation day is not.
//! Several transitions on one day are allowed (the last one is the status of that day), a
//! transition dated before the latest one is refused (history is append-only).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::cycle::{Period, add_days, day_number};
use super::error::BillingError;
use crate::ids::{AccountId, DiscountId, ItemCode, SubscriberId, SubscriptionId};

/// Where a subscription is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Ordered, not yet in service.
    Pending,
    /// In service.
    Active,
    /// Service barred (e.g. by dunning or on request); may be resumed.
    Suspended,
    /// Ended for good.
    Deactivated,
}

impl SubscriptionStatus {
    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: SubscriptionStatus) -> bool {
        use SubscriptionStatus::*;
        matches!(
            (self, to),
            (Pending, Active)
                | (Pending, Deactivated)
                | (Active, Suspended)
                | (Active, Deactivated)
                | (Suspended, Active)
                | (Suspended, Deactivated)
        )
    }
}

/// One dated status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// New status.
    pub status: SubscriptionStatus,
    /// Day from which it applies (the whole day).
    pub on: Date,
}

/// A price list item attached to a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedCharge {
    /// Price list item code.
    pub item: ItemCode,
    /// Units charged (e.g. two devices rented).
    #[serde(default = "one")]
    pub quantity: u32,
    /// Recurring: first day charged (default: no limit, the lifecycle decides). One-off: the
    /// charge date (default: the first activation day).
    #[serde(default)]
    pub start: Option<Date>,
    /// Recurring: first day no longer charged (default: no limit).
    #[serde(default)]
    pub end: Option<Date>,
    /// Free trial in days from the first activation, overriding the item's default.
    #[serde(default)]
    pub trial_days: Option<u32>,
}

fn one() -> u32 {
    1
}

/// A subscription of an account to a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Subscription id.
    pub id: SubscriptionId,
    /// Account billed for it.
    pub account: AccountId,
    /// Product or plan code (the catalogue's product id).
    pub product: SmolStr,
    /// The rating key of the usage it generates, if any.
    #[serde(default)]
    pub subscriber: Option<SubscriberId>,
    /// Status changes, oldest first; the first is the creation (`pending`).
    pub history: Vec<StatusChange>,
    /// Fees and rentals attached.
    #[serde(default)]
    pub charges: Vec<AttachedCharge>,
    /// Discounts attached to this subscription, applied in this order.
    #[serde(default)]
    pub discounts: Vec<DiscountId>,
}

impl Subscription {
    /// A new pending subscription created on `on`.
    pub fn new(id: SubscriptionId, account: AccountId, product: SmolStr, on: Date) -> Self {
        Subscription {
            id,
            account,
            product,
            subscriber: None,
            history: vec![StatusChange {
                status: SubscriptionStatus::Pending,
                on,
            }],
            charges: Vec::new(),
            discounts: Vec::new(),
        }
    }

    /// Current status (the latest change; pending when the history is empty).
    pub fn status(&self) -> SubscriptionStatus {
        self.history
            .last()
            .map_or(SubscriptionStatus::Pending, |c| c.status)
    }

    /// Status in force on `day`, if the subscription existed then.
    pub fn status_on(&self, day: Date) -> Option<SubscriptionStatus> {
        self.history
            .iter()
            .rev()
            .find(|c| c.on <= day)
            .map(|c| c.status)
    }

    /// The first day it became active.
    pub fn first_activation(&self) -> Option<Date> {
        self.history
            .iter()
            .find(|c| c.status == SubscriptionStatus::Active)
            .map(|c| c.on)
    }

    /// Moves to `to` on `on`, appending to the history; leaves `self` unchanged on refusal.
    pub fn transition(&mut self, to: SubscriptionStatus, on: Date) -> Result<(), BillingError> {
        let from = self.status();
        if !from.can_become(to) {
            return Err(BillingError::IllegalTransition {
                subscription: self.id.clone(),
                from,
                to,
            });
        }
        if let Some(last) = self.history.last()
            && on < last.on
        {
            return Err(BillingError::BackdatedTransition {
                subscription: self.id.clone(),
                on,
                last: last.on,
            });
        }
        self.history.push(StatusChange { status: to, on });
        Ok(())
    }
}

/// What counts as a chargeable day for one recurring charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRule {
    /// Whether suspended days are charged.
    pub charge_suspended: bool,
    /// First day charged, if limited.
    pub from: Option<Date>,
    /// First day no longer charged, if limited.
    pub to: Option<Date>,
    /// Free trial `[start, end)`, if any.
    pub trial: Option<(Date, Date)>,
}

impl DayRule {
    /// The rule for `charge` on `subscription`, with the item's defaults.
    pub fn for_charge(
        subscription: &Subscription,
        charge: &AttachedCharge,
        charge_suspended: bool,
        item_trial_days: u32,
    ) -> Result<DayRule, BillingError> {
        let trial_days = charge.trial_days.unwrap_or(item_trial_days);
        let trial = match subscription.first_activation() {
            Some(start) if trial_days > 0 => Some((start, add_days(start, i64::from(trial_days))?)),
            _ => None,
        };
        Ok(DayRule {
            charge_suspended,
            from: charge.start,
            to: charge.end,
            trial,
        })
    }
}

/// Chargeable days of `period`, from the history's changes dated before `known_before`.
///
/// A day is chargeable when the status in force is `active` (or `suspended` and the rule
/// charges suspended days), it lies in `[rule.from, rule.to)`, and it is not a trial day.
/// `known_before` lets in-advance billing recompute what an earlier run knew: changes dated on
/// or after it are ignored and the status in force before it is assumed to continue.
pub fn chargeable_days(
    history: &[StatusChange],
    period: &Period,
    rule: &DayRule,
    known_before: Date,
) -> i64 {
    let known: Vec<&StatusChange> = history.iter().filter(|c| c.on < known_before).collect();
    let mut days = 0;
    for (i, change) in known.iter().enumerate() {
        let next = known.get(i + 1).map(|c| c.on);
        let charged = match change.status {
            SubscriptionStatus::Active => true,
            SubscriptionStatus::Suspended => rule.charge_suspended,
            SubscriptionStatus::Pending | SubscriptionStatus::Deactivated => false,
        };
        if !charged || next == Some(change.on) {
            continue;
        }
        // The segment [change.on, next) clipped to the period and the charge's own dates.
        let from = Some(rule.from.map_or(change.on, |f| f.max(change.on)));
        let to = match (next, rule.to) {
            (Some(n), Some(t)) => Some(n.min(t)),
            (n, t) => n.or(t),
        };
        let segment = period.overlap_days(from, to);
        let trial = match rule.trial {
            Some((trial_start, trial_end)) if segment > 0 => {
                let start = from.map_or(period.start, |f| f.max(period.start));
                let end = to.map_or(period.end, |t| t.min(period.end));
                let overlap_start = day_number(start.max(trial_start));
                let overlap_end = day_number(end.min(trial_end));
                (overlap_end - overlap_start).max(0)
            }
            _ => 0,
        };
        days += segment - trial;
    }
    days
}
