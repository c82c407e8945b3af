//! Bill runs: `POST /v1/bill-runs` starts one (idempotent by key), `GET /v1/bill-runs[/{id}]`
//! shows progress (total, done, failed, rate) and the failed payers with their reasons.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_domain::billing::run::{BillRun, RunItem};
use tollgate_domain::ids::AccountId;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::page::{PageQuery, limit_of, next_cursor};
use crate::billing::{StartError, StartRun, off_thread};

/// A run with its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// The run (id, key, cycle, period, state, counts, times).
    #[schema(value_type = Object)]
    pub run: BillRun,
    /// Items resolved (billed + already billed + failed).
    pub done: u64,
    /// Items not resolved yet.
    pub remaining: u64,
    /// Items resolved per second since the jobs were published (null before).
    pub rate_per_second: Option<f64>,
    /// Up to 100 failed payers with their reasons (all of them: `GET .../items?failed=true`).
    #[schema(value_type = Vec<Object>)]
    pub failures: Vec<RunItem>,
}

fn view(run: BillRun, failures: Vec<RunItem>) -> RunView {
    let done = run.done();
    let end = run.finished_at.unwrap_or_else(Timestamp::now);
    let rate_per_second = run.published_at.map(|p| {
        let secs = end.duration_since(p).as_secs_f64().max(0.001);
        done as f64 / secs
    });
    RunView {
        remaining: run.total.saturating_sub(done),
        done,
        rate_per_second,
        failures,
        run,
    }
}

fn start_error(e: StartError) -> ApiError {
    let status = match &e {
        StartError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        StartError::KeyReused { .. } => StatusCode::CONFLICT,
        StartError::Billing(b) if b.code() == "billing.unknown_cycle" => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// Start a bill run for a cycle and an ended period (idempotent by `key`).
#[utoipa::path(tag = "billing", request_body = StartRun,
    responses((status = 201, body = RunView, description = "Run created; its jobs are published"),
        (status = 200, body = RunView, description = "A run with this key exists: nothing new"),
        Errors),
    security(("bearer" = ["billing.run"])))]
#[post("/v1/bill-runs")]
pub async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<StartRun>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let billing = state.billing.clone();
    let user = caller.principal.user.to_string();
    let request_id = caller.request_id.clone();
    let created = web::block(move || {
        let now = billing.clock.now();
        billing.create(&request, &user, &request_id, now)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node.busy", "retry"))?;
    let (run, fresh) = created.map_err(start_error)?;
    if fresh && let Err(e) = state.billing.publish(&run).await {
        // The run is durable; the node publishes its jobs again until the queue takes them.
        eprintln!(
            "billing: run {} created, jobs not published yet: {e}",
            run.id
        );
    }
    let id = run.id.clone();
    let billing = state.billing.clone();
    let run = off_thread(move || billing.runs.run(&id))
        .await?
        .unwrap_or(run);
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(view(run, Vec::new())))
}

/// A bill run's progress.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunView), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/bill-runs/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing.clone();
    let id = id.into_inner();
    let found = off_thread(move || {
        let Some(run) = billing.runs.run(&id)? else {
            return Ok(None);
        };
        let failures = billing.runs.items(&id, true, None, 100)?;
        Ok(Some((run, failures)))
    })
    .await?;
    match found {
        Some((run, failures)) => Ok(HttpResponse::Ok().json(view(run, failures))),
        None => Err(ApiError::not_found(
            "billing.unknown_run",
            "no such bill run",
        )),
    }
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Runs, newest first.
    pub items: Vec<RunView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Bill runs, newest first.
#[utoipa::path(tag = "billing", params(PageQuery),
    responses((status = 200, body = RunPage), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/bill-runs")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing.clone();
    let query = query.into_inner();
    let limit = query.limit();
    let mut runs =
        off_thread(move || billing.runs.runs(query.cursor.as_deref(), limit + 1)).await?;
    let next = next_cursor(&mut runs, limit, |r| r.id.to_string());
    Ok(HttpResponse::Ok().json(RunPage {
        items: runs.into_iter().map(|r| view(r, Vec::new())).collect(),
        next_cursor: next,
    }))
}

/// Filters of a run's items.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// Only failed payers.
    pub failed: Option<bool>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of run items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    /// Items in payer order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<RunItem>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A run's payers and what became of each.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "Run id"), ItemsQuery),
    responses((status = 200, body = ItemPage), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/bill-runs/{id}/items")]
pub async fn items(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ItemsQuery>,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing.clone();
    let id = id.into_inner();
    let query = query.into_inner();
    let limit = limit_of(query.limit);
    let failed = query.failed.unwrap_or(false);
    let after = query.cursor.map(AccountId::new);
    let found = off_thread(move || {
        if billing.runs.run(&id)?.is_none() {
            return Ok(None);
        }
        billing
            .runs
            .items(&id, failed, after.as_ref(), limit + 1)
            .map(Some)
    })
    .await?;
    let Some(mut items) = found else {
        return Err(ApiError::not_found(
            "billing.unknown_run",
            "no such bill run",
        ));
    };
    let next = next_cursor(&mut items, limit, |i| i.payer.to_string());
    Ok(HttpResponse::Ok().json(ItemPage {
        items,
        next_cursor: next,
    }))
}
