//! Durable partner-settlement state behind one trait, [`PartnerStore`], kept by every backend
//! with the same contract ([`super::contract`]).
//!
//! Reads are plain lookups. Every mutation is one [`PartnerWrite`], applied atomically: all of
//! it or nothing. What a caller decided from is checked inside the write, so a caller that read
//! stale state is refused ([`PartnerStoreError::Conflict`]) and retries from fresh reads:
//! - counters (statement and dispute sequences) move only from the value the caller read;
//! - partners are replaced only from the version read ([`PartnerRecord::version`]);
//! - agreements are replaced only from the number of versions read, so two concurrent
//!   amendments cannot both land;
//! - positions are replaced only from the number of items counted that the caller read
//!   ([`position_count`]: a position only grows, so any concurrent accumulation changes it);
//!   they are stored without the ids counted in memory: the item share written with every
//!   counted item is the durable dedupe index;
//! - a settlement item is resolved only while it is pending;
//! - a statement is updated (approved, released) only from the [`StatementStage`] read, and
//!   only if it is stored.
//!
//! Statement numbers and reconciliation report ids are unique: a write that adds one already
//! stored is refused, so a retry after a crash never issues a second statement. Item shares
//! ([`StoredShare`]) are unique per (partner, period start, item): a write adding one already
//! stored is refused, so no record is counted twice.

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::agreement::{Agreement, ShareTarget};
use super::dispute::Dispute;
use super::partner::Partner;
use super::reconcile::{Compared, Reconciliation};
use super::run::{SettlementItem, SettlementRun};
use super::share::{ItemShare, Position};
use super::statement::{PartnerStatement, StatementStage};
use crate::admin::AuditRecord;
use crate::ids::{CdrId, PartnerId};
use crate::ledger::StoreError;
use crate::money::Currency;

/// Why a partner write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerStoreError {
    /// What the write was decided from changed: re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored partner with its version (1 after the first write, +1 per change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRecord {
    /// The partner.
    pub partner: Partner,
    /// Version of this record.
    pub version: u64,
}

/// One bad line of the partner's statement, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportProblem {
    /// Line number.
    pub line: u64,
    /// Stable code (`reconcile.*`).
    pub code: SmolStr,
    /// Explanation.
    pub message: String,
}

/// A stored reconciliation of one statement with the partner's own statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationReport {
    /// Id (unique).
    pub id: SmolStr,
    /// Statement number reconciled.
    pub statement: SmolStr,
    /// Partner.
    pub partner: PartnerId,
    /// When it was made.
    pub created_at: Timestamp,
    /// Who made it.
    pub created_by: SmolStr,
    /// Currency.
    pub currency: Currency,
    /// Records on both sides within the tolerance.
    pub matched: Vec<Compared<CdrId>>,
    /// Records on both sides with different amounts.
    pub differing: Vec<Compared<CdrId>>,
    /// Records only we counted.
    pub only_ours: Vec<Compared<CdrId>>,
    /// Records only they claim.
    pub only_theirs: Vec<Compared<CdrId>>,
    /// Every statement line.
    pub lines: Vec<Compared<ShareTarget>>,
    /// Totals.
    pub total: Compared<()>,
    /// Their bad lines.
    pub problems: Vec<ReportProblem>,
}

impl ReconciliationReport {
    /// The report of `outcome` for statement `statement`.
    pub fn new(
        id: impl Into<SmolStr>,
        statement: impl Into<SmolStr>,
        partner: PartnerId,
        created_at: Timestamp,
        created_by: impl Into<SmolStr>,
        outcome: &Reconciliation,
    ) -> ReconciliationReport {
        ReconciliationReport {
            id: id.into(),
            statement: statement.into(),
            partner,
            created_at,
            created_by: created_by.into(),
            currency: outcome.currency,
            matched: outcome.matched.clone(),
            differing: outcome.differing.clone(),
            only_ours: outcome.only_ours.clone(),
            only_theirs: outcome.only_theirs.clone(),
            lines: outcome.lines.clone(),
            total: outcome.total.clone(),
            problems: outcome
                .problems
                .iter()
                .map(|p| ReportProblem {
                    line: p.line,
                    code: SmolStr::new(p.code),
                    message: p.message.clone(),
                })
                .collect(),
        }
    }

    /// `theirs - ours` of the totals.
    pub fn difference(&self) -> Decimal {
        self.total.difference
    }
}

/// What a position's replacement is checked against: records and invoices it counts.
pub fn position_count(position: &Position) -> u64 {
    // Rows written before `counted` existed kept their ids instead.
    let ids = (position.counted_records.len() + position.counted_invoices.len()) as u64;
    position.counted.max(ids)
}

/// The exact share of one record (or invoice) counted in a partner's position of the period
/// starting on `period_start`, kept for record-level reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredShare {
    /// Partner.
    pub partner: PartnerId,
    /// Start of the settlement period.
    pub period_start: Date,
    /// The share, unrounded (its `item` is the record id or invoice number).
    pub share: ItemShare,
}

/// One atomic change of partner-settlement state.
#[derive(Debug, Clone, Default)]
pub struct PartnerWrite {
    /// Partners to add or replace: (record with its new version, the version read; 0 when it
    /// was not stored).
    pub partners: Vec<(PartnerRecord, u64)>,
    /// Agreements to add or replace by id: (agreement, the number of versions read; 0 when it
    /// was not stored).
    pub agreements: Vec<(Agreement, u64)>,
    /// Positions to add or replace by (partner, period start): (position, the
    /// [`position_count`] read; 0 when it was not stored).
    pub positions: Vec<(Position, u64)>,
    /// Item shares to add, unique per (partner, period start, item): refused as a conflict
    /// when one is already stored (or twice in the write).
    pub items: Vec<StoredShare>,
    /// Statements to add (numbered; numbers unique).
    pub statements: Vec<PartnerStatement>,
    /// Stored statements to replace by number: (statement, the [`PartnerStatement::stage`]
    /// read). Refused as a conflict unless the statement is stored at that stage.
    pub statement_updates: Vec<(PartnerStatement, StatementStage)>,
    /// Reconciliation reports to add (ids unique).
    pub reconciliations: Vec<ReconciliationReport>,
    /// Disputes to add or replace (by id).
    pub disputes: Vec<Dispute>,
    /// Sequence counters to move: (name, value read, new value).
    pub counters: Vec<(SmolStr, u64, u64)>,
    /// A settlement item resolved (counted on its run). Refused as a conflict unless the stored
    /// item is pending.
    pub settlement_item: Option<SettlementItem>,
    /// Audit records.
    pub audit: Vec<AuditRecord>,
}

impl PartnerWrite {
    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.partners.is_empty()
            && self.agreements.is_empty()
            && self.positions.is_empty()
            && self.items.is_empty()
            && self.statements.is_empty()
            && self.statement_updates.is_empty()
            && self.reconciliations.is_empty()
            && self.disputes.is_empty()
            && self.counters.is_empty()
            && self.settlement_item.is_none()
            && self.audit.is_empty()
    }
}

/// Durable partner-settlement state.
pub trait PartnerStore: Send + Sync {
    /// Applies `write` atomically (see the module docs for what is checked).
    fn commit(&self, write: PartnerWrite) -> Result<(), PartnerStoreError>;

    /// A sequence counter (0 when never moved).
    fn counter(&self, name: &str) -> Result<u64, StoreError>;

    /// A partner with its version.
    fn partner(&self, id: &PartnerId) -> Result<Option<PartnerRecord>, StoreError>;
    /// Partners in id order after `after`, at most `limit`.
    fn partners(
        &self,
        after: Option<&PartnerId>,
        limit: usize,
    ) -> Result<Vec<PartnerRecord>, StoreError>;

    /// An agreement by id (with every version).
    fn agreement(&self, id: &str) -> Result<Option<Agreement>, StoreError>;
    /// A partner's agreements in id order (with every version).
    fn agreements(&self, partner: &PartnerId) -> Result<Vec<Agreement>, StoreError>;

    /// The share of one counted item (the durable dedupe index of positions: an item is counted
    /// once its share is stored).
    fn item_share(
        &self,
        partner: &PartnerId,
        period_start: Date,
        item: &str,
    ) -> Result<Option<ItemShare>, StoreError>;

    /// A partner's position for the period starting on `period_start`, as stored: without the
    /// ids counted in memory ([`Position::stored`]).
    fn position(
        &self,
        partner: &PartnerId,
        period_start: Date,
    ) -> Result<Option<Position>, StoreError>;

    /// Item shares of a partner's period starting on `period_start`, in item-id order after
    /// `after` (which need not be stored), at most `limit`.
    fn item_shares(
        &self,
        partner: &PartnerId,
        period_start: Date,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ItemShare>, StoreError>;

    /// A statement by number.
    fn statement(&self, number: &str) -> Result<Option<PartnerStatement>, StoreError>;
    /// A partner's statements in (period start, number) order; only the period starting on
    /// `period_start` if given.
    fn statements(
        &self,
        partner: &PartnerId,
        period_start: Option<Date>,
    ) -> Result<Vec<PartnerStatement>, StoreError>;

    /// Reconciliation reports of a statement in id order.
    fn reconciliations(&self, statement: &str) -> Result<Vec<ReconciliationReport>, StoreError>;

    /// A dispute.
    fn dispute(&self, id: &str) -> Result<Option<Dispute>, StoreError>;
    /// A partner's disputes in id order.
    fn disputes(&self, partner: &PartnerId) -> Result<Vec<Dispute>, StoreError>;

    /// Creates `run` with one pending item per partner and its audit record in one write, under
    /// the next id ([`super::run::settlement_run_id`]; `run.id` is ignored); when a run with
    /// the same key exists, returns it and writes nothing (`false`).
    fn create_settlement_run(
        &self,
        run: SettlementRun,
        partners: &[PartnerId],
        audit: AuditRecord,
    ) -> Result<(SettlementRun, bool), StoreError>;
    /// Marks a run's jobs published (and finishes it when every item is already resolved).
    fn mark_settlement_published(&self, run: &str, at: Timestamp) -> Result<(), StoreError>;
    /// A run.
    fn settlement_run(&self, id: &str) -> Result<Option<SettlementRun>, StoreError>;
    /// Runs, newest first, with an id below `before`, at most `limit`.
    fn settlement_runs(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SettlementRun>, StoreError>;
    /// Runs still publishing.
    fn unpublished_settlement_runs(&self) -> Result<Vec<SettlementRun>, StoreError>;
    /// Items of a run in partner order after `after`, at most `limit`; only failed ones if asked.
    fn settlement_items(
        &self,
        run: &str,
        failed_only: bool,
        after: Option<&PartnerId>,
        limit: usize,
    ) -> Result<Vec<SettlementItem>, StoreError>;
    /// One item.
    fn settlement_item(
        &self,
        run: &str,
        partner: &PartnerId,
    ) -> Result<Option<SettlementItem>, StoreError>;
    /// Marks a pending item failed and counts it (a settled item stays settled).
    fn fail_settlement_item(
        &self,
        run: &str,
        partner: &PartnerId,
        reason: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::reconcile::ClaimProblem;

    #[test]
    fn a_write_of_item_shares_or_statement_updates_is_not_empty() {
        use crate::partner::{ItemShare, PartnerStatement, ShareTarget, StatementStage};
        assert!(PartnerWrite::default().is_empty());
        let eur = Currency::from_code("EUR").unwrap();
        let money = crate::money::Money::new(Decimal::new(370_368, 3), eur);
        let share = ItemShare {
            item: "cdr-1".into(),
            target: ShareTarget::InvoiceTotal,
            version: jiff::civil::date(2026, 1, 1),
            units: 0,
            base: money,
            share: money,
            basis: "30%".into(),
            reversal: false,
        };
        let stored = StoredShare {
            partner: PartnerId::new("p1"),
            period_start: jiff::civil::date(2026, 3, 1),
            share,
        };
        let json = serde_json::to_vec(&stored).unwrap();
        assert_eq!(
            serde_json::from_slice::<StoredShare>(&json).unwrap(),
            stored
        );
        let items = PartnerWrite {
            items: vec![stored],
            ..PartnerWrite::default()
        };
        assert!(!items.is_empty());
        let amount = crate::billing::Amount::from_minor(0, eur);
        let statement = PartnerStatement {
            partner: PartnerId::new("p1"),
            agreement: "agr-1".into(),
            period: crate::billing::Period {
                start: jiff::civil::date(2026, 3, 1),
                end: jiff::civil::date(2026, 4, 1),
            },
            currency: eur,
            lines: Vec::new(),
            subtotal: amount,
            guarantee_top_up: amount,
            cap_cut: amount,
            net: amount,
            tax_lines: Vec::new(),
            tax: amount,
            total: amount,
            number: Some("PS-1".into()),
            approved: None,
            released: None,
            adjustments: Vec::new(),
        };
        let updates = PartnerWrite {
            statement_updates: vec![(statement, StatementStage::Issued)],
            ..PartnerWrite::default()
        };
        assert!(!updates.is_empty());
    }

    #[test]
    fn a_reconciliation_report_keeps_the_outcome_and_round_trips() {
        let eur = Currency::from_code("EUR").unwrap();
        let outcome = Reconciliation {
            currency: eur,
            matched: vec![Compared {
                key: CdrId::new("cdr-1"),
                ours: Decimal::new(30, 2),
                theirs: Decimal::new(30, 2),
                difference: Decimal::ZERO,
            }],
            differing: Vec::new(),
            only_ours: Vec::new(),
            only_theirs: Vec::new(),
            lines: Vec::new(),
            total: Compared {
                key: (),
                ours: Decimal::new(30, 2),
                theirs: Decimal::new(40, 2),
                difference: Decimal::new(10, 2),
            },
            problems: vec![ClaimProblem {
                line: 7,
                code: "reconcile.bad_amount",
                message: "x".into(),
            }],
        };
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let report =
            ReconciliationReport::new("rec-1", "PS-1", PartnerId::new("p1"), at, "ada", &outcome);
        assert_eq!(report.matched, outcome.matched);
        assert_eq!(report.difference(), Decimal::new(10, 2));
        assert_eq!(report.problems[0].code, "reconcile.bad_amount");
        let json = serde_json::to_vec(&report).unwrap();
        let back: ReconciliationReport = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, report);
    }
}
