//! Suspense and mediation counters: `GET /v1/suspense` (filtered, paged), one record,
//! `GET /v1/suspense/export` (CSV or JSON lines, every matching record), and
//! `GET /v1/mediation/stats` (per source: ingested = rated + suspended + duplicates + filtered).

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use tollgate_domain::mediation::{SourceStats, SuspenseFilter, SuspenseRecord, SuspenseState};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Errors};

/// Filters of suspended records.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SuspenseQuery {
    /// Exact reason code (`cdr.bad_timestamp`), or a prefix ending in `.` (`rating.`).
    pub reason: Option<String>,
    /// Exact source (`http`, `kafka:cdr.raw`, `files:drop`).
    pub source: Option<String>,
    /// Received at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<jiff::Timestamp>,
    /// Received before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<jiff::Timestamp>,
    /// `open` (waiting for a recycle), `recycled`, or absent for both.
    #[param(inline)]
    pub state: Option<StateFilter>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Export format and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` (default) or `jsonl`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// Exact reason code, or a prefix ending in `.`.
    pub reason: Option<String>,
    /// Exact source.
    pub source: Option<String>,
    /// Received at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<jiff::Timestamp>,
    /// Received before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<jiff::Timestamp>,
    /// `open`, `recycled`, or absent for both.
    #[param(inline)]
    pub state: Option<StateFilter>,
}

/// Which state of suspended records.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    /// Waiting for a recycle.
    Open,
    /// Recycled.
    Recycled,
}

/// Export formats.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// A suspended record.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspenseView {
    /// Id: `<source>/<partition>/<offset>`, `<source>/<file>/<line>`, `http/<subscriber>/<id>`.
    pub id: String,
    /// Source.
    pub source: String,
    /// Reason code.
    pub reason: String,
    /// Message for a person.
    pub message: String,
    /// The record as received, when it is UTF-8 text.
    pub raw: Option<String>,
    /// The record as received, hex-encoded, when it is not UTF-8.
    pub raw_hex: Option<String>,
    /// Encoding (`application/json`, `text/csv; header=...`).
    pub format: String,
    /// First received (RFC 3339).
    pub received_at: String,
    /// Last tried (RFC 3339).
    pub last_tried_at: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Record id, when it could be read.
    pub cdr_id: Option<String>,
    /// Subscriber, when it could be read.
    pub subscriber: Option<String>,
    /// `open` or `recycled`.
    pub state: String,
    /// When recycled.
    pub recycled_at: Option<String>,
    /// Who recycled it.
    pub recycled_by: Option<String>,
    /// `rated` or `duplicate` once recycled.
    pub recycled_outcome: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<SuspenseRecord> for SuspenseView {
    fn from(r: SuspenseRecord) -> SuspenseView {
        let (raw, raw_hex) = match String::from_utf8(r.raw) {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(hex(e.as_bytes()))),
        };
        let (state, at, by, outcome) = match r.state {
            SuspenseState::Open => ("open", None, None, None),
            SuspenseState::Recycled { at, by, outcome } => (
                "recycled",
                Some(at.to_string()),
                Some(by.to_string()),
                Some(outcome.to_string()),
            ),
        };
        SuspenseView {
            id: r.id,
            source: r.source.to_string(),
            reason: r.reason.to_string(),
            message: r.message,
            raw,
            raw_hex,
            format: r.format.to_string(),
            received_at: r.received_at.to_string(),
            last_tried_at: r.last_tried_at.to_string(),
            attempts: r.attempts,
            cdr_id: r.cdr_id.map(|c| c.to_string()),
            subscriber: r.subscriber.map(|s| s.to_string()),
            state: state.into(),
            recycled_at: at,
            recycled_by: by,
            recycled_outcome: outcome,
        }
    }
}

/// A page of suspended records.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspensePage {
    /// Records, in id order.
    pub items: Vec<SuspenseView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

fn filter(
    reason: Option<String>,
    source: Option<String>,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    state: Option<StateFilter>,
) -> SuspenseFilter {
    SuspenseFilter {
        reason,
        source,
        from,
        to,
        open: state.map(|s| matches!(s, StateFilter::Open)),
    }
}

/// Suspended records.
#[utoipa::path(tag = "mediation", params(SuspenseQuery),
    responses((status = 200, body = SuspensePage), Errors),
    security(("bearer" = ["mediation.read"])))]
#[get("/v1/suspense")]
pub async fn list_suspense(
    state: web::Data<AppState>,
    query: web::Query<SuspenseQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(100).clamp(1, super::page::LIMIT_MAX);
    let f = filter(q.reason, q.source, q.from, q.to, q.state);
    let store = state.ingestor.store().clone();
    let cursor = q.cursor;
    let mut records = super::blocking(move || {
        store
            .suspense(&f, cursor.as_deref(), limit + 1)
            .map_err(|e| ApiError::storage(&e))
    })
    .await?;
    let next_cursor = super::page::next_cursor(&mut records, limit, |r| r.id.clone());
    Ok(HttpResponse::Ok().json(SuspensePage {
        items: records.into_iter().map(SuspenseView::from).collect(),
        next_cursor,
    }))
}

/// Id of one suspended record.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// The record's id (ids contain `/`, so it is a query parameter).
    pub id: String,
}

/// One suspended record.
#[utoipa::path(tag = "mediation", params(RecordQuery),
    responses((status = 200, body = SuspenseView), Errors),
    security(("bearer" = ["mediation.read"])))]
#[get("/v1/suspense/record")]
pub async fn get_suspense(
    state: web::Data<AppState>,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = query.into_inner().id;
    let store = state.ingestor.store().clone();
    let lookup = id.clone();
    let record = super::blocking(move || {
        store
            .suspense_record(&lookup)
            .map_err(|e| ApiError::storage(&e))
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "suspense.unknown",
            format!("no suspended record {id}"),
        )
    })?;
    Ok(HttpResponse::Ok().json(SuspenseView::from(record)))
}

const EXPORT_CHUNK: usize = 1000;

/// Every suspended record matching the filters, as CSV or JSON lines.
#[utoipa::path(tag = "mediation", params(ExportQuery),
    responses((status = 200, description = "CSV (text/csv) or JSON lines (application/x-ndjson)",
        content((String = "text/csv"), (String = "application/x-ndjson"))), Errors),
    security(("bearer" = ["mediation.read"])))]
#[get("/v1/suspense/export")]
pub async fn export_suspense(
    state: web::Data<AppState>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let format = q.format.unwrap_or(ExportFormat::Csv);
    let f = filter(q.reason, q.source, q.from, q.to, q.state);
    let store = state.ingestor.store().clone();
    let body = super::blocking(move || {
        let mut csv = csv::Writer::from_writer(Vec::new());
        let mut jsonl = Vec::new();
        if matches!(format, ExportFormat::Csv) {
            csv.write_record([
                "id",
                "source",
                "reason",
                "message",
                "received_at",
                "last_tried_at",
                "attempts",
                "state",
                "cdr_id",
                "subscriber",
                "format",
                "raw",
                "raw_hex",
            ])
            .map_err(export_error)?;
        }
        let mut after: Option<String> = None;
        loop {
            let rows = store
                .suspense(&f, after.as_deref(), EXPORT_CHUNK)
                .map_err(|e| ApiError::storage(&e))?;
            after = rows.last().map(|r| r.id.clone());
            let n = rows.len();
            for row in rows {
                let v = SuspenseView::from(row);
                match format {
                    ExportFormat::Csv => csv
                        .write_record([
                            v.id.as_str(),
                            &v.source,
                            &v.reason,
                            &v.message,
                            &v.received_at,
                            &v.last_tried_at,
                            &v.attempts.to_string(),
                            &v.state,
                            v.cdr_id.as_deref().unwrap_or(""),
                            v.subscriber.as_deref().unwrap_or(""),
                            &v.format,
                            v.raw.as_deref().unwrap_or(""),
                            v.raw_hex.as_deref().unwrap_or(""),
                        ])
                        .map_err(export_error)?,
                    ExportFormat::Jsonl => {
                        serde_json::to_writer(&mut jsonl, &v).map_err(export_error)?;
                        jsonl.push(b'\n');
                    }
                }
            }
            if n < EXPORT_CHUNK {
                break;
            }
        }
        match format {
            ExportFormat::Csv => csv.into_inner().map_err(export_error),
            ExportFormat::Jsonl => Ok(jsonl),
        }
    })
    .await?;
    let content_type = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::Jsonl => "application/x-ndjson",
    };
    Ok(HttpResponse::Ok().content_type(content_type).body(body))
}

fn export_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        "suspense.export_failed",
        format!("the export could not be written: {e}"),
    )
}

/// One source's counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceStatsView {
    /// Source.
    pub source: String,
    /// Records received.
    pub ingested: u64,
    /// Rated and charged.
    pub rated: u64,
    /// In suspense (recycled records move to `rated` or `duplicates`).
    pub suspended: u64,
    /// Seen before: charged nothing again.
    pub duplicates: u64,
    /// Dropped by a mediation filter.
    pub filtered: u64,
    /// Whether `ingested = rated + suspended + duplicates + filtered` (always true).
    pub balanced: bool,
}

impl SourceStatsView {
    fn new(source: &str, s: &SourceStats) -> SourceStatsView {
        SourceStatsView {
            source: source.to_string(),
            ingested: s.ingested,
            rated: s.rated,
            suspended: s.suspended,
            duplicates: s.duplicates,
            filtered: s.filtered,
            balanced: s.balanced(),
        }
    }
}

/// Per-source counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediationStats {
    /// Every source, by name.
    pub sources: Vec<SourceStatsView>,
}

/// What became of every record of every source.
#[utoipa::path(tag = "mediation",
    responses((status = 200, body = MediationStats), Errors),
    security(("bearer" = ["mediation.read"])))]
#[get("/v1/mediation/stats")]
pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let sources = state
        .ingestor
        .stats()
        .iter()
        .map(|(name, s)| SourceStatsView::new(name, s))
        .collect();
    Ok(HttpResponse::Ok().json(MediationStats { sources }))
}
