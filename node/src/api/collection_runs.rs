//! Collection (dunning) runs: `POST /v1/collection-runs {as_of?, key}` starts one (idempotent by
//! key; refused for a future date), `GET /v1/collection-runs[/{id}[/items]]` shows progress and
//! the steps applied per action.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use tollgate_domain::finance::{CollectionItem, CollectionRun};
use tollgate_domain::ids::AccountId;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::page::{PageQuery, limit_of, next_cursor};
use super::payments::actor;
use crate::finance::collection::StartCollection;
use crate::finance::off_thread;

/// A run with its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionView {
    /// The run (id, key, as_of, state, counts, steps per action, times).
    #[schema(value_type = Object)]
    pub run: CollectionRun,
    /// Items resolved.
    pub done: u64,
    /// Items not resolved yet.
    pub remaining: u64,
    /// Up to 100 failed accounts with their reasons.
    #[schema(value_type = Vec<Object>)]
    pub failures: Vec<CollectionItem>,
}

fn view(run: CollectionRun, failures: Vec<CollectionItem>) -> CollectionView {
    CollectionView {
        done: run.done(),
        remaining: run.total.saturating_sub(run.done()),
        failures,
        run,
    }
}

/// Start a collection run (idempotent by `key`).
#[utoipa::path(tag = "finance", request_body = StartCollection,
    responses((status = 201, body = CollectionView, description = "Run created; its jobs are published"),
        (status = 200, body = CollectionView, description = "A run with this key exists"),
        Errors),
    security(("bearer" = ["collection.run"])))]
#[post("/v1/collection-runs")]
pub async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<StartCollection>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let finance = state.finance.clone();
    let by = actor(&caller);
    let (run, fresh) = off_thread(move || finance.create_collection(&request, &by)).await?;
    if fresh && let Err(e) = state.finance.publish_collection(&run).await {
        eprintln!(
            "finance: collection run {} created, jobs not published yet: {e}",
            run.id
        );
    }
    let finance = state.finance.clone();
    let id = run.id.clone();
    let run = off_thread(move || Ok(finance.store.collection_run(&id)?))
        .await?
        .unwrap_or(run);
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(view(run, Vec::new())))
}

/// A collection run's progress.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = CollectionView), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/collection-runs/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = id.into_inner();
    let found = off_thread(move || {
        let Some(run) = finance.store.collection_run(&id)? else {
            return Ok(None);
        };
        let failures = finance.store.collection_items(&id, true, None, 100)?;
        Ok(Some((run, failures)))
    })
    .await?;
    match found {
        Some((run, failures)) => Ok(HttpResponse::Ok().json(view(run, failures))),
        None => Err(ApiError::not_found(
            "collection.unknown_run",
            "no such collection run",
        )),
    }
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionPage {
    /// Runs, newest first.
    pub items: Vec<CollectionView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Collection runs, newest first.
#[utoipa::path(tag = "finance", params(PageQuery),
    responses((status = 200, body = CollectionPage), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/collection-runs")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let query = query.into_inner();
    let limit = query.limit();
    let mut runs = off_thread(move || {
        Ok(finance
            .store
            .collection_runs(query.cursor.as_deref(), limit + 1)?)
    })
    .await?;
    let next = next_cursor(&mut runs, limit, |r| r.id.to_string());
    Ok(HttpResponse::Ok().json(CollectionPage {
        items: runs.into_iter().map(|r| view(r, Vec::new())).collect(),
        next_cursor: next,
    }))
}

/// Filters of a run's items.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// Only failed accounts.
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
    /// Items in account order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<CollectionItem>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A run's accounts and the steps applied to each.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Run id"), ItemsQuery),
    responses((status = 200, body = ItemPage), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/collection-runs/{id}/items")]
pub async fn items(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ItemsQuery>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = id.into_inner();
    let query = query.into_inner();
    let limit = limit_of(query.limit);
    let failed = query.failed.unwrap_or(false);
    let after = query.cursor.map(AccountId::new);
    let found = off_thread(move || {
        if finance.store.collection_run(&id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(finance.store.collection_items(
            &id,
            failed,
            after.as_ref(),
            limit + 1,
        )?))
    })
    .await?;
    let Some(mut items) = found else {
        return Err(ApiError::not_found(
            "collection.unknown_run",
            "no such collection run",
        ));
    };
    let next = next_cursor(&mut items, limit, |i| i.account.to_string());
    Ok(HttpResponse::Ok().json(ItemPage {
        items,
        next_cursor: next,
    }))
}
