//! API errors: a status, a stable code and a message; never internals.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use tollgate_actors::ActorError;
use tollgate_domain::ledger::Refusal;

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details (field path, permission, problems), or null.
    pub details: serde_json::Value,
}

/// The error shape of every API answer with a 4xx or 5xx status.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error: a stable code, a message, and details.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `auth.forbidden`, `catalogue.invalid`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Structured details, e.g. `{"permission": "catalogue.write"}` or a list of problems.
    #[schema(value_type = Object, nullable = true)]
    pub details: serde_json::Value,
}

impl ApiError {
    /// Builds an error.
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// The same error with structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = details;
        self
    }

    /// 404 with a code.
    pub fn not_found(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 422 for a well-formed request that cannot be carried out as asked.
    pub fn unprocessable(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 503 for a storage failure: nothing was changed.
    pub fn storage(e: &tollgate_domain::ledger::StoreError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            "temporarily unable to read or write durable state; nothing was changed, retry",
        )
    }

    /// The HTTP answer.
    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({
            "error": { "code": self.code, "message": self.message, "details": self.details }
        }))
    }

    /// 400 for a request that does not parse.
    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> ApiError {
        let status = match &e {
            ActorError::UnknownSubscriber(_) => StatusCode::NOT_FOUND,
            ActorError::Store(tollgate_domain::ledger::StoreError::Fenced { .. }) => {
                StatusCode::CONFLICT
            }
            // Storage or actor failures: nothing was applied; the client retries with the same key.
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let message = match &e {
            ActorError::UnknownSubscriber(id) => format!("unknown subscriber {id}"),
            ActorError::Store(_) | ActorError::Unavailable(_) | ActorError::Retired => {
                "temporarily unable to make the change durable; nothing was applied, retry with the same key".into()
            }
        };
        ApiError::new(status, e.code(), message)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let status = match &r {
            Refusal::Insufficient(_) => StatusCode::PAYMENT_REQUIRED,
            Refusal::Suspended | Refusal::Barred { .. } => StatusCode::FORBIDDEN,
            Refusal::UnknownSession(_) => StatusCode::NOT_FOUND,
            Refusal::SessionExists(_) => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, r.code(), r.to_string())
    }
}

/// JSON body errors as 400/413 with the serde message.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            let status = match &err {
                actix_web::error::JsonPayloadError::Overflow { .. }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "request.too_large"
            } else {
                "request.malformed"
            };
            ApiError::new(status, code, err.to_string()).into()
        })
}

impl From<crate::access::AccessError> for ApiError {
    fn from(e: crate::access::AccessError) -> ApiError {
        use crate::access::AccessError;
        match e {
            AccessError::Store(s) => ApiError::storage(&s),
            AccessError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            AccessError::NotFound { code, message } => ApiError::not_found(code, message),
            AccessError::Invalid { code, message } => ApiError::unprocessable(code, message),
        }
    }
}

/// Path, query and form errors as 400 JSON answers.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|err, _req| {
        ApiError::bad_request("request.bad_path", err.to_string()).into()
    })
}

/// Query string errors as 400 JSON answers naming the parameter.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::bad_request("request.bad_query", err.to_string()).into()
    })
}

/// The error answers every authenticated operation can give. Only its derived OpenAPI
/// description is used; answers are built from [`ApiError`].
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum Errors {
    /// The request does not parse (body, path or query).
    #[response(status = 400, description = "Malformed request")]
    BadRequest(ErrorBody),
    /// No valid token.
    #[response(
        status = 401,
        description = "Missing, invalid, expired or revoked token"
    )]
    Unauthorized(ErrorBody),
    /// The token's roles lack the operation's permission.
    #[response(
        status = 403,
        description = "The permission named in details is missing"
    )]
    Forbidden(ErrorBody),
    /// Something named in the path does not exist.
    #[response(status = 404, description = "Not found")]
    NotFound(ErrorBody),
    /// The request conflicts with the current state.
    #[response(status = 409, description = "Conflict")]
    Conflict(ErrorBody),
    /// The body is larger than the configured limit.
    #[response(status = 413, description = "Request body too large")]
    TooLarge(ErrorBody),
    /// The body has the wrong media type.
    #[response(status = 415, description = "Unsupported media type")]
    UnsupportedMediaType(ErrorBody),
    /// The request is well-formed but invalid (field path in details).
    #[response(status = 422, description = "Invalid request")]
    Unprocessable(ErrorBody),
    /// Storage is temporarily unavailable; nothing was changed.
    #[response(status = 503, description = "Temporarily unavailable; retry")]
    Unavailable(ErrorBody),
}

impl From<tollgate_domain::billing::CustomerStoreError> for ApiError {
    fn from(e: tollgate_domain::billing::CustomerStoreError) -> ApiError {
        use tollgate_domain::billing::CustomerStoreError as E;
        let status = match &e {
            E::Store(s) => return ApiError::storage(s),
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            _ if e.is_state_conflict() => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let details = match &e {
            E::Invalid { problems, .. } => json!({
                "path": problems.first().map(|p| p.path.clone()),
                "problems": problems,
            }),
            _ => serde_json::Value::Null,
        };
        let message = match &e {
            E::Invalid { problems, .. } => problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        ApiError::new(status, e.code(), message).with_details(details)
    }
}

impl From<tollgate_domain::ledger::StoreError> for ApiError {
    fn from(e: tollgate_domain::ledger::StoreError) -> ApiError {
        ApiError::storage(&e)
    }
}

impl From<crate::finance::FinanceFailure> for ApiError {
    fn from(e: crate::finance::FinanceFailure) -> ApiError {
        use crate::finance::FinanceFailure as F;
        use tollgate_domain::finance::FinanceError as E;
        match &e {
            F::Store(s) => ApiError::storage(s),
            F::Busy(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()),
            F::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, e.code(), e.to_string()),
            F::Refused { code, .. } if *code == "request.key_reused" => {
                ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
            }
            F::Refused { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
            }
            F::Rule(E::UnbilledUsage { accounts, .. }) => {
                ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
                    .with_details(json!({ "accounts": accounts }))
            }
            F::Rule(E::KeyReused(_) | E::PeriodState { .. }) => {
                ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
            }
            F::Rule(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()),
        }
    }
}

impl From<crate::partners::PartnerFailure> for ApiError {
    fn from(e: crate::partners::PartnerFailure) -> ApiError {
        use crate::partners::PartnerFailure as F;
        use tollgate_domain::partner::PartnerError as E;
        match &e {
            F::Store(s) => ApiError::storage(s),
            F::Busy(_) | F::Actor(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string())
            }
            F::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, e.code(), e.to_string()),
            F::State { .. } => ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string()),
            F::Refused { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
            }
            F::Rule(E::InvalidPartner(problems)) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
                    .with_details(json!({ "problems": problems }))
            }
            F::Rule(
                E::OverlappingAgreement { .. }
                | E::DisputeTransition { .. }
                | E::StatementTransition { .. },
            ) => ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string()),
            F::Rule(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()),
        }
    }
}
