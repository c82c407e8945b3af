//! Payments, refunds and reversals of postpaid accounts (prepaid top-ups go to the subscriber's
//! balance through its actor; see the API).
//!
//! A payment is written once per key with its allocations, its receivable entry, and, when it
//! settles the account's overdue invoices, the settled dunning cases and the lifted suspension,
//! all in one write. Service is then resumed by [`super::service`].

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Deserialize;
use smol_str::SmolStr;
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::finance::allocation::{
    allocate, apply_credit, invoice_balances, plan_refund, plan_reversal, validate_payment,
};
use tollgate_domain::finance::collect::settle;
use tollgate_domain::finance::{
    AccountDunning, AllocationRequest, ArEntry, ArKind, FinanceError, FinanceWrite, Payment,
    PaymentMethod, PaymentState, Refund,
};
use tollgate_domain::ids::AccountId;
use tollgate_domain::money::{Currency, Money};

use super::{Finance, FinanceFailure, Receivables};

/// Counter of payment ids.
const PAYMENT_COUNTER: &str = "payment";
/// Counter of refund ids.
const REFUND_COUNTER: &str = "refund";

/// A payment as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// Idempotency key: the same key answers with the same payment and records nothing again.
    pub key: String,
    /// The paying account (a payer: the account its invoices are billed to).
    #[serde(default)]
    pub account: String,
    /// Instead of `account`: a prepaid subscriber whose balance the payment tops up.
    #[serde(default)]
    pub subscriber: Option<String>,
    /// Amount, as a string (`"102.00"`).
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// Currency (ISO 4217); must be the account's.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// How: `{"type": "card", "token": "tok_..."}`, `{"type": "cash"}`, `{"type": "cheque",
    /// "number": "..."}`, `direct_debit` (mandate), `ach` (reference), `voucher` (code),
    /// `advance`.
    #[schema(value_type = Object)]
    pub method: PaymentMethod,
    /// Value date (default: today).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub received_on: Option<Date>,
    /// Who took the money (required for cash).
    #[serde(default)]
    pub cashier: Option<String>,
    /// Free reference (bank statement line, receipt number).
    #[serde(default)]
    pub reference: Option<String>,
    /// Explicit allocation to invoices (default: oldest due first).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub allocations: Option<Vec<AllocationRequest>>,
}

/// Who asks.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User name.
    pub principal: SmolStr,
    /// Request id.
    pub request_id: SmolStr,
}

fn check_key(key: &str) -> Result<(), FinanceFailure> {
    if key.trim().is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
        return Err(FinanceFailure::Refused {
            code: "request.bad_key",
            message: "the key must be 1 to 128 printable characters".into(),
        });
    }
    Ok(())
}

/// Whether a stored payment is what `request` asked (same key, same payment).
fn same_payment(stored: &Payment, request: &PaymentRequest) -> bool {
    stored.account.as_str() == request.account
        && stored.amount == Money::new(request.amount, request.currency)
        && stored.method == request.method
}

impl Finance {
    /// Records a payment (or answers the one recorded under its key: `false`). Blocking.
    pub fn record_payment(
        &self,
        request: &PaymentRequest,
        by: &Actor,
    ) -> Result<(Payment, bool), FinanceFailure> {
        check_key(&request.key)?;
        let _guard = self.locked();
        self.retrying(|| {
            if let Some(stored) = self.store.payment_by_key(&request.key)? {
                if same_payment(&stored, request) {
                    return Ok((stored, false));
                }
                return Err(FinanceError::KeyReused(request.key.as_str().into()).into());
            }
            let payer = AccountId::new(&request.account);
            let r = self.receivables(&payer)?;
            if !r.account.is_payer() {
                return Err(FinanceFailure::Refused {
                    code: "payment.not_a_payer",
                    message: format!(
                        "account {payer} is paid by another account; record the payment on its payer"
                    ),
                });
            }
            let amount = Money::new(request.amount, request.currency);
            validate_payment(
                &amount,
                &request.method,
                request.cashier.as_deref(),
                &payer,
                r.account.currency,
            )?;
            if let Some(explicit) = &request.allocations {
                self.check_explicit(&payer, explicit)?;
            }
            let now = self.now();
            let today = self.date_of(now);
            let received_on = request.received_on.unwrap_or(today);
            if received_on > today {
                return Err(FinanceFailure::Refused {
                    code: "payment.future_date",
                    message: format!(
                        "a payment received on {received_on} is in the future (today is {today})"
                    ),
                });
            }
            let allocations = allocate(amount, &r.balances, request.allocations.as_deref(), now)?;
            let seq = self.store.counter(PAYMENT_COUNTER)?;
            let payment = Payment {
                id: smol_str::format_smolstr!("pay-{:020}", seq + 1),
                key: request.key.as_str().into(),
                account: payer.clone(),
                customer: r.account.customer.clone(),
                amount,
                method: request.method.clone(),
                received_on,
                recorded_at: now,
                recorded_by: by.principal.clone(),
                cashier: request.cashier.as_deref().map(SmolStr::new),
                reference: request.reference.clone(),
                allocations,
                refunded: Money::from_minor(0, amount.currency),
                state: PaymentState::Received,
            };
            let entry = ArEntry {
                key: smol_str::format_smolstr!("payment:{}", payment.key),
                account: payer.clone(),
                kind: ArKind::Payment,
                document: payment.id.clone(),
                invoice: None,
                amount: amount.negate(),
                on: received_on,
                at: now,
                description: format!("Payment ({})", request.method.as_str()),
            };
            let mut write = FinanceWrite {
                entries: vec![entry.clone()],
                counters: vec![(PAYMENT_COUNTER.into(), seq, seq + 1)],
                audit: vec![AuditRecord::new(
                    now,
                    &by.principal,
                    "payment.record",
                    format!("payment/{}", payment.id),
                    &by.request_id,
                    None,
                    serde_json::to_value(&payment).ok(),
                )],
                ..FinanceWrite::default()
            };
            // Earlier credit (over-payments) is allocated with the new money.
            let mut payments = r.payments.clone();
            payments.push(payment);
            let mut entries = r.entries.clone();
            entries.push(entry);
            self.settle_into(&r, payments, &entries, today, &mut write)?;
            let payment = write
                .payments
                .iter()
                .find(|p| p.key.as_str() == request.key)
                .cloned()
                .ok_or_else(|| FinanceFailure::Busy("payment missing from its write".into()))?;
            self.commit(write)?;
            self.metrics
                .payments
                .with_label_values(&[request.method.as_str()])
                .inc();
            Ok((payment, true))
        })
    }

    /// Explicit allocations may name only invoices of the paying account.
    fn check_explicit(
        &self,
        payer: &AccountId,
        explicit: &[AllocationRequest],
    ) -> Result<(), FinanceFailure> {
        for a in explicit {
            let Some(invoice) = self.runs.invoice(&a.invoice)? else {
                return Err(FinanceError::UnknownInvoice(a.invoice.clone()).into());
            };
            if invoice.payer != *payer {
                return Err(FinanceError::ForeignInvoice {
                    invoice: a.invoice.clone(),
                    payer: invoice.payer.clone(),
                    account: payer.clone(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Adds to `write`: `payments` (every one changed, with credit applied to outstanding
    /// invoices), and the dunning cases settled and the suspension lifted by the new balances.
    pub(crate) fn settle_into(
        &self,
        r: &Receivables,
        mut payments: Vec<Payment>,
        entries: &[ArEntry],
        today: Date,
        write: &mut FinanceWrite,
    ) -> Result<(), FinanceFailure> {
        let now = self.now();
        let terms = r.setup.payment_terms_days;
        let balances = invoice_balances(&r.invoices, &payments, entries, terms)?;
        let changed = apply_credit(&mut payments, &balances, now);
        let balances = invoice_balances(&r.invoices, &payments, entries, terms)?;
        for (i, p) in payments.iter().enumerate() {
            let is_new = !r.payments.iter().any(|old| old.id == p.id);
            if is_new || changed.contains(&i) {
                write.payments.push(p.clone());
            }
        }
        let cases = self.store.cases(&r.account.id)?;
        let settlement = settle(&balances, &cases, &r.dunning, today);
        write.cases.extend(settlement.cases);
        if settlement.resume {
            let mut state = r.dunning.clone();
            state.suspended = false;
            state.converged = false;
            state.changed_at = Some(now);
            state.reason = Some(format!("overdue invoices settled on {today}"));
            write.accounts.push(state);
        }
        Ok(())
    }

    /// Refunds (part of) a payment, once per key. Blocking.
    pub fn refund(
        &self,
        payment_id: &str,
        key: &str,
        amount: Money,
        reason: &str,
        by: &Actor,
    ) -> Result<(Refund, bool), FinanceFailure> {
        check_key(key)?;
        if reason.trim().is_empty() {
            return Err(FinanceFailure::Refused {
                code: "refund.reason_required",
                message: "a refund needs a reason".into(),
            });
        }
        let _guard = self.locked();
        self.retrying(|| {
            if let Some(stored) = self.store.refund_by_key(key)? {
                if stored.payment.as_str() == payment_id && stored.amount == amount {
                    return Ok((stored, false));
                }
                return Err(FinanceError::KeyReused(key.into()).into());
            }
            let payment = self.payment(payment_id)?;
            let updated = plan_refund(&payment, amount)?;
            let now = self.now();
            let today = self.date_of(now);
            let seq = self.store.counter(REFUND_COUNTER)?;
            let refund = Refund {
                id: smol_str::format_smolstr!("ref-{:020}", seq + 1),
                key: key.into(),
                payment: payment.id.clone(),
                account: payment.account.clone(),
                amount,
                reason: reason.to_string(),
                at: now,
                by: by.principal.clone(),
            };
            let write = FinanceWrite {
                entries: vec![ArEntry {
                    key: smol_str::format_smolstr!("refund:{key}"),
                    account: payment.account.clone(),
                    kind: ArKind::Refund,
                    document: refund.id.clone(),
                    invoice: None,
                    amount,
                    on: today,
                    at: now,
                    description: format!("Refund of payment {}: {reason}", payment.id),
                }],
                payments: vec![updated.clone()],
                refunds: vec![refund.clone()],
                counters: vec![(REFUND_COUNTER.into(), seq, seq + 1)],
                audit: vec![AuditRecord::new(
                    now,
                    &by.principal,
                    "payment.refund",
                    format!("payment/{}", payment.id),
                    &by.request_id,
                    serde_json::to_value(&payment).ok(),
                    serde_json::to_value(&updated).ok(),
                )],
                ..FinanceWrite::default()
            };
            self.commit(write)?;
            self.metrics.refunds.with_label_values(&["refund"]).inc();
            Ok((refund, true))
        })
    }

    /// Reverses a payment (bounced cheque, charge-back): its allocations no longer count and a
    /// reversal entry puts the money back on what the account owes. Answers the payment and
    /// whether it was reversed now. Blocking.
    pub fn reverse(
        &self,
        payment_id: &str,
        reason: &str,
        by: &Actor,
    ) -> Result<(Payment, bool), FinanceFailure> {
        if reason.trim().is_empty() {
            return Err(FinanceFailure::Refused {
                code: "payment.reason_required",
                message: "a reversal needs a reason".into(),
            });
        }
        let _guard = self.locked();
        self.retrying(|| {
            let payment = self.payment(payment_id)?;
            if matches!(payment.state, PaymentState::Reversed { .. }) {
                return Ok((payment, false));
            }
            let now = self.now();
            let (updated, owed) = plan_reversal(&payment, reason, &by.principal, now)?;
            let write = FinanceWrite {
                entries: vec![ArEntry {
                    key: smol_str::format_smolstr!("reversal:{}", payment.id),
                    account: payment.account.clone(),
                    kind: ArKind::PaymentReversal,
                    document: payment.id.clone(),
                    invoice: None,
                    amount: owed,
                    on: self.date_of(now),
                    at: now,
                    description: format!("Payment {} reversed: {reason}", payment.id),
                }],
                payments: vec![updated.clone()],
                audit: vec![AuditRecord::new(
                    now,
                    &by.principal,
                    "payment.reverse",
                    format!("payment/{}", payment.id),
                    &by.request_id,
                    serde_json::to_value(&payment).ok(),
                    serde_json::to_value(&updated).ok(),
                )],
                ..FinanceWrite::default()
            };
            self.commit(write)?;
            self.metrics.refunds.with_label_values(&["reversal"]).inc();
            Ok((updated, true))
        })
    }

    /// A payment that exists.
    pub fn payment(&self, id: &str) -> Result<Payment, FinanceFailure> {
        self.store
            .payment(id)?
            .ok_or_else(|| FinanceFailure::NotFound {
                code: "payment.not_found",
                message: format!("no payment {id}"),
            })
    }

    /// The dunning state of `account` (untouched when never dunned).
    pub fn dunning_state(&self, account: &AccountId) -> Result<AccountDunning, FinanceFailure> {
        Ok(self
            .store
            .account_dunning(account)?
            .unwrap_or_else(|| AccountDunning::new(account.clone())))
    }
}
