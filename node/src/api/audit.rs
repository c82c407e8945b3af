//! `GET /v1/audit`: the audit trail, filtered and paged, oldest first.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use tollgate_domain::admin::{AuditFilter, AuditId, AuditRecord};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Errors};

/// Filters and paging of the audit trail.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Exact principal (user name, or `system`).
    pub principal: Option<String>,
    /// Exact operation (`catalogue.publish`), or a prefix ending in `.` (`catalogue.`).
    pub operation: Option<String>,
    /// Target prefix (`user/`, `catalogue/version/3`, `subscriber/4917`).
    pub target: Option<String>,
    /// Exact request id.
    pub request_id: Option<String>,
    /// Records at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<jiff::Timestamp>,
    /// Records before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<jiff::Timestamp>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Id (time-ordered).
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub principal: String,
    /// The token id used, or `jwt`, or `node`.
    pub credential: Option<String>,
    /// What was done.
    pub operation: String,
    /// To what.
    pub target: String,
    /// The request that did it.
    pub request_id: String,
    /// State before (secrets redacted).
    #[schema(value_type = Object, nullable = true)]
    pub before: Option<serde_json::Value>,
    /// State after (secrets redacted).
    #[schema(value_type = Object, nullable = true)]
    pub after: Option<serde_json::Value>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> AuditView {
        AuditView {
            id: r.id.to_string(),
            at: r.at.to_string(),
            principal: r.principal.to_string(),
            credential: r.credential.map(|c| c.to_string()),
            operation: r.operation.to_string(),
            target: r.target,
            request_id: r.request_id.to_string(),
            before: r.before,
            after: r.after,
        }
    }
}

/// A page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Records, oldest first.
    pub items: Vec<AuditView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// The audit trail.
#[utoipa::path(tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), Errors),
    security(("bearer" = ["audit.read"])))]
#[get("/v1/audit")]
pub async fn list_audit(
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let after = match &q.cursor {
        Some(c) => Some(AuditId::parse(c).ok_or_else(|| {
            ApiError::bad_request("request.bad_cursor", "cursor is not one this API gave")
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, super::page::LIMIT_MAX);
    let filter = AuditFilter {
        principal: q.principal,
        operation: q.operation,
        target_prefix: q.target,
        request_id: q.request_id,
        from: q.from,
        to: q.to,
    };
    let store = state.access.store().clone();
    let mut records = super::blocking(move || {
        store
            .audit(&filter, after, limit + 1)
            .map_err(|e| ApiError::storage(&e))
    })
    .await?;
    let next_cursor = super::page::next_cursor(&mut records, limit, |r| r.id.to_string());
    Ok(HttpResponse::Ok().json(AuditPage {
        items: records.into_iter().map(AuditView::from).collect(),
        next_cursor,
    }))
}
