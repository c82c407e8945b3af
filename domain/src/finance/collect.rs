//! The dunning engine: which steps of a policy are due on an overdue invoice, what applying
//! them writes (cases, penalties, notices, service changes), and when cases are settled.
//!
//! Pure: the collection worker reads an account's invoices, balances, cases and dunning state,
//! calls [`plan_collection`], and commits the plan as one [`super::FinanceWrite`]. Each step is
//! recorded on its invoice's case, so planning again (a redelivered job, a second run the same
//! day) applies nothing twice.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use smol_str::{SmolStr, format_smolstr};

use super::allocation::add_days;
use super::dunning::{
    AccountDunning, AppliedStep, DunningAction, DunningCase, DunningPolicy, DunningStep,
    PenaltyValue,
};
use super::error::FinanceError;
use super::notification::Channel;
use super::receivable::{ArEntry, ArKind, InvoiceBalance};
use crate::ids::AccountId;
use crate::money::{Money, RoundingMode};

#[cfg(test)]
mod tests;

/// Every problem of `policies` as (path below the policy list, e.g. `[0].steps[1].id`, message).
pub fn validate_policies(policies: &[DunningPolicy]) -> Result<(), Vec<(String, String)>> {
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut add = |path: String, message: String| problems.push((path, message));
    let mut ids = BTreeSet::new();
    let mut default: Option<usize> = None;
    let mut classes: Vec<(&SmolStr, usize)> = Vec::new();
    for (i, policy) in policies.iter().enumerate() {
        if policy.id.trim().is_empty() {
            add(format!("[{i}].id"), "must not be empty".into());
        } else if !ids.insert(&policy.id) {
            add(
                format!("[{i}].id"),
                format!("policy {} is defined twice", policy.id),
            );
        }
        if policy.credit_classes.is_empty() {
            match default {
                Some(first) => add(
                    format!("[{i}].credit_classes"),
                    format!("a second default policy (no credit classes); [{first}] is one"),
                ),
                None => default = Some(i),
            }
        }
        for (k, class) in policy.credit_classes.iter().enumerate() {
            match classes.iter().find(|(c, _)| *c == class) {
                Some((_, other)) if *other != i => add(
                    format!("[{i}].credit_classes[{k}]"),
                    format!("credit class {class} is named by policy [{other}] too"),
                ),
                Some(_) => {}
                None => classes.push((class, i)),
            }
        }
        if policy.steps.is_empty() {
            add(format!("[{i}].steps"), "at least one step".into());
        }
        let mut step_ids = BTreeSet::new();
        for (j, step) in policy.steps.iter().enumerate() {
            let path = format!("[{i}].steps[{j}]");
            if step.id.trim().is_empty() {
                add(format!("{path}.id"), "must not be empty".into());
            } else if !step_ids.insert(&step.id) {
                add(
                    format!("{path}.id"),
                    format!("step {} is defined twice", step.id),
                );
            }
            match &step.action {
                DunningAction::Notify { template, .. } => {
                    if template.trim().is_empty() {
                        add(
                            format!("{path}.action.template"),
                            "must not be empty".into(),
                        );
                    }
                }
                DunningAction::Penalty {
                    value: PenaltyValue::Percent(percent),
                } => {
                    if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                        add(
                            format!("{path}.action.value.percent"),
                            format!("{percent} is not in (0, 100]"),
                        );
                    }
                }
                DunningAction::Penalty {
                    value: PenaltyValue::Fixed(amounts),
                } => {
                    if amounts.is_empty() {
                        add(
                            format!("{path}.action.value.fixed"),
                            "at least one currency".into(),
                        );
                    }
                    for (currency, amount) in amounts {
                        let money = Money::new(*amount, *currency);
                        if *amount <= Decimal::ZERO {
                            add(
                                format!("{path}.action.value.fixed.{currency}"),
                                format!("{amount} must be more than zero"),
                            );
                        } else if money.to_minor().is_err() {
                            add(
                                format!("{path}.action.value.fixed.{currency}"),
                                format!(
                                    "{amount} has more decimals than {currency} ({})",
                                    currency.minor_units()
                                ),
                            );
                        }
                    }
                }
                DunningAction::Suspend | DunningAction::Disconnect => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The policy naming `credit_class`, else the default policy (the one without credit classes).
pub fn find_policy<'a>(
    policies: &'a [DunningPolicy],
    credit_class: Option<&str>,
) -> Option<&'a DunningPolicy> {
    credit_class
        .and_then(|class| {
            policies
                .iter()
                .find(|p| p.credit_classes.iter().any(|c| c == class))
        })
        .or_else(|| policies.iter().find(|p| p.credit_classes.is_empty()))
}

/// The steps of `policy` due by `as_of` on an invoice due on `due_on` and not yet `applied`, by
/// `after_days` then policy order, each with the day it fell due.
pub fn due_steps<'a>(
    policy: &'a DunningPolicy,
    due_on: Date,
    as_of: Date,
    applied: &[AppliedStep],
) -> Vec<(&'a DunningStep, Date)> {
    let mut due: Vec<(&DunningStep, Date)> = policy
        .steps
        .iter()
        .filter(|step| !applied.iter().any(|a| a.step == step.id))
        .map(|step| (step, add_days(due_on, step.after_days)))
        .filter(|(_, day)| *day <= as_of)
        .collect();
    // Stable: steps with the same `after_days` keep the policy's order.
    due.sort_by_key(|(step, _)| step.after_days);
    due
}

/// The penalty on `outstanding`: a percentage rounded half-up to minor units, or the fixed
/// amount of its currency (`dunning.invalid_policy` when the policy has none).
pub fn penalty_amount(value: &PenaltyValue, outstanding: Money) -> Result<Money, FinanceError> {
    let currency = outstanding.currency;
    let exact = match value {
        PenaltyValue::Percent(percent) => {
            let factor = percent
                .checked_div(Decimal::ONE_HUNDRED)
                .ok_or(crate::money::MoneyError::Overflow)?;
            outstanding.checked_mul(factor)?
        }
        PenaltyValue::Fixed(amounts) => {
            let amount = amounts
                .get(&currency)
                .ok_or_else(|| FinanceError::InvalidPolicy {
                    policy: SmolStr::default(),
                    message: format!("no fixed penalty in {currency}"),
                })?;
            Money::new(*amount, currency)
        }
    };
    Ok(exact.round_to_minor(RoundingMode::HalfUp))
}

/// `template` with every `{name}` of `vars` replaced; unknown placeholders stay as written.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        if name.contains('{') {
            out.push('{');
            rest = after;
            continue;
        }
        match vars.iter().find(|(var, _)| *var == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The outbox id of a dunning notification (`dunning:<account>:<invoice>:<step>`).
pub fn notification_id(account: &AccountId, invoice: &str, step: &str) -> SmolStr {
    format_smolstr!("dunning:{account}:{invoice}:{step}")
}

/// Everything [`plan_collection`] needs about one account.
#[derive(Debug, Clone, Copy)]
pub struct CollectInput<'a> {
    /// The account (the payer).
    pub account: &'a AccountId,
    /// Its customer's name (`{customer}` in templates).
    pub customer_name: &'a str,
    /// The policy of its customer's credit class.
    pub policy: &'a DunningPolicy,
    /// Its invoice balances.
    pub balances: &'a [InvoiceBalance],
    /// Its dunning cases.
    pub cases: &'a [DunningCase],
    /// Its dunning state.
    pub state: &'a AccountDunning,
    /// The collection date.
    pub as_of: Date,
    /// The collection run.
    pub run: &'a str,
    /// Now.
    pub now: Timestamp,
}

/// A notification to write: the caller adds the customer's address and writes it to the outbox
/// under [`notification_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Invoice.
    pub invoice: SmolStr,
    /// Step id.
    pub step: SmolStr,
    /// Channel.
    pub channel: Channel,
    /// Rendered text.
    pub body: String,
}

/// What one collection of one account writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectPlan {
    /// Cases opened or changed.
    pub cases: Vec<DunningCase>,
    /// Penalty entries.
    pub penalties: Vec<ArEntry>,
    /// Notifications to write.
    pub notices: Vec<Notice>,
    /// Suspend the account's service.
    pub suspend: bool,
    /// Disconnect the account.
    pub disconnect: bool,
    /// Steps applied: (invoice, step id, action).
    pub applied: Vec<(SmolStr, SmolStr, SmolStr)>,
}

impl CollectPlan {
    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
            && self.penalties.is_empty()
            && self.notices.is_empty()
            && !self.suspend
            && !self.disconnect
    }
}

/// Applies the due steps of the account's policy to each of its overdue invoices without a
/// settled case, opening cases as needed; steps already on a case are never applied again.
pub fn plan_collection(input: &CollectInput) -> Result<CollectPlan, FinanceError> {
    let mut plan = CollectPlan::default();
    let mut balances: Vec<&InvoiceBalance> = input
        .balances
        .iter()
        .filter(|b| b.payer == *input.account && b.overdue_on(input.as_of))
        .collect();
    balances.sort_by(|a, b| {
        (a.due_on, a.issued_on, &a.invoice).cmp(&(b.due_on, b.issued_on, &b.invoice))
    });
    for balance in balances {
        let existing = input
            .cases
            .iter()
            .find(|c| c.account == *input.account && c.invoice == balance.invoice);
        // A settled case whose invoice is overdue again (its payment bounced or was refunded)
        // is reopened; the steps it already went through are not repeated.
        let reopened = existing.is_some_and(|c| c.settled_on.is_some());
        let mut case = existing.cloned().unwrap_or_else(|| DunningCase {
            account: input.account.clone(),
            invoice: balance.invoice.clone(),
            policy: input.policy.id.clone(),
            due_on: balance.due_on,
            applied: Vec::new(),
            settled_on: None,
        });
        if reopened {
            case.settled_on = None;
        }
        let mut changed = existing.is_none() || reopened;
        let mut outstanding = balance.outstanding();
        for (step, step_due) in due_steps(input.policy, case.due_on, input.as_of, &case.applied) {
            let detail = apply_step(input, &mut plan, &case, step, step_due, &mut outstanding)?;
            let action = SmolStr::new(step.action.as_str());
            plan.applied
                .push((case.invoice.clone(), step.id.clone(), action.clone()));
            case.applied.push(AppliedStep {
                step: step.id.clone(),
                action,
                due_on: step_due,
                applied_on: input.as_of,
                at: input.now,
                run: SmolStr::new(input.run),
                detail,
            });
            changed = true;
        }
        if changed {
            plan.cases.push(case);
        }
    }
    Ok(plan)
}

/// Applies one step to `plan`; returns the detail recorded on the case.
fn apply_step(
    input: &CollectInput,
    plan: &mut CollectPlan,
    case: &DunningCase,
    step: &DunningStep,
    step_due: Date,
    outstanding: &mut Money,
) -> Result<String, FinanceError> {
    let invoice = &case.invoice;
    match &step.action {
        DunningAction::Notify { channel, template } => {
            let days_overdue = input
                .as_of
                .since(case.due_on)
                .map(|span| span.get_days())
                .unwrap_or(0);
            let vars = [
                ("customer", input.customer_name.to_string()),
                ("invoice", invoice.to_string()),
                (
                    "amount",
                    outstanding
                        .round_to_minor(RoundingMode::HalfUp)
                        .amount
                        .to_string(),
                ),
                ("currency", outstanding.currency.to_string()),
                ("due_on", case.due_on.to_string()),
                ("days_overdue", days_overdue.to_string()),
            ];
            plan.notices.push(Notice {
                invoice: invoice.clone(),
                step: step.id.clone(),
                channel: *channel,
                body: render(template, &vars),
            });
            Ok(notification_id(input.account, invoice, &step.id).to_string())
        }
        DunningAction::Penalty { value } => {
            let penalty = penalty_amount(value, *outstanding).map_err(|e| match e {
                FinanceError::InvalidPolicy { message, .. } => FinanceError::InvalidPolicy {
                    policy: input.policy.id.clone(),
                    message: format!("step {}: {message}", step.id),
                },
                other => other,
            })?;
            if penalty.is_zero() {
                return Ok(format!("penalty {penalty} (nothing charged)"));
            }
            plan.penalties.push(ArEntry {
                key: format_smolstr!("dunning:{invoice}:{}", step.id),
                account: input.account.clone(),
                kind: ArKind::Penalty,
                document: invoice.clone(),
                invoice: Some(invoice.clone()),
                amount: penalty,
                on: step_due,
                at: input.now,
                description: format!("Late payment penalty on invoice {invoice} ({})", step.id),
            });
            *outstanding = outstanding.checked_add(penalty)?;
            Ok(format!("penalty {penalty}"))
        }
        DunningAction::Suspend => {
            if input.state.disconnected || plan.disconnect {
                Ok("already disconnected".into())
            } else if input.state.suspended || plan.suspend {
                Ok("already suspended".into())
            } else {
                plan.suspend = true;
                Ok("service suspended".into())
            }
        }
        DunningAction::Disconnect => {
            if input.state.disconnected || plan.disconnect {
                Ok("already disconnected".into())
            } else {
                plan.disconnect = true;
                Ok("disconnected".into())
            }
        }
    }
}

/// Cases settled on `on`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Cases newly settled (`settled_on` = the date).
    pub cases: Vec<DunningCase>,
    /// Resume the account's suspended service (nothing is overdue any more).
    pub resume: bool,
}

/// Settles the open cases whose invoice owes nothing any more; resumes a suspended (not
/// disconnected) account when none of its invoices is overdue on `on`.
pub fn settle(
    balances: &[InvoiceBalance],
    cases: &[DunningCase],
    state: &AccountDunning,
    on: Date,
) -> Settlement {
    let settled = cases
        .iter()
        .filter(|case| case.settled_on.is_none())
        .filter(|case| {
            balances
                .iter()
                .find(|b| b.invoice == case.invoice)
                .is_some_and(|b| b.outstanding().is_zero())
        })
        .map(|case| DunningCase {
            settled_on: Some(on),
            ..case.clone()
        })
        .collect();
    let resume = state.suspended
        && !state.disconnected
        && !balances
            .iter()
            .any(|b| b.payer == state.account && b.overdue_on(on));
    Settlement {
        cases: settled,
        resume,
    }
}
