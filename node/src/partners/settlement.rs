//! Settlement runs: finance starts one through the API for a month (`POST /v1/settlement-runs
//! {period, partners?, key, force?, reason?}`); the run is recorded with one item per partner
//! whose agreement covers the month, and one job per partner goes to the job queue. The
//! settlement worker actor has the partner's actor count everything still in its inbox, then
//! builds the statement (the self-billing document) from the partner's position and the shares
//! of invoice totals, numbers it and writes it with the item in one write, then acknowledges.
//!
//! Exactly once per (run, partner): the item must be pending for the write to land; a partner
//! already settled for the month (by another run) gets that statement on its item, never a
//! second one.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::{Actor, AsyncContext, Context, Supervised};
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_adapters::jobs::{Delivery, Job, JobKind};
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::Amount;
use tollgate_domain::billing::run::{InvoiceFilter, RunState};
use tollgate_domain::billing::{NumberTemplate, Period};
use tollgate_domain::finance::{FinancialPeriod, PeriodState};
use tollgate_domain::ids::{CustomerId, PartnerId};
use tollgate_domain::partner::statement::{
    StatementAdjustment, StatementTax, build_statement_with,
};
use tollgate_domain::partner::{
    Agreement, InvoiceTotal, PartnerError, PartnerStatement, PartnerStatus, Position,
    SettlementItem, SettlementItemState, SettlementRun, ShareTarget,
};
use utoipa::ToSchema;

use super::{Caller, PartnerFailure, Partners, month, off_thread};
use crate::workers::{JobEnd, settle};

/// Numbering of self-billing documents (partner statements).
pub const STATEMENT_NUMBERS: &str = "SB-{yyyy}-{seq:06}";
/// The customer field naming the partner (reseller) that brought the customer: invoices of
/// such customers count for the partner's invoice-total shares.
pub const CUSTOMER_PARTNER_FIELD: &str = "partner";
/// Rows read per page.
const PAGE: usize = 1_000;

/// A request to start a settlement run.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSettlement {
    /// Settlement month, `YYYY-MM`.
    pub period: String,
    /// Partners to settle (default: every partner with an agreement covering the month).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub partners: Option<Vec<PartnerId>>,
    /// Idempotency key: the same key answers with the same run.
    pub key: String,
    /// Settle although the financial period is not closed (needs `reason`).
    #[serde(default)]
    pub force: bool,
    /// Why a forced run is needed (kept in the audit trail).
    #[serde(default)]
    pub reason: Option<String>,
}

/// What became of one settlement job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Settled now: the statement issued.
    Settled(SmolStr),
    /// Settled before (a redelivery, or the month settled by another run).
    AlreadyDone,
    /// Cannot be settled: recorded on the run; the job is dead-lettered.
    Failed {
        /// Reason code.
        reason: String,
        /// Message.
        message: String,
    },
    /// Storage failure, conflict or the partner's actor unavailable: try again.
    Retry(String),
}

/// The agreement of `agreements` whose term covers a day of `period` (terms of one partner
/// never overlap: see [`super::admin`]).
pub fn agreement_for<'a>(agreements: &'a [Agreement], period: &Period) -> Option<&'a Agreement> {
    agreements
        .iter()
        .find(|a| a.from < period.end && a.to.is_none_or(|to| to > period.start))
}

impl Partners {
    /// Partners to settle for `period`: the given ones (each must exist and have an agreement
    /// covering it) or every active or suspended partner with one.
    fn partners_to_settle(
        &self,
        period: &Period,
        given: Option<&[PartnerId]>,
    ) -> Result<Vec<PartnerId>, PartnerFailure> {
        if let Some(given) = given {
            let mut out: Vec<PartnerId> = Vec::new();
            for id in given {
                self.partner(id)?;
                if agreement_for(&self.store.agreements(id)?, period).is_none() {
                    return Err(PartnerFailure::Refused {
                        code: "settlement.no_agreement",
                        message: format!(
                            "partner {id} has no agreement covering {}",
                            FinancialPeriod::id_of(period.start)
                        ),
                    });
                }
                if !out.contains(id) {
                    out.push(id.clone());
                }
            }
            out.sort();
            return Ok(out);
        }
        let mut out = Vec::new();
        let mut after: Option<PartnerId> = None;
        loop {
            let page = self.store.partners(after.as_ref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|p| p.partner.id.clone());
            for record in page {
                let id = record.partner.id;
                if agreement_for(&self.store.agreements(&id)?, period).is_some() {
                    out.push(id);
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Records a settlement run (or finds the one with the same key). Blocking. Returns the
    /// run and whether it is new.
    pub fn create_settlement(
        &self,
        request: &StartSettlement,
        by: &Caller,
    ) -> Result<(SettlementRun, bool), PartnerFailure> {
        let key = request.key.trim();
        if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
            return Err(PartnerFailure::Refused {
                code: "request.bad_key",
                message: "the key must be 1 to 128 printable characters".into(),
            });
        }
        let period = month(&request.period)?;
        let month = FinancialPeriod::id_of(period.start);
        if let Some(existing) = self.settlement_run_by_key(key)? {
            if existing.period != period {
                return Err(PartnerFailure::State {
                    code: "request.key_reused",
                    message: format!(
                        "key {key:?} was used for run {} of {}; use a new key",
                        existing.id,
                        FinancialPeriod::id_of(existing.period.start)
                    ),
                });
            }
            return Ok((existing, false));
        }
        let now = self.now();
        let today = self.date_of(now);
        let reason = request
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if request.force && reason.is_none() {
            return Err(PartnerFailure::Refused {
                code: "settlement.reason_required",
                message: "a forced settlement run needs a reason".into(),
            });
        }
        let state = self
            .finance
            .period(&month)?
            .map(|p| p.state)
            .unwrap_or(PeriodState::Open);
        if !request.force {
            if today < period.end {
                return Err(PartnerFailure::State {
                    code: "settlement.period_open",
                    message: format!(
                        "{month} has not ended yet (today is {today}); settle it after its end, \
                         or force with a reason"
                    ),
                });
            }
            if state != PeriodState::Closed {
                return Err(PartnerFailure::State {
                    code: "settlement.period_open",
                    message: format!(
                        "financial period {month} is {}: close it first, or force with a reason",
                        state.as_str()
                    ),
                });
            }
        }
        let partners = self.partners_to_settle(&period, request.partners.as_deref())?;
        let run = SettlementRun {
            id: SmolStr::default(),
            key: key.into(),
            period,
            state: RunState::Publishing,
            created_by: by.principal.clone(),
            created_at: now,
            published_at: None,
            finished_at: None,
            total: partners.len() as u64,
            settled: 0,
            failed: 0,
        };
        let audit = AuditRecord::new(
            now,
            &by.principal,
            "settlement_run.create",
            format!("settlement_run/{key}"),
            &by.request_id,
            None,
            Some(serde_json::json!({
                "period": month,
                "key": key,
                "partners": partners,
                "forced": request.force,
                "reason": reason,
                "period_state": state.as_str(),
            })),
        );
        let (run, created) = self.store.create_settlement_run(run, &partners, audit)?;
        if !created && run.period != period {
            return Err(PartnerFailure::State {
                code: "request.key_reused",
                message: format!("key {key:?} was used for run {}; use a new key", run.id),
            });
        }
        Ok((run, created))
    }

    /// The run started under `key`, if any (runs are few: one or two a month).
    pub fn settlement_run_by_key(
        &self,
        key: &str,
    ) -> Result<Option<SettlementRun>, PartnerFailure> {
        let mut before: Option<SmolStr> = None;
        loop {
            let page = self.store.settlement_runs(before.as_deref(), PAGE)?;
            if let Some(run) = page.iter().find(|r| r.key == key) {
                return Ok(Some(run.clone()));
            }
            if page.len() < PAGE {
                return Ok(None);
            }
            before = page.last().map(|r| r.id.clone());
        }
    }

    /// Every item of a run.
    pub fn settlement_items_all(&self, run: &str) -> Result<Vec<SettlementItem>, PartnerFailure> {
        let mut all = Vec::new();
        let mut after: Option<PartnerId> = None;
        loop {
            let page = self
                .store
                .settlement_items(run, false, after.as_ref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|i| i.partner.clone());
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Publishes the jobs of a run still `publishing` and marks it published.
    pub async fn publish_settlement(self: &Arc<Self>, run: &SettlementRun) -> Result<(), String> {
        let this = self.clone();
        let id = run.id.clone();
        let items = off_thread(move || this.settlement_items_all(&id))
            .await
            .map_err(|e| e.to_string())?;
        let jobs: Vec<Job> = items
            .iter()
            .filter(|i| matches!(i.state, SettlementItemState::Pending))
            .map(|i| {
                Job::new(
                    JobKind::Settlement,
                    run.id.as_str(),
                    i.partner.as_str(),
                    Vec::new(),
                )
            })
            .collect();
        self.queue.publish(jobs).await.map_err(|e| e.to_string())?;
        let this = self.clone();
        let id = run.id.clone();
        off_thread(move || {
            let at = this.now();
            Ok(this.store.mark_settlement_published(&id, at)?)
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// Publishes every settlement run still `publishing` (after a crash between recording a
    /// run and publishing its jobs).
    pub async fn republish_settlements(self: &Arc<Self>) {
        let this = self.clone();
        match off_thread(move || Ok(this.store.unpublished_settlement_runs()?)).await {
            Ok(runs) => {
                for run in runs {
                    if let Err(e) = self.publish_settlement(&run).await {
                        eprintln!("partners: settlement run {} not published yet: {e}", run.id);
                    }
                }
            }
            Err(e) => eprintln!("partners: cannot read unpublished settlement runs: {e}"),
        }
    }

    /// Invoice totals of `period` for the customers `partner` brought (customer field
    /// [`CUSTOMER_PARTNER_FIELD`]): net amounts of invoices issued in the period.
    fn invoice_totals(
        &self,
        partner: &PartnerId,
        period: &Period,
    ) -> Result<Vec<InvoiceTotal>, PartnerFailure> {
        let mut brought: BTreeMap<CustomerId, bool> = BTreeMap::new();
        let mut out = Vec::new();
        let mut after: Option<SmolStr> = None;
        loop {
            let page = self
                .invoices
                .invoices(&InvoiceFilter::default(), after.as_deref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|i| i.number.clone());
            for invoice in page {
                if !period.contains(invoice.issued_on) {
                    continue;
                }
                let ours = match brought.get(&invoice.customer) {
                    Some(v) => *v,
                    None => {
                        let v = self
                            .customers
                            .customer(&invoice.customer)?
                            .is_some_and(|c| {
                                c.custom
                                    .get(CUSTOMER_PARTNER_FIELD)
                                    .and_then(|v| v.as_str())
                                    == Some(partner.as_str())
                            });
                        brought.insert(invoice.customer.clone(), v);
                        v
                    }
                };
                if ours {
                    out.push(InvoiceTotal {
                        invoice: invoice.number.clone(),
                        issued: invoice.issued_on,
                        amount: invoice.draft.totals.net.money,
                    });
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Settles `partner` for run `run_id`. Blocking; the partner's actor has drained its inbox
    /// just before.
    pub fn settle_item(&self, run_id: &str, partner: &PartnerId) -> ItemOutcome {
        let _guard = self.locked();
        match self.retrying(|| self.try_settle(run_id, partner)) {
            Ok(outcome) => outcome,
            Err(PartnerFailure::Store(e)) => ItemOutcome::Retry(e.to_string()),
            Err(PartnerFailure::Busy(why)) | Err(PartnerFailure::Actor(why)) => {
                ItemOutcome::Retry(why)
            }
            Err(e) => {
                let (reason, message) = (e.code().to_string(), e.to_string());
                let now = self.now();
                match self
                    .store
                    .fail_settlement_item(run_id, partner, &reason, &message, now)
                {
                    Ok(()) => ItemOutcome::Failed { reason, message },
                    Err(e) => ItemOutcome::Retry(e.to_string()),
                }
            }
        }
    }

    fn try_settle(&self, run_id: &str, partner: &PartnerId) -> Result<ItemOutcome, PartnerFailure> {
        let Some(run) = self.store.settlement_run(run_id)? else {
            return Ok(ItemOutcome::Failed {
                reason: "settlement.unknown_run".into(),
                message: format!("no settlement run {run_id}"),
            });
        };
        let Some(item) = self.store.settlement_item(run_id, partner)? else {
            return Ok(ItemOutcome::Failed {
                reason: "settlement.unknown_item".into(),
                message: format!("run {run_id} has no partner {partner}"),
            });
        };
        if !matches!(item.state, SettlementItemState::Pending) {
            return Ok(ItemOutcome::AlreadyDone);
        }
        let now = self.now();
        let settled = |statement: SmolStr| SettlementItem {
            run: run.id.clone(),
            partner: partner.clone(),
            state: SettlementItemState::Settled { statement },
            updated_at: now,
        };
        // One statement per partner and month, whichever run issues it.
        if let Some(existing) = self
            .store
            .statements(partner, Some(run.period.start))?
            .into_iter()
            .find_map(|s| s.number)
        {
            self.commit(tollgate_domain::partner::PartnerWrite {
                settlement_item: Some(settled(SmolStr::new(&existing))),
                ..Default::default()
            })?;
            return Ok(ItemOutcome::AlreadyDone);
        }
        let record = self.partner(partner)?;
        if record.partner.status == PartnerStatus::Suspended {
            return Err(PartnerFailure::State {
                code: "settlement.partner_suspended",
                message: format!("partner {partner} is suspended: its statements are held"),
            });
        }
        let agreements = self.store.agreements(partner)?;
        let agreement =
            agreement_for(&agreements, &run.period).ok_or_else(|| PartnerFailure::Refused {
                code: "settlement.no_agreement",
                message: format!(
                    "partner {partner} has no agreement covering {}",
                    FinancialPeriod::id_of(run.period.start)
                ),
            })?;
        let stored = self.store.position(partner, run.period.start)?;
        // The count the statement is built from: the write is checked against it.
        let stored_count = stored
            .as_ref()
            .map_or(0, tollgate_domain::partner::store::position_count);
        let mut position = stored.unwrap_or_else(|| Position::new(agreement, run.period));
        if position.agreement != agreement.id {
            return Err(PartnerFailure::State {
                code: "settlement.agreement_changed",
                message: format!(
                    "the {} position is under agreement {}, the month under {}",
                    FinancialPeriod::id_of(run.period.start),
                    position.agreement,
                    agreement.id
                ),
            });
        }
        let shares_invoices = agreement
            .versions
            .iter()
            .any(|v| v.rule(&ShareTarget::InvoiceTotal).is_some());
        let mut items = Vec::new();
        if shares_invoices {
            let mut totals = Vec::new();
            for total in self.invoice_totals(partner, &run.period)? {
                if self
                    .store
                    .item_share(partner, run.period.start, &total.invoice)?
                    .is_none()
                {
                    totals.push(total);
                }
            }
            let outcomes = position.accumulate_invoices(agreement, &totals)?;
            for outcome in outcomes {
                if let tollgate_domain::partner::Accumulated::Counted(share) = outcome {
                    items.push(tollgate_domain::partner::store::StoredShare {
                        partner: partner.clone(),
                        period_start: run.period.start,
                        share,
                    });
                }
            }
        }
        let setup = self.customers.setup()?;
        let tax = record.partner.tax.as_ref().map(|t| StatementTax {
            scheme: setup.tax_scheme.clone(),
            category: t.category.clone(),
            jurisdiction: t.jurisdiction.clone(),
        });
        // Credits of resolved disputes not paid yet are paid with this statement.
        let mut adjustments = Vec::new();
        let mut paid = Vec::new();
        for dispute in self.store.disputes(partner)? {
            let Some((kind, reference, amount)) = dispute.unpaid_credit() else {
                continue;
            };
            if amount.currency != agreement.currency {
                continue;
            }
            adjustments.push(StatementAdjustment {
                dispute: dispute.id.clone(),
                kind: SmolStr::new(kind),
                reference,
                amount: Amount::exact(amount).map_err(PartnerError::from)?,
            });
            paid.push(dispute);
        }
        let mut statement: PartnerStatement =
            build_statement_with(&position, agreement, tax.as_ref(), adjustments)?;
        let template = NumberTemplate::parse(STATEMENT_NUMBERS)
            .map_err(tollgate_domain::partner::PartnerError::from)?;
        let issued = self.date_of(now);
        let series_key = template
            .series_key(issued, "")
            .map_err(tollgate_domain::partner::PartnerError::from)?;
        let counter = format!("statement:{series_key}");
        let seq = self.store.counter(&counter)?;
        statement.assign_number(&template, issued, "", seq + 1)?;
        let number = SmolStr::new(statement.number.as_deref().unwrap_or_default());
        let mut write = tollgate_domain::partner::PartnerWrite {
            statements: vec![statement.clone()],
            counters: vec![(SmolStr::new(&counter), seq, seq + 1)],
            settlement_item: Some(settled(number.clone())),
            items,
            ..Default::default()
        };
        for mut dispute in paid {
            // Disputes change under their revision counter (see `review.rs`).
            let revision = super::review::revision_counter(&dispute.id);
            let seen = self.store.counter(&revision)?;
            write.counters.push((revision, seen, seen + 1));
            dispute.carried_in = Some(number.clone());
            write.disputes.push(dispute);
        }
        // Always written, checked against the count read: a record the partner's actor counted
        // meanwhile makes this write conflict and the statement is built again; after it,
        // the store refuses the actor's writes to this settled month (late records go on).
        write.positions.push((position, stored_count));
        write.audit.push(AuditRecord::new(
            now,
            "settlement",
            "partner_statement.issue",
            format!("partner/{partner}"),
            &run.id,
            None,
            Some(serde_json::json!({
                "run": run.id,
                "period": FinancialPeriod::id_of(run.period.start),
                "statement": number,
                "net": statement.net.money.amount.to_string(),
                "total": statement.total.money.amount.to_string(),
            })),
        ));
        self.commit(write)?;
        self.metrics.statements.with_label_values(&["issued"]).inc();
        Ok(ItemOutcome::Settled(number))
    }
}

/// Handles one delivery: drain the partner's inbox, settle, then settle the job.
pub async fn handle(partners: Arc<Partners>, delivery: Delivery) {
    let job = delivery.job().clone();
    if job.kind != JobKind::Settlement {
        let _ = delivery
            .dead_letter("settlement.wrong_job_kind", "not a settlement job")
            .await;
        return;
    }
    let partner = PartnerId::new(&job.item_key);
    // Everything charged before now is in the inbox or the position: count it first.
    let outcome = match partners.router.drain(&partner).await {
        Err(e) => ItemOutcome::Retry(format!("partner actor: {e}")),
        Ok(_) => {
            let p = partners.clone();
            let (run, id) = (job.run_id.clone(), partner.clone());
            tokio::task::spawn_blocking(move || p.settle_item(&run, &id))
                .await
                .unwrap_or_else(|e| ItemOutcome::Retry(format!("settlement task failed: {e}")))
        }
    };
    let label = match &outcome {
        ItemOutcome::Settled(_) => "settled",
        ItemOutcome::AlreadyDone => "already_done",
        ItemOutcome::Failed { .. } => "failed",
        ItemOutcome::Retry(_) => "retried",
    };
    partners.metrics.items.with_label_values(&[label]).inc();
    let end = match outcome {
        ItemOutcome::Settled(_) | ItemOutcome::AlreadyDone => JobEnd::Done,
        ItemOutcome::Failed { reason, message } => JobEnd::Failed { reason, message },
        ItemOutcome::Retry(why) => JobEnd::Retry(why),
    };
    let what = format!(
        "partners: settlement run {} partner {}",
        job.run_id, job.item_key
    );
    let p = partners.clone();
    settle(
        delivery,
        end,
        partners.attempts_max,
        &what,
        move |reason, message| {
            p.store
                .fail_settlement_item(&job.run_id, &partner, reason, message, p.now())
        },
    )
    .await;
}

/// The settlement worker actor: one consumer of settlement jobs, each delivery handled in its
/// own task, at most `prefetch` at a time.
pub struct SettlementWorker {
    /// Shared partner state.
    pub partners: Arc<Partners>,
    /// Unacknowledged jobs at most.
    pub prefetch: u16,
}

impl Actor for SettlementWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let partners = self.partners.clone();
        let prefetch = self.prefetch;
        ctx.spawn(actix::fut::wrap_future(async move {
            let queue = partners.queue.clone();
            crate::workers::consume_forever(queue, JobKind::Settlement, prefetch, move |d| {
                handle(partners.clone(), d)
            })
            .await;
        }));
    }
}

impl Supervised for SettlementWorker {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        eprintln!("partners: settlement worker restarting");
    }
}
