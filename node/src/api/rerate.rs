//! `POST /v1/rerate`: rate a set of subscribers' records of a time range again, after a price
//! change (a backdated catalogue correction) or a customer data fix. Each changed record gets a
//! reversal of its old charge and its new charge as new ledger entries (never an edit), per
//! subscriber in one durable write with its audit record. Idempotent per job key: the same key
//! again returns the first reports (`replayed: true`) and writes nothing.

use std::collections::{BTreeMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use futures_util::future::join_all;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_actors::{Rerate, RerateReport};
use tollgate_domain::ids::SubscriberId;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};

/// Most subscribers in one request.
const SUBSCRIBERS_MAX: usize = 10_000;
/// Subscribers rerated at once.
const PARALLEL: usize = 64;

/// A rerate job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerateRequest {
    /// The job's idempotency key: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
    pub key: String,
    /// Subscribers whose records are rated again (1 to 10000, no repeats).
    pub subscribers: Vec<String>,
    /// Records starting at or after (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub from: jiff::Timestamp,
    /// Records starting before (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub to: jiff::Timestamp,
    /// Report the differences without writing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// Totals of one currency.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CurrencyTotal {
    /// Sum of old charges of changed records.
    #[schema(value_type = String)]
    pub old: Decimal,
    /// Sum of new charges of changed records.
    #[schema(value_type = String)]
    pub new: Decimal,
    /// `old - new`: positive when customers are credited.
    #[schema(value_type = String)]
    pub credit: Decimal,
}

/// The difference report of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct RerateAnswer {
    /// Job key.
    pub key: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Records in the range over all subscribers.
    pub records: usize,
    /// Records whose charge changed.
    pub changed: usize,
    /// Records whose charge stayed.
    pub unchanged: usize,
    /// Records that could not be rated again (they keep their charge).
    pub failed: usize,
    /// Per currency.
    pub totals: BTreeMap<String, CurrencyTotal>,
    /// Per subscriber: every changed record with old and new charge and version.
    #[schema(value_type = Vec<Object>)]
    pub subscribers: Vec<RerateReport>,
    /// Credit and debit notes booked for usage that invoices had already billed (the invoices
    /// stay as issued, in open and closed periods alike).
    #[schema(value_type = Vec<Object>)]
    pub notes: Vec<tollgate_domain::finance::CreditNote>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "rerate.invalid",
        message.into(),
    )
}

/// Rerate subscribers' records of a time range.
#[utoipa::path(tag = "mediation", request_body = RerateRequest,
    responses((status = 200, body = RerateAnswer), Errors),
    security(("bearer" = ["mediation.write"])))]
#[post("/v1/rerate")]
pub async fn rerate(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<RerateRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let key_ok = (1..=128).contains(&request.key.len())
        && request
            .key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if !key_ok {
        return Err(invalid(
            "key must be 1 to 128 of A-Z a-z 0-9 . _ : - (it names the job)",
        ));
    }
    if request.from >= request.to {
        return Err(invalid("from must be before to"));
    }
    if request.subscribers.is_empty() || request.subscribers.len() > SUBSCRIBERS_MAX {
        return Err(invalid(format!(
            "subscribers must hold 1 to {SUBSCRIBERS_MAX} ids"
        )));
    }
    let mut unique = HashSet::new();
    let mut unknown = Vec::new();
    for s in &request.subscribers {
        if !unique.insert(s.as_str()) {
            return Err(invalid(format!("subscriber {s} is listed twice")));
        }
        if state
            .router
            .shared()
            .profiles
            .get(&SubscriberId::new(s))
            .is_none()
        {
            unknown.push(s.clone());
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rerate.unknown_subscriber",
            format!(
                "unknown subscribers (nothing was rerated): {}",
                unknown.join(", ")
            ),
        ));
    }
    let job = SmolStr::new(&request.key);
    let mut reports = Vec::with_capacity(request.subscribers.len());
    for chunk in request.subscribers.chunks(PARALLEL) {
        let sends = chunk.iter().map(|s| {
            let id = SubscriberId::new(s);
            let msg = Rerate {
                job: job.clone(),
                from: request.from,
                to: request.to,
                dry_run: request.dry_run,
                audit: (!request.dry_run).then(|| {
                    caller.attribution().record(
                        "usage.rerate",
                        format!("subscriber/{s}"),
                        None,
                        None,
                    )
                }),
            };
            let router = state.router.clone();
            async move { router.send(&id, msg).await.and_then(|r| r) }
        });
        for result in join_all(sends).await {
            reports.push(result?);
        }
    }
    if let Some(other) = reports
        .iter()
        .find(|r| r.replayed && (r.from != request.from || r.to != request.to))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rerate.key_reused",
            format!(
                "job {} was run for {} .. {}; use a new key for another range",
                request.key, other.from, other.to
            ),
        ));
    }
    let mut answer = RerateAnswer {
        key: request.key,
        dry_run: request.dry_run,
        records: 0,
        changed: 0,
        unchanged: 0,
        failed: 0,
        totals: BTreeMap::new(),
        subscribers: Vec::new(),
        notes: Vec::new(),
    };
    for r in &reports {
        answer.records += r.records;
        answer.changed += r.changed.len();
        answer.unchanged += r.unchanged;
        answer.failed += r.failed.len();
        for line in &r.changed {
            let t = answer
                .totals
                .entry(line.old_charge.currency.code().to_string())
                .or_default();
            t.old += line.old_charge.amount;
            t.new += line.new_charge.amount;
            t.credit += line.credit;
        }
    }
    if !request.dry_run && answer.changed > 0 {
        let finance = state.finance.clone();
        let by = super::payments::actor(&caller);
        let job = job.clone();
        let for_notes = reports.clone();
        answer.notes =
            crate::finance::off_thread(move || finance.notes_for_rerate(&job, &for_notes, &by))
                .await?;
    }
    answer.subscribers = reports;
    Ok(HttpResponse::Ok().json(answer))
}
