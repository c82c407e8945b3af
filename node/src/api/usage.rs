//! `POST /v1/cdrs`: a batch of usage records (JSON array, JSON lines or CSV with a header),
//! rated through the owning subscriber actors. The answer lists one outcome per record, in
//! order, and is sent only after every charge in it is durable.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::join_all;
use serde::Serialize;
use smol_str::SmolStr;
use tollgate_actors::{ActorError, CdrOutcome, RateCdrs, Router};
use tollgate_domain::cdr::{Cdr, CdrMapping, CsvDecoder, JsonDecoder};
use tollgate_domain::ids::SubscriberId;

use super::AppState;
use super::error::ApiError;

#[derive(Serialize)]
struct Answer {
    records: usize,
    rated: usize,
    duplicates: usize,
    suspended: usize,
    outcomes: Vec<CdrOutcome>,
}

pub fn suspended(cdr_id: &str, reason: &str, message: String) -> CdrOutcome {
    CdrOutcome::Suspended {
        cdr_id: SmolStr::new(cdr_id),
        reason: SmolStr::new(reason),
        message,
    }
}

/// Decodes the body into records (or a per-record decode failure).
fn decode(content_type: &str, body: &[u8]) -> Result<Vec<Result<Cdr, CdrOutcome>>, ApiError> {
    let mapping = CdrMapping::default();
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request("request.malformed", format!("body is not UTF-8: {e}"))
    })?;
    let fail = |e: tollgate_domain::cdr::CdrError| suspended("", e.code(), e.to_string());
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
        let decoder = CsvDecoder::new(&mapping, &names)
            .map_err(|e| ApiError::bad_request("request.bad_header", e.to_string()))?;
        return Ok(reader
            .records()
            .map(|r| match r {
                Ok(record) => decoder.decode(&record).map_err(fail),
                Err(e) => Err(suspended("", "cdr.malformed", e.to_string())),
            })
            .collect());
    }
    let decoder = JsonDecoder::new(&mapping)
        .map_err(|e| ApiError::bad_request("request.malformed", e.to_string()))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(trimmed).map_err(|e| {
            ApiError::bad_request(
                "request.malformed",
                format!("expected a JSON array of records: {e}"),
            )
        })?;
        return Ok(values
            .iter()
            .map(|v| decoder.decode(v).map_err(fail))
            .collect());
    }
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| decoder.decode_str(l).map_err(fail))
        .collect())
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

/// `POST /v1/cdrs`.
pub async fn post_cdrs(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let decoded = decode(content_type, &body)?;
    let records = decoded.len();
    let outcomes = rate_records(&state.router, decoded).await?;
    let count = |f: fn(&CdrOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let answer = Answer {
        records,
        rated: count(|o| matches!(o, CdrOutcome::Rated { .. })),
        duplicates: count(|o| matches!(o, CdrOutcome::Duplicate { .. })),
        suspended: count(|o| matches!(o, CdrOutcome::Suspended { .. })),
        outcomes,
    };
    Ok(HttpResponse::Ok().json(answer))
}
