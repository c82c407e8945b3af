//! Balances, usage history and top-ups.

use actix_web::{HttpResponse, get, post, web};
use rust_decimal::Decimal;
use serde::Deserialize;
use smol_str::SmolStr;
use tollgate_actors::{GetBalance, TopUp};
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::money::{Currency, Money};

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};

/// A subscriber's balance, reservations and counters.
#[utoipa::path(tag = "subscribers", params(("id" = String, Path, description = "Subscriber id")),
    responses((status = 200, description = "The balance", body = Object), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/subscribers/{id}/balance")]
pub async fn balance(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = SubscriberId::new(path.into_inner());
    let view = state.router.send(&id, GetBalance).await??;
    Ok(HttpResponse::Ok().json(view))
}

/// Query of the usage history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Records to return, 1 to 1000 (default 50).
    #[serde(default = "fifty")]
    #[param(minimum = 1, maximum = 1000)]
    limit: usize,
}

fn fifty() -> usize {
    50
}

/// Recent rated usage, newest first, with explanations.
#[utoipa::path(tag = "subscribers", params(("id" = String, Path, description = "Subscriber id"), UsageQuery),
    responses((status = 200, description = "Usage records", body = Object), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/subscribers/{id}/usage")]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// Idempotency key.
    #[schema(value_type = String)]
    id: SmolStr,
    /// Amount, as a decimal string (e.g. "10.00").
    #[schema(value_type = String, example = "10.00")]
    amount: Decimal,
    /// ISO 4217 currency code.
    #[schema(value_type = String, example = "EUR")]
    currency: Currency,
}

/// Top up a prepaid balance. Idempotent by `id`; audited with the balance before and after.
#[utoipa::path(tag = "subscribers", params(("id" = String, Path, description = "Subscriber id")),
    request_body = TopUpBody,
    responses((status = 200, description = "The balance after", body = Object), Errors),
    security(("bearer" = ["balance.adjust"])))]
#[post("/v1/accounts/{id}/top-ups")]
pub async fn top_up(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<TopUpBody>,
) -> Result<HttpResponse, ApiError> {
    let id = SubscriberId::new(path.into_inner());
    let b = body.into_inner();
    let view = state
        .router
        .send(
            &id,
            TopUp {
                audit: Some(caller.attribution().record(
                    "balance.top_up",
                    format!("subscriber/{id}"),
                    None,
                    None,
                )),
                id: b.id,
                amount: Money::new(b.amount, b.currency),
            },
        )
        .await??;
    Ok(HttpResponse::Ok().json(view?))
}
