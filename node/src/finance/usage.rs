//! Un-billed usage: payers with rated (postpaid) usage in a financial period that no invoice of
//! theirs covers. Closing a period with un-billed usage is refused unless forced.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use smol_str::SmolStr;
use tollgate_domain::billing::summarize_usage;
use tollgate_domain::finance::{ClosedScope, FinancialPeriod};
use tollgate_domain::ids::AccountId;
use tollgate_domain::ledger::{Mode, StoreError};

use super::{Finance, FinanceFailure};

impl Finance {
    fn boundary(&self, day: Date) -> Result<Timestamp, FinanceFailure> {
        day.to_zoned(self.timezone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| StoreError::Io(format!("period boundary {day}: {e}")).into())
    }

    /// Postpaid usage events of `account` between two dates, in `services` (all when empty).
    fn events(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
        services: &BTreeSet<SmolStr>,
    ) -> Result<u64, FinanceFailure> {
        if from >= to {
            return Ok(0);
        }
        let (start, end) = (self.boundary(from)?, self.boundary(to)?);
        let Some(acc) = self.customers.account(account)? else {
            return Ok(0);
        };
        let mut events = 0u64;
        for sub in self.customers.subscriptions_of(account)? {
            let Some(subscriber) = &sub.subscriber else {
                continue;
            };
            if self
                .profiles
                .get(subscriber)
                .is_some_and(|p| p.mode == Mode::Prepaid)
            {
                continue;
            }
            let rows = self.ledger.recent_usage(subscriber, usize::MAX)?;
            let (summary, _) = summarize_usage(
                rows.iter().map(Vec::as_slice),
                start,
                end,
                account,
                acc.currency,
            )
            .map_err(|e| FinanceFailure::Refused {
                code: e.code(),
                message: e.to_string(),
            })?;
            events += summary
                .iter()
                .filter(|s| services.is_empty() || services.contains(&s.service))
                .map(|s| s.events)
                .sum::<u64>();
        }
        Ok(events)
    }

    /// Payers with usage in `period` (within `scope` when given) not covered by their invoices.
    pub fn unbilled_payers(
        &self,
        period: &FinancialPeriod,
        scope: Option<&ClosedScope>,
    ) -> Result<Vec<AccountId>, FinanceFailure> {
        let forest = self.customers.forest()?;
        let plan = forest.billing_plan().map_err(|e| FinanceFailure::Refused {
            code: e.code(),
            message: e.to_string(),
        })?;
        let services = scope.map(|s| s.services.clone()).unwrap_or_default();
        let mut unbilled = Vec::new();
        for (payer, subtree) in plan {
            let accounts: Vec<AccountId> = subtree
                .into_iter()
                .map(|b| b.account)
                .filter(|a| {
                    scope.is_none_or(|s| {
                        s.accounts.is_empty()
                            || s.accounts.contains(a)
                            || s.accounts.contains(&payer)
                    })
                })
                .collect();
            if accounts.is_empty() {
                continue;
            }
            let invoices = self.invoices_of(&payer)?;
            let mut total = 0u64;
            let mut covered = 0u64;
            for account in &accounts {
                total += self.events(account, period.start, period.end, &services)?;
                for invoice in &invoices {
                    let from = invoice.period.start.max(period.start);
                    let to = invoice.period.end.min(period.end);
                    covered += self.events(account, from, to, &services)?;
                }
            }
            if total > covered {
                unbilled.push(payer);
            }
        }
        Ok(unbilled)
    }
}
