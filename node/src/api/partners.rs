//! Partners, agreements and real-time positions:
//! `POST|GET /v1/partners`, `GET|PUT /v1/partners/{id}`,
//! `POST|GET /v1/partners/{id}/agreements`, `GET /v1/partners/{id}/agreements/{agreement}`,
//! `POST /v1/partners/{id}/agreements/{agreement}/versions` (new terms from a future day),
//! `GET /v1/partners/{id}/position?period=YYYY-MM`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, put, web};
use serde::{Deserialize, Serialize};
use tollgate_domain::billing::Amount;
use tollgate_domain::finance::FinancialPeriod;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::partner::statement::StatementTax;
use tollgate_domain::partner::{
    Agreement, LineTotals, Partner, PartnerRecord, ShareTarget, build_statement,
};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::page::{PageQuery, next_cursor};
use super::payments::actor;
use crate::partners::admin::{NewAgreement, VersionTerms};
use crate::partners::settlement::agreement_for;
use crate::partners::{PartnerFailure, month, month_of, off_thread};

/// Create a partner.
#[utoipa::path(tag = "partners", request_body(content = Object, description = "The partner: id, legal_name, contacts, tax_id, bank_reference (IBAN), status, tax {category, jurisdiction}"),
    responses((status = 201, body = Object, description = "The partner with its version"), Errors),
    security(("bearer" = ["partner.write"])))]
#[post("/v1/partners")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<Partner>,
) -> Result<HttpResponse, ApiError> {
    let partner = body.into_inner();
    let partners = state.partners.clone();
    let by = actor(&caller);
    let record = off_thread(move || partners.create_partner(partner, &by)).await?;
    Ok(HttpResponse::Created().json(record))
}

/// A page of partners.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerPage {
    /// Partners in id order, each with its version.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<PartnerRecord>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Partners in id order.
#[utoipa::path(tag = "partners", params(PageQuery),
    responses((status = 200, body = PartnerPage), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partners")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let query = query.into_inner();
    let limit = query.limit();
    let after = query.cursor.map(PartnerId::new);
    let mut items =
        off_thread(move || Ok(partners.store.partners(after.as_ref(), limit + 1)?)).await?;
    let next = next_cursor(&mut items, limit, |p| p.partner.id.to_string());
    Ok(HttpResponse::Ok().json(PartnerPage {
        items,
        next_cursor: next,
    }))
}

/// A partner with its version.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id")),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partners/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = PartnerId::new(id.into_inner());
    let record = off_thread(move || partners.partner(&id)).await?;
    Ok(HttpResponse::Ok().json(record))
}

/// The version a change was decided from.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// The partner's version read; the change is refused (409) if it moved since.
    pub version: Option<u64>,
}

/// Change a partner's data (the whole record).
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id"), VersionQuery),
    request_body(content = Object, description = "The partner"),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["partner.write"])))]
#[put("/v1/partners/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<VersionQuery>,
    body: Body<Partner>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = PartnerId::new(id.into_inner());
    let partner = body.into_inner();
    let by = actor(&caller);
    let version = query.version;
    let record = off_thread(move || partners.update_partner(&id, partner, version, &by)).await?;
    Ok(HttpResponse::Ok().json(record))
}

/// A partner's agreements.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementList {
    /// Agreements in id order, each with every version.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Agreement>,
}

/// A partner's agreements with their version history.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id")),
    responses((status = 200, body = AgreementList), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partners/{id}/agreements")]
pub async fn list_agreements(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = PartnerId::new(id.into_inner());
    let items = off_thread(move || {
        partners.partner(&id)?;
        Ok(partners.store.agreements(&id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(AgreementList { items }))
}

/// Create an agreement for a partner.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id")),
    request_body = NewAgreement,
    responses((status = 201, body = Object, description = "The agreement"), Errors),
    security(("bearer" = ["partner.write"])))]
#[post("/v1/partners/{id}/agreements")]
pub async fn create_agreement(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<NewAgreement>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = PartnerId::new(id.into_inner());
    let request = body.into_inner();
    let by = actor(&caller);
    let p = id.clone();
    let agreement = off_thread(move || partners.create_agreement(&p, request, &by)).await?;
    // Records that waited for an agreement are shared now.
    if let Err(e) = state.partners.router.agreements_changed(&id).await {
        eprintln!("partners: {id} not drained after its new agreement: {e}");
    }
    Ok(HttpResponse::Created().json(agreement))
}

/// One agreement with every version.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id"),
        ("agreement" = String, Path, description = "Agreement id")),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partners/{id}/agreements/{agreement}")]
pub async fn show_agreement(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let (id, agreement) = path.into_inner();
    let found = off_thread(move || Ok(partners.store.agreement(&agreement)?)).await?;
    match found.filter(|a| a.partner.as_str() == id) {
        Some(a) => Ok(HttpResponse::Ok().json(a)),
        None => Err(ApiError::not_found(
            "agreement.not_found",
            "the partner has no such agreement",
        )),
    }
}

/// Change an agreement's terms from a future day (a new version; the history is kept).
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id"),
        ("agreement" = String, Path, description = "Agreement id")),
    request_body(content = Object, description = "valid_from, shares, min_guarantee, cap, note"),
    responses((status = 200, body = Object, description = "The agreement with the new version"), Errors),
    security(("bearer" = ["partner.write"])))]
#[post("/v1/partners/{id}/agreements/{agreement}/versions")]
pub async fn amend(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Body<VersionTerms>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let (id, agreement) = path.into_inner();
    let id = PartnerId::new(id);
    let terms = body.into_inner();
    let by = actor(&caller);
    let p = id.clone();
    let amended = off_thread(move || partners.amend_agreement(&p, &agreement, terms, &by)).await?;
    if let Err(e) = state.partners.router.agreements_changed(&id).await {
        eprintln!("partners: {id} not drained after its agreement changed: {e}");
    }
    Ok(HttpResponse::Ok().json(amended))
}

/// The month asked.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Month `YYYY-MM` (default: the current month).
    pub period: Option<String>,
}

/// One line of a position.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionLine {
    /// `product:<id>`, `service:<name>` or `invoice_total`.
    pub target: String,
    /// Exact totals (records, units, base, share).
    #[schema(value_type = Object)]
    pub totals: LineTotals,
    /// The share as the statement will round it (half-up to minor units, once per line).
    #[schema(value_type = Object)]
    pub share: Amount,
}

/// A partner's position for a month, as of now.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionView {
    /// Partner.
    pub partner: String,
    /// Month `YYYY-MM`.
    pub period: String,
    /// Agreement the month is settled under (none: no agreement covers it).
    pub agreement: Option<String>,
    /// Currency.
    pub currency: Option<String>,
    /// Records (and invoices) counted, net of reversals by rerating.
    pub records: u64,
    /// Lines.
    pub lines: Vec<PositionLine>,
    /// What the statement would say now: subtotal, guarantee top-up, cap cut, net, tax, total
    /// (shares of invoice totals are added at settlement).
    #[schema(value_type = Object)]
    pub preview: Option<serde_json::Value>,
    /// Records still in the partner's inbox: no agreement in force on their day, or refused by
    /// the agreement (see `tollgate_partner_records_total`).
    pub waiting: u64,
    /// Statements issued for the month.
    pub statements: Vec<String>,
}

/// A partner's real-time position for a month: everything charged so far is counted first.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Partner id"), PeriodQuery),
    responses((status = 200, body = PositionView), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/partners/{id}/position")]
pub async fn position(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = PartnerId::new(id.into_inner());
    let period = match &query.period {
        Some(p) => month(p)?,
        None => month_of(partners.date_of(partners.now()))?,
    };
    let start = period.start;
    // Unknown partners are 404 before anything starts an actor for them.
    let record = {
        let p = partners.clone();
        let i = id.clone();
        off_thread(move || p.partner(&i)).await?
    };
    let report = partners
        .router
        .drain(&id)
        .await
        .map_err(PartnerFailure::from)?;
    let view = off_thread(move || {
        let agreements = partners.store.agreements(&id)?;
        let agreement = agreement_for(&agreements, &period);
        let position = partners.store.position(&id, start)?;
        let statements = partners
            .store
            .statements(&id, Some(start))?
            .into_iter()
            .filter_map(|s| s.number)
            .collect();
        let mut view = PositionView {
            partner: id.to_string(),
            period: FinancialPeriod::id_of(start).to_string(),
            agreement: agreement.map(|a| a.id.to_string()),
            currency: agreement.map(|a| a.currency.to_string()),
            records: 0,
            lines: Vec::new(),
            preview: None,
            waiting: report.waiting(),
            statements,
        };
        let (Some(agreement), Some(position)) = (agreement, position) else {
            return Ok(view);
        };
        view.records = position.lines.values().map(|l| l.records).sum();
        let setup = partners.customers.setup()?;
        let tax = record.partner.tax.as_ref().map(|t| StatementTax {
            scheme: setup.tax_scheme.clone(),
            category: t.category.clone(),
            jurisdiction: t.jurisdiction.clone(),
        });
        // Without a tax rate the preview shows no tax; settlement refuses until it is set.
        let preview = build_statement(&position, agreement, tax.as_ref())
            .or_else(|_| build_statement(&position, agreement, None))?;
        for (target, totals) in &position.lines {
            let share = preview
                .line(target)
                .map(|l| l.share)
                .unwrap_or_else(|| Amount::from_minor(0, position.currency));
            view.lines.push(PositionLine {
                target: target_text(target),
                totals: *totals,
                share,
            });
        }
        view.preview = Some(serde_json::json!({
            "subtotal": preview.subtotal,
            "guarantee_top_up": preview.guarantee_top_up,
            "cap_cut": preview.cap_cut,
            "net": preview.net,
            "tax": preview.tax,
            "total": preview.total,
        }));
        Ok(view)
    })
    .await?;
    Ok(HttpResponse::build(StatusCode::OK).json(view))
}

fn target_text(target: &ShareTarget) -> String {
    target.to_string()
}
