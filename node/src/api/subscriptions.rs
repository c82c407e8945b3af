//! Subscriptions: create (pending), read, search, and the dated lifecycle
//! `pending -> active <-> suspended -> deactivated` (and `pending -> deactivated`). An illegal
//! move is 409 `subscription.illegal_transition`, a date before the last change 409
//! `subscription.backdated_transition`; the reason is kept in the customer's history.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smol_str::SmolStr;
use tollgate_domain::billing::{
    AttachedCharge, CustomerCommand, StatusChange, Subscription, SubscriptionFilter,
    SubscriptionStatus,
};
use tollgate_domain::ids::{AccountId, DiscountId, SubscriberId, SubscriptionId};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Body;
use super::customers::{context, query_enum};
use super::error::{ApiError, Errors};
use super::page::{limit_of, next_cursor};
use super::{AppState, blocking};

/// Longest reason kept with a status change.
const REASON_LEN_MAX: usize = 500;

/// A subscription with its current status.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    /// Subscription id.
    pub id: String,
    /// Billed account.
    pub account: String,
    /// Product or plan code.
    pub product: String,
    /// Rating key of its usage, if any.
    pub subscriber: Option<String>,
    /// Current status: `pending`, `active`, `suspended` or `deactivated`.
    pub status: String,
    /// Dated status changes, oldest first (`{status, on}`).
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<StatusChange>,
    /// Price list items attached (`{item, quantity, start, end, trial_days}`).
    #[schema(value_type = Vec<Object>)]
    pub charges: Vec<AttachedCharge>,
    /// Discounts attached, in order.
    #[schema(value_type = Vec<String>)]
    pub discounts: Vec<DiscountId>,
}

fn status_text(status: SubscriptionStatus) -> String {
    match serde_json::to_value(status) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> SubscriptionView {
        SubscriptionView {
            id: s.id.to_string(),
            account: s.account.to_string(),
            product: s.product.to_string(),
            subscriber: s.subscriber.as_ref().map(ToString::to_string),
            status: status_text(s.status()),
            history: s.history,
            charges: s.charges,
            discounts: s.discounts,
        }
    }
}

/// A page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPage {
    /// Subscriptions, by id.
    pub items: Vec<SubscriptionView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// Search filters and paging of the subscription list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionQuery {
    /// Billed account.
    pub account: Option<String>,
    /// Rating key (subscriber id).
    pub subscriber: Option<String>,
    /// Current status: `pending`, `active`, `suspended` or `deactivated`.
    pub status: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Body of a subscription creation: it starts `pending` on `on`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Subscription id (1-64 of `A-Z a-z 0-9 . _ : -`).
    pub id: String,
    /// Billed account.
    pub account: String,
    /// Product or plan code.
    pub product: String,
    /// Rating key of the usage it generates (subscriber id), if any.
    #[serde(default)]
    pub subscriber: Option<String>,
    /// Day it was ordered (default: today, UTC).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub on: Option<jiff::civil::Date>,
    /// Price list items attached: `{item, quantity, start, end, trial_days}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub charges: Vec<AttachedCharge>,
    /// Discount ids attached, in order.
    #[serde(default)]
    pub discounts: Vec<String>,
}

/// Body of a status change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeBody {
    /// New status: `active`, `suspended` or `deactivated`.
    #[schema(value_type = String)]
    pub status: SubscriptionStatus,
    /// Day it applies from (the whole day).
    #[schema(value_type = String, format = Date)]
    pub on: jiff::civil::Date,
    /// Why (kept in the customer's history).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Search subscriptions.
#[utoipa::path(tag = "subscriptions", params(SubscriptionQuery),
    responses((status = 200, body = SubscriptionPage), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/subscriptions")]
pub async fn list_subscriptions(
    state: web::Data<AppState>,
    query: web::Query<SubscriptionQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = SubscriptionFilter {
        account: q.account.map(AccountId::new),
        subscriber: q.subscriber.map(SubscriberId::new),
        status: q
            .status
            .as_deref()
            .map(|s| query_enum::<SubscriptionStatus>("status", s))
            .transpose()?,
    };
    let limit = limit_of(q.limit);
    let after = q.cursor.map(SubscriptionId::new);
    let store = state.customers.clone();
    let found =
        blocking(move || Ok(store.search_subscriptions(&filter, after.as_ref(), limit + 1)?))
            .await?;
    let mut items = found;
    let next_cursor = next_cursor(&mut items, limit, |s| s.id.to_string());
    Ok(HttpResponse::Ok().json(SubscriptionPage {
        items: items.into_iter().map(SubscriptionView::from).collect(),
        next_cursor,
    }))
}

/// Create a subscription (pending). Attached items and discounts must exist in the billing
/// setup (422 `billing.unknown_item`, `billing.unknown_discount`).
#[utoipa::path(tag = "subscriptions", request_body = NewSubscription,
    responses((status = 201, body = SubscriptionView), Errors),
    security(("bearer" = ["customer.write"])))]
#[post("/v1/subscriptions")]
pub async fn create_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<NewSubscription>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let by = context(&caller);
    let on = b.on.unwrap_or_else(|| by.today());
    let mut subscription = Subscription::new(
        SubscriptionId::new(&b.id),
        AccountId::new(&b.account),
        SmolStr::new(&b.product),
        on,
    );
    subscription.subscriber = b.subscriber.map(SubscriberId::new);
    subscription.charges = b.charges;
    subscription.discounts = b.discounts.into_iter().map(DiscountId::new).collect();
    let store = state.customers.clone();
    let created = subscription.clone();
    blocking(move || {
        store.apply(CustomerCommand::CreateSubscription(created), &by)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Created().json(SubscriptionView::from(subscription)))
}

async fn read(state: &web::Data<AppState>, id: SubscriptionId) -> Result<Subscription, ApiError> {
    let store = state.customers.clone();
    blocking(move || {
        store.subscription(&id)?.ok_or_else(|| {
            ApiError::not_found("subscription.not_found", format!("no subscription {id}"))
        })
    })
    .await
}

/// One subscription.
#[utoipa::path(tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionView), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/subscriptions/{id}")]
pub async fn get_subscription(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subscription = read(&state, SubscriptionId::new(path.into_inner())).await?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(subscription)))
}

/// Move a subscription to another status from a day on: activate, suspend, resume
/// (`active` again) or deactivate.
#[utoipa::path(tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    request_body = StatusChangeBody,
    responses((status = 200, body = SubscriptionView), Errors),
    security(("bearer" = ["customer.write"])))]
#[post("/v1/subscriptions/{id}/status")]
pub async fn change_status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<StatusChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let id = SubscriptionId::new(path.into_inner());
    let b = body.into_inner();
    if b.reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > REASON_LEN_MAX)
    {
        return Err(ApiError::unprocessable(
            "subscription.invalid",
            format!("reason: at most {REASON_LEN_MAX} characters"),
        )
        .with_details(serde_json::json!({ "path": "reason" })));
    }
    let command = CustomerCommand::ChangeStatus {
        subscription: id.clone(),
        status: b.status,
        on: b.on,
        reason: b.reason,
    };
    let store = state.customers.clone();
    blocking(move || {
        store.apply(command, &context(&caller))?;
        Ok(())
    })
    .await?;
    let subscription = read(&state, id).await?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(subscription)))
}
