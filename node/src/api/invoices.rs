//! Invoices: `GET /v1/invoices` (by payer, customer, run, period), `GET /v1/invoices/{number}`
//! as JSON, `GET /v1/invoices/{number}/html` printable, and a customer's document pack for a
//! period (`GET /v1/customers/{id}/documents?period_start=`) as one printable page.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use tollgate_domain::billing::run::{Invoice, InvoiceFilter};
use tollgate_domain::ids::{AccountId, CustomerId};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Errors};
use super::page::{limit_of, next_cursor};
use crate::billing::{invoice_html, off_thread};

fn date(text: Option<String>) -> Result<Option<jiff::civil::Date>, ApiError> {
    text.map(|t| {
        t.parse().map_err(|_| {
            ApiError::bad_request(
                "billing.bad_date",
                format!("{t:?} is not a date YYYY-MM-DD"),
            )
        })
    })
    .transpose()
}

/// Invoice filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// Paying account.
    pub payer: Option<String>,
    /// Customer of the paying account.
    pub customer: Option<String>,
    /// Bill run.
    pub run: Option<String>,
    /// First day of the period (YYYY-MM-DD).
    pub period_start: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of invoices.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePage {
    /// Invoices in number order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Invoice>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Invoices.
#[utoipa::path(tag = "billing", params(InvoiceQuery),
    responses((status = 200, body = InvoicePage), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/invoices")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = limit_of(q.limit);
    let filter = InvoiceFilter {
        payer: q.payer.map(AccountId::new),
        customer: q.customer.map(CustomerId::new),
        run: q.run.map(Into::into),
        period_start: date(q.period_start)?,
    };
    let billing = state.billing.clone();
    let cursor = q.cursor;
    let mut items =
        off_thread(move || billing.runs.invoices(&filter, cursor.as_deref(), limit + 1)).await?;
    let next = next_cursor(&mut items, limit, |i| i.number.to_string());
    Ok(HttpResponse::Ok().json(InvoicePage {
        items,
        next_cursor: next,
    }))
}

async fn find(state: &AppState, number: String) -> Result<Invoice, ApiError> {
    let billing = state.billing.clone();
    off_thread(move || billing.runs.invoice(&number))
        .await?
        .ok_or_else(|| ApiError::not_found("billing.unknown_invoice", "no such invoice"))
}

/// An invoice: sections per account, usage, fees, discounts, taxes, totals.
#[utoipa::path(tag = "billing", params(("number" = String, Path, description = "Invoice number")),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/invoices/{number}")]
pub async fn show(
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(find(&state, number.into_inner()).await?))
}

/// An invoice as a printable HTML page.
#[utoipa::path(tag = "billing", params(("number" = String, Path, description = "Invoice number")),
    responses((status = 200, content_type = "text/html", body = String), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/invoices/{number}/html")]
pub async fn html(
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let invoice = find(&state, number.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(invoice_html::page(&invoice)))
}

/// The document pack's period.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackQuery {
    /// First day of the period (YYYY-MM-DD); every period when absent.
    pub period_start: Option<String>,
}

/// Every invoice of a customer (for one period) in one printable HTML page.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "Customer id"), PackQuery),
    responses((status = 200, content_type = "text/html", body = String), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/customers/{id}/documents")]
pub async fn documents(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PackQuery>,
) -> Result<HttpResponse, ApiError> {
    let customer = CustomerId::new(id.into_inner());
    let filter = InvoiceFilter {
        customer: Some(customer.clone()),
        period_start: date(query.into_inner().period_start)?,
        ..InvoiceFilter::default()
    };
    let billing = state.billing.clone();
    let c = customer.clone();
    let invoices = off_thread(move || {
        if billing.customers.customer(&c)?.is_none() {
            return Ok(None);
        }
        billing.runs.invoices(&filter, None, usize::MAX).map(Some)
    })
    .await?
    .ok_or_else(|| ApiError::not_found("customer.unknown", "no such customer"))?;
    let title = format!("Documents of customer {customer}");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(invoice_html::pack(&title, &invoices)))
}
