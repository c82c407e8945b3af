//! Financial periods: partial close, close, reopen; permission-checked by the API
//! (`period.close`, `period.reopen`), audited with the state before and after.

use tollgate_domain::admin::AuditRecord;
use tollgate_domain::finance::{
    ClosedScope, FinanceWrite, FinancialPeriod, PeriodAction, PeriodEvent,
};

use super::payments::Actor;
use super::{Finance, FinanceFailure};

/// A period change as the API takes it.
#[derive(Debug, Clone)]
pub enum PeriodChange {
    /// Close some accounts or services (or, without a scope, everything).
    Close {
        /// What to close; `None` finishes the close.
        scope: Option<ClosedScope>,
        /// Close over un-billed usage (needs a reason).
        force: bool,
        /// Why.
        reason: Option<String>,
    },
    /// Open again.
    Reopen {
        /// Why (required).
        reason: String,
    },
}

impl Finance {
    /// A period: stored, or open when never touched.
    pub fn period(&self, id: &str) -> Result<FinancialPeriod, FinanceFailure> {
        match self.store.period(id)? {
            Some(p) => Ok(p),
            None => Ok(FinancialPeriod::new(id)?),
        }
    }

    /// Applies `change` to period `id`. Blocking.
    pub fn change_period(
        &self,
        id: &str,
        change: &PeriodChange,
        by: &Actor,
    ) -> Result<FinancialPeriod, FinanceFailure> {
        let _guard = self.locked();
        self.retrying(|| {
            let before = self.period(id)?;
            let mut period = before.clone();
            let now = self.now();
            let today = self.date_of(now);
            let mut event = PeriodEvent {
                action: PeriodAction::Close,
                at: now,
                by: by.principal.clone(),
                reason: None,
                scope: None,
                forced: false,
                unbilled: Vec::new(),
            };
            let operation = match change {
                PeriodChange::Close {
                    scope,
                    force,
                    reason,
                } => {
                    event.reason = reason.clone();
                    event.forced = *force;
                    // Cheap refusals first: the un-billed usage check reads every payer's usage.
                    let mut probe = period.clone();
                    match scope {
                        Some(s) => probe.partially_close(s.clone(), today, event.clone())?,
                        None => probe.close(today, event.clone())?,
                    }
                    let unbilled = self.unbilled_payers(&period, scope.as_ref())?;
                    if !unbilled.is_empty() {
                        if !*force {
                            return Err(tollgate_domain::finance::FinanceError::UnbilledUsage {
                                period: period.id.clone(),
                                accounts: unbilled,
                            }
                            .into());
                        }
                        event.unbilled = unbilled;
                    } else {
                        event.forced = false;
                    }
                    match scope {
                        Some(s) => {
                            period.partially_close(s.clone(), today, event)?;
                            "period.partial_close"
                        }
                        None => {
                            period.close(today, event)?;
                            "period.close"
                        }
                    }
                }
                PeriodChange::Reopen { reason } => {
                    event.reason = Some(reason.clone());
                    period.reopen(event)?;
                    "period.reopen"
                }
            };
            let write = FinanceWrite {
                periods: vec![(period.clone(), before.version)],
                audit: vec![AuditRecord::new(
                    now,
                    &by.principal,
                    operation,
                    format!("period/{}", period.id),
                    &by.request_id,
                    serde_json::to_value(&before).ok(),
                    serde_json::to_value(&period).ok(),
                )],
                ..FinanceWrite::default()
            };
            self.commit(write)?;
            Ok(period)
        })
    }
}
