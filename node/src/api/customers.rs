//! Customers: create, read, replace, merge-patch, search, and the change history of a customer
//! (its own changes, its accounts' and its subscriptions', each with who, when, the request,
//! before and after). Checks and writes happen in the customer store in one durable
//! transaction with the audit record; see `tollgate_domain::billing::store`.

use actix_web::{HttpResponse, get, patch, post, put, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_domain::admin::AuditId;
use tollgate_domain::billing::{
    ChangeRecord, Customer, CustomerCommand, CustomerFilter, CustomerStatus, WriteContext,
};
use tollgate_domain::ids::CustomerId;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::page::{limit_of, next_cursor};
use super::{AppState, blocking};

/// Who makes a change through the API.
pub(crate) fn context(caller: &Caller) -> WriteContext {
    WriteContext {
        at: jiff::Timestamp::now(),
        principal: caller.principal.user.clone(),
        credential: Some(caller.principal.credential.clone()),
        request_id: caller.request_id.as_str().into(),
    }
}

/// A JSON value as `T`, reporting the path of a misplaced field (422 `request.invalid_field`).
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::unprocessable(
            "request.invalid_field",
            if path == "." {
                format!("the body is invalid: {}", e.inner())
            } else {
                format!("{path}: {}", e.inner())
            },
        )
        .with_details(serde_json::json!({ "path": path }))
    })
}

/// The body of a replacement with the path's id filled in when absent; a different id is
/// refused (ids never change).
pub(crate) fn with_path_id(mut body: Value, id: &str, code: &str) -> Result<Value, ApiError> {
    let Value::Object(fields) = &mut body else {
        return Err(ApiError::unprocessable(
            "request.invalid_field",
            "the body must be a JSON object",
        )
        .with_details(serde_json::json!({ "path": "." })));
    };
    match fields.get("id") {
        None => {
            fields.insert("id".into(), Value::String(id.to_string()));
        }
        Some(Value::String(given)) if given == id => {}
        Some(_) => {
            return Err(ApiError::unprocessable(
                code,
                format!("the body's id differs from the path's {id:?}; ids never change"),
            )
            .with_details(serde_json::json!({ "path": "id" })));
        }
    }
    Ok(body)
}

/// A page of customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    /// Customers, by id.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Customer>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// One change of a customer's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    /// Id (time-ordered; also the audit record's id).
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub principal: String,
    /// The token id used, or `jwt`.
    pub credential: Option<String>,
    /// The request that made it.
    pub request_id: String,
    /// What was done (`customer.update`, `account.create`, `subscription.suspend`...).
    pub operation: String,
    /// To what (`customer/C1`, `account/A1`, `subscription/S1`).
    pub target: String,
    /// Why, when given (status changes).
    pub reason: Option<String>,
    /// State before (null for creations).
    #[schema(value_type = Object, nullable = true)]
    pub before: Option<Value>,
    /// State after.
    #[schema(value_type = Object, nullable = true)]
    pub after: Option<Value>,
}

impl From<ChangeRecord> for ChangeView {
    fn from(r: ChangeRecord) -> ChangeView {
        ChangeView {
            id: r.id.to_string(),
            at: r.at.to_string(),
            principal: r.principal.to_string(),
            credential: r.credential.map(|c| c.to_string()),
            request_id: r.request_id.to_string(),
            operation: r.operation.to_string(),
            target: r.target,
            reason: r.reason,
            before: r.before,
            after: r.after,
        }
    }
}

/// A page of a customer's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Changes, oldest first.
    pub items: Vec<ChangeView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// Search filters and paging of the customer list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Part of the name (case-insensitive; the legal name, first and last name, or the
    /// contact person's name).
    pub name: Option<String>,
    /// Exact tax id.
    pub tax_id: Option<String>,
    /// E-mail (case-insensitive; the customer's or the contact person's).
    pub email: Option<String>,
    /// Exact segment.
    pub segment: Option<String>,
    /// Status: `prospect`, `active`, `suspended` or `closed`.
    pub status: Option<String>,
    /// A custom attribute: `key` (present) or `key=value` (a string attribute equal to value,
    /// or another value whose JSON text is value, e.g. `vip=true`).
    pub attribute: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Paging of a history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Parses a snake_case enum value from a query parameter (400 `request.bad_query`).
pub(crate) fn query_enum<T: DeserializeOwned>(name: &str, value: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(value.to_string())).map_err(|_| {
        ApiError::bad_request(
            "request.bad_query",
            format!("{name}: {value:?} is not one of the documented values"),
        )
    })
}

/// Search customers.
#[utoipa::path(tag = "customers", params(CustomerQuery),
    responses((status = 200, body = CustomerPage), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/customers")]
pub async fn list_customers(
    state: web::Data<AppState>,
    query: web::Query<CustomerQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = CustomerFilter {
        name: q.name,
        tax_id: q.tax_id,
        email: q.email,
        segment: q.segment,
        status: q
            .status
            .as_deref()
            .map(|s| query_enum::<CustomerStatus>("status", s))
            .transpose()?,
        attribute: q.attribute.map(|a| match a.split_once('=') {
            Some((key, value)) => (key.to_string(), Some(value.to_string())),
            None => (a, None),
        }),
    };
    let limit = limit_of(q.limit);
    let after = q.cursor.map(CustomerId::new);
    let store = state.customers.clone();
    let found =
        blocking(move || Ok(store.search_customers(&filter, after.as_ref(), limit + 1)?)).await?;
    let mut items = found;
    let next_cursor = next_cursor(&mut items, limit, |c| c.id.to_string());
    Ok(HttpResponse::Ok().json(CustomerPage { items, next_cursor }))
}

/// Create a customer. Every field problem is listed in `details.problems`.
#[utoipa::path(tag = "customers",
    request_body(content = Object, description = "A customer (see docs/billing.md#customers): id, person {type: physical|juridical, ...}, tax_id, email, phone, contact_person, residence_address, registration_address, custom (free JSON attributes), segment, credit_class, credit_limit, status"),
    responses((status = 201, description = "The customer", body = Object), Errors),
    security(("bearer" = ["customer.write"])))]
#[post("/v1/customers")]
pub async fn create_customer(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let customer: Customer = from_value(body.into_inner())?;
    let store = state.customers.clone();
    let created = customer.clone();
    blocking(move || {
        store.apply(CustomerCommand::CreateCustomer(created), &context(&caller))?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Created().json(customer))
}

async fn read_customer(state: &web::Data<AppState>, id: CustomerId) -> Result<Customer, ApiError> {
    let store = state.customers.clone();
    let shown = id.clone();
    blocking(move || Ok(store.customer(&id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("customer.not_found", format!("no customer {shown}")))
}

/// One customer.
#[utoipa::path(tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, description = "The customer", body = Object), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/customers/{id}")]
pub async fn get_customer(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let customer = read_customer(&state, CustomerId::new(path.into_inner())).await?;
    Ok(HttpResponse::Ok().json(customer))
}

/// Replace a customer (the body's id may be omitted; it cannot differ from the path's).
#[utoipa::path(tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    request_body(content = Object, description = "The whole customer, as for creation"),
    responses((status = 200, description = "The customer", body = Object), Errors),
    security(("bearer" = ["customer.write"])))]
#[put("/v1/customers/{id}")]
pub async fn put_customer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let customer: Customer = from_value(with_path_id(
        body.into_inner(),
        &id,
        "customer.id_immutable",
    )?)?;
    write(
        &state,
        caller,
        CustomerCommand::UpdateCustomer(customer),
        id,
    )
    .await
}

/// Change some fields of a customer with a JSON merge patch (RFC 7396): members replace
/// fields, `null` removes them, objects (`custom`, addresses) merge. Checked as a whole.
#[utoipa::path(tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    request_body(content = Object, description = "A JSON merge patch, e.g. {\"email\": \"new@example.com\", \"custom\": {\"tier\": null}}"),
    responses((status = 200, description = "The customer", body = Object), Errors),
    security(("bearer" = ["customer.write"])))]
#[patch("/v1/customers/{id}")]
pub async fn patch_customer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let command = CustomerCommand::PatchCustomer {
        id: CustomerId::new(&id),
        patch: body.into_inner(),
    };
    write(&state, caller, command, id).await
}

async fn write(
    state: &web::Data<AppState>,
    caller: Caller,
    command: CustomerCommand,
    id: String,
) -> Result<HttpResponse, ApiError> {
    let store = state.customers.clone();
    blocking(move || {
        store.apply(command, &context(&caller))?;
        Ok(())
    })
    .await?;
    let customer = read_customer(state, CustomerId::new(id)).await?;
    Ok(HttpResponse::Ok().json(customer))
}

/// A customer's change history, oldest first: the customer's own changes and those of its
/// accounts and subscriptions, with who, when, the request, before and after.
#[utoipa::path(tag = "customers",
    params(("id" = String, Path, description = "Customer id"), HistoryQuery),
    responses((status = 200, body = HistoryPage), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/customers/{id}/history")]
pub async fn customer_history(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = CustomerId::new(path.into_inner());
    let q = query.into_inner();
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(AuditId::parse(c).ok_or_else(|| {
            ApiError::bad_request("request.bad_cursor", "the cursor is not a history id")
        })?),
    };
    let limit = limit_of(q.limit);
    let store = state.customers.clone();
    let found = blocking(move || {
        if store.customer(&id)?.is_none() {
            return Err(ApiError::not_found(
                "customer.not_found",
                format!("no customer {id}"),
            ));
        }
        Ok(store.history(&id, after, limit + 1)?)
    })
    .await?;
    let mut items = found;
    let next_cursor = next_cursor(&mut items, limit, |r| r.id.to_string());
    Ok(HttpResponse::Ok().json(HistoryPage {
        items: items.into_iter().map(ChangeView::from).collect(),
        next_cursor,
    }))
}
