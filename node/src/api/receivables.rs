//! What an account owes and how it got there: `GET /v1/accounts/{id}/statement?from&to`
//! (invoices, payments, refunds, reversals, penalties, credit and debit notes with a running
//! balance), `GET /v1/accounts/{id}/receivables` (each invoice's outstanding amount and due
//! date, dunning cases, service state), `GET /v1/accounts/{id}/notifications`, and credit notes
//! (`GET /v1/credit-notes`, `GET /v1/credit-notes/{number}`).

use actix_web::{HttpResponse, get, web};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_domain::finance::statement::build_statement;
use tollgate_domain::finance::store::NoteFilter;
use tollgate_domain::finance::{AccountDunning, DunningCase, InvoiceBalance, Notification};
use tollgate_domain::ids::AccountId;
use tollgate_domain::money::Money;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Errors};
use super::page::{PageQuery, next_cursor};
use crate::finance::off_thread;

/// A statement's date range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// First day (default: the first day of the account's first invoice or entry).
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<Date>,
    /// Last day, inclusive (default: today).
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<Date>,
}

/// An account statement with a running balance.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Payer account"), StatementQuery),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/accounts/{id}/statement")]
pub async fn statement(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = AccountId::new(id.into_inner());
    let query = query.into_inner();
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(ApiError::unprocessable(
            "statement.bad_range",
            format!("from {from} is after to {to}"),
        ));
    }
    let statement = off_thread(move || {
        let r = finance.receivables(&id)?;
        let to = query.to.unwrap_or_else(|| finance.today());
        let first = r
            .invoices
            .iter()
            .map(|i| i.issued_on)
            .chain(r.entries.iter().map(|e| e.on))
            .min()
            .unwrap_or(to);
        let from = query.from.unwrap_or(first.min(to));
        Ok(build_statement(
            &id,
            r.account.currency,
            &r.invoices,
            &r.entries,
            from,
            to,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(statement))
}

/// What an account owes now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivablesView {
    /// The payer.
    pub account: String,
    /// Sum of what invoices still owe.
    #[schema(value_type = Object)]
    pub outstanding: Money,
    /// Sum of what overdue invoices still owe today.
    #[schema(value_type = Object)]
    pub overdue: Money,
    /// Payments not allocated (credit in the customer's favour).
    #[schema(value_type = Object)]
    pub credit: Money,
    /// Each invoice: total, penalties, paid, credited, due date.
    #[schema(value_type = Vec<Object>)]
    pub invoices: Vec<InvoiceBalance>,
    /// Dunning cases (steps applied per invoice).
    #[schema(value_type = Vec<Object>)]
    pub cases: Vec<DunningCase>,
    /// Service state left by dunning.
    #[schema(value_type = Object)]
    pub service: AccountDunning,
}

/// An account's open items, dunning cases and service state.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Payer account")),
    responses((status = 200, body = ReceivablesView), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/accounts/{id}/receivables")]
pub async fn receivables(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = AccountId::new(id.into_inner());
    let view = off_thread(move || {
        let r = finance.receivables(&id)?;
        let today = finance.today();
        let currency = r.account.currency;
        let sum = |f: &dyn Fn(&InvoiceBalance) -> bool| {
            Money::new(
                r.balances
                    .iter()
                    .filter(|b| f(b))
                    .map(|b| b.outstanding().amount)
                    .sum(),
                currency,
            )
            .at_minor_scale()
        };
        let credit = Money::new(
            r.payments
                .iter()
                .filter(|p| matches!(p.state, tollgate_domain::finance::PaymentState::Received))
                .map(|p| p.unallocated().amount)
                .sum(),
            currency,
        )
        .at_minor_scale();
        Ok(ReceivablesView {
            account: id.to_string(),
            outstanding: sum(&|_| true),
            overdue: sum(&|b| b.overdue_on(today)),
            credit,
            cases: finance.store.cases(&id)?,
            invoices: r.balances.clone(),
            service: r.dunning.clone(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// An account's notifications (dunning reminders), oldest first, with their delivery state.
#[utoipa::path(tag = "finance", params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = Vec<Object>), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/accounts/{id}/notifications")]
pub async fn notifications(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let id = AccountId::new(id.into_inner());
    let list: Vec<Notification> = off_thread(move || {
        finance.account(&id)?;
        Ok(finance.store.notifications(&id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Filters of credit notes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotesQuery {
    /// Only this account.
    pub account: Option<String>,
    /// Only notes on this invoice.
    pub invoice: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Credit and debit notes in number order.
#[utoipa::path(tag = "finance", params(NotesQuery),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/credit-notes")]
pub async fn notes(
    state: web::Data<AppState>,
    query: web::Query<NotesQuery>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let q = query.into_inner();
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = paging.limit();
    let filter = NoteFilter {
        account: q.account.map(AccountId::new),
        invoice: q.invoice.map(SmolStr::from),
    };
    let mut items = off_thread(move || {
        Ok(finance
            .store
            .notes(&filter, q.cursor.as_deref(), limit + 1)?)
    })
    .await?;
    let next = next_cursor(&mut items, limit, |n| n.number.to_string());
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "next_cursor": next})))
}

/// A credit or debit note.
#[utoipa::path(tag = "finance", params(("number" = String, Path, description = "Note number")),
    responses((status = 200, body = Object), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/credit-notes/{number}")]
pub async fn note(
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let finance = state.finance.clone();
    let number = number.into_inner();
    let found = off_thread(move || Ok(finance.store.note(&number)?)).await?;
    match found {
        Some(n) => Ok(HttpResponse::Ok().json(n)),
        None => Err(ApiError::not_found(
            "credit_note.not_found",
            "no such credit note",
        )),
    }
}
