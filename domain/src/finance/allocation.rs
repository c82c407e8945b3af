//! Invoice balances, payment validation and allocation, refunds and reversals.
//!
//! Everything here is pure: the caller reads invoices, payments and entries, decides with these
//! functions, and commits the result as one [`super::FinanceWrite`].

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::{Span, Timestamp};
use rust_decimal::Decimal;
use smol_str::SmolStr;

use super::error::FinanceError;
use super::payment::{Allocation, AllocationRequest, Payment, PaymentMethod, PaymentState};
use super::receivable::{ArEntry, ArKind, InvoiceBalance};
use crate::billing::run::Invoice;
use crate::ids::AccountId;
use crate::money::{Currency, Money};

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

/// `date` plus `days` days; a date past the calendar's end saturates to [`Date::MAX`].
pub(crate) fn add_days(date: Date, days: u32) -> Date {
    Span::new()
        .try_days(i64::from(days))
        .ok()
        .and_then(|span| date.checked_add(span).ok())
        .unwrap_or(Date::MAX)
}

/// The order balances are worked in: oldest due date first, then issue date, then number.
fn oldest_first(balances: &[InvoiceBalance]) -> Vec<&InvoiceBalance> {
    let mut sorted: Vec<&InvoiceBalance> = balances.iter().collect();
    sorted.sort_by(|a, b| {
        (a.due_on, a.issued_on, &a.invoice).cmp(&(b.due_on, b.issued_on, &b.invoice))
    });
    sorted
}

/// What every invoice of `invoices` still owes, oldest due date first.
pub fn invoice_balances(
    invoices: &[Invoice],
    payments: &[Payment],
    entries: &[ArEntry],
    payment_terms_days: u32,
) -> Result<Vec<InvoiceBalance>, FinanceError> {
    let mut balances = Vec::with_capacity(invoices.len());
    for invoice in invoices {
        let currency = invoice.draft.currency;
        let number = &invoice.number;
        let on_it = |e: &&ArEntry| e.invoice.as_ref() == Some(number);
        let mut charges = Money::from_minor(0, currency);
        let mut credited = Money::from_minor(0, currency);
        for entry in entries.iter().filter(on_it) {
            match entry.kind {
                ArKind::Penalty | ArKind::DebitNote => {
                    charges = charges.checked_add(entry.amount)?;
                }
                ArKind::CreditNote => credited = credited.checked_sub(entry.amount)?,
                ArKind::Invoice | ArKind::Payment | ArKind::Refund | ArKind::PaymentReversal => {}
            }
        }
        let mut paid = Money::from_minor(0, currency);
        for payment in payments
            .iter()
            .filter(|p| p.state == PaymentState::Received)
        {
            for allocation in payment.allocations.iter().filter(|a| a.invoice == *number) {
                paid = paid.checked_add(allocation.amount)?;
            }
        }
        balances.push(InvoiceBalance {
            invoice: number.clone(),
            payer: invoice.payer.clone(),
            issued_on: invoice.issued_on,
            due_on: invoice
                .due_on
                .unwrap_or_else(|| add_days(invoice.issued_on, payment_terms_days)),
            total: invoice.draft.totals.gross.money,
            charges,
            paid,
            credited,
        });
    }
    balances.sort_by(|a, b| {
        (a.due_on, a.issued_on, &a.invoice).cmp(&(b.due_on, b.issued_on, &b.invoice))
    });
    Ok(balances)
}

/// Refuses zero, negative, and amounts finer than the currency's minor units.
fn positive_minor(amount: &Money, what: &str) -> Result<(), FinanceError> {
    if amount.amount <= Decimal::ZERO {
        return Err(FinanceError::InvalidAmount(format!(
            "{what} {amount} must be more than zero"
        )));
    }
    if amount.to_minor().is_err() {
        return Err(FinanceError::InvalidAmount(format!(
            "{what} {amount} has more decimals than {} allows ({})",
            amount.currency,
            amount.currency.minor_units()
        )));
    }
    Ok(())
}

/// Whether `text` is a card number: 13 to 19 digits (spaces and dashes ignored) passing the
/// Luhn check.
pub fn looks_like_card_number(text: &str) -> bool {
    let digits: Vec<u32> = text
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .map(|c| c.to_digit(10))
        .collect::<Option<Vec<u32>>>()
        .unwrap_or_default();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn required(method: &'static str, value: &str, what: &str) -> Result<(), FinanceError> {
    if value.trim().is_empty() {
        return Err(FinanceError::MethodDetails {
            method,
            message: format!("{what} is required"),
        });
    }
    Ok(())
}

/// Checks a payment before it is recorded: currency, amount and the method's details.
pub fn validate_payment(
    amount: &Money,
    method: &PaymentMethod,
    cashier: Option<&str>,
    account: &AccountId,
    account_currency: Currency,
) -> Result<(), FinanceError> {
    if amount.currency != account_currency {
        return Err(FinanceError::CurrencyMismatch {
            account: account.clone(),
            given: amount.currency,
            expected: account_currency,
        });
    }
    positive_minor(amount, "payment")?;
    let name = method.as_str();
    match method {
        PaymentMethod::Card { token, .. } => {
            required(name, token, "the gateway token")?;
            if looks_like_card_number(token) {
                return Err(FinanceError::CardNumberRefused);
            }
        }
        PaymentMethod::DirectDebit { mandate } => required(name, mandate, "the mandate")?,
        PaymentMethod::Ach { reference } => required(name, reference, "the reference")?,
        PaymentMethod::Cash => required(name, cashier.unwrap_or(""), "the cashier")?,
        PaymentMethod::Cheque { number, .. } => required(name, number, "the cheque number")?,
        PaymentMethod::Voucher { code } => required(name, code, "the voucher code")?,
        PaymentMethod::Advance => {}
    }
    Ok(())
}

/// Allocates `amount` to `balances`: oldest first by default, or as `explicit` says. What is
/// not allocated stays on the account as credit.
pub fn allocate(
    amount: Money,
    balances: &[InvoiceBalance],
    explicit: Option<&[AllocationRequest]>,
    at: Timestamp,
) -> Result<Vec<Allocation>, FinanceError> {
    let currency = amount.currency;
    let mut allocations = Vec::new();
    let Some(requests) = explicit else {
        let mut left = amount;
        for balance in oldest_first(balances) {
            if left.amount <= Decimal::ZERO {
                break;
            }
            let outstanding = balance.outstanding();
            if outstanding.is_zero() {
                continue;
            }
            let take = if outstanding.amount < left.amount {
                outstanding
            } else {
                left
            };
            left = left.checked_sub(take)?;
            allocations.push(Allocation {
                invoice: balance.invoice.clone(),
                amount: take,
                at,
            });
        }
        return Ok(allocations);
    };
    let mut seen: BTreeSet<&SmolStr> = BTreeSet::new();
    let mut total = Money::zero(currency);
    for request in requests {
        let balance = balances
            .iter()
            .find(|b| b.invoice == request.invoice)
            .ok_or_else(|| FinanceError::UnknownInvoice(request.invoice.clone()))?;
        if !seen.insert(&request.invoice) {
            return Err(FinanceError::DuplicateAllocation(request.invoice.clone()));
        }
        let asked = Money::new(request.amount, currency);
        positive_minor(&asked, "allocation")?;
        let outstanding = balance.outstanding();
        if outstanding.currency != currency {
            return Err(FinanceError::CurrencyMismatch {
                account: balance.payer.clone(),
                given: currency,
                expected: outstanding.currency,
            });
        }
        if asked.amount > outstanding.amount {
            return Err(FinanceError::AllocationExceedsOutstanding {
                invoice: request.invoice.clone(),
                outstanding: outstanding.to_string(),
                asked: asked.to_string(),
            });
        }
        total = total.checked_add(asked)?;
        allocations.push(Allocation {
            invoice: request.invoice.clone(),
            amount: asked,
            at,
        });
    }
    if total.amount > amount.amount {
        return Err(FinanceError::AllocationExceedsPayment {
            allocated: total.to_string(),
            amount: amount.to_string(),
        });
    }
    Ok(allocations)
}

/// Allocates the unallocated credit of received payments (in slice order) to the invoices still
/// outstanding (oldest first); returns the indexes of the payments changed.
///
/// `balances` must already count the payments' existing allocations (as
/// [`invoice_balances`] does); what earlier payments allocate in this call is counted here.
pub fn apply_credit(
    payments: &mut [Payment],
    balances: &[InvoiceBalance],
    at: Timestamp,
) -> Vec<usize> {
    let mut open: Vec<(SmolStr, Money)> = oldest_first(balances)
        .into_iter()
        .map(|b| (b.invoice.clone(), b.outstanding()))
        .filter(|(_, owed)| owed.amount > Decimal::ZERO)
        .collect();
    let mut changed = Vec::new();
    for (index, payment) in payments.iter_mut().enumerate() {
        if payment.state != PaymentState::Received {
            continue;
        }
        let mut left = payment.unallocated();
        let mut touched = false;
        for (invoice, owed) in open.iter_mut() {
            if left.amount <= Decimal::ZERO {
                break;
            }
            if owed.amount <= Decimal::ZERO || owed.currency != left.currency {
                continue;
            }
            let take = owed.amount.min(left.amount);
            owed.amount -= take;
            left.amount -= take;
            payment.allocations.push(Allocation {
                invoice: invoice.clone(),
                amount: Money::new(take, left.currency),
                at,
            });
            touched = true;
        }
        if touched {
            changed.push(index);
        }
    }
    changed
}

/// The payment after refunding `amount` of it: taken from its unallocated credit first, then
/// from its allocations newest first (those invoices owe again).
pub fn plan_refund(payment: &Payment, amount: Money) -> Result<Payment, FinanceError> {
    if matches!(payment.state, PaymentState::Reversed { .. }) {
        return Err(FinanceError::PaymentReversed(payment.id.clone()));
    }
    if amount.currency != payment.amount.currency {
        return Err(FinanceError::CurrencyMismatch {
            account: payment.account.clone(),
            given: amount.currency,
            expected: payment.amount.currency,
        });
    }
    positive_minor(&amount, "refund")?;
    let refundable = payment.amount.checked_sub(payment.refunded)?;
    let exceeds = || FinanceError::RefundExceedsPayment {
        payment: payment.id.clone(),
        refundable: refundable.to_string(),
        asked: amount.to_string(),
    };
    if amount.amount > refundable.amount {
        return Err(exceeds());
    }
    let mut updated = payment.clone();
    let credit = payment.unallocated().amount.max(Decimal::ZERO);
    let mut rest = amount.amount - amount.amount.min(credit);
    while rest > Decimal::ZERO {
        let Some(newest) = updated.allocations.last_mut() else {
            return Err(exceeds());
        };
        if newest.amount.amount <= rest {
            rest -= newest.amount.amount;
            updated.allocations.pop();
        } else {
            newest.amount.amount -= rest;
            rest = Decimal::ZERO;
        }
    }
    updated.refunded = updated.refunded.checked_add(amount)?;
    Ok(updated)
}

/// The payment reversed (a bounced cheque, a charge-back), and what the reversal entry adds to
/// what the customer owes: the payment less what was refunded of it.
pub fn plan_reversal(
    payment: &Payment,
    reason: &str,
    by: &str,
    at: Timestamp,
) -> Result<(Payment, Money), FinanceError> {
    if matches!(payment.state, PaymentState::Reversed { .. }) {
        return Err(FinanceError::PaymentReversed(payment.id.clone()));
    }
    let owed = payment.amount.checked_sub(payment.refunded)?;
    let mut reversed = payment.clone();
    reversed.state = PaymentState::Reversed {
        reason: reason.to_string(),
        at,
        by: SmolStr::new(by),
    };
    Ok((reversed, owed))
}
