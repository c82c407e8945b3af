//! Balances, usage history and top-ups.

use actix_web::{HttpResponse, web};
use rust_decimal::Decimal;
use serde::Deserialize;
use smol_str::SmolStr;
use tollgate_actors::{GetBalance, TopUp};
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::money::{Currency, Money};

use super::AppState;
use super::error::ApiError;

/// `GET /v1/subscribers/{id}/balance`.
pub async fn balance(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = SubscriberId::new(path.into_inner());
    let view = state.router.send(&id, GetBalance).await??;
    Ok(HttpResponse::Ok().json(view))
}

/// Query of the usage history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    #[serde(default = "fifty")]
    limit: usize,
}

fn fifty() -> usize {
    50
}

/// `GET /v1/subscribers/{id}/usage?limit=N`: recent rated usage, newest first, with explanations.
pub async fn usage(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = SubscriberId::new(path.into_inner());
    if state.router.shared().profiles.get(&id).is_none() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "subscriber.unknown",
            format!("unknown subscriber {id}"),
        ));
    }
    let limit = query.limit.clamp(1, 1000);
    let store = state.store.clone();
    let records = web::block(move || store.recent_usage(&id, limit))
        .await
        .map_err(|e| {
            ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "storage.io",
                e.to_string(),
            )
        })?
        .map_err(|e| {
            ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                e.to_string(),
            )
        })?;
    let items: Vec<serde_json::Value> = records
        .iter()
        .filter_map(|r| serde_json::from_slice(r).ok())
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// Body of a top-up.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// Idempotency key.
    id: SmolStr,
    /// Amount, as a string.
    amount: Decimal,
    /// Currency code.
    currency: Currency,
}

/// `POST /v1/accounts/{id}/top-ups`: idempotent by `id`.
pub async fn top_up(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<TopUpBody>,
) -> Result<HttpResponse, ApiError> {
    let id = SubscriberId::new(path.into_inner());
    let b = body.into_inner();
    let view = state
        .router
        .send(
            &id,
            TopUp {
                id: b.id,
                amount: Money::new(b.amount, b.currency),
            },
        )
        .await??;
    Ok(HttpResponse::Ok().json(view?))
}
