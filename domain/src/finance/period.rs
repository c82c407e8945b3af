//! Financial periods: calendar months that finance closes.
//!
//! `open -> partially_closed -> closed`, and `closed | partially_closed -> open` again by a
//! reopen with a reason. A partial close closes some accounts or services of the month (the rest
//! stay open); closing again with more scope widens it; closing without a scope finishes the
//! close. Every transition is kept in the period's history with who, when and why.
//!
//! What "closed" protects: invoices and ledger entries of the period are never changed (they
//! never are: both are append-only); corrections that concern a closed period (rerating) are
//! booked as credit or debit notes in the open period instead.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::error::FinanceError;
use crate::ids::AccountId;

/// Where a period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodState {
    /// Nothing closed.
    Open,
    /// Some accounts or services closed.
    PartiallyClosed,
    /// Everything closed.
    Closed,
}

impl PeriodState {
    /// As text.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodState::Open => "open",
            PeriodState::PartiallyClosed => "partially_closed",
            PeriodState::Closed => "closed",
        }
    }
}

/// Accounts and services closed by a partial close.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedScope {
    /// Accounts closed (all their services).
    #[serde(default)]
    pub accounts: BTreeSet<AccountId>,
    /// Services closed (for every account).
    #[serde(default)]
    pub services: BTreeSet<SmolStr>,
}

impl ClosedScope {
    /// Whether it names nothing.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.services.is_empty()
    }
}

/// A transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodAction {
    /// Some accounts or services closed.
    PartialClose,
    /// The close finished.
    Close,
    /// Opened again.
    Reopen,
}

/// One transition in a period's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodEvent {
    /// What.
    pub action: PeriodAction,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub by: SmolStr,
    /// Why (required to reopen and to force a close).
    pub reason: Option<String>,
    /// What a partial close closed.
    pub scope: Option<ClosedScope>,
    /// Whether a close was forced over un-billed usage.
    pub forced: bool,
    /// The payers with un-billed usage a forced close went over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unbilled: Vec<AccountId>,
}

/// A financial period (a calendar month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinancialPeriod {
    /// `YYYY-MM`.
    pub id: SmolStr,
    /// First day.
    pub start: Date,
    /// First day after.
    pub end: Date,
    /// State.
    pub state: PeriodState,
    /// What is closed while partially closed (empty otherwise).
    pub closed: ClosedScope,
    /// Bumped by every transition (optimistic concurrency).
    pub version: u64,
    /// Transitions, oldest first.
    pub history: Vec<PeriodEvent>,
}

impl FinancialPeriod {
    /// The open period `id` (`YYYY-MM`).
    pub fn new(id: &str) -> Result<FinancialPeriod, FinanceError> {
        let bad = || FinanceError::InvalidPeriod(id.to_string());
        let (year, month) = id.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i16 = year.parse().map_err(|_| bad())?;
        let month: i8 = month.parse().map_err(|_| bad())?;
        let start = Date::new(year, month, 1).map_err(|_| bad())?;
        let end = start
            .checked_add(jiff::Span::new().months(1))
            .map_err(|_| bad())?;
        Ok(FinancialPeriod {
            id: SmolStr::new(id),
            start,
            end,
            state: PeriodState::Open,
            closed: ClosedScope::default(),
            version: 0,
            history: Vec::new(),
        })
    }

    /// The id of the month containing `day`.
    pub fn id_of(day: Date) -> SmolStr {
        smol_str::format_smolstr!("{:04}-{:02}", day.year(), day.month())
    }

    /// Whether `day` is in the period.
    pub fn contains(&self, day: Date) -> bool {
        self.start <= day && day < self.end
    }

    /// Whether `service` of `account` is closed in this period.
    pub fn is_closed_for(&self, account: &AccountId, service: &str) -> bool {
        match self.state {
            PeriodState::Open => false,
            PeriodState::Closed => true,
            PeriodState::PartiallyClosed => {
                self.closed.accounts.contains(account) || self.closed.services.contains(service)
            }
        }
    }

    /// Whether anything of `account` is closed in this period (whole period or the account).
    pub fn is_closed_for_account(&self, account: &AccountId) -> bool {
        match self.state {
            PeriodState::Open => false,
            PeriodState::Closed => true,
            PeriodState::PartiallyClosed => self.closed.accounts.contains(account),
        }
    }

    fn refuse(&self, action: &'static str) -> FinanceError {
        FinanceError::PeriodState {
            period: self.id.clone(),
            state: self.state.as_str(),
            action,
        }
    }

    fn ended(&self, today: Date) -> Result<(), FinanceError> {
        if today < self.end {
            return Err(FinanceError::PeriodNotEnded {
                period: self.id.clone(),
                end: self.end,
                today,
            });
        }
        Ok(())
    }

    /// Closes `scope` (widening an earlier partial close). `event` says who and when.
    pub fn partially_close(
        &mut self,
        scope: ClosedScope,
        today: Date,
        mut event: PeriodEvent,
    ) -> Result<(), FinanceError> {
        if scope.is_empty() {
            return Err(FinanceError::EmptyScope);
        }
        if self.state == PeriodState::Closed {
            return Err(self.refuse("partially close"));
        }
        self.ended(today)?;
        if event.forced && event.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(FinanceError::ReasonRequired("force a close"));
        }
        self.closed.accounts.extend(scope.accounts.iter().cloned());
        self.closed.services.extend(scope.services.iter().cloned());
        self.state = PeriodState::PartiallyClosed;
        event.action = PeriodAction::PartialClose;
        event.scope = Some(scope);
        self.version += 1;
        self.history.push(event);
        Ok(())
    }

    /// Finishes the close (from open or partially closed).
    pub fn close(&mut self, today: Date, mut event: PeriodEvent) -> Result<(), FinanceError> {
        if self.state == PeriodState::Closed {
            return Err(self.refuse("close"));
        }
        self.ended(today)?;
        if event.forced && event.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(FinanceError::ReasonRequired("force a close"));
        }
        self.state = PeriodState::Closed;
        self.closed = ClosedScope::default();
        event.action = PeriodAction::Close;
        event.scope = None;
        self.version += 1;
        self.history.push(event);
        Ok(())
    }

    /// Opens a closed or partially closed period again; `event.reason` is required.
    pub fn reopen(&mut self, mut event: PeriodEvent) -> Result<(), FinanceError> {
        if self.state == PeriodState::Open {
            return Err(self.refuse("reopen"));
        }
        if event.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(FinanceError::ReasonRequired("reopen a period"));
        }
        self.state = PeriodState::Open;
        self.closed = ClosedScope::default();
        event.action = PeriodAction::Reopen;
        event.scope = None;
        event.forced = false;
        self.version += 1;
        self.history.push(event);
        Ok(())
    }
}
