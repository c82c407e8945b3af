//! Request bodies: JSON with the path of the offending field on a type error, and raw uploads
//! with their own size limit.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body of type `T`. Syntax errors are 400 `request.malformed`; a well-formed body of the
/// wrong shape is 422 `request.invalid_field` with the field's path in `details.path`; a body
/// over `http.body_limit_bytes` is 413.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> Body<T> {
    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn payload_error(e: &actix_web::Error) -> ApiError {
    let status = e.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "request.too_large", "the request body is too large")
    } else {
        ApiError::bad_request("request.malformed", format!("cannot read the body: {e}"))
    }
}

/// Parses JSON, reporting the path of a misplaced field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(
                "request.malformed",
                format!("the body is not JSON: {inner}"),
            )
        } else {
            ApiError::unprocessable(
                "request.invalid_field",
                if path == "." {
                    format!("the body is invalid: {inner}")
                } else {
                    format!("{path}: {inner}")
                },
            )
            .with_details(serde_json::json!({ "path": path }))
        }
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Body<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json_or_none = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("application/json") || v.contains("+json"));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json_or_none {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "request.unsupported_media_type",
                    "send the body as application/json",
                ));
            }
            let bytes = bytes.await.map_err(|e| payload_error(&e))?;
            parse_json(&bytes).map(Body)
        })
    }
}

/// Reads a raw body of at most `limit` bytes (413 beyond it).
pub async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("request.malformed", format!("cannot read the body: {e}"))
        })?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                format!("the upload is larger than http.upload_limit_bytes ({limit} bytes)"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
