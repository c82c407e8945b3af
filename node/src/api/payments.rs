//! Payments: `POST /v1/payments` records one (idempotent by key; allocated oldest due first or
//! as asked; over-payment kept as credit; a prepaid subscriber's payment tops up its balance),
//! `GET /v1/payments/{id}`, `GET /v1/accounts/{id}/payments`, refunds
//! (`POST /v1/payments/{id}/refunds`) and reversals (`POST /v1/payments/{id}/reversal`).
//! Card payments carry the gateway's token only; a card number is refused.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_actors::TopUp;
use tollgate_domain::finance::{Payment, Refund};
use tollgate_domain::ids::{AccountId, SubscriberId};
use tollgate_domain::money::{Currency, Money};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use crate::finance::off_thread;
use crate::finance::payments::{Actor, PaymentRequest};

pub(crate) fn actor(caller: &Caller) -> Actor {
    Actor {
        principal: caller.principal.user.clone(),
        request_id: SmolStr::new(&caller.request_id),
    }
}

/// A payment as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    /// The payment (id, key, account, amount, method, allocations, refunded, state).
    #[schema(value_type = Object)]
    pub payment: Payment,
    /// Allocated to invoices.
    #[schema(value_type = Object)]
    pub allocated: Money,
    /// Kept as credit on the account.
    #[schema(value_type = Object)]
    pub unallocated: Money,
}

fn view(payment: Payment) -> PaymentView {
    PaymentView {
        allocated: payment.allocated(),
        unallocated: payment.unallocated(),
        payment,
    }
}

/// Record a payment (idempotent by `key`).
#[utoipa::path(tag = "finance", request_body = PaymentRequest,
    responses((status = 201, body = PaymentView, description = "Recorded"),
        (status = 200, body = PaymentView, description = "Recorded before under this key"),
        Errors),
    security(("bearer" = ["payment.write"])))]
#[post("/v1/payments")]
pub async fn record(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<PaymentRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    match request.subscriber.clone() {
        Some(_) if !request.account.is_empty() => Err(ApiError::unprocessable(
            "payment.account_or_subscriber",
            "name either an account (postpaid payment) or a subscriber (prepaid top-up), not both",
        )),
        None if request.account.is_empty() => Err(ApiError::unprocessable(
            "payment.account_or_subscriber",
            "name the paying account (postpaid) or the subscriber to top up (prepaid)",
        )),
        None => {
            let finance = state.finance.clone();
            let by = actor(&caller);
            let (payment, fresh) =
                off_thread(move || finance.record_payment(&request, &by)).await?;
            if fresh {
                let account = payment.account.clone();
                if let Err(e) = state.finance.converge(&account).await {
                    // Recorded; service follows on the next collection job or restart.
                    eprintln!("finance: account {account} not converged after payment: {e}");
                }
            }
            let status = if fresh {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(HttpResponse::build(status).json(view(payment)))
        }
        Some(subscriber) => {
            let id = SubscriberId::new(&subscriber);
            tollgate_domain::finance::allocation::validate_payment(
                &Money::new(request.amount, request.currency),
                &request.method,
                request.cashier.as_deref(),
                &AccountId::new(&subscriber),
                request.currency,
            )
            .map_err(|e| ApiError::from(crate::finance::FinanceFailure::Rule(e)))?;
            let view = state
                .router
                .send(
                    &id,
                    TopUp {
                        audit: Some(caller.attribution().record(
                            "payment.top_up",
                            format!("subscriber/{id}"),
                            None,
                            None,
                        )),
                        id: request.key.as_str().into(),
                        amount: Money::new(request.amount, request.currency),
                    },
                )
                .await??;
            Ok(HttpResponse::Created().json(serde_json::json!({"top_up": view?})))
        }
    }
}

/// A payment.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Payment id")),
    responses((status = 200, body = PaymentView), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/payments/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = id.into_inner();
    let payment = off_thread(move || finance.payment(&id)).await?;
    Ok(HttpResponse::Ok().json(view(payment)))
}

/// An account's payments.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = Vec<PaymentView>), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/accounts/{id}/payments")]
pub async fn of_account(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = AccountId::new(id.into_inner());
    let payments = off_thread(move || {
        finance.account(&id)?;
        Ok(finance.store.payments(&id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(payments.into_iter().map(view).collect::<Vec<_>>()))
}

/// A refund request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Idempotency key.
    pub key: String,
    /// Amount.
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// Currency (the payment's).
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Why.
    pub reason: String,
}

/// Refund (part of) a payment (idempotent by `key`).
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Payment id")),
    request_body = RefundBody,
    responses((status = 201, body = Object, description = "Refunded"),
        (status = 200, body = Object, description = "Refunded before under this key"), Errors),
    security(("bearer" = ["payment.write"])))]
#[post("/v1/payments/{id}/refunds")]
pub async fn refund(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let by = actor(&caller);
    let id = id.into_inner();
    let b = body.into_inner();
    let (refund, fresh): (Refund, bool) = off_thread(move || {
        finance.refund(
            &id,
            &b.key,
            Money::new(b.amount, b.currency),
            &b.reason,
            &by,
        )
    })
    .await?;
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(refund))
}

/// A reversal request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalBody {
    /// Why (e.g. `cheque bounced`).
    pub reason: String,
}

/// Reverse a payment (bounced cheque, charge-back): its allocations no longer count.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Payment id")),
    request_body = ReversalBody,
    responses((status = 200, body = PaymentView), Errors),
    security(("bearer" = ["payment.write"])))]
#[post("/v1/payments/{id}/reversal")]
pub async fn reverse(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<ReversalBody>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let by = actor(&caller);
    let id = id.into_inner();
    let reason = body.into_inner().reason;
    let (payment, _) = off_thread(move || finance.reverse(&id, &reason, &by)).await?;
    Ok(HttpResponse::Ok().json(view(payment)))
}
