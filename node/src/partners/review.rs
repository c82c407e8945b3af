//! Partner statements after settlement: reading them, approval and release (marked as paid),
//! the self-billing document as text, reconciliation with the partner's own statement, and
//! disputes with their resolution (credit note, ad-hoc credit) or rejection.
//!
//! Every change is one [`PartnerWrite`] with its audit record, decided under the service lock
//! and retried from fresh reads on a conflict:
//! - a statement is updated only from the stage read (the store checks it);
//! - a reconciliation report takes its id `rec-<statement>-<n>` from the counter
//!   `reconciliation:<statement>`;
//! - a dispute takes its id `dsp-<n>` from the counter `dispute`, and every change of a dispute
//!   moves its revision counter `dispute_revision:<id>` from the value read before the dispute
//!   was read, so two nodes changing one dispute cannot both land;
//! - a partner credit note is numbered `PCN-{yyyy}-{seq:06}` from the counter
//!   `partner_credit_note:<series key>` in the same write as the resolution (no gaps).

use std::fmt::Write as _;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::{Amount, NumberTemplate};
use tollgate_domain::finance::FinancialPeriod;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::money::Money;
use tollgate_domain::partner::reconcile::CLAIM_AMOUNT_MAX;
use tollgate_domain::partner::{
    ClaimFormat, Claims, Dispute, ItemShare, Partner, PartnerError, PartnerStatement, PartnerWrite,
    ReconciliationReport, ShareTarget, parse_claims, reconcile,
};
use utoipa::ToSchema;

use super::{Caller, PartnerFailure, Partners};

/// Numbering of partner credit notes (corrections of a self-billing document in the partner's
/// favour, issued when a dispute is resolved by one).
pub const CREDIT_NOTE_NUMBERS: &str = "PCN-{yyyy}-{seq:06}";
/// The counter numbering disputes (`dsp-<n>`).
pub const DISPUTE_COUNTER: &str = "dispute";
/// Rows read per page.
const PAGE: usize = 1_000;
/// Bad lines named in the message of a partner statement without any usable line.
const PROBLEMS_SHOWN: usize = 3;

/// A statement with what refers to it.
#[derive(Debug, Clone)]
pub struct StatementDetail {
    /// The statement.
    pub statement: PartnerStatement,
    /// Ids of its reconciliation reports, in id order.
    pub reconciliations: Vec<SmolStr>,
    /// Ids of its disputes, in id order.
    pub disputes: Vec<SmolStr>,
}

/// A disputed line: `product:<id>`, `service:<name>` or `invoice_total` (as positions show
/// targets), or the statement's own form (`{"product": "<id>"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LineRef {
    /// `product:<id>`, `service:<name>`, `invoice_total`.
    Text(String),
    /// `{"product": "<id>"}`, `{"service": "<name>"}`, `"invoice_total"`.
    Target(ShareTarget),
}

/// A new dispute on a statement.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDispute {
    /// Lines disputed: `product:<id>`, `service:<name>` or `invoice_total`; none or empty: the
    /// whole statement.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub lines: Vec<LineRef>,
    /// What the partner says is missing, in the statement currency:
    /// `{"amount": "9.63", "currency": "EUR"}` (positive, at most the currency's minor units).
    #[schema(value_type = Object)]
    pub claimed: Money,
    /// Why (required, at most 2000 characters).
    pub reason: String,
}

/// How a dispute is decided: exactly one of the three.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DisputeDecision {
    /// Resolved by a credit note to the partner (numbered `PCN-{yyyy}-{seq:06}`), of at most
    /// the claimed amount, in the dispute's currency.
    CreditNote {
        /// Amount credited.
        #[schema(value_type = String)]
        amount: Decimal,
    },
    /// Resolved by an ad-hoc credit booked on the partner's next settlement, of at most the
    /// claimed amount.
    AdhocCredit {
        /// Amount credited.
        #[schema(value_type = String)]
        amount: Decimal,
        /// Booking reference (required).
        reference: String,
    },
    /// Rejected.
    Reject {
        /// Why (required).
        reason: String,
    },
}

impl DisputeDecision {
    /// The audit operation of the decision.
    pub fn operation(&self) -> &'static str {
        match self {
            DisputeDecision::CreditNote { .. } => "partner_dispute.credit_note",
            DisputeDecision::AdhocCredit { .. } => "partner_dispute.adhoc_credit",
            DisputeDecision::Reject { .. } => "partner_dispute.reject",
        }
    }
}

/// The claim format of a request's `Content-Type`: `text/csv` is CSV; `application/x-ndjson`,
/// `application/jsonl`, `application/x-jsonlines` and `application/jsonlines` are JSON lines
/// (parameters such as `; charset=utf-8` are ignored, case does not matter).
pub fn claim_format(content_type: &str) -> Option<ClaimFormat> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/csv" => Some(ClaimFormat::Csv),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines" => Some(ClaimFormat::JsonLines),
        _ => None,
    }
}

/// The tolerance of a reconciliation: a decimal from 0 (the default) to the largest claim
/// amount, or `reconcile.bad_tolerance`.
pub fn parse_tolerance(text: Option<&str>) -> Result<Decimal, PartnerFailure> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Decimal::ZERO);
    };
    Decimal::from_str(text)
        .ok()
        .filter(|t| *t >= Decimal::ZERO && *t <= CLAIM_AMOUNT_MAX)
        .ok_or_else(|| PartnerFailure::Refused {
            code: "reconcile.bad_tolerance",
            message: format!(
                "tolerance {text:?} is not a decimal from 0 to {CLAIM_AMOUNT_MAX} (e.g. 0.01)"
            ),
        })
}

/// The text of an uploaded partner statement: UTF-8 (a leading byte-order mark is dropped), or
/// `reconcile.format`.
pub fn upload_text(bytes: Vec<u8>) -> Result<String, PartnerFailure> {
    let mut text = String::from_utf8(bytes).map_err(|e| {
        PartnerError::ReconcileFormat(format!(
            "the file is not UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// Refuses a partner statement without a single usable line (`reconcile.format`): an empty
/// file, or one whose every line is bad. A file with some good lines is reconciled, its bad
/// lines reported.
pub fn check_usable(claims: &Claims) -> Result<(), PartnerError> {
    if !claims.claims.is_empty() {
        return Ok(());
    }
    if claims.problems.is_empty() {
        return Err(PartnerError::ReconcileFormat(
            "the file has no line to reconcile".into(),
        ));
    }
    let shown: Vec<String> = claims
        .problems
        .iter()
        .take(PROBLEMS_SHOWN)
        .map(|p| format!("line {} {}: {}", p.line, p.code, p.message))
        .collect();
    let more = claims.problems.len().saturating_sub(PROBLEMS_SHOWN);
    let tail = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    Err(PartnerError::ReconcileFormat(format!(
        "no usable line: {}{tail}",
        shown.join("; ")
    )))
}

/// A disputed line from its reference (`dispute.bad_line` for text that names no line).
pub fn line_target(line: &LineRef) -> Result<ShareTarget, PartnerFailure> {
    let text = match line {
        LineRef::Target(target) => return Ok(target.clone()),
        LineRef::Text(text) => text.trim(),
    };
    let bad = || PartnerFailure::Refused {
        code: "dispute.bad_line",
        message: format!(
            "{text:?} is not a statement line: product:<id>, service:<name> or invoice_total"
        ),
    };
    if text == "invoice_total" {
        return Ok(ShareTarget::InvoiceTotal);
    }
    let (kind, name) = text.split_once(':').ok_or_else(bad)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad());
    }
    match kind.trim() {
        "product" => Ok(ShareTarget::Product(SmolStr::new(name))),
        "service" => Ok(ShareTarget::Service(SmolStr::new(name))),
        _ => Err(bad()),
    }
}

/// The id of the `n`th reconciliation of statement `number`.
pub fn report_id(number: &str, n: u64) -> SmolStr {
    smol_str::format_smolstr!("rec-{number}-{n}")
}

/// The id of the `n`th dispute.
pub fn dispute_id(n: u64) -> SmolStr {
    smol_str::format_smolstr!("dsp-{n}")
}

pub(crate) fn revision_counter(dispute: &str) -> SmolStr {
    smol_str::format_smolstr!("dispute_revision:{dispute}")
}

fn amount_text(amount: &Amount) -> String {
    amount.money.amount.to_string()
}

/// The self-billing document of `statement` as plain text: the partner (legal name, tax id,
/// bank reference), the period, one line per product or service (records, units, base,
/// share), subtotal, guarantee top-up, cap cut, net, tax lines, total and the stage with its
/// approval and release. Amounts are the statement's own, exactly (minor units).
pub fn render_document(partner: &Partner, statement: &PartnerStatement) -> String {
    let mut out = String::new();
    let number = statement.number.as_deref().unwrap_or("(unnumbered)");
    let last_day = statement
        .period
        .end
        .yesterday()
        .unwrap_or(statement.period.end);
    let dash = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or("-")
            .to_string()
    };
    let _ = writeln!(out, "SELF-BILLING STATEMENT {number}");
    let _ = writeln!(out, "Stage: {}", statement.stage());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Partner:         {} ({})",
        partner.legal_name, partner.id
    );
    let _ = writeln!(out, "Tax id:          {}", dash(&partner.tax_id));
    let _ = writeln!(out, "Bank reference:  {}", dash(&partner.bank_reference));
    let _ = writeln!(out, "Agreement:       {}", statement.agreement);
    let _ = writeln!(
        out,
        "Period:          {} to {} ({})",
        statement.period.start,
        last_day,
        FinancialPeriod::id_of(statement.period.start)
    );
    let _ = writeln!(out, "Currency:        {}", statement.currency);
    let _ = writeln!(out);

    let targets: Vec<String> = statement
        .lines
        .iter()
        .map(|l| l.target.to_string())
        .collect();
    let tax_labels: Vec<String> = statement
        .tax_lines
        .iter()
        .map(|t| {
            format!(
                "Tax {} {}% on {}{}",
                t.code,
                (t.rate * Decimal::ONE_HUNDRED).normalize(),
                amount_text(&t.base),
                if t.inclusive { " (included)" } else { "" }
            )
        })
        .collect();
    let width = targets
        .iter()
        .chain(tax_labels.iter())
        .map(|t| t.chars().count())
        .chain(["Guarantee top-up".len(), "Line".len()])
        .max()
        .unwrap_or(4);
    let _ = writeln!(
        out,
        "{:<width$}  {:>9}  {:>12}  {:>16}  {:>16}",
        "Line", "Records", "Units", "Base", "Share"
    );
    for (line, target) in statement.lines.iter().zip(&targets) {
        let _ = writeln!(
            out,
            "{:<width$}  {:>9}  {:>12}  {:>16}  {:>16}",
            target,
            line.records,
            line.units,
            amount_text(&line.base),
            amount_text(&line.share)
        );
    }
    if statement.lines.is_empty() {
        let _ = writeln!(out, "(no lines)");
    }
    let _ = writeln!(out);
    let total_width = width + 2 + 9 + 2 + 12 + 2 + 16 + 2 + 16;
    let mut sum_line = |label: &str, value: String| {
        let pad = total_width.saturating_sub(label.chars().count());
        let _ = writeln!(out, "{label}{value:>pad$}");
    };
    sum_line("Subtotal", amount_text(&statement.subtotal));
    sum_line("Guarantee top-up", amount_text(&statement.guarantee_top_up));
    let cap_cut = if statement.cap_cut.minor == 0 {
        amount_text(&statement.cap_cut)
    } else {
        format!("-{}", amount_text(&statement.cap_cut))
    };
    sum_line("Cap cut", cap_cut);
    for adjustment in &statement.adjustments {
        let label = format!(
            "Dispute {} ({} {})",
            adjustment.dispute, adjustment.kind, adjustment.reference
        );
        sum_line(&label, amount_text(&adjustment.amount));
    }
    sum_line("Net", amount_text(&statement.net));
    for (line, label) in statement.tax_lines.iter().zip(&tax_labels) {
        sum_line(label, amount_text(&line.tax));
    }
    sum_line("Total", amount_text(&statement.total));
    let _ = writeln!(out);
    match &statement.approved {
        Some(step) => {
            let note = step
                .note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            let _ = writeln!(out, "Approved: {} by {}{note}", step.at, step.by);
        }
        None => {
            let _ = writeln!(out, "Approved: not yet");
        }
    }
    match &statement.released {
        Some(step) => {
            let _ = writeln!(
                out,
                "Released: {} by {}, payment reference {}",
                step.at,
                step.by,
                step.note.as_deref().unwrap_or("-")
            );
        }
        None => {
            let _ = writeln!(out, "Released: not yet");
        }
    }
    out
}

/// What the audit trail keeps of a statement's lifecycle.
fn stage_json(statement: &PartnerStatement) -> serde_json::Value {
    serde_json::json!({
        "stage": statement.stage(),
        "approved": statement.approved,
        "released": statement.released,
    })
}

impl Partners {
    fn review_audit(
        &self,
        by: &Caller,
        operation: &str,
        target: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> AuditRecord {
        AuditRecord::new(
            self.now(),
            &by.principal,
            operation,
            target,
            &by.request_id,
            before,
            after,
        )
    }

    /// A statement by number, or `partner_statement.not_found`.
    pub fn statement(&self, number: &str) -> Result<PartnerStatement, PartnerFailure> {
        self.store
            .statement(number)?
            .ok_or_else(|| PartnerFailure::NotFound {
                code: "partner_statement.not_found",
                message: format!("no partner statement {number}"),
            })
    }

    /// A partner's statements in (period, number) order; only those of the month starting on
    /// `period_start` if given. `partner.not_found` for an unknown partner.
    pub fn partner_statements(
        &self,
        partner: &PartnerId,
        period_start: Option<Date>,
    ) -> Result<Vec<PartnerStatement>, PartnerFailure> {
        self.partner(partner)?;
        Ok(self.store.statements(partner, period_start)?)
    }

    /// A statement with the ids of its reconciliation reports and disputes.
    pub fn statement_detail(&self, number: &str) -> Result<StatementDetail, PartnerFailure> {
        let statement = self.statement(number)?;
        self.detail_of(statement)
    }

    fn detail_of(&self, statement: PartnerStatement) -> Result<StatementDetail, PartnerFailure> {
        let number = statement.number.clone().unwrap_or_default();
        let reconciliations = self
            .store
            .reconciliations(&number)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let disputes = self
            .store
            .disputes(&statement.partner)?
            .into_iter()
            .filter(|d| d.statement == number)
            .map(|d| d.id)
            .collect();
        Ok(StatementDetail {
            statement,
            reconciliations,
            disputes,
        })
    }

    /// Moves a statement one step of its lifecycle (`step` changes it or refuses), audited
    /// with the stage before and after.
    fn step_statement(
        &self,
        number: &str,
        operation: &str,
        event: &str,
        by: &Caller,
        step: impl Fn(&mut PartnerStatement, Timestamp) -> Result<(), PartnerError>,
    ) -> Result<StatementDetail, PartnerFailure> {
        let _guard = self.locked();
        let updated = self.retrying(|| {
            let before = self.statement(number)?;
            let read = before.stage();
            let mut after = before.clone();
            step(&mut after, self.now())?;
            let audit = self.review_audit(
                by,
                operation,
                format!("partner_statement/{number}"),
                Some(stage_json(&before)),
                Some(stage_json(&after)),
            );
            self.commit(PartnerWrite {
                statement_updates: vec![(after.clone(), read)],
                audit: vec![audit],
                ..PartnerWrite::default()
            })?;
            Ok(after)
        })?;
        self.metrics.statements.with_label_values(&[event]).inc();
        self.detail_of(updated)
    }

    /// Approves an issued statement, with an optional comment (`statement.stage` unless
    /// issued). Blocking.
    pub fn approve_statement(
        &self,
        number: &str,
        note: Option<String>,
        by: &Caller,
    ) -> Result<StatementDetail, PartnerFailure> {
        self.step_statement(
            number,
            "partner_statement.approve",
            "approved",
            by,
            |s, now| s.approve(by.principal.clone(), now, note.clone()),
        )
    }

    /// Releases an approved statement (marks it as paid) with the payment reference
    /// (`statement.stage` unless approved, `statement.reference_required` when blank).
    /// Blocking.
    pub fn release_statement(
        &self,
        number: &str,
        reference: &str,
        by: &Caller,
    ) -> Result<StatementDetail, PartnerFailure> {
        self.step_statement(
            number,
            "partner_statement.release",
            "released",
            by,
            |s, now| s.release(by.principal.clone(), now, reference.to_string()),
        )
    }

    /// The self-billing document of a statement as plain text. Blocking.
    pub fn statement_document(&self, number: &str) -> Result<String, PartnerFailure> {
        let statement = self.statement(number)?;
        let partner = self.partner(&statement.partner)?;
        Ok(render_document(&partner.partner, &statement))
    }

    /// Every item share of a partner's period.
    fn item_shares_all(
        &self,
        partner: &PartnerId,
        period_start: Date,
    ) -> Result<Vec<ItemShare>, PartnerFailure> {
        let mut all = Vec::new();
        let mut after: Option<SmolStr> = None;
        loop {
            let page = self
                .store
                .item_shares(partner, period_start, after.as_deref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|i| i.item.clone());
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Reconciles a statement with the partner's own (`text` in `format`): their records
    /// against our per-record shares, their lines against ours, totals. Bad lines are reported
    /// in the report; a file without a usable line is refused (`reconcile.format`). The report
    /// is stored with its audit record. Blocking.
    pub fn reconcile_statement(
        &self,
        number: &str,
        text: &str,
        format: ClaimFormat,
        tolerance: Decimal,
        by: &Caller,
    ) -> Result<ReconciliationReport, PartnerFailure> {
        let statement = self.statement(number)?;
        let claims = parse_claims(text, format, statement.currency)?;
        check_usable(&claims)?;
        let ours = self.item_shares_all(&statement.partner, statement.period.start)?;
        let outcome = reconcile(&statement, &ours, &claims, tolerance)?;
        let _guard = self.locked();
        self.retrying(|| {
            let counter = smol_str::format_smolstr!("reconciliation:{number}");
            let seq = self.store.counter(&counter)?;
            let report = ReconciliationReport::new(
                report_id(number, seq + 1),
                number,
                statement.partner.clone(),
                self.now(),
                by.principal.clone(),
                &outcome,
            );
            let audit = self.review_audit(
                by,
                "partner_statement.reconcile",
                format!("partner_statement/{number}"),
                None,
                Some(serde_json::json!({
                    "report": report.id,
                    "format": format,
                    "tolerance": tolerance,
                    "claims": claims.claims.len(),
                    "matched": report.matched.len(),
                    "differing": report.differing.len(),
                    "only_ours": report.only_ours.len(),
                    "only_theirs": report.only_theirs.len(),
                    "problems": report.problems.len(),
                    "ours": report.total.ours,
                    "theirs": report.total.theirs,
                    "difference": report.total.difference,
                })),
            );
            self.commit(PartnerWrite {
                reconciliations: vec![report.clone()],
                counters: vec![(counter, seq, seq + 1)],
                audit: vec![audit],
                ..PartnerWrite::default()
            })?;
            Ok(report)
        })
    }

    /// A statement's reconciliation reports in id order. Blocking.
    pub fn statement_reconciliations(
        &self,
        number: &str,
    ) -> Result<Vec<ReconciliationReport>, PartnerFailure> {
        self.statement(number)?;
        Ok(self.store.reconciliations(number)?)
    }

    /// A dispute, or `partner_dispute.not_found`.
    pub fn dispute(&self, id: &str) -> Result<Dispute, PartnerFailure> {
        self.store
            .dispute(id)?
            .ok_or_else(|| PartnerFailure::NotFound {
                code: "partner_dispute.not_found",
                message: format!("no partner dispute {id}"),
            })
    }

    /// A partner's disputes in id order (`partner.not_found` for an unknown partner).
    pub fn partner_disputes(&self, partner: &PartnerId) -> Result<Vec<Dispute>, PartnerFailure> {
        self.partner(partner)?;
        Ok(self.store.disputes(partner)?)
    }

    /// Opens a dispute on a statement (or some of its lines). Blocking.
    pub fn open_dispute(
        &self,
        number: &str,
        request: &NewDispute,
        by: &Caller,
    ) -> Result<Dispute, PartnerFailure> {
        let lines = request
            .lines
            .iter()
            .map(line_target)
            .collect::<Result<Vec<_>, _>>()?;
        let _guard = self.locked();
        self.retrying(|| {
            let statement = self.statement(number)?;
            let seq = self.store.counter(DISPUTE_COUNTER)?;
            let id = dispute_id(seq + 1);
            let revision = revision_counter(&id);
            let revision_read = self.store.counter(&revision)?;
            let dispute = Dispute::open(
                id.clone(),
                &statement,
                lines.clone(),
                request.claimed,
                &request.reason,
                by.principal.clone(),
                self.now(),
            )?;
            let audit = self.review_audit(
                by,
                "partner_dispute.open",
                format!("partner_dispute/{id}"),
                None,
                serde_json::to_value(&dispute).ok(),
            );
            self.commit(PartnerWrite {
                disputes: vec![dispute.clone()],
                counters: vec![
                    (SmolStr::new_static(DISPUTE_COUNTER), seq, seq + 1),
                    (revision, revision_read, revision_read + 1),
                ],
                audit: vec![audit],
                ..PartnerWrite::default()
            })?;
            Ok(dispute)
        })
    }

    /// Changes a dispute (`change` applies the step and may add counters to move), audited
    /// with the dispute before and after.
    fn change_dispute(
        &self,
        id: &str,
        operation: &str,
        by: &Caller,
        change: impl Fn(
            &mut Dispute,
            Timestamp,
            &mut Vec<(SmolStr, u64, u64)>,
        ) -> Result<(), PartnerFailure>,
    ) -> Result<Dispute, PartnerFailure> {
        let _guard = self.locked();
        self.retrying(|| {
            // The revision is read before the dispute: a change landing in between moves it,
            // and this write is refused as a conflict and retried.
            let revision = revision_counter(id);
            let read = self.store.counter(&revision)?;
            let before = self.dispute(id)?;
            let mut after = before.clone();
            let mut counters = vec![(revision, read, read + 1)];
            change(&mut after, self.now(), &mut counters)?;
            let audit = self.review_audit(
                by,
                operation,
                format!("partner_dispute/{id}"),
                serde_json::to_value(&before).ok(),
                serde_json::to_value(&after).ok(),
            );
            self.commit(PartnerWrite {
                disputes: vec![after.clone()],
                counters,
                audit: vec![audit],
                ..PartnerWrite::default()
            })?;
            Ok(after)
        })
    }

    /// Adds a note to an open dispute. Blocking.
    pub fn comment_dispute(
        &self,
        id: &str,
        note: &str,
        by: &Caller,
    ) -> Result<Dispute, PartnerFailure> {
        self.change_dispute(id, "partner_dispute.comment", by, |d, now, _| {
            Ok(d.comment(note, by.principal.clone(), now)?)
        })
    }

    /// Decides an open dispute: a credit note (numbered now), an ad-hoc credit, or a
    /// rejection. Blocking.
    pub fn decide_dispute(
        &self,
        id: &str,
        decision: &DisputeDecision,
        by: &Caller,
    ) -> Result<Dispute, PartnerFailure> {
        self.change_dispute(id, decision.operation(), by, |d, now, counters| {
            let who = by.principal.clone();
            match decision {
                DisputeDecision::CreditNote { amount } => {
                    let template =
                        NumberTemplate::parse(CREDIT_NOTE_NUMBERS).map_err(PartnerError::from)?;
                    let issued = self.date_of(now);
                    let series = template
                        .series_key(issued, "")
                        .map_err(PartnerError::from)?;
                    let counter = smol_str::format_smolstr!("partner_credit_note:{series}");
                    let seq = self.store.counter(&counter)?;
                    let number = template
                        .render(issued, "", seq + 1)
                        .map_err(PartnerError::from)?;
                    let money = Money::new(*amount, d.claimed.currency);
                    d.resolve_by_credit_note(SmolStr::new(number), money, who, now)?;
                    counters.push((counter, seq, seq + 1));
                }
                DisputeDecision::AdhocCredit { amount, reference } => {
                    let money = Money::new(*amount, d.claimed.currency);
                    d.resolve_by_adhoc_credit(money, SmolStr::new(reference.trim()), who, now)?;
                }
                DisputeDecision::Reject { reason } => d.reject(reason, who, now)?,
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use jiff::civil::date;
    use tollgate_adapters::jobs::{
        BoxFuture, Consumer, DeadLetter, JobError, JobKind, JobQueue, QueueDepth,
    };
    use tollgate_domain::billing::MemoryCustomerStore;
    use tollgate_domain::billing::Period;
    use tollgate_domain::billing::run_memory::MemoryBillRunStore;
    use tollgate_domain::billing::tax::{TaxRate, TaxScheme};
    use tollgate_domain::finance::MemoryFinanceStore;
    use tollgate_domain::ledger::MemoryLedgerStore;
    use tollgate_domain::money::Currency;
    use tollgate_domain::partner::store::StoredShare;
    use tollgate_domain::partner::{
        Agreement, AgreementVersion, DisputeAction, DisputeState, MemoryPartnerStore,
        PartnerRecord, PartnerStore, Position, RatedRecord, Resolution, ShareRule, ShareValue,
        StatementTax, build_statement,
    };

    use super::*;
    use crate::partners::PartnerServiceMetrics;
    use tollgate_domain::partner::StatementStage;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    // ---- pure helpers ----

    #[test]
    fn content_types_name_the_claim_format() {
        assert_eq!(claim_format("text/csv"), Some(ClaimFormat::Csv));
        assert_eq!(
            claim_format("Text/CSV; charset=utf-8"),
            Some(ClaimFormat::Csv)
        );
        for jsonl in [
            "application/x-ndjson",
            "application/jsonl",
            "application/jsonl; charset=UTF-8",
            "application/x-jsonlines",
        ] {
            assert_eq!(claim_format(jsonl), Some(ClaimFormat::JsonLines), "{jsonl}");
        }
        for other in ["application/json", "text/plain", "", "csv", "text/csvx"] {
            assert_eq!(claim_format(other), None, "{other}");
        }
    }

    #[test]
    fn tolerance_is_a_non_negative_decimal_defaulting_to_zero() {
        assert_eq!(parse_tolerance(None).unwrap(), Decimal::ZERO);
        assert_eq!(parse_tolerance(Some("  ")).unwrap(), Decimal::ZERO);
        assert_eq!(parse_tolerance(Some("0.005")).unwrap(), d("0.005"));
        assert_eq!(parse_tolerance(Some(" 1 ")).unwrap(), d("1"));
        for bad in ["-0.01", "abc", "1,5", "1000000000000001"] {
            let err = parse_tolerance(Some(bad)).unwrap_err();
            assert_eq!(err.code(), "reconcile.bad_tolerance", "{bad}");
        }
    }

    #[test]
    fn uploads_must_be_utf8_and_lose_their_byte_order_mark() {
        assert_eq!(
            upload_text(b"\xef\xbb\xbfproduct,amount\n".to_vec()).unwrap(),
            "product,amount\n"
        );
        assert_eq!(upload_text(b"a".to_vec()).unwrap(), "a");
        let err = upload_text(b"ok\xff".to_vec()).unwrap_err();
        assert_eq!(err.code(), "reconcile.format");
        assert!(err.to_string().contains("offset 2"), "{err}");
    }

    #[test]
    fn a_file_without_a_usable_line_is_unusable_as_a_whole() {
        let eur = Currency::from_code("EUR").unwrap();
        let empty = parse_claims("", ClaimFormat::JsonLines, eur).unwrap();
        assert_eq!(check_usable(&empty).unwrap_err().code(), "reconcile.format");
        let header_only = parse_claims("record_id,amount\n", ClaimFormat::Csv, eur).unwrap();
        assert_eq!(
            check_usable(&header_only).unwrap_err().code(),
            "reconcile.format"
        );
        let text = "x\ny\nz\nw\n{\"amount\": \"1\"}";
        let all_bad = parse_claims(text, ClaimFormat::JsonLines, eur).unwrap();
        let err = check_usable(&all_bad).unwrap_err();
        assert_eq!(err.code(), "reconcile.format");
        let message = err.to_string();
        assert!(message.contains("line 1 reconcile.bad_line"), "{message}");
        assert!(message.ends_with("; and 2 more"), "{message}");
        let some_good = parse_claims(
            "x\n{\"record_id\": \"c1\", \"amount\": \"1\"}",
            ClaimFormat::JsonLines,
            eur,
        )
        .unwrap();
        assert!(check_usable(&some_good).is_ok());
    }

    #[test]
    fn disputed_lines_are_read_as_text_or_as_targets() {
        let text = |t: &str| line_target(&LineRef::Text(t.into()));
        assert_eq!(
            text("product:music-plus").unwrap(),
            ShareTarget::Product("music-plus".into())
        );
        assert_eq!(
            text(" service: voice ").unwrap(),
            ShareTarget::Service("voice".into())
        );
        assert_eq!(text("invoice_total").unwrap(), ShareTarget::InvoiceTotal);
        for bad in ["music-plus", "product:", "zone:eu", ""] {
            assert_eq!(text(bad).unwrap_err().code(), "dispute.bad_line", "{bad}");
        }
        let lines: Vec<LineRef> =
            serde_json::from_str(r#"["service:sms", {"product": "p1"}, "invoice_total"]"#).unwrap();
        let targets: Vec<ShareTarget> = lines.iter().map(|l| line_target(l).unwrap()).collect();
        assert_eq!(
            targets,
            [
                ShareTarget::Service("sms".into()),
                ShareTarget::Product("p1".into()),
                ShareTarget::InvoiceTotal,
            ]
        );
    }

    #[test]
    fn decisions_are_one_of_three_shapes() {
        let decision: DisputeDecision =
            serde_json::from_str(r#"{"credit_note": {"amount": "9.63"}}"#).unwrap();
        assert!(matches!(decision, DisputeDecision::CreditNote { amount } if amount == d("9.63")));
        assert_eq!(decision.operation(), "partner_dispute.credit_note");
        let decision: DisputeDecision =
            serde_json::from_str(r#"{"adhoc_credit": {"amount": "5", "reference": "ADJ-7"}}"#)
                .unwrap();
        assert_eq!(decision.operation(), "partner_dispute.adhoc_credit");
        let decision: DisputeDecision =
            serde_json::from_str(r#"{"reject": {"reason": "refunded"}}"#).unwrap();
        assert_eq!(decision.operation(), "partner_dispute.reject");
        for bad in [
            r#"{"reject": {}}"#,
            r#"{"reject": {"reason": "x", "extra": 1}}"#,
            r#"{"credit_note": {"amount": "1"}, "reject": {"reason": "x"}}"#,
            r#"{"approve": {}}"#,
            r#"{}"#,
        ] {
            assert!(
                serde_json::from_str::<DisputeDecision>(bad).is_err(),
                "{bad}"
            );
        }
        let request: NewDispute = serde_json::from_str(
            r#"{"claimed": {"amount": "9.63", "currency": "EUR"}, "reason": "count"}"#,
        )
        .unwrap();
        assert!(request.lines.is_empty());
        assert_eq!(request.claimed.amount, d("9.63"));
    }

    #[test]
    fn ids_are_numbered() {
        assert_eq!(report_id("SB-2026-000001", 3), "rec-SB-2026-000001-3");
        assert_eq!(dispute_id(12), "dsp-12");
        assert_eq!(revision_counter("dsp-12"), "dispute_revision:dsp-12");
    }

    // ---- fixtures: a partner with a March statement ----

    fn eur() -> Currency {
        Currency::from_code("EUR").unwrap()
    }

    fn march() -> Period {
        Period::new(date(2026, 3, 1), date(2026, 4, 1)).unwrap()
    }

    fn agreement() -> Agreement {
        Agreement {
            id: "agr-acme".into(),
            partner: PartnerId::new("acme"),
            from: date(2026, 1, 1),
            to: None,
            currency: eur(),
            versions: vec![AgreementVersion {
                valid_from: date(2026, 1, 1),
                shares: vec![ShareRule {
                    target: ShareTarget::Product("music-plus".into()),
                    value: ShareValue::Percent(d("30")),
                }],
                min_guarantee: None,
                cap: None,
                note: None,
            }],
        }
    }

    fn partner() -> Partner {
        serde_json::from_value(serde_json::json!({
            "id": "acme",
            "legal_name": "Acme Content GmbH",
            "tax_id": "DE123456789",
            "bank_reference": "DE89 3704 0044 0532 0130 00",
        }))
        .unwrap()
    }

    fn record(id: &str, revenue: Decimal) -> RatedRecord {
        RatedRecord {
            cdr_id: tollgate_domain::ids::CdrId::new(id),
            product: "music-plus".into(),
            service: "data".into(),
            start: date(2026, 3, 3),
            units: 60,
            revenue: Money::new(revenue, eur()),
            reversal: false,
        }
    }

    /// 30 % of 400.00 + 500.00 + 334.56 = 370.368 -> 370.37; with 19 % VAT when taxed.
    fn statement_and_items(tax: bool) -> (PartnerStatement, Vec<StoredShare>) {
        let agreement = agreement();
        let mut position = Position::new(&agreement, march());
        let mut items = Vec::new();
        for (id, revenue) in [
            ("c1", d("400.00")),
            ("c2", d("500.00")),
            ("c3", d("334.56")),
        ] {
            let outcome = position
                .accumulate(&agreement, &record(id, revenue))
                .unwrap();
            if let tollgate_domain::partner::Accumulated::Counted(share) = outcome {
                items.push(StoredShare {
                    partner: PartnerId::new("acme"),
                    period_start: march().start,
                    share,
                });
            }
        }
        let tax = tax.then(|| StatementTax {
            scheme: TaxScheme {
                id: "de".into(),
                rates: vec![TaxRate {
                    category: "content".into(),
                    jurisdiction: "DE".into(),
                    code: "VAT19".into(),
                    rate: d("0.19"),
                    inclusive: false,
                }],
            },
            category: "content".into(),
            jurisdiction: "DE".into(),
        });
        let mut statement = build_statement(&position, &agreement, tax.as_ref()).unwrap();
        let template =
            NumberTemplate::parse(crate::partners::settlement::STATEMENT_NUMBERS).unwrap();
        statement
            .assign_number(&template, date(2026, 4, 2), "", 1)
            .unwrap();
        (statement, items)
    }

    struct NoQueue;

    impl JobQueue for NoQueue {
        fn publish(
            &self,
            _jobs: Vec<tollgate_adapters::jobs::Job>,
        ) -> BoxFuture<'_, Result<(), JobError>> {
            Box::pin(async {
                Err(JobError::Unavailable {
                    message: "no queue in this test".into(),
                })
            })
        }
        fn consume(
            &self,
            _kind: JobKind,
            _prefetch: u16,
        ) -> BoxFuture<'_, Result<Consumer, JobError>> {
            Box::pin(async {
                Err(JobError::Unavailable {
                    message: "no queue in this test".into(),
                })
            })
        }
        fn dead_letters<'a>(
            &'a self,
            _kind: JobKind,
            _run_id: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Vec<DeadLetter>, JobError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn queue_depth(&self, _kind: JobKind) -> BoxFuture<'_, Result<QueueDepth, JobError>> {
            Box::pin(async {
                Err(JobError::Unavailable {
                    message: "no queue in this test".into(),
                })
            })
        }
    }

    /// The service over memory stores, with the partner and its March statement stored.
    fn service() -> (Partners, Arc<MemoryPartnerStore>, actix::SystemRunner) {
        let system = actix::System::new();
        let registry = prometheus::Registry::new();
        let store = Arc::new(MemoryPartnerStore::new());
        let shared = Arc::new(tollgate_actors::PartnerShared {
            store: store.clone(),
            ledger: Arc::new(MemoryLedgerStore::new()),
            timezone: jiff::tz::TimeZone::UTC,
            metrics: tollgate_actors::partner::PartnerMetrics::new(&registry).unwrap(),
            waiting_drain_interval: tollgate_actors::partner::WAITING_DRAIN_INTERVAL,
        });
        let router = Arc::new(tollgate_actors::PartnerRouter::new(
            shared,
            actix::Arbiter::current(),
        ));
        let partners = Partners::new(
            store.clone(),
            router,
            Arc::new(MemoryBillRunStore::new()),
            Arc::new(MemoryCustomerStore::new()),
            Arc::new(MemoryFinanceStore::new()),
            Arc::new(NoQueue),
            jiff::tz::TimeZone::UTC,
            crate::clock::Clock::new(false),
            3,
            PartnerServiceMetrics::new(&registry).unwrap(),
        );
        let (statement, items) = statement_and_items(false);
        store
            .commit(PartnerWrite {
                partners: vec![(
                    PartnerRecord {
                        partner: partner(),
                        version: 1,
                    },
                    0,
                )],
                agreements: vec![(agreement(), 0)],
                statements: vec![statement],
                items,
                ..PartnerWrite::default()
            })
            .unwrap();
        (partners, store, system)
    }

    fn caller(name: &str) -> Caller {
        Caller {
            principal: name.into(),
            request_id: format!("req-{name}").into(),
        }
    }

    const NUMBER: &str = "SB-2026-000001";

    /// (operation, target, principal) of every audit record.
    fn audit_ops(store: &MemoryPartnerStore) -> Vec<(String, String, String)> {
        store
            .audit()
            .into_iter()
            .map(|a| (a.operation.to_string(), a.target, a.principal.to_string()))
            .collect()
    }

    #[test]
    fn the_document_shows_the_partner_lines_taxes_totals_and_stage() {
        let (mut statement, _) = statement_and_items(true);
        let text = render_document(&partner(), &statement);
        assert!(text.starts_with("SELF-BILLING STATEMENT SB-2026-000001\nStage: issued\n"));
        assert!(
            text.contains("Partner:         Acme Content GmbH (acme)\n"),
            "{text}"
        );
        assert!(text.contains("Tax id:          DE123456789\n"), "{text}");
        assert!(text.contains("Bank reference:  DE89 3704 0044 0532 0130 00\n"));
        assert!(text.contains("Period:          2026-03-01 to 2026-03-31 (2026-03)\n"));
        let line = text
            .lines()
            .find(|l| l.starts_with("product:music-plus"))
            .unwrap();
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells,
            ["product:music-plus", "3", "180", "1234.56", "370.37"]
        );
        let amount_of = |label: &str| {
            text.lines()
                .find(|l| l.starts_with(label))
                .and_then(|l| l.split_whitespace().last())
                .unwrap()
                .to_string()
        };
        assert_eq!(amount_of("Subtotal"), "370.37");
        assert_eq!(amount_of("Guarantee top-up"), "0.00");
        assert_eq!(amount_of("Cap cut"), "0.00");
        assert_eq!(amount_of("Net"), "370.37");
        // 370.37 x 0.19 = 70.3703 -> 70.37.
        assert_eq!(amount_of("Tax VAT19 19% on 370.37"), "70.37");
        assert_eq!(amount_of("Total"), "440.74");
        assert!(text.contains("Approved: not yet\nReleased: not yet\n"));
        // Totals line up with the share column.
        let share_end = line.len();
        for label in ["Subtotal", "Net", "Total"] {
            let l = text.lines().find(|l| l.starts_with(label)).unwrap();
            assert_eq!(l.len(), share_end, "{label}");
        }

        statement.cap_cut = Amount::from_minor(7037, eur());
        statement.tax_lines.clear();
        let at = Timestamp::from_second(1_775_000_000).unwrap();
        statement
            .approve("ada".into(), at, Some("checked".into()))
            .unwrap();
        statement
            .release("bob".into(), at, "PAY-17".into())
            .unwrap();
        let mut bare = partner();
        bare.tax_id = None;
        bare.bank_reference = Some("  ".into());
        let text = render_document(&bare, &statement);
        assert!(text.contains("Stage: released\n"));
        assert!(text.contains("Tax id:          -\n"));
        assert!(text.contains("Bank reference:  -\n"));
        assert!(!text.contains("Tax VAT19"));
        let cut = text.lines().find(|l| l.starts_with("Cap cut")).unwrap();
        assert!(cut.ends_with(" -70.37"), "{cut}");
        assert!(text.contains(&format!("Approved: {at} by ada: checked\n")));
        assert!(text.contains(&format!(
            "Released: {at} by bob, payment reference PAY-17\n"
        )));
    }

    // ---- the service over memory stores ----

    #[test]
    fn approve_then_release_with_stage_checks_and_audit() {
        let (partners, store, _system) = service();
        let ada = caller("ada");
        let err = partners
            .release_statement(NUMBER, "PAY-1", &ada)
            .unwrap_err();
        assert_eq!(err.code(), "statement.stage");
        let err = partners
            .approve_statement("SB-404", None, &ada)
            .unwrap_err();
        assert_eq!(err.code(), "partner_statement.not_found");

        let detail = partners
            .approve_statement(NUMBER, Some(" looks right ".into()), &ada)
            .unwrap();
        assert_eq!(detail.statement.stage(), StatementStage::Approved);
        let approved = detail.statement.approved.clone().unwrap();
        assert_eq!(
            (approved.by.as_str(), approved.note.as_deref()),
            ("ada", Some("looks right"))
        );
        assert_eq!(
            store.statement(NUMBER).unwrap().unwrap().stage(),
            StatementStage::Approved
        );
        let err = partners.approve_statement(NUMBER, None, &ada).unwrap_err();
        assert_eq!(err.code(), "statement.stage");

        let bob = caller("bob");
        let err = partners.release_statement(NUMBER, "  ", &bob).unwrap_err();
        assert_eq!(err.code(), "statement.reference_required");
        let detail = partners
            .release_statement(NUMBER, "PAY-2026-17", &bob)
            .unwrap();
        assert_eq!(detail.statement.stage(), StatementStage::Released);
        assert_eq!(
            detail.statement.released.unwrap().note.as_deref(),
            Some("PAY-2026-17")
        );
        let err = partners
            .release_statement(NUMBER, "PAY-2", &bob)
            .unwrap_err();
        assert_eq!(err.code(), "statement.stage");
        assert_eq!(
            partners
                .metrics
                .statements
                .with_label_values(&["approved"])
                .get(),
            1
        );
        let target = format!("partner_statement/{NUMBER}");
        assert_eq!(
            audit_ops(&store),
            [
                (
                    "partner_statement.approve".into(),
                    target.clone(),
                    "ada".into()
                ),
                ("partner_statement.release".into(), target, "bob".into()),
            ]
        );
        let audit = store.audit();
        assert_eq!(audit[0].before.as_ref().unwrap()["stage"], "issued");
        assert_eq!(audit[0].after.as_ref().unwrap()["stage"], "approved");
        assert_eq!(audit[1].before.as_ref().unwrap()["stage"], "approved");
        assert_eq!(audit[1].after.as_ref().unwrap()["stage"], "released");
        assert_eq!(
            audit[1].after.as_ref().unwrap()["released"]["note"],
            "PAY-2026-17"
        );
        assert_eq!(audit[0].request_id, "req-ada");
    }

    #[test]
    fn reconciliation_reports_are_numbered_and_keep_bad_lines() {
        let (partners, _store, _system) = service();
        let ops = caller("ops");
        // Their product total 380.00 against our 370.37: 9.63 more on their side.
        let report = partners
            .reconcile_statement(
                NUMBER,
                "product,amount\nmusic-plus,380.00\n",
                ClaimFormat::Csv,
                Decimal::ZERO,
                &ops,
            )
            .unwrap();
        assert_eq!(report.id, "rec-SB-2026-000001-1");
        assert_eq!(report.total.difference, d("9.63"));
        assert_eq!(report.lines[0].difference, d("9.63"));
        assert_eq!(report.only_ours.len(), 3);

        let text = [
            r#"{"record_id": "c1", "amount": "120.00"}"#,
            r#"{"record_id": "c2", "amount": "150.004"}"#,
            r#"{"record_id": "c9", "amount": "4.00"}"#,
            "garbage",
        ]
        .join("\n");
        let report = partners
            .reconcile_statement(NUMBER, &text, ClaimFormat::JsonLines, d("0.005"), &ops)
            .unwrap();
        assert_eq!(report.id, "rec-SB-2026-000001-2");
        assert_eq!(report.matched.len(), 2);
        assert_eq!(report.only_ours.len(), 1);
        assert_eq!(report.only_theirs.len(), 1);
        assert_eq!(report.problems.len(), 1);
        assert_eq!(
            (report.problems[0].line, report.problems[0].code.as_str()),
            (4, "reconcile.bad_line")
        );

        let err = partners
            .reconcile_statement(
                NUMBER,
                "id,value\n1,2\n",
                ClaimFormat::Csv,
                Decimal::ZERO,
                &ops,
            )
            .unwrap_err();
        assert_eq!(err.code(), "reconcile.format");
        let err = partners
            .reconcile_statement(
                NUMBER,
                "garbage",
                ClaimFormat::JsonLines,
                Decimal::ZERO,
                &ops,
            )
            .unwrap_err();
        assert_eq!(err.code(), "reconcile.format");

        let ids: Vec<SmolStr> = partners
            .statement_reconciliations(NUMBER)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["rec-SB-2026-000001-1", "rec-SB-2026-000001-2"]);
        let detail = partners.statement_detail(NUMBER).unwrap();
        assert_eq!(detail.reconciliations, ids);
        assert!(detail.disputes.is_empty());
    }

    #[test]
    fn a_dispute_is_opened_commented_and_resolved_by_a_numbered_credit_note() {
        let (partners, store, _system) = service();
        let ops = caller("ops");
        let request: NewDispute = serde_json::from_value(serde_json::json!({
            "lines": ["product:music-plus"],
            "claimed": { "amount": "9.63", "currency": "EUR" },
            "reason": "our count says 380.00",
        }))
        .unwrap();
        let dispute = partners.open_dispute(NUMBER, &request, &ops).unwrap();
        assert_eq!(dispute.id, "dsp-1");
        assert_eq!(dispute.statement, NUMBER);
        assert_eq!(dispute.lines, [ShareTarget::Product("music-plus".into())]);
        let second = partners.open_dispute(NUMBER, &request, &ops).unwrap();
        assert_eq!(second.id, "dsp-2");

        let mut unknown_line = request.clone();
        unknown_line.lines = vec![LineRef::Text("service:voice".into())];
        let err = partners
            .open_dispute(NUMBER, &unknown_line, &ops)
            .unwrap_err();
        assert_eq!(err.code(), "dispute.unknown_line");
        let mut no_reason = request.clone();
        no_reason.reason = "  ".into();
        let err = partners.open_dispute(NUMBER, &no_reason, &ops).unwrap_err();
        assert_eq!(err.code(), "dispute.reason_required");
        let err = partners.open_dispute("SB-404", &request, &ops).unwrap_err();
        assert_eq!(err.code(), "partner_statement.not_found");
        // Refused opens use no id.
        assert_eq!(store.counter(DISPUTE_COUNTER).unwrap(), 2);

        let ana = caller("ana");
        partners
            .comment_dispute("dsp-1", "checking the March records", &ana)
            .unwrap();
        let err = partners.comment_dispute("dsp-1", " ", &ana).unwrap_err();
        assert_eq!(err.code(), "dispute.reason_required");
        let fin = caller("fin");
        let too_much = DisputeDecision::CreditNote { amount: d("9.64") };
        let err = partners
            .decide_dispute("dsp-1", &too_much, &fin)
            .unwrap_err();
        assert_eq!(err.code(), "dispute.invalid_amount");
        let resolved = partners
            .decide_dispute(
                "dsp-1",
                &DisputeDecision::CreditNote { amount: d("9.63") },
                &fin,
            )
            .unwrap();
        let year = partners.date_of(partners.now()).year();
        let expected = format!("PCN-{year:04}-000001");
        match &resolved.state {
            DisputeState::Resolved(Resolution::CreditNote { number, amount }) => {
                assert_eq!(number.as_str(), expected);
                assert_eq!(amount.amount, d("9.63"));
            }
            other => panic!("not resolved by credit note: {other:?}"),
        }
        let actions: Vec<(DisputeAction, &str)> = resolved
            .history
            .iter()
            .map(|e| (e.action, e.by.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                (DisputeAction::Open, "ops"),
                (DisputeAction::Comment, "ana"),
                (DisputeAction::CreditNote, "fin"),
            ]
        );
        assert_eq!(store.dispute("dsp-1").unwrap().unwrap(), resolved);
        assert_eq!(
            store
                .counter(&format!("partner_credit_note:PCN-{year:04}"))
                .unwrap(),
            1
        );
        // Final: every further step is an illegal transition, and numbers no credit note.
        for decision in [
            DisputeDecision::Reject {
                reason: "late".into(),
            },
            DisputeDecision::CreditNote { amount: d("1") },
        ] {
            let err = partners
                .decide_dispute("dsp-1", &decision, &fin)
                .unwrap_err();
            assert_eq!(err.code(), "dispute.illegal_transition");
        }
        assert_eq!(
            store
                .counter(&format!("partner_credit_note:PCN-{year:04}"))
                .unwrap(),
            1
        );
        let err = partners.comment_dispute("dsp-1", "late", &ana).unwrap_err();
        assert_eq!(err.code(), "dispute.illegal_transition");

        let rejected = partners
            .decide_dispute(
                "dsp-2",
                &DisputeDecision::Reject {
                    reason: "records c7..c9 were refunded".into(),
                },
                &fin,
            )
            .unwrap();
        assert_eq!(rejected.state.as_str(), "rejected");
        let err = partners
            .decide_dispute(
                "dsp-9",
                &DisputeDecision::Reject { reason: "x".into() },
                &fin,
            )
            .unwrap_err();
        assert_eq!(err.code(), "partner_dispute.not_found");

        let listed: Vec<SmolStr> = partners
            .partner_disputes(&PartnerId::new("acme"))
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(listed, ["dsp-1", "dsp-2"]);
        assert_eq!(partners.statement_detail(NUMBER).unwrap().disputes, listed);
        let err = partners
            .partner_disputes(&PartnerId::new("nobody"))
            .unwrap_err();
        assert_eq!(err.code(), "partner.not_found");
    }

    #[test]
    fn an_adhoc_credit_keeps_its_reference() {
        let (partners, _store, _system) = service();
        let ops = caller("ops");
        let request: NewDispute = serde_json::from_value(serde_json::json!({
            "claimed": { "amount": "9.63", "currency": "EUR" },
            "reason": "count",
        }))
        .unwrap();
        partners.open_dispute(NUMBER, &request, &ops).unwrap();
        let fin = caller("fin");
        let blank = DisputeDecision::AdhocCredit {
            amount: d("5"),
            reference: " ".into(),
        };
        let err = partners.decide_dispute("dsp-1", &blank, &fin).unwrap_err();
        assert_eq!(err.code(), "dispute.reason_required");
        let d = partners
            .decide_dispute(
                "dsp-1",
                &DisputeDecision::AdhocCredit {
                    amount: d("5.00"),
                    reference: " ADJ-7 ".into(),
                },
                &fin,
            )
            .unwrap();
        assert!(matches!(
            &d.state,
            DisputeState::Resolved(Resolution::AdHocCredit { reference, .. }) if reference == "ADJ-7"
        ));
    }

    #[test]
    fn statements_of_a_partner_and_its_document() {
        let (partners, _store, _system) = service();
        let acme = PartnerId::new("acme");
        assert_eq!(partners.partner_statements(&acme, None).unwrap().len(), 1);
        assert_eq!(
            partners
                .partner_statements(&acme, Some(date(2026, 3, 1)))
                .unwrap()
                .len(),
            1
        );
        assert!(
            partners
                .partner_statements(&acme, Some(date(2026, 4, 1)))
                .unwrap()
                .is_empty()
        );
        let err = partners
            .partner_statements(&PartnerId::new("nobody"), None)
            .unwrap_err();
        assert_eq!(err.code(), "partner.not_found");
        let text = partners.statement_document(NUMBER).unwrap();
        assert!(text.contains("Acme Content GmbH"));
        assert_eq!(
            partners.statement_document("SB-404").unwrap_err().code(),
            "partner_statement.not_found"
        );
    }
}
