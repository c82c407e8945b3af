//! The HTTP API: one module per resource, each a thin translation between HTTP and actor
//! messages. Errors are `{ "error": { "code", "message" } }` with stable codes.

pub mod error;
pub mod ops;
pub mod sessions;
pub mod subscribers;
pub mod usage;

use std::sync::Arc;

use actix_web::web;
use tollgate_actors::Router;
use tollgate_domain::ledger::LedgerStore;

/// What every handler can reach.
pub struct AppState {
    /// Subscriber actors.
    pub router: Arc<Router>,
    /// Storage, for reads that need no actor (usage history).
    pub store: Arc<dyn LedgerStore>,
    /// Metrics registry served at /metrics.
    pub registry: prometheus::Registry,
    /// Whether the node accepts traffic (false while draining).
    pub ready: std::sync::atomic::AtomicBool,
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig, metrics_path: &str) {
    cfg.route("/health", web::get().to(ops::health))
        .route("/ready", web::get().to(ops::ready))
        .route(metrics_path, web::get().to(ops::metrics))
        .route("/v1/cdrs", web::post().to(usage::post_cdrs))
        .route(
            "/v1/sessions/{session}/reserve",
            web::post().to(sessions::reserve),
        )
        .route(
            "/v1/sessions/{session}/update",
            web::post().to(sessions::update),
        )
        .route(
            "/v1/sessions/{session}/terminate",
            web::post().to(sessions::terminate),
        )
        .route("/v1/events", web::post().to(sessions::event))
        .route(
            "/v1/accounts/{id}/top-ups",
            web::post().to(subscribers::top_up),
        )
        .route(
            "/v1/subscribers/{id}/balance",
            web::get().to(subscribers::balance),
        )
        .route(
            "/v1/subscribers/{id}/usage",
            web::get().to(subscribers::usage),
        );
}
