//! Real-time charging: `POST /v1/sessions/{id}/reserve|update|terminate` and `POST /v1/events`,
//! with the semantics of Diameter Gy CCR-I/U/T and event charging. Idempotent by `request_id`.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use smol_str::SmolStr;
use tollgate_actors::Charge;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{SessionRequest, UsageSpec};

use super::AppState;
use super::body::Body;
use super::error::{ApiError, Errors};

/// Body of a reserve (initial) request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    #[schema(value_type = String)]
    subscriber: SubscriberId,
    #[schema(value_type = String)]
    request_id: SmolStr,
    #[schema(value_type = Object)]
    usage: UsageSpec,
    requested_units: u64,
}

/// Body of an update request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Update {
    #[schema(value_type = String)]
    subscriber: SubscriberId,
    #[schema(value_type = String)]
    request_id: SmolStr,
    used_units: u64,
    requested_units: u64,
}

/// Body of a terminate request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Terminate {
    #[schema(value_type = String)]
    subscriber: SubscriberId,
    #[schema(value_type = String)]
    request_id: SmolStr,
    used_units: u64,
}

/// Body of an event charge.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[schema(value_type = String)]
    subscriber: SubscriberId,
    #[schema(value_type = String)]
    request_id: SmolStr,
    #[schema(value_type = Object)]
    usage: UsageSpec,
    #[serde(default = "one")]
    units: u64,
}

fn one() -> u64 {
    1
}

const UNITS_MAX: u64 = 1_000_000_000_000;

fn check_units(values: &[u64]) -> Result<(), ApiError> {
    if values.iter().any(|v| *v > UNITS_MAX) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid_amount",
            format!("units above {UNITS_MAX} are refused"),
        ));
    }
    Ok(())
}

async fn charge(
    state: &AppState,
    subscriber: &SubscriberId,
    request: SessionRequest,
) -> Result<HttpResponse, ApiError> {
    let grant = state.router.send(subscriber, Charge(request)).await??;
    Ok(HttpResponse::Ok().json(grant?))
}

/// Real-time session: reserve (Gy CCR-Initial). Idempotent by `request_id`.
#[utoipa::path(tag = "sessions", params(("session" = String, Path, description = "Session id")),
    request_body = Reserve,
    responses((status = 200, description = "The grant", body = Object),
        (status = 402, description = "Insufficient balance", body = super::error::ErrorBody), Errors),
    security(("bearer" = ["sessions.write"])))]
#[post("/v1/sessions/{session}/reserve")]
pub async fn reserve(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<Reserve>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    check_units(&[b.requested_units])?;
    let request = SessionRequest::Initial {
        session: SmolStr::new(path.into_inner()),
        request: b.request_id,
        usage: b.usage,
        requested_units: b.requested_units,
    };
    charge(&state, &b.subscriber, request).await
}

/// Real-time session: update (Gy CCR-Update). Idempotent by `request_id`.
#[utoipa::path(tag = "sessions", params(("session" = String, Path, description = "Session id")),
    request_body = Update,
    responses((status = 200, description = "The grant", body = Object),
        (status = 402, description = "Insufficient balance", body = super::error::ErrorBody), Errors),
    security(("bearer" = ["sessions.write"])))]
#[post("/v1/sessions/{session}/update")]
pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<Update>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    check_units(&[b.used_units, b.requested_units])?;
    let request = SessionRequest::Update {
        session: SmolStr::new(path.into_inner()),
        request: b.request_id,
        used_units: b.used_units,
        requested_units: b.requested_units,
    };
    charge(&state, &b.subscriber, request).await
}

/// Real-time session: terminate (Gy CCR-Terminate). Idempotent by `request_id`.
#[utoipa::path(tag = "sessions", params(("session" = String, Path, description = "Session id")),
    request_body = Terminate,
    responses((status = 200, description = "The grant", body = Object),
        (status = 402, description = "Insufficient balance", body = super::error::ErrorBody), Errors),
    security(("bearer" = ["sessions.write"])))]
#[post("/v1/sessions/{session}/terminate")]
pub async fn terminate(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<Terminate>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    check_units(&[b.used_units])?;
    let request = SessionRequest::Terminate {
        session: SmolStr::new(path.into_inner()),
        request: b.request_id,
        used_units: b.used_units,
    };
    charge(&state, &b.subscriber, request).await
}

/// One-shot event charge (Gy event charging). Idempotent by `request_id`.
#[utoipa::path(tag = "sessions", request_body = Event,
    responses((status = 200, description = "The grant", body = Object),
        (status = 402, description = "Insufficient balance", body = super::error::ErrorBody), Errors),
    security(("bearer" = ["sessions.write"])))]
#[post("/v1/events")]
pub async fn event(
    state: web::Data<AppState>,
    body: Body<Event>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    check_units(&[b.units])?;
    let request = SessionRequest::Event {
        request: b.request_id,
        usage: b.usage,
        units: b.units,
    };
    charge(&state, &b.subscriber, request).await
}
