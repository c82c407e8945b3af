//! The billing setup: bill cycles, the price list (prices per currency), discount definitions,
//! the tax scheme and the invoice numbering template, read and replaced as one document.
//! A replacement is validated as a whole (every problem in `details.problems`), may not drop a
//! cycle, item or discount still in use (409), increments `version`, and is audited with the
//! document before and after.

use actix_web::{HttpResponse, get, put, web};
use serde_json::Value;
use tollgate_domain::billing::{BillingSetup, CustomerCommand};

use super::auth::Caller;
use super::body::Body;
use super::customers::{context, from_value};
use super::error::{ApiError, Errors};
use super::{AppState, blocking};

/// The billing setup (defaults when never set: no cycles, an empty price list, no discounts,
/// no tax rates, template `INV-{yyyy}-{seq:06}`, version 0).
#[utoipa::path(tag = "billing",
    responses((status = 200, description = "The billing setup: {version, cycles, price_list, discounts, tax_scheme, invoice_number_template}", body = Object), Errors),
    security(("bearer" = ["billing.read"])))]
#[get("/v1/billing/setup")]
pub async fn get_setup(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.customers.clone();
    let setup = blocking(move || Ok(store.setup()?)).await?;
    Ok(HttpResponse::Ok().json(setup))
}

/// Replace the billing setup. Send back the `version` you read to refuse the change if
/// someone else changed the setup since (409 `billing.setup_version_conflict`); omit it to
/// overwrite.
#[utoipa::path(tag = "billing",
    request_body(content = Object, description = "{version?, cycles, price_list, discounts, tax_scheme, invoice_number_template} (see docs/billing.md)"),
    responses((status = 200, description = "The stored setup with its new version", body = Object), Errors),
    security(("bearer" = ["billing.setup"])))]
#[put("/v1/billing/setup")]
pub async fn put_setup(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let value = body.into_inner();
    let expected_version = value.get("version").map(|v| {
        v.as_u64().ok_or_else(|| {
            ApiError::unprocessable("request.invalid_field", "version: a non-negative integer")
                .with_details(serde_json::json!({ "path": "version" }))
        })
    });
    let expected_version = expected_version.transpose()?;
    let setup: BillingSetup = from_value(value)?;
    let store = state.customers.clone();
    let stored = blocking(move || {
        store.apply(
            CustomerCommand::PutSetup {
                setup,
                expected_version,
            },
            &context(&caller),
        )?;
        Ok(store.setup()?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(stored))
}
