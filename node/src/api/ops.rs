//! Health, readiness and metrics.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};
use prometheus::{Encoder, TextEncoder};

use super::AppState;

/// `GET /health`: the process is up.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: the node accepts traffic (storage open, catalogue loaded, not draining).
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.ready.load(Ordering::Relaxed) {
        HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "draining" }))
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut out = Vec::new();
    match TextEncoder::new().encode(&state.registry.gather(), &mut out) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(out),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
