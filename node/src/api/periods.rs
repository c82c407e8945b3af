//! Financial periods (calendar months): `GET /v1/periods[/{id}]`, `POST /v1/periods/{id}/close`
//! (partially, with accounts or services, or entirely; refused over un-billed usage unless
//! forced with a reason; permission `period.close`) and `POST /v1/periods/{id}/reopen` (with a
//! reason; permission `period.reopen`). Every change is audited with the period before and after.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use smol_str::SmolStr;
use tollgate_domain::finance::ClosedScope;
use tollgate_domain::ids::AccountId;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::payments::actor;
use crate::finance::off_thread;
use crate::finance::periods::PeriodChange;

/// A close request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// Close only these accounts (a partial close).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Close only these services (a partial close).
    #[serde(default)]
    pub services: Vec<String>,
    /// Close although some payers have un-billed usage in the period (needs a reason).
    #[serde(default)]
    pub force: bool,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A reopen request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    /// Why (required, kept in the period's history and the audit trail).
    pub reason: String,
}

/// Stored periods (those ever closed), by id.
#[utoipa::path(tag = "finance",
    responses((status = 200, body = Vec<Object>), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/periods")]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let periods = off_thread(move || Ok(finance.store.periods()?)).await?;
    Ok(HttpResponse::Ok().json(periods))
}

/// A period (open when never closed).
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/periods/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = id.into_inner();
    let period = off_thread(move || finance.period(&id)).await?;
    Ok(HttpResponse::Ok().json(period))
}

/// Close a period, or some of its accounts or services.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "YYYY-MM")),
    request_body = CloseBody,
    responses((status = 200, body = Object, description = "The period after"), Errors),
    security(("bearer" = ["period.close"])))]
#[post("/v1/periods/{id}/close")]
pub async fn close(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<CloseBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let scope = if b.accounts.is_empty() && b.services.is_empty() {
        None
    } else {
        Some(ClosedScope {
            accounts: b.accounts.iter().map(AccountId::new).collect(),
            services: b.services.iter().map(SmolStr::new).collect::<BTreeSet<_>>(),
        })
    };
    let change = PeriodChange::Close {
        scope,
        force: b.force,
        reason: b.reason,
    };
    let finance = state.finance.clone();
    let by = actor(&caller);
    let id = id.into_inner();
    let period = off_thread(move || finance.change_period(&id, &change, &by)).await?;
    Ok(HttpResponse::Ok().json(period))
}

/// Reopen a closed or partially closed period.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "YYYY-MM")),
    request_body = ReopenBody,
    responses((status = 200, body = Object, description = "The period after"), Errors),
    security(("bearer" = ["period.reopen"])))]
#[post("/v1/periods/{id}/reopen")]
pub async fn reopen(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<ReopenBody>,
) -> Result<HttpResponse, ApiError> {
    let change = PeriodChange::Reopen {
        reason: body.into_inner().reason,
    };
    let finance = state.finance.clone();
    let by = actor(&caller);
    let id = id.into_inner();
    let period = off_thread(move || finance.change_period(&id, &change, &by)).await?;
    Ok(HttpResponse::Ok().json(period))
}
