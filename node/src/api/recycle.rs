//! `POST /v1/suspense/recycle`: re-run suspended records after the catalogue or customer data
//! was fixed. Each record goes through the same ingestion as on arrival; one that rates (or
//! turns out to be a duplicate) is marked recycled in the same durable write as its charge and
//! is never recycled again; one that fails again stays open with its new reason.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use tollgate_actors::CdrOutcome;
use tollgate_domain::mediation::{SuspenseFilter, SuspenseRecord};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::{AppState, blocking};
use crate::ingest::{Batch, Incoming, RecordFormat};

/// Which suspended records to recycle. Only open records are recycled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecycleRequest {
    /// Exact reason code, or a prefix ending in `.` (`rating.`).
    #[serde(default)]
    pub reason: Option<String>,
    /// Exact source.
    #[serde(default)]
    pub source: Option<String>,
    /// Received at or after (RFC 3339).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<jiff::Timestamp>,
    /// Received before (RFC 3339).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub to: Option<jiff::Timestamp>,
    /// Most records to recycle in this call (default 1000, at most 10000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// What became of one recycled record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecycledItem {
    /// Suspense id.
    pub id: String,
    /// `rated`, `duplicate`, `filtered` or `suspended` (still open).
    pub outcome: String,
    /// The reason, when still suspended.
    pub reason: Option<String>,
}

/// The result of a recycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecycleReport {
    /// Records tried.
    pub tried: usize,
    /// Rated now.
    pub rated: usize,
    /// Found already charged.
    pub duplicates: usize,
    /// Still in suspense.
    pub suspended: usize,
    /// Dropped by a mediation filter now in force (they leave suspense).
    pub filtered: usize,
    /// Per record.
    pub items: Vec<RecycledItem>,
}

const LIMIT_MAX: usize = 10_000;

/// Re-run open suspended records through rating.
#[utoipa::path(tag = "mediation", request_body = RecycleRequest,
    responses((status = 200, body = RecycleReport), Errors),
    security(("bearer" = ["mediation.write"])))]
#[post("/v1/suspense/recycle")]
pub async fn recycle(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<RecycleRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let limit = request.limit.unwrap_or(1000).clamp(1, LIMIT_MAX);
    let filter = SuspenseFilter {
        reason: request.reason,
        source: request.source,
        from: request.from,
        to: request.to,
        open: Some(true),
    };
    // Recycles run one at a time: a record is read open and made durable as recycled before
    // another recycle reads it.
    let _recycling = state.ingestor.recycle_lock().await;
    let store = state.ingestor.store().clone();
    let rows: Vec<SuspenseRecord> = blocking(move || {
        store
            .suspense(&filter, None, limit)
            .map_err(|e| ApiError::storage(&e))
    })
    .await?;
    // One batch per record format (records of one format decode the same way).
    let mut by_format: BTreeMap<String, Vec<SuspenseRecord>> = BTreeMap::new();
    for row in rows {
        by_format
            .entry(row.format.to_string())
            .or_default()
            .push(row);
    }
    let mut report = RecycleReport {
        tried: 0,
        rated: 0,
        duplicates: 0,
        suspended: 0,
        filtered: 0,
        items: Vec::new(),
    };
    for (label, rows) in by_format {
        let Some(format) = RecordFormat::from_label(&label) else {
            // Not decodable by this node version: reported, left open.
            for row in rows {
                report.tried += 1;
                report.suspended += 1;
                report.items.push(RecycledItem {
                    id: row.id,
                    outcome: "suspended".into(),
                    reason: Some(format!("mediation.unknown_format ({label})")),
                });
            }
            continue;
        };
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let records = rows
            .into_iter()
            .map(|row| Incoming {
                suspense_id: row.id.clone(),
                raw: row.raw.clone(),
                recycled: Some(row),
            })
            .collect();
        let outcomes = state
            .ingestor
            .ingest(Batch {
                source: "recycle".into(),
                format,
                records,
                positions: Vec::new(),
                by: caller.principal.user.clone(),
                audit: Some(caller.attribution().record(
                    "suspense.recycle",
                    "suspense".to_string(),
                    Some(serde_json::json!({ "ids": ids })),
                    None,
                )),
            })
            .await
            .map_err(|e| {
                ApiError::new(
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "ingest.retry",
                    format!("the recycle was not applied; retry: {e}"),
                )
            })?;
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            report.tried += 1;
            let (name, reason) = match outcome {
                CdrOutcome::Rated { .. } => {
                    report.rated += 1;
                    ("rated", None)
                }
                CdrOutcome::Duplicate { .. } => {
                    report.duplicates += 1;
                    ("duplicate", None)
                }
                CdrOutcome::Filtered { reason, .. } => {
                    report.filtered += 1;
                    ("filtered", Some(reason.to_string()))
                }
                CdrOutcome::Suspended { reason, .. } => {
                    report.suspended += 1;
                    ("suspended", Some(reason.to_string()))
                }
            };
            report.items.push(RecycledItem {
                id,
                outcome: name.into(),
                reason,
            });
        }
    }
    Ok(HttpResponse::Ok().json(report))
}
