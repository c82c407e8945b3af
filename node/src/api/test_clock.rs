//! The test clock (`[node] test_clock_enabled = true` only): `GET /v1/test/clock` reads the
//! node's time, `PUT /v1/test/clock {"now": "..."}` sets it. End-to-end tests use it to move
//! through pay-by dates and dunning steps without sleeping. A node without the test clock
//! answers 404 to both.

use actix_web::{HttpResponse, get, put, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::body::Body;
use super::error::{ApiError, Errors};

/// The time to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockBody {
    /// The node's new "now" (RFC 3339); time moves on from there.
    #[schema(value_type = String, format = DateTime)]
    pub now: jiff::Timestamp,
}

fn disabled() -> ApiError {
    ApiError::not_found(
        "test_clock.disabled",
        "the test clock is not enabled on this node ([node] test_clock_enabled)",
    )
}

/// The node's time.
#[utoipa::path(tag = "ops", responses((status = 200, body = Object), Errors),
    security(("bearer" = ["ops.read"])))]
#[get("/v1/test/clock")]
pub async fn show(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.clock.settable() {
        return Err(disabled());
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"now": state.clock.now()})))
}

/// Set the node's time (test clock only).
#[utoipa::path(tag = "ops", request_body = ClockBody,
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["test.clock"])))]
#[put("/v1/test/clock")]
pub async fn set(
    state: web::Data<AppState>,
    body: Body<ClockBody>,
) -> Result<HttpResponse, ApiError> {
    if !state.clock.settable() {
        return Err(disabled());
    }
    state
        .clock
        .set(body.into_inner().now)
        .map_err(|e| ApiError::unprocessable("test_clock.invalid", e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"now": state.clock.now()})))
}
