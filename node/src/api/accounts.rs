//! Billing accounts and corporate hierarchies: create, read, replace, search, and the billed
//! subtree of an account's payer. Every change is checked against the whole stored forest
//! (cycles, payers, currencies) in the same transaction that writes it.
//!
//! Status rule: 409 when the change conflicts with the stored hierarchy (`hierarchy.cycle`,
//! `hierarchy.payer_not_ancestor`, `hierarchy.currency_mismatch`, `account.exists`); 422 when
//! the request is wrong on its own or names something undefined (`hierarchy.unknown_parent`,
//! `hierarchy.root_paid_by_parent`, `billing.unknown_cycle`, `billing.unknown_discount`,
//! `account.unknown_customer`, `account.customer_immutable`).

use actix_web::{HttpResponse, get, post, put, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_domain::billing::{Account, AccountFilter, CustomerCommand};
use tollgate_domain::ids::{AccountId, BillCycleId, CustomerId};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Body;
use super::customers::{context, from_value, with_path_id};
use super::error::{ApiError, Errors};
use super::page::{limit_of, next_cursor};
use super::{AppState, blocking};

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    /// Accounts, by id.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Account>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// Search filters and paging of the account list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    /// Owning customer.
    pub customer: Option<String>,
    /// Direct parent account.
    pub parent: Option<String>,
    /// Bill cycle id.
    pub cycle: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One account on a payer's invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct BilledAccountView {
    /// Account id.
    pub account: String,
    /// Depth below the payer (the payer is 0).
    pub depth: u32,
    /// Owning customer.
    pub customer: String,
    /// Direct parent, if any.
    pub parent: Option<String>,
    /// `self_paying`, `paid_by_parent` or `paid_by`.
    pub responsibility: String,
}

/// The accounts billed together with an account: its payer and every account on the payer's
/// invoice, depth-first (payer first, siblings by id).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubtreeView {
    /// The account asked about.
    pub account: String,
    /// The account whose invoice carries its charges.
    pub payer: String,
    /// Currency of the invoice.
    pub currency: String,
    /// Bill cycle of the payer (the one that governs).
    pub bill_cycle: String,
    /// Accounts on the payer's invoice.
    pub accounts: Vec<BilledAccountView>,
}

/// Search accounts.
#[utoipa::path(tag = "accounts", params(AccountQuery),
    responses((status = 200, body = AccountPage), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/accounts")]
pub async fn list_accounts(
    state: web::Data<AppState>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = AccountFilter {
        customer: q.customer.map(CustomerId::new),
        parent: q.parent.map(AccountId::new),
        cycle: q.cycle.map(BillCycleId::new),
    };
    let limit = limit_of(q.limit);
    let after = q.cursor.map(AccountId::new);
    let store = state.customers.clone();
    let found =
        blocking(move || Ok(store.search_accounts(&filter, after.as_ref(), limit + 1)?)).await?;
    let mut items = found;
    let next_cursor = next_cursor(&mut items, limit, |a| a.id.to_string());
    Ok(HttpResponse::Ok().json(AccountPage { items, next_cursor }))
}

/// Create an account in a hierarchy.
#[utoipa::path(tag = "accounts",
    request_body(content = Object, description = "An account (see docs/billing.md#hierarchies-and-payers): id, customer, parent, currency, bill_cycle, tax_jurisdiction, responsibility (\"self_paying\", \"paid_by_parent\" or {\"paid_by\": {\"account\": ANCESTOR}}), discounts"),
    responses((status = 201, description = "The account", body = Object), Errors),
    security(("bearer" = ["customer.write"])))]
#[post("/v1/accounts")]
pub async fn create_account(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let account: Account = from_value(body.into_inner())?;
    let store = state.customers.clone();
    let created = account.clone();
    blocking(move || {
        store.apply(CustomerCommand::CreateAccount(created), &context(&caller))?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Created().json(account))
}

/// One account.
#[utoipa::path(tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "The account", body = Object), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/accounts/{id}")]
pub async fn get_account(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = AccountId::new(path.into_inner());
    let store = state.customers.clone();
    let account = blocking(move || {
        store
            .account(&id)?
            .ok_or_else(|| ApiError::not_found("account.not_found", format!("no account {id}")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(account))
}

/// Replace an account: re-parent it, change who pays, its cycle or discounts. The customer
/// cannot change. The change is checked against the whole hierarchy.
#[utoipa::path(tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    request_body(content = Object, description = "An account (see docs/billing.md#hierarchies-and-payers): id, customer, parent, currency, bill_cycle, tax_jurisdiction, responsibility (\"self_paying\", \"paid_by_parent\" or {\"paid_by\": {\"account\": ANCESTOR}}), discounts"),
    responses((status = 200, description = "The account", body = Object), Errors),
    security(("bearer" = ["customer.write"])))]
#[put("/v1/accounts/{id}")]
pub async fn put_account(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let account: Account = from_value(with_path_id(
        body.into_inner(),
        &id,
        "account.id_immutable",
    )?)?;
    let store = state.customers.clone();
    let stored = account.clone();
    blocking(move || {
        store.apply(CustomerCommand::UpdateAccount(stored), &context(&caller))?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(account))
}

/// The billed subtree of an account: its payer, and every account on the payer's invoice with
/// its depth below the payer.
#[utoipa::path(tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = SubtreeView), Errors),
    security(("bearer" = ["customer.read"])))]
#[get("/v1/accounts/{id}/subtree")]
pub async fn account_subtree(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = AccountId::new(path.into_inner());
    let store = state.customers.clone();
    let view = blocking(move || {
        let forest = store.forest()?;
        if forest.get(&id).is_none() {
            return Err(ApiError::not_found(
                "account.not_found",
                format!("no account {id}"),
            ));
        }
        // The stored forest is valid (every write was checked), so these only fail on
        // corrupt data.
        let corrupt = |e: tollgate_domain::billing::BillingError| {
            ApiError::storage(&tollgate_domain::ledger::StoreError::Corrupt(e.to_string()))
        };
        let payer_id = forest.payer_of(&id).map_err(corrupt)?;
        let billed = forest.billed_subtree(&payer_id).map_err(corrupt)?;
        let payer = forest.get(&payer_id).ok_or_else(|| {
            corrupt(tollgate_domain::billing::BillingError::UnknownAccount(
                payer_id.clone(),
            ))
        })?;
        let accounts = billed
            .into_iter()
            .filter_map(|b| {
                let a = forest.get(&b.account)?;
                let responsibility = serde_json::to_value(&a.responsibility)
                    .ok()
                    .and_then(|v| match v {
                        Value::String(s) => Some(s),
                        Value::Object(m) => m.keys().next().cloned(),
                        _ => None,
                    })
                    .unwrap_or_default();
                Some(BilledAccountView {
                    account: b.account.to_string(),
                    depth: b.depth,
                    customer: a.customer.to_string(),
                    parent: a.parent.as_ref().map(ToString::to_string),
                    responsibility,
                })
            })
            .collect();
        Ok(SubtreeView {
            account: id.to_string(),
            payer: payer_id.to_string(),
            currency: payer.currency.to_string(),
            bill_cycle: payer.bill_cycle.to_string(),
            accounts,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
