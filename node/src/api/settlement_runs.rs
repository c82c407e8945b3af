//! Settlement runs: `POST /v1/settlement-runs {period, partners?, key, force?, reason?}` starts
//! one (idempotent by key; refused for an open period unless forced with a reason),
//! `GET /v1/settlement-runs[/{id}[/items]]` shows progress and the statement of each partner.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use tollgate_domain::ids::PartnerId;
use tollgate_domain::partner::{SettlementItem, SettlementRun};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::page::{PageQuery, limit_of, next_cursor};
use super::payments::actor;
use crate::partners::off_thread;
use crate::partners::settlement::StartSettlement;

/// A run with its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementView {
    /// The run (id, key, period, state, counts, times).
    #[schema(value_type = Object)]
    pub run: SettlementRun,
    /// Items resolved.
    pub done: u64,
    /// Items not resolved yet.
    pub remaining: u64,
    /// Up to 100 failed partners with their reasons.
    #[schema(value_type = Vec<Object>)]
    pub failures: Vec<SettlementItem>,
}

fn view(run: SettlementRun, failures: Vec<SettlementItem>) -> SettlementView {
    SettlementView {
        done: run.done(),
        remaining: run.total.saturating_sub(run.done()),
        failures,
        run,
    }
}

/// Start a settlement run for a month (idempotent by `key`).
#[utoipa::path(tag = "partners", request_body = StartSettlement,
    responses((status = 201, body = SettlementView, description = "Run created; its jobs are published"),
        (status = 200, body = SettlementView, description = "A run with this key exists"),
        Errors),
    security(("bearer" = ["settlement.run"])))]
#[post("/v1/settlement-runs")]
pub async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<StartSettlement>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let partners = state.partners.clone();
    let by = actor(&caller);
    let (run, fresh) = off_thread(move || partners.create_settlement(&request, &by)).await?;
    if fresh && let Err(e) = state.partners.publish_settlement(&run).await {
        eprintln!(
            "partners: settlement run {} created, jobs not published yet: {e}",
            run.id
        );
    }
    let partners = state.partners.clone();
    let id = run.id.clone();
    let run = off_thread(move || Ok(partners.store.settlement_run(&id)?))
        .await?
        .unwrap_or(run);
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(view(run, Vec::new())))
}

/// A settlement run's progress.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = SettlementView), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/settlement-runs/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = id.into_inner();
    let found = off_thread(move || {
        let Some(run) = partners.store.settlement_run(&id)? else {
            return Ok(None);
        };
        let failures = partners.store.settlement_items(&id, true, None, 100)?;
        Ok(Some((run, failures)))
    })
    .await?;
    match found {
        Some((run, failures)) => Ok(HttpResponse::Ok().json(view(run, failures))),
        None => Err(ApiError::not_found(
            "settlement.unknown_run",
            "no such settlement run",
        )),
    }
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementPage {
    /// Runs, newest first.
    pub items: Vec<SettlementView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Settlement runs, newest first.
#[utoipa::path(tag = "partners", params(PageQuery),
    responses((status = 200, body = SettlementPage), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/settlement-runs")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let query = query.into_inner();
    let limit = query.limit();
    let mut runs = off_thread(move || {
        Ok(partners
            .store
            .settlement_runs(query.cursor.as_deref(), limit + 1)?)
    })
    .await?;
    let next = next_cursor(&mut runs, limit, |r| r.id.to_string());
    Ok(HttpResponse::Ok().json(SettlementPage {
        items: runs.into_iter().map(|r| view(r, Vec::new())).collect(),
        next_cursor: next,
    }))
}

/// Filters of a run's items.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// Only failed partners.
    pub failed: Option<bool>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of run items.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementItemPage {
    /// Items in partner order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<SettlementItem>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A run's partners and the statement issued to each.
#[utoipa::path(tag = "partners", params(("id" = String, Path, description = "Run id"), ItemsQuery),
    responses((status = 200, body = SettlementItemPage), Errors),
    security(("bearer" = ["partner.read"])))]
#[get("/v1/settlement-runs/{id}/items")]
pub async fn items(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ItemsQuery>,
) -> Result<HttpResponse, ApiError> {
    let partners = state.partners.clone();
    let id = id.into_inner();
    let query = query.into_inner();
    let limit = limit_of(query.limit);
    let failed = query.failed.unwrap_or(false);
    let after = query.cursor.map(PartnerId::new);
    let found = off_thread(move || {
        if partners.store.settlement_run(&id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(partners.store.settlement_items(
            &id,
            failed,
            after.as_ref(),
            limit + 1,
        )?))
    })
    .await?;
    let Some(mut items) = found else {
        return Err(ApiError::not_found(
            "settlement.unknown_run",
            "no such settlement run",
        ));
    };
    let next = next_cursor(&mut items, limit, |i| i.partner.to_string());
    Ok(HttpResponse::Ok().json(SettlementItemPage {
        items,
        next_cursor: next,
    }))
}
