//! The HTTP API: one module per resource, each a thin translation between HTTP and actor
//! messages or domain calls. Every route is documented with `utoipa` and names the permission it
//! requires (its `bearer` security scope); [`auth::gate`] enforces exactly what the document
//! says. Errors are `{ "error": { "code", "message", "details" } }` with stable codes.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod bill_runs;
pub mod billing_setup;
pub mod body;
pub mod catalogue;
pub mod collection_runs;
pub mod customers;
pub mod error;
pub mod invoices;
pub mod mediation;
pub mod ops;
pub mod page;
pub mod partner_statements;
pub mod partners;
pub mod payments;
pub mod periods;
pub mod receivables;
pub mod recycle;
pub mod rerate;
pub mod sessions;
pub mod settlement_runs;
pub mod subscribers;
pub mod subscriptions;
pub mod test_clock;
pub mod usage;
pub mod users;

use std::sync::Arc;

use actix_web::web;
use tollgate_actors::Router;
use tollgate_domain::ledger::LedgerStore;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::access::AccessControl;
use error::ApiError;

/// What every handler can reach.
pub struct AppState {
    /// Subscriber actors.
    pub router: Arc<Router>,
    /// Storage, for reads that need no actor (usage history).
    pub store: Arc<dyn LedgerStore>,
    /// Users, tokens, roles (and the admin store behind them).
    pub access: Arc<AccessControl>,
    /// Catalogue drafts and versions.
    pub catalogue: Arc<crate::catalogue_admin::CatalogueAdmin>,
    /// Customers, accounts, subscriptions and the billing setup.
    pub customers: Arc<dyn tollgate_domain::billing::CustomerStore>,
    /// Bill runs, invoices and the job queue.
    pub billing: Arc<crate::billing::Billing>,
    /// Payments, periods, notes, statements and collections.
    pub finance: Arc<crate::finance::Finance>,
    pub partners: Arc<crate::partners::Partners>,
    /// The node's clock.
    pub clock: crate::clock::Clock,
    /// Batches of records into durable transactions (ledger, suspense, positions, counters).
    pub ingestor: Arc<crate::ingest::Ingestor>,
    /// Metrics registry served at /metrics.
    pub registry: prometheus::Registry,
    /// Whether the node accepts traffic (false while draining).
    pub ready: std::sync::atomic::AtomicBool,
    /// The OpenAPI document served at /v1/openapi.json.
    pub openapi: serde_json::Value,
    /// Default expiry of new tokens.
    pub token_ttl_days_default: Option<u32>,
    /// Largest bulk upload.
    pub upload_limit_bytes: usize,
}

/// Runs blocking work (storage) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(|_| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "node.busy",
            "the node could not run the request; retry",
        )
    })?
}

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            auth::SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`tg_<id>.<secret>`) or, when configured, a JWT. The \
                         scope listed on each operation is the permission it requires.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document's fixed parts; paths are collected from the registered services.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate API",
        description = "Rating, charging and billing: usage ingest, real-time sessions, \
                       balances, catalogue, customers, accounts, subscriptions, billing setup, \
                       users and audit. Every operation names the \
                       permission it requires as its bearer scope.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "ops", description = "Health, readiness, this document"),
        (name = "usage", description = "Usage records (CDRs)"),
        (name = "sessions", description = "Real-time charging"),
        (name = "subscribers", description = "Balances, usage, top-ups"),
        (name = "access", description = "Users, tokens, roles, permissions"),
        (name = "audit", description = "Who changed what"),
        (name = "catalogue", description = "Catalogue drafts, validation, publishing, versions"),
        (name = "customers", description = "Customers, their change history"),
        (name = "accounts", description = "Billing accounts and corporate hierarchies (who pays for whom)"),
        (name = "subscriptions", description = "Subscriptions and their dated lifecycle"),
        (name = "billing", description = "Billing setup (cycles, price list, discounts, taxes, numbering), bill runs, invoices"),
        (name = "finance", description = "Payments, refunds, financial periods, credit notes, statements, collection (dunning) runs"),
        (name = "partners", description = "Partners, agreements, real-time positions, settlement runs, partner statements (self-billing), reconciliation, disputes"),
    )
)]
pub struct ApiDoc;

/// Registers every documented route.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(ops::health)
        .service(ops::ready)
        .service(ops::openapi)
        .service(usage::post_cdrs)
        .service(sessions::reserve)
        .service(sessions::update)
        .service(sessions::terminate)
        .service(sessions::event)
        .service(subscribers::top_up)
        .service(subscribers::balance)
        .service(subscribers::usage)
        .service(users::list_users)
        .service(users::create_user)
        .service(users::get_user)
        .service(users::update_user)
        .service(users::list_tokens)
        .service(users::create_token)
        .service(users::revoke_token)
        .service(users::list_roles)
        .service(users::put_role)
        .service(users::delete_role)
        .service(users::list_permissions)
        .service(audit::list_audit)
        .service(mediation::list_suspense)
        .service(mediation::get_suspense)
        .service(mediation::export_suspense)
        .service(mediation::stats)
        .service(catalogue::list_versions)
        .service(catalogue::get_version)
        .service(catalogue::get_version_table)
        .service(catalogue::in_force)
        .service(catalogue::list_drafts)
        .service(catalogue::create_draft)
        .service(catalogue::get_draft)
        .service(catalogue::delete_draft)
        .service(catalogue::put_document)
        .service(catalogue::put_header)
        .service(catalogue::list_items)
        .service(catalogue::get_item)
        .service(catalogue::put_item)
        .service(catalogue::delete_item)
        .service(catalogue::put_table)
        .service(catalogue::get_table)
        .service(catalogue::delete_table)
        .service(catalogue::validate)
        .service(catalogue::publish)
        .service(recycle::recycle)
        .service(rerate::rerate)
        .service(customers::list_customers)
        .service(customers::create_customer)
        .service(customers::get_customer)
        .service(customers::put_customer)
        .service(customers::patch_customer)
        .service(customers::customer_history)
        .service(accounts::list_accounts)
        .service(accounts::create_account)
        .service(accounts::get_account)
        .service(accounts::put_account)
        .service(accounts::account_subtree)
        .service(subscriptions::list_subscriptions)
        .service(subscriptions::create_subscription)
        .service(subscriptions::get_subscription)
        .service(subscriptions::change_status)
        .service(billing_setup::get_setup)
        .service(billing_setup::put_setup)
        .service(bill_runs::start)
        .service(bill_runs::list)
        .service(bill_runs::show)
        .service(bill_runs::items)
        .service(invoices::list)
        .service(invoices::show)
        .service(invoices::html)
        .service(invoices::documents)
        .service(payments::record)
        .service(payments::show)
        .service(payments::of_account)
        .service(payments::refund)
        .service(payments::reverse)
        .service(periods::list)
        .service(periods::show)
        .service(periods::close)
        .service(periods::reopen)
        .service(collection_runs::start)
        .service(collection_runs::list)
        .service(collection_runs::show)
        .service(collection_runs::items)
        .service(receivables::statement)
        .service(receivables::receivables)
        .service(receivables::notifications)
        .service(receivables::notes)
        .service(receivables::note)
        .service(partners::create)
        .service(partners::list)
        .service(partners::show)
        .service(partners::update)
        .service(partners::list_agreements)
        .service(partners::create_agreement)
        .service(partners::show_agreement)
        .service(partners::amend)
        .service(partners::position)
        .service(partner_statements::list)
        .service(partner_statements::show)
        .service(partner_statements::document)
        .service(partner_statements::approve)
        .service(partner_statements::release)
        .service(partner_statements::reconcile)
        .service(partner_statements::reconciliations)
        .service(partner_statements::open_dispute)
        .service(partner_statements::show_dispute)
        .service(partner_statements::partner_disputes)
        .service(partner_statements::comment_dispute)
        .service(partner_statements::resolve_dispute)
        .service(settlement_runs::start)
        .service(settlement_runs::list)
        .service(settlement_runs::show)
        .service(settlement_runs::items)
        .service(test_clock::show)
        .service(test_clock::set);
}

/// The OpenAPI document of every documented route, as the code declares it.
pub fn declared_openapi() -> serde_json::Value {
    use utoipa_actix_web::AppExt;
    let (_, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts();
    serde_json::to_value(&doc).unwrap_or_default()
}

/// The document as served: `security: []` on the operations of `public_paths` (they are served
/// without a token).
pub fn served_openapi(declared: &serde_json::Value, public_paths: &[String]) -> serde_json::Value {
    let mut value = declared.clone();
    if let Some(paths) = value.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for (path, item) in paths.iter_mut() {
            if !public_paths.iter().any(|p| p == path) {
                continue;
            }
            if let Some(ops) = item.as_object_mut() {
                for op in ops.values_mut() {
                    if let Some(op) = op.as_object_mut() {
                        op.insert("security".into(), serde_json::json!([]));
                    }
                }
            }
        }
    }
    value
}
