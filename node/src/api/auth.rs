//! The gate every request passes: a request id, the route's permission (read from the OpenAPI
//! document the routes generate, so a documented route cannot lack one), authentication and
//! authorisation, and JSON for every error, whatever produced it.
//!
//! The route table fails closed: a request whose route is not in it is answered 404 without
//! reaching a handler, so a route registered without documentation cannot be reached at all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use tollgate_domain::admin::Permission;

use super::error::ApiError;
use crate::access::{AccessControl, Attribution, AuthError, Principal};

/// The security scheme name used in the OpenAPI document.
pub const SCHEME: &str = "bearer";

/// Header carrying the request id, in both directions.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Served without a token (configured in `auth.public_paths`).
    Public,
    /// Needs a token whose roles grant this permission.
    Requires(Permission),
}

/// Every route's access rule, by method and path pattern (`/v1/users/{name}`).
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: HashMap<(Method, String), Access>,
}

impl RouteTable {
    /// Reads the permission of every operation of `doc` (its `bearer` security scope) and makes
    /// the operations on `public_paths` public. An operation without exactly one known
    /// permission is an error: the node refuses to start.
    pub fn from_openapi(
        doc: &serde_json::Value,
        public_paths: &[String],
    ) -> Result<RouteTable, String> {
        let public: HashSet<&str> = public_paths.iter().map(String::as_str).collect();
        let mut routes = HashMap::new();
        let paths = doc
            .get("paths")
            .and_then(|p| p.as_object())
            .ok_or("the OpenAPI document has no paths")?;
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                    continue;
                };
                let scopes: Vec<&str> = operation
                    .get("security")
                    .and_then(|s| s.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|req| req.get(SCHEME))
                    .filter_map(|scopes| scopes.as_array())
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .collect();
                let [scope] = scopes.as_slice() else {
                    return Err(format!(
                        "{method} {path}: the route must name exactly one permission, found {scopes:?}"
                    ));
                };
                let permission = Permission::parse(scope)
                    .ok_or_else(|| format!("{method} {path}: unknown permission {scope:?}"))?;
                let access = if public.contains(path.as_str()) {
                    Access::Public
                } else {
                    Access::Requires(permission)
                };
                routes.insert((method, path.clone()), access);
            }
        }
        Ok(RouteTable { routes })
    }

    /// Adds a route that is not in the document (the metrics route, whose path is configured).
    pub fn insert(&mut self, method: Method, path: &str, access: Access) {
        self.routes.insert((method, path.to_string()), access);
    }

    /// The rule of a route.
    pub fn get(&self, method: &Method, pattern: &str) -> Option<Access> {
        self.routes
            .get(&(method.clone(), pattern.to_string()))
            .copied()
    }
}

/// The request id of a request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static REQUESTS: AtomicU64 = AtomicU64::new(0);

fn request_id(req: &ServiceRequest, prefix: &str) -> String {
    let given = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        });
    match given {
        Some(id) => id.to_string(),
        None => format!(
            "{prefix}-{:x}",
            REQUESTS.fetch_add(1, Ordering::Relaxed) + 1
        ),
    }
}

/// What the gate needs.
pub struct Gate {
    /// Route rules.
    pub routes: RouteTable,
    /// Users and tokens.
    pub access: Arc<AccessControl>,
    /// Prefix of generated request ids (random per process).
    pub id_prefix: String,
}

/// The middleware: request id, route rule, authentication, authorisation, JSON errors.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(gate) = req.app_data::<actix_web::web::Data<Gate>>().cloned() else {
        let e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.starting",
            "not ready",
        );
        return Ok(req.into_response(e.response()));
    };
    let id = request_id(&req, &gate.id_prefix);
    req.extensions_mut().insert(RequestId(id.clone()));
    let answer = match decide(&req, &gate) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            let res = next.call(req).await?.map_into_boxed_body();
            jsonify(res).await
        }
        Err(e) => req.into_response(e.response()),
    };
    Ok(with_request_id(answer, &id))
}

fn decide(req: &ServiceRequest, gate: &Gate) -> Result<Principal, ApiError> {
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "route.unknown", "no such route");
    let pattern = req.match_pattern().ok_or_else(unknown)?;
    let access = gate
        .routes
        .get(req.method(), &pattern)
        .ok_or_else(unknown)?;
    let permission = match access {
        Access::Public => return Ok(Principal::anonymous()),
        Access::Requires(p) => p,
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let principal = match bearer {
        None => Err(AuthError::Missing),
        Some(token) => gate.access.authenticate(token, jiff::Timestamp::now()),
    }
    .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()))?;
    if !principal.may(permission) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            format!("this operation requires the permission {permission}"),
        )
        .with_details(serde_json::json!({ "permission": permission.as_str() })));
    }
    Ok(principal)
}

fn with_request_id(mut res: ServiceResponse<BoxBody>, id: &str) -> ServiceResponse<BoxBody> {
    if let Ok(value) = HeaderValue::from_str(id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    if res.status() == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tollgate\""),
        );
    }
    res
}

/// Rewrites an error answer that is not JSON (from actix itself: a payload too large, a bad
/// path parameter) into the API's error shape. 5xx texts are replaced, never passed on.
async fn jsonify(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return res;
    }
    let (req, response) = res.into_parts();
    let text = match actix_web::body::to_bytes(response.into_body()).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request.too_large",
        StatusCode::NOT_FOUND => "route.unknown",
        StatusCode::METHOD_NOT_ALLOWED => "route.method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "request.unsupported_media_type",
        s if s.is_server_error() => "node.internal",
        _ => "request.malformed",
    };
    let message = if status.is_server_error() || text.trim().is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        text.chars().take(500).collect()
    };
    ServiceResponse::new(req, ApiError::new(status, code, message).response())
}

/// The caller of a handler: who, and through which request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated principal (anonymous on public routes).
    pub principal: Principal,
    /// The request id.
    pub request_id: String,
}

impl Caller {
    /// Attribution of a change made now.
    pub fn attribution(&self) -> Attribution<'_> {
        Attribution {
            principal: &self.principal,
            request_id: &self.request_id,
            at: jiff::Timestamp::now(),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        let principal = extensions.get::<Principal>().cloned();
        let request_id = extensions.get::<RequestId>().map(|r| r.0.clone());
        std::future::ready(match (principal, request_id) {
            (Some(principal), Some(request_id)) => Ok(Caller {
                principal,
                request_id,
            }),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.missing_token",
                "no authenticated caller",
            )),
        })
    }
}
