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
        }
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
        HttpResponse::build(self.status)
            .json(json!({ "error": { "code": self.code, "message": self.message } }))
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
            Refusal::Suspended => StatusCode::FORBIDDEN,
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
