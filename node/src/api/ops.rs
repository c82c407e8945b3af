//! Health, readiness, metrics and the OpenAPI document.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, get, web};
use prometheus::{Encoder, TextEncoder};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Errors};

/// A status answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `draining`.
    pub status: String,
}

/// The process is up.
#[utoipa::path(tag = "ops", responses((status = 200, body = Status), Errors),
    security(("bearer" = ["ops.read"])))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok".into(),
    })
}

/// The node accepts traffic (storage open, catalogue loaded, not draining).
#[utoipa::path(tag = "ops",
    responses((status = 200, body = Status), (status = 503, body = Status, description = "Draining")),
    security(("bearer" = ["ops.read"])))]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.ready.load(Ordering::Relaxed) {
        HttpResponse::Ok().json(Status {
            status: "ready".into(),
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Status {
            status: "draining".into(),
        })
    }
}

/// This API's OpenAPI 3 document.
#[utoipa::path(tag = "ops",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object), Errors),
    security(("bearer" = ["ops.read"])))]
#[get("/v1/openapi.json")]
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(&state.openapi)
}

/// Prometheus text format (its path is configured, so it is routed by hand, not documented
/// here; the gate still classifies it).
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut out)
        .map_err(|e| {
            ApiError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "metrics.encode",
                e.to_string(),
            )
        })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
