//! `POST /v1/cdrs`: a batch of usage records (JSON array, JSON lines or CSV with a header),
//! rated through the owning subscriber actors. The answer lists one outcome per record, in
//! order, and is sent only after every charge in it is durable.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::future::join_all;
use serde::Serialize;
use smol_str::SmolStr;
use tollgate_actors::{ActorError, CdrOutcome, RateCdrs, Router};
use tollgate_domain::cdr::{Cdr, CdrMapping, CsvDecoder};
use tollgate_domain::ids::SubscriberId;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Errors};
use crate::ingest::{Batch, Incoming, RecordFormat};

#[derive(Serialize)]
struct Answer {
    records: usize,
    rated: usize,
    duplicates: usize,
    suspended: usize,
    filtered: usize,
    outcomes: Vec<CdrOutcome>,
}

pub fn suspended(cdr_id: &str, reason: &str, message: String) -> CdrOutcome {
    CdrOutcome::Suspended {
        cdr_id: SmolStr::new(cdr_id),
        reason: SmolStr::new(reason),
        message,
    }
}

/// Rates decoded records through their subscribers' actors (one message, hence one durable
/// write, per subscriber) and returns one outcome per record, in input order.
pub async fn rate_records(
    router: &Arc<Router>,
    decoded: Vec<Result<Cdr, CdrOutcome>>,
) -> Result<Vec<CdrOutcome>, ApiError> {
    let records = decoded.len();
    let mut outcomes: Vec<Option<CdrOutcome>> = vec![None; records];
    let mut by_subscriber: HashMap<SubscriberId, (Vec<usize>, Vec<Cdr>)> = HashMap::new();
    // Records suspended before reaching an actor (undecodable, unknown subscriber): counted here,
    // once the batch is answered, so the outcome metrics add up to every record ingested.
    let mut outside = 0u64;
    for (i, r) in decoded.into_iter().enumerate() {
        match r {
            Ok(cdr) => {
                let slot = by_subscriber.entry(cdr.subscriber.clone()).or_default();
                slot.0.push(i);
                slot.1.push(cdr);
            }
            Err(outcome) => {
                outside += 1;
                outcomes[i] = Some(outcome);
            }
        }
    }
    let sends = by_subscriber
        .into_iter()
        .map(|(subscriber, (indices, cdrs))| {
            let router = router.clone();
            async move {
                let ids: Vec<SmolStr> = cdrs.iter().map(|c| SmolStr::new(c.id.as_str())).collect();
                let result = router
                    .send(&subscriber, RateCdrs(cdrs))
                    .await
                    .and_then(|r| r);
                (indices, ids, result)
            }
        });
    for (indices, ids, result) in join_all(sends).await {
        match result {
            Ok(list) => {
                for (i, outcome) in indices.into_iter().zip(list) {
                    outcomes[i] = Some(outcome);
                }
            }
            Err(ActorError::UnknownSubscriber(id)) => {
                for (i, cdr_id) in indices.into_iter().zip(ids) {
                    outside += 1;
                    outcomes[i] = Some(suspended(
                        &cdr_id,
                        "rating.unknown_subscriber",
                        format!("unknown subscriber {id}"),
                    ));
                }
            }
            // Nothing of this batch is acknowledged: the client resends it (idempotent by CDR id).
            Err(e) => return Err(e.into()),
        }
    }
    router
        .shared()
        .metrics
        .cdrs
        .with_label_values(&["suspended"])
        .inc_by(outside);
    Ok(outcomes.into_iter().flatten().collect())
}

/// Splits a request body into raw records: JSON array elements, JSON lines, or CSV lines
/// after a header (`text/csv`).
fn split(content_type: &str, body: &[u8]) -> Result<(RecordFormat, Vec<Vec<u8>>), ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request("request.malformed", format!("body is not UTF-8: {e}"))
    })?;
    if content_type.starts_with("text/csv") {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| ApiError::bad_request("request.malformed", format!("CSV header: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        let names: Vec<&str> = header.iter().map(String::as_str).collect();
        CsvDecoder::new(&CdrMapping::default(), &names)
            .map_err(|e| ApiError::bad_request("request.bad_header", e.to_string()))?;
        let mut records = Vec::new();
        let mut start = reader.position().byte() as usize;
        let mut record = csv::ByteRecord::new();
        loop {
            let more = reader
                .read_byte_record(&mut record)
                .map_err(|e| ApiError::bad_request("request.malformed", format!("CSV: {e}")))?;
            if !more {
                break;
            }
            let end = reader.position().byte() as usize;
            let line = body.get(start..end).unwrap_or_default();
            records.push(line.trim_ascii_end().to_vec());
            start = end;
        }
        return Ok((RecordFormat::Csv(header), records));
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(trimmed).map_err(|e| {
            ApiError::bad_request(
                "request.malformed",
                format!("expected a JSON array of records: {e}"),
            )
        })?;
        return Ok((
            RecordFormat::Json,
            values
                .iter()
                .map(|v| serde_json::to_vec(v).unwrap_or_default())
                .collect(),
        ));
    }
    Ok((
        RecordFormat::Json,
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect(),
    ))
}

/// The suspense id of an HTTP record: stable across resends of the same record.
fn http_suspense_id(raw: &[u8]) -> String {
    let value = serde_json::from_slice::<serde_json::Value>(raw).ok();
    let field = |k: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    match (field("subscriber"), field("id")) {
        (Some(s), Some(id)) => format!("http/{s}/{id}"),
        _ => format!("http/sha256:{}", crate::access::sha256_hex(raw)),
    }
}

/// Submit usage records: a JSON array, JSON lines, or CSV with a header (`text/csv`). One
/// outcome per record, in order, answered once every charge and every suspended record is
/// durable (rejected records land in suspense, `GET /v1/suspense`). Idempotent by record id.
#[utoipa::path(tag = "usage",
    request_body(content(
        (Object = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/csv"))),
    responses((status = 200, description = "One outcome per record", body = Object), Errors),
    security(("bearer" = ["usage.write"])))]
#[post("/v1/cdrs")]
pub async fn post_cdrs(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let (format, raws) = split(content_type, &body)?;
    let records = raws.len();
    let incoming = raws
        .into_iter()
        .map(|raw| Incoming {
            suspense_id: http_suspense_id(&raw),
            raw,
            recycled: None,
        })
        .collect();
    let outcomes = state
        .ingestor
        .ingest(Batch {
            source: "http".into(),
            format,
            records: incoming,
            positions: Vec::new(),
            by: caller.principal.user.clone(),
            audit: None,
        })
        .await
        .map_err(|e| {
            ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "ingest.retry",
                format!("nothing of the batch was applied; resend it: {e}"),
            )
        })?;
    let count = |f: fn(&CdrOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let answer = Answer {
        records,
        rated: count(|o| matches!(o, CdrOutcome::Rated { .. })),
        duplicates: count(|o| matches!(o, CdrOutcome::Duplicate { .. })),
        suspended: count(|o| matches!(o, CdrOutcome::Suspended { .. })),
        filtered: count(|o| matches!(o, CdrOutcome::Filtered { .. })),
        outcomes,
    };
    Ok(HttpResponse::Ok().json(answer))
}
