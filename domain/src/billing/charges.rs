//! Fee lines of one subscription for one invoice: recurring fees and rentals (prorated by
//! days, in advance or in arrears, with free trials and optionally free suspended days) and
//! one-off fees.
//!
//! Proration: `amount = unit price x quantity x charged days / days in the service period`,
//! rounded once, half-up, to the currency's minor units. A day is charged when the status in
//! force that day is `active` (or `suspended`, if the item charges suspended days — the
//! default), it is inside the charge's own `[start, end)`, and it is not a trial day. Statuses
//! apply to whole days: the activation day is charged, the deactivation day is not. Example:
//! 10.00 a month, November 2026 (30 days), activated on the 16th: 15 days, 10.00 x 15 / 30 =
//! 5.00.
//!
//! Timing, for the invoice of period P (N is the next period):
//! - in arrears: the days of P;
//! - in advance: N in full as far as known when P is billed (the status in force at the end of
//!   P is assumed to continue), **plus** an adjustment of P: what P should cost given what
//!   happened in it, minus what the previous invoice billed for P in advance (recomputed the
//!   same way from the changes dated before P). A subscription activated in P therefore gets
//!   the prorated remainder of P on its first invoice; one deactivated or suspended (if
//!   suspended days are free) in P gets a credit. Over two invoices a period costs exactly the
//!   rounded prorated amount. This assumes every period of the payer is billed in turn.
//!
//! One-off fees are billed on the invoice whose period contains their date (`start`, by
//! default the first activation day).

use rust_decimal::Decimal;

use super::cycle::Period;
use super::error::BillingError;
use super::invoice::{Amount, FeeKind, FeeLine};
use super::price_list::{ChargeDefinition, ChargeKind, PriceList, Timing};
use super::subscription::{AttachedCharge, DayRule, Subscription, chargeable_days};
use crate::money::{Currency, Money, RoundingMode};

/// `unit x quantity x days / period_days`, rounded half-up to minor units.
pub fn prorate(
    unit: Money,
    quantity: u32,
    days: i64,
    period_days: i64,
) -> Result<Amount, BillingError> {
    if period_days <= 0 {
        return Err(BillingError::PeriodMismatch("empty period".to_string()));
    }
    let numerator = unit
        .amount
        .checked_mul(Decimal::from(quantity))
        .and_then(|a| a.checked_mul(Decimal::from(days)))
        .ok_or(BillingError::Overflow)?;
    let amount = numerator
        .checked_div(Decimal::from(period_days))
        .ok_or(BillingError::Overflow)?;
    Amount::exact(Money::new(amount, unit.currency).round_to_minor(RoundingMode::HalfUp))
}

fn factor(days: i64, period_days: i64) -> Decimal {
    Decimal::from(days)
        .checked_div(Decimal::from(period_days.max(1)))
        .unwrap_or(Decimal::ZERO)
}

struct LineMaker<'a> {
    subscription: &'a Subscription,
    charge: &'a AttachedCharge,
    item: &'a ChargeDefinition,
    currency: Currency,
}

impl LineMaker<'_> {
    fn recurring(
        &self,
        kind: FeeKind,
        timing: Timing,
        period: Period,
        days: i64,
        amount: Amount,
    ) -> Result<FeeLine, BillingError> {
        Ok(FeeLine {
            subscription: self.subscription.id.clone(),
            product: self.subscription.product.clone(),
            item: self.item.code.clone(),
            name: self.item.name.clone(),
            category: self.item.category,
            kind,
            timing: Some(timing),
            service_period: Some(period),
            quantity: self.charge.quantity,
            unit_price: self.item.price(self.currency)?,
            charged_days: days,
            period_days: period.days(),
            proration: factor(days, period.days()),
            tax_category: self.item.tax_category.clone(),
            amount,
        })
    }
}

/// The fee lines of `subscription` on the invoice for `period` (`next` is the period after).
pub fn fee_lines(
    subscription: &Subscription,
    price_list: &PriceList,
    currency: Currency,
    period: &Period,
    next: &Period,
) -> Result<Vec<FeeLine>, BillingError> {
    let mut lines = Vec::new();
    for charge in &subscription.charges {
        let item = price_list.item(&charge.item)?;
        let maker = LineMaker {
            subscription,
            charge,
            item,
            currency,
        };
        match item.kind {
            ChargeKind::OneOff => {
                let on = charge.start.or_else(|| subscription.first_activation());
                if on.is_some_and(|d| period.contains(d)) {
                    let unit = item.price(currency)?;
                    lines.push(FeeLine {
                        subscription: subscription.id.clone(),
                        product: subscription.product.clone(),
                        item: item.code.clone(),
                        name: item.name.clone(),
                        category: item.category,
                        kind: FeeKind::OneOff,
                        timing: None,
                        service_period: None,
                        quantity: charge.quantity,
                        unit_price: unit,
                        charged_days: 0,
                        period_days: 0,
                        proration: Decimal::ONE,
                        tax_category: item.tax_category.clone(),
                        amount: prorate(unit, charge.quantity, 1, 1)?,
                    });
                }
            }
            ChargeKind::Recurring { timing } => {
                let rule = DayRule::for_charge(
                    subscription,
                    charge,
                    item.charge_suspended,
                    item.trial_days,
                )?;
                let history = &subscription.history;
                let actual = chargeable_days(history, period, &rule, period.end);
                match timing {
                    Timing::InArrears => {
                        if actual != 0 {
                            let unit = item.price(currency)?;
                            let amount = prorate(unit, charge.quantity, actual, period.days())?;
                            lines.push(maker.recurring(
                                FeeKind::Recurring,
                                timing,
                                *period,
                                actual,
                                amount,
                            )?);
                        }
                    }
                    Timing::InAdvance => {
                        let billed = chargeable_days(history, period, &rule, period.start);
                        if actual != billed {
                            let unit = item.price(currency)?;
                            let now = prorate(unit, charge.quantity, actual, period.days())?;
                            let before = prorate(unit, charge.quantity, billed, period.days())?;
                            let minor = now
                                .minor
                                .checked_sub(before.minor)
                                .ok_or(BillingError::Overflow)?;
                            lines.push(maker.recurring(
                                FeeKind::RecurringAdjustment,
                                timing,
                                *period,
                                actual - billed,
                                Amount::from_minor(minor, currency),
                            )?);
                        }
                        let ahead = chargeable_days(history, next, &rule, period.end);
                        if ahead != 0 {
                            let unit = item.price(currency)?;
                            let amount = prorate(unit, charge.quantity, ahead, next.days())?;
                            lines.push(maker.recurring(
                                FeeKind::Recurring,
                                timing,
                                *next,
                                ahead,
                                amount,
                            )?);
                        }
                    }
                }
            }
        }
    }
    Ok(lines)
}
