//! Partner statements (self-billing documents) after settlement, their reconciliation with the
//! partner's own statement, and disputes:
//! `GET /v1/partners/{id}/statements?period=YYYY-MM`, `GET /v1/partner-statements/{number}`,
//! `GET /v1/partner-statements/{number}/document` (text),
//! `POST /v1/partner-statements/{number}/approve {note?}`,
//! `POST /v1/partner-statements/{number}/release {reference}`,
//! `POST|GET /v1/partner-statements/{number}/reconciliations` (their CSV or JSON lines),
//! `POST /v1/partner-statements/{number}/disputes {lines?, claimed, reason}`,
//! `GET /v1/partner-disputes/{id}`, `GET /v1/partners/{id}/disputes`,
//! `POST /v1/partner-disputes/{id}/comment {note}`,
//! `POST /v1/partner-disputes/{id}/resolve {credit_note | adhoc_credit | reject}`.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_domain::finance::FinancialPeriod;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::partner::reconcile::Compared;
use tollgate_domain::partner::store::ReportProblem;
use tollgate_domain::partner::{Dispute, PartnerStatement, ReconciliationReport};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::body::{Body, read_limited};
use super::error::{ApiError, Errors};
use super::page::{PageQuery, page};
use super::payments::actor;
use crate::partners::review::{
    DisputeDecision, NewDispute, StatementDetail, claim_format, parse_tolerance, upload_text,
};
use crate::partners::{month, off_thread};

/// A statement in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementSummary {
    /// Self-billing document number (`SB-{yyyy}-{seq:06}`).
    pub number: String,
    /// `issued`, `approved` or `released`.
    pub stage: String,
    /// Month settled, `YYYY-MM`.
    pub period: String,
    /// The statement: `partner`, `agreement`, `period` {start, end (exclusive)}, `currency`,
    /// `lines` [{target, records, units, base, share_exact, share}], `subtotal`,
    /// `guarantee_top_up`, `cap_cut`, `net`, `tax_lines`, `tax`, `total` (amounts with their
    /// minor units), `approved` and `released` ({by, at, note}, null until then).
    #[schema(value_type = Object)]
    pub statement: PartnerStatement,
}

fn summary(statement: PartnerStatement) -> StatementSummary {
    StatementSummary {
        number: statement.number.clone().unwrap_or_default(),
        stage: statement.stage().to_string(),
        period: FinancialPeriod::id_of(statement.period.start).to_string(),
        statement,
    }
}

/// A statement with what refers to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementView {
    /// Self-billing document number.
    pub number: String,
    /// `issued`, `approved` or `released`.
    pub stage: String,
    /// Month settled, `YYYY-MM`.
    pub period: String,
    /// The statement (see the list).
    #[schema(value_type = Object)]
    pub statement: PartnerStatement,
    /// Its reconciliation reports (ids, oldest first by number).
    pub reconciliations: Vec<String>,
    /// Its disputes (ids).
    pub disputes: Vec<String>,
}

fn view(detail: StatementDetail) -> StatementView {
    let StatementSummary {
        number,
        stage,
        period,
        statement,
    } = summary(detail.statement);
    StatementView {
        number,
        stage,
        period,
        statement,
        reconciliations: detail
            .reconciliations
            .into_iter()
            .map(|r| r.to_string())
            .collect(),
        disputes: detail.disputes.into_iter().map(|d| d.to_string()).collect(),
    }
}

/// A partner's statements.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementList {
    /// Statements in (period, number) order.
    pub items: Vec<StatementSummary>,
}

/// The month asked.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// Only the statements of this month, `YYYY-MM` (default: all).
    pub period: Option<String>,
}

/// A partner's statements (self-billing documents).
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id"), StatementQuery),
    responses((status = 200, body = StatementList), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partners/{id}/statements")]
pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, ApiError> {
    let start = query
        .period
        .as_deref()
        .map(|p| month(p).map(|m| m.start))
        .transpose()?;
    let partners = state.partners.clone();
    let id = PartnerId::new(id.into_inner());
    let statements = off_thread(move || partners.partner_statements(&id, start)).await?;
    Ok(HttpResponse::Ok().json(StatementList {
        items: statements.into_iter().map(summary).collect(),
    }))
}

/// A statement with its stage, lines, taxes, totals, approval and release, and the ids of its
/// reconciliation reports and disputes.
#[utoipa::path(tag = "partners", params(("number" = String, Path, description = "Statement number")),
    responses((status = 200, body = StatementView), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partner-statements/{number}")]
pub async fn show(
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let number = number.into_inner();
    let detail = off_thread(move || partners.statement_detail(&number)).await?;
    Ok(HttpResponse::Ok().json(view(detail)))
}

/// The self-billing document as text: partner (legal name, tax id, bank reference), period,
/// lines with records, units, base and share, guarantee top-up, cap cut, net, tax lines, total
/// and stage.
#[utoipa::path(tag = "partners", params(("number" = String, Path, description = "Statement number")),
    responses((status = 200, content_type = "text/plain", body = String), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partner-statements/{number}/document")]
pub async fn document(
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let number = number.into_inner();
    let text = off_thread(move || partners.statement_document(&number)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}

/// An approval.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// Comment kept with the approval (optional; send `{}` without one).
    #[serde(default)]
    pub note: Option<String>,
}

/// Approve an issued statement for payment.
#[utoipa::path(tag = "partners", params(("number" = String, Path, description = "Statement number")),
    request_body = ApproveRequest,
    responses((status = 200, body = StatementView, description = "Approved"), Errors),
    security(("bearer" = ["settlement.approve"])))]
#[post("/v1/partner-statements/{number}/approve")]
pub async fn approve(
    state: web::Data<AppState>,
    caller: Caller,
    number: web::Path<String>,
    body: Body<ApproveRequest>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let number = number.into_inner();
    let note = body.into_inner().note;
    let by = actor(&caller);
    let detail = off_thread(move || partners.approve_statement(&number, note, &by)).await?;
    Ok(HttpResponse::Ok().json(view(detail)))
}

/// A release.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Payment reference (required).
    pub reference: String,
}

/// Release an approved statement: mark it as paid, with the payment reference.
#[utoipa::path(tag = "partners", params(("number" = String, Path, description = "Statement number")),
    request_body = ReleaseRequest,
    responses((status = 200, body = StatementView, description = "Released"), Errors),
    security(("bearer" = ["settlement.approve"])))]
#[post("/v1/partner-statements/{number}/release")]
pub async fn release(
    state: web::Data<AppState>,
    caller: Caller,
    number: web::Path<String>,
    body: Body<ReleaseRequest>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let number = number.into_inner();
    let reference = body.into_inner().reference;
    let by = actor(&caller);
    let detail = off_thread(move || partners.release_statement(&number, &reference, &by)).await?;
    Ok(HttpResponse::Ok().json(view(detail)))
}

/// One record compared (`difference` = theirs - ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordComparison {
    /// Record id (or invoice number).
    pub record: String,
    /// Our exact share (0 when only theirs).
    #[schema(value_type = String)]
    pub ours: Decimal,
    /// Their amount (0 when only ours).
    #[schema(value_type = String)]
    pub theirs: Decimal,
    /// `theirs - ours`.
    #[schema(value_type = String)]
    pub difference: Decimal,
}

/// One statement line compared (`difference` = theirs - ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct LineComparison {
    /// `product:<id>`, `service:<name>` or `invoice_total`.
    pub target: String,
    /// Our rounded line share.
    #[schema(value_type = String)]
    pub ours: Decimal,
    /// Their total for the line, or the sum of their record claims for our records of it.
    #[schema(value_type = String)]
    pub theirs: Decimal,
    /// `theirs - ours`.
    #[schema(value_type = String)]
    pub difference: Decimal,
}

/// Totals compared (`difference` = theirs - ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalComparison {
    /// Our subtotal (shares before guarantee and cap).
    #[schema(value_type = String)]
    pub ours: Decimal,
    /// Their line totals if they gave any, else the sum of their record claims.
    #[schema(value_type = String)]
    pub theirs: Decimal,
    /// `theirs - ours`.
    #[schema(value_type = String)]
    pub difference: Decimal,
}

/// How many of each.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportCounts {
    /// Records on both sides within the tolerance.
    pub matched: usize,
    /// Records on both sides with a larger difference.
    pub differing: usize,
    /// Records only we counted.
    pub only_ours: usize,
    /// Records only they claim.
    pub only_theirs: usize,
    /// Bad lines of their file.
    pub problems: usize,
}

/// One bad line of their file.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimProblemView {
    /// Line number in their file (1-based; the CSV header is line 1).
    pub line: u64,
    /// `reconcile.bad_line`, `reconcile.missing_key`, `reconcile.bad_amount`,
    /// `reconcile.currency_mismatch`, `reconcile.duplicate` or `reconcile.too_many_lines`.
    pub code: String,
    /// Why.
    pub message: String,
}

/// A reconciliation report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    /// Id, `rec-<statement>-<n>`.
    pub id: String,
    /// Statement reconciled.
    pub statement: String,
    /// Partner.
    pub partner: String,
    /// When it was made.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// Currency.
    pub currency: String,
    /// How many of each.
    pub counts: ReportCounts,
    /// Records on both sides within the tolerance.
    pub matched: Vec<RecordComparison>,
    /// Records on both sides with a larger difference.
    pub differing: Vec<RecordComparison>,
    /// Records only we counted.
    pub only_ours: Vec<RecordComparison>,
    /// Records only they claim.
    pub only_theirs: Vec<RecordComparison>,
    /// Every statement line (ours, theirs or both).
    pub lines: Vec<LineComparison>,
    /// Totals.
    pub total: TotalComparison,
    /// Bad lines of their file (not reconciled).
    pub problems: Vec<ClaimProblemView>,
}

fn records(compared: &[Compared<tollgate_domain::ids::CdrId>]) -> Vec<RecordComparison> {
    compared
        .iter()
        .map(|c| RecordComparison {
            record: c.key.to_string(),
            ours: c.ours,
            theirs: c.theirs,
            difference: c.difference,
        })
        .collect()
}

fn report_view(report: &ReconciliationReport) -> ReportView {
    ReportView {
        id: report.id.to_string(),
        statement: report.statement.to_string(),
        partner: report.partner.to_string(),
        created_at: report.created_at,
        created_by: report.created_by.to_string(),
        currency: report.currency.to_string(),
        counts: ReportCounts {
            matched: report.matched.len(),
            differing: report.differing.len(),
            only_ours: report.only_ours.len(),
            only_theirs: report.only_theirs.len(),
            problems: report.problems.len(),
        },
        matched: records(&report.matched),
        differing: records(&report.differing),
        only_ours: records(&report.only_ours),
        only_theirs: records(&report.only_theirs),
        lines: report
            .lines
            .iter()
            .map(|c| LineComparison {
                target: c.key.to_string(),
                ours: c.ours,
                theirs: c.theirs,
                difference: c.difference,
            })
            .collect(),
        total: TotalComparison {
            ours: report.total.ours,
            theirs: report.total.theirs,
            difference: report.total.difference,
        },
        problems: report
            .problems
            .iter()
            .map(|p: &ReportProblem| ClaimProblemView {
                line: p.line,
                code: p.code.to_string(),
                message: p.message.clone(),
            })
            .collect(),
    }
}

/// The tolerance of a reconciliation.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconcileQuery {
    /// Largest absolute difference of a record still counted as matched: a decimal, default 0.
    pub tolerance: Option<String>,
}

/// Reconcile a statement with the partner's own: the body is their statement as CSV
/// (`Content-Type: text/csv`, a header with `amount` and one of `record_id`, `product`,
/// `service`, optionally `currency`) or JSON lines (`application/x-ndjson` or
/// `application/jsonl`, one `{"record_id"|"product"|"service": ..., "amount": "1.20"}` per
/// line), at most `http.upload_limit_bytes`. Bad lines are reported with their line number and
/// code, the good ones reconciled; a file without a usable line (or a CSV header without
/// `amount` or a key column) is refused with 422 `reconcile.format`.
#[utoipa::path(tag = "partners",
    params(("number" = String, Path, description = "Statement number"), ReconcileQuery),
    request_body(description = "The partner's statement", content(
        (String = "text/csv"),
        (String = "application/x-ndjson"),
        (String = "application/jsonl"))),
    responses((status = 201, body = ReportView, description = "The report, stored"), Errors),
    security(("bearer" = ["partner.write"])))]
#[post("/v1/partner-statements/{number}/reconciliations")]
pub async fn reconcile(
    state: web::Data<AppState>,
    caller: Caller,
    number: web::Path<String>,
    query: web::Query<ReconcileQuery>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(format) = claim_format(content_type) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
            "send the partner's statement as text/csv or as JSON lines (application/x-ndjson, \
             application/jsonl)",
        ));
    };
    let tolerance = parse_tolerance(query.tolerance.as_deref())?;
    let bytes = read_limited(body, state.upload_limit_bytes).await?;
    let partners = state.partners.clone();
    let number = number.into_inner();
    let by = actor(&caller);
    let report = off_thread(move || {
        let text = upload_text(bytes)?;
        partners.reconcile_statement(&number, &text, format, tolerance, &by)
    })
    .await?;
    Ok(HttpResponse::Created().json(report_view(&report)))
}

/// A page of reconciliation reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    /// Reports in id order.
    pub items: Vec<ReportView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A statement's reconciliation reports.
#[utoipa::path(tag = "partners", params(("number" = String, Path, description = "Statement number"), PageQuery),
    responses((status = 200, body = ReportPage), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partner-statements/{number}/reconciliations")]
pub async fn reconciliations(
    state: web::Data<AppState>,
    number: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let number = number.into_inner();
    let reports = off_thread(move || partners.statement_reconciliations(&number)).await?;
    let (items, next_cursor) = page(reports, |r| r.id.to_string(), &query);
    Ok(HttpResponse::Ok().json(ReportPage {
        items: items.iter().map(report_view).collect(),
        next_cursor,
    }))
}

/// A dispute.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisputeView {
    /// Id, `dsp-<n>`.
    pub id: String,
    /// Statement disputed.
    pub statement: String,
    /// Partner.
    pub partner: String,
    /// `open`, `resolved` or `rejected`.
    pub state: String,
    /// The dispute: `lines` (empty: the whole statement), `claimed` {amount, currency},
    /// `state` (`"open"`, `{"resolved": {"credit_note": {number, amount}}}`,
    /// `{"resolved": {"ad_hoc_credit": {amount, reference}}}`, `{"rejected": "<reason>"}`) and
    /// `history` [{action, by, at, note}], oldest first.
    #[schema(value_type = Object)]
    pub dispute: Dispute,
}

fn dispute_view(dispute: Dispute) -> DisputeView {
    DisputeView {
        id: dispute.id.to_string(),
        statement: dispute.statement.to_string(),
        partner: dispute.partner.to_string(),
        state: dispute.state.as_str().to_string(),
        dispute,
    }
}

/// Open a dispute on a statement or some of its lines. `claimed` is money in the statement's
/// currency, `{"amount": "9.63", "currency": "EUR"}`; `lines` are `product:<id>`,
/// `service:<name>` or `invoice_total` (none: the whole statement); `reason` is required.
#[utoipa::path(tag = "partners", params(("number" = String, Path, description = "Statement number")),
    request_body = NewDispute,
    responses((status = 201, body = DisputeView, description = "Opened"), Errors),
    security(("bearer" = ["partner.write"])))]
#[post("/v1/partner-statements/{number}/disputes")]
pub async fn open_dispute(
    state: web::Data<AppState>,
    caller: Caller,
    number: web::Path<String>,
    body: Body<NewDispute>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let number = number.into_inner();
    let request = body.into_inner();
    let by = actor(&caller);
    let dispute = off_thread(move || partners.open_dispute(&number, &request, &by)).await?;
    Ok(HttpResponse::Created().json(dispute_view(dispute)))
}

/// A dispute with its history.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Dispute id")),
    responses((status = 200, body = DisputeView), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partner-disputes/{id}")]
pub async fn show_dispute(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = id.into_inner();
    let dispute = off_thread(move || partners.dispute(&id)).await?;
    Ok(HttpResponse::Ok().json(dispute_view(dispute)))
}

/// Filters and paging of a partner's disputes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DisputeQuery {
    /// Only disputes in this state: `open`, `resolved` or `rejected`.
    pub state: Option<String>,
    /// Only disputes of this statement.
    pub statement: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of disputes.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisputePage {
    /// Disputes in id order.
    pub items: Vec<DisputeView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A partner's disputes.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id"), DisputeQuery),
    responses((status = 200, body = DisputePage), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partners/{id}/disputes")]
pub async fn partner_disputes(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DisputeQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(s) = query.state.as_deref()
        && !["open", "resolved", "rejected"].contains(&s)
    {
        return Err(ApiError::bad_request(
            "request.bad_query",
            format!("state {s:?} is not open, resolved or rejected"),
        ));
    }
    let partners = state.partners.clone();
    let id = PartnerId::new(id.into_inner());
    let all = off_thread(move || partners.partner_disputes(&id)).await?;
    let selected: Vec<Dispute> = all
        .into_iter()
        .filter(|d| query.state.as_deref().is_none_or(|s| d.state.as_str() == s))
        .filter(|d| query.statement.as_deref().is_none_or(|s| d.statement == s))
        .collect();
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let (items, next_cursor) = page(selected, |d| d.id.to_string(), &paging);
    Ok(HttpResponse::Ok().json(DisputePage {
        items: items.into_iter().map(dispute_view).collect(),
        next_cursor,
    }))
}

/// A note on a dispute.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// The note (required, at most 2000 characters).
    pub note: String,
}

/// Add a note to an open dispute.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Dispute id")),
    request_body = CommentRequest,
    responses((status = 200, body = DisputeView), Errors),
    security(("bearer" = ["partner.write"])))]
#[post("/v1/partner-disputes/{id}/comment")]
pub async fn comment_dispute(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<CommentRequest>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = id.into_inner();
    let note = body.into_inner().note;
    let by = actor(&caller);
    let dispute = off_thread(move || partners.comment_dispute(&id, &note, &by)).await?;
    Ok(HttpResponse::Ok().json(dispute_view(dispute)))
}

/// Decide an open dispute: `{"credit_note": {"amount": "9.63"}}` (a partner credit note
/// numbered `PCN-{yyyy}-{seq:06}`), `{"adhoc_credit": {"amount": "5.00", "reference":
/// "ADJ-7"}}` (both at most the claimed amount, in its currency) or `{"reject": {"reason":
/// "..."}}`. A dispute already resolved or rejected: 409 `dispute.illegal_transition`.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Dispute id")),
    request_body = DisputeDecision,
    responses((status = 200, body = DisputeView), Errors),
    security(("bearer" = ["settlement.approve"])))]
#[post("/v1/partner-disputes/{id}/resolve")]
pub async fn resolve_dispute(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<DisputeDecision>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = id.into_inner();
    let decision = body.into_inner();
    let by = actor(&caller);
    let dispute = off_thread(move || partners.decide_dispute(&id, &decision, &by)).await?;
    Ok(HttpResponse::Ok().json(dispute_view(dispute)))
}
