//! Users, their API tokens, roles and permissions. Every change is audited; token secrets are
//! shown once, at creation, and never stored.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_domain::admin::{ApiToken, Permission, Role, User};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::Body;
use super::error::{ApiError, Errors};
use super::page::{PageQuery, page};
use super::{AppState, blocking};

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Name.
    pub name: String,
    /// Roles held.
    pub roles: Vec<String>,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Creator.
    pub created_by: String,
}

impl From<User> for UserView {
    fn from(u: User) -> UserView {
        UserView {
            name: u.name.to_string(),
            roles: u.roles.iter().map(ToString::to_string).collect(),
            disabled: u.disabled,
            created_at: u.created_at.to_string(),
            created_by: u.created_by.to_string(),
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// Users, by name.
    pub items: Vec<UserView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// A token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Public id.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Label.
    pub label: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Expiry, if any.
    pub expires_at: Option<String>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<String>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> TokenView {
        TokenView {
            id: t.id.to_string(),
            user: t.user.to_string(),
            label: t.label,
            created_at: t.created_at.to_string(),
            expires_at: t.expires_at.map(|e| e.to_string()),
            revoked_at: t.revoked_at.map(|e| e.to_string()),
        }
    }
}

/// A page of tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPage {
    /// Tokens, by id.
    pub items: Vec<TokenView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// A token just created: the secret is in this answer only.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    /// The token record.
    pub token: TokenView,
    /// The bearer token; store it now, it cannot be shown again.
    pub secret: String,
}

/// A role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Permissions granted.
    pub permissions: Vec<String>,
    /// Built-in roles cannot be changed.
    pub builtin: bool,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> RoleView {
        RoleView {
            name: r.name.to_string(),
            description: r.description,
            permissions: r
                .permissions
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            builtin: r.builtin,
        }
    }
}

/// A page of roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolePage {
    /// Roles, by name.
    pub items: Vec<RoleView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// A permission.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionView {
    /// Name.
    pub name: String,
    /// What it allows.
    pub description: String,
}

/// Every permission.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionList {
    /// Permissions.
    pub items: Vec<PermissionView>,
}

/// Filters and paging of the user list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Only users holding this role.
    pub role: Option<String>,
    /// Only disabled (true) or enabled (false) users.
    pub disabled: Option<bool>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters and paging of a token list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Only usable (true) or revoked/expired (false) tokens.
    pub active: Option<bool>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters and paging of the role list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RoleQuery {
    /// Only built-in (true) or custom (false) roles.
    pub builtin: Option<bool>,
    /// Only roles granting this permission.
    pub permission: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Body of a user creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1-64 of `a-z A-Z 0-9 . _ -`.
    pub name: String,
    /// Roles (built-in or custom).
    #[serde(default)]
    pub roles: BTreeSet<String>,
}

/// Body of a user change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// The new set of roles.
    #[serde(default)]
    pub roles: Option<BTreeSet<String>>,
    /// Disable (true) or enable (false) the user and all their tokens.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// Body of a token creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for.
    #[serde(default)]
    pub label: String,
    /// Expiry (RFC 3339); default from `auth.token_ttl_days_default`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<jiff::Timestamp>,
}

/// Body of a role definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRole {
    /// What the role is for.
    #[serde(default)]
    pub description: String,
    /// Permission names (see `GET /v1/permissions`).
    #[schema(value_type = Vec<String>)]
    pub permissions: BTreeSet<Permission>,
}

fn roles(names: BTreeSet<String>) -> BTreeSet<SmolStr> {
    names.into_iter().map(SmolStr::from).collect()
}

/// List users.
#[utoipa::path(tag = "access", params(UserQuery),
    responses((status = 200, body = UserPage), Errors),
    security(("bearer" = ["access.read"])))]
#[get("/v1/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    query: web::Query<UserQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let users: Vec<User> = state
        .access
        .users()
        .into_iter()
        .filter(|u| q.role.as_deref().is_none_or(|r| u.roles.contains(r)))
        .filter(|u| q.disabled.is_none_or(|d| u.disabled == d))
        .collect();
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (items, next_cursor) = page(users, |u| u.name.to_string(), &paging);
    Ok(HttpResponse::Ok().json(UserPage {
        items: items.into_iter().map(UserView::from).collect(),
        next_cursor,
    }))
}

/// Create a user.
#[utoipa::path(tag = "access", request_body = CreateUser,
    responses((status = 201, body = UserView), Errors),
    security(("bearer" = ["access.write"])))]
#[post("/v1/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let access = state.access.clone();
    let user = blocking(move || {
        Ok(access.create_user(&caller.attribution(), &body.name, roles(body.roles))?)
    })
    .await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// One user.
#[utoipa::path(tag = "access", params(("name" = String, Path, description = "User name")),
    responses((status = 200, body = UserView), Errors),
    security(("bearer" = ["access.read"])))]
#[get("/v1/users/{name}")]
pub async fn get_user(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = state.access.user(&name).ok_or_else(|| {
        ApiError::not_found(
            "access.unknown_user",
            format!("no user {:?}", name.as_str()),
        )
    })?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// Change a user's roles or disable them.
#[utoipa::path(tag = "access", params(("name" = String, Path, description = "User name")),
    request_body = UpdateUser,
    responses((status = 200, body = UserView), Errors),
    security(("bearer" = ["access.write"])))]
#[patch("/v1/users/{name}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
    body: Body<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let access = state.access.clone();
    let user = blocking(move || {
        Ok(access.update_user(
            &caller.attribution(),
            &name,
            body.roles.map(roles),
            body.disabled,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// A user's tokens (never their secrets).
#[utoipa::path(tag = "access", params(("name" = String, Path, description = "User name"), TokenQuery),
    responses((status = 200, body = TokenPage), Errors),
    security(("bearer" = ["access.read"])))]
#[get("/v1/users/{name}/tokens")]
pub async fn list_tokens(
    state: web::Data<AppState>,
    name: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    if state.access.user(&name).is_none() {
        return Err(ApiError::not_found(
            "access.unknown_user",
            format!("no user {:?}", name.as_str()),
        ));
    }
    let q = query.into_inner();
    let now = jiff::Timestamp::now();
    let tokens: Vec<ApiToken> = state
        .access
        .tokens(Some(&name))
        .into_iter()
        .filter(|t| q.active.is_none_or(|a| t.usable_at(now) == a))
        .collect();
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (items, next_cursor) = page(tokens, |t| t.id.to_string(), &paging);
    Ok(HttpResponse::Ok().json(TokenPage {
        items: items.into_iter().map(TokenView::from).collect(),
        next_cursor,
    }))
}

/// Issue a token for a user; the secret is in this answer only.
#[utoipa::path(tag = "access", params(("name" = String, Path, description = "User name")),
    request_body = CreateToken,
    responses((status = 201, body = NewToken), Errors),
    security(("bearer" = ["access.write"])))]
#[post("/v1/users/{name}/tokens")]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
    body: Body<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let access = state.access.clone();
    let ttl_days = state.token_ttl_days_default;
    let (token, secret) = blocking(move || {
        let by = caller.attribution();
        let expires_at = match (body.expires_at, ttl_days) {
            (Some(e), _) => Some(e),
            (None, Some(days)) => Some(
                by.at
                    .checked_add(jiff::SignedDuration::from_hours(i64::from(days) * 24))
                    .map_err(|e| ApiError::unprocessable("access.bad_expiry", e.to_string()))?,
            ),
            (None, None) => None,
        };
        Ok(access.create_token(&by, &name, &body.label, expires_at)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(NewToken {
        token: TokenView::from(token),
        secret,
    }))
}

/// Revoke a token: it stops working with the next request.
#[utoipa::path(tag = "access", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenView), Errors),
    security(("bearer" = ["access.write"])))]
#[delete("/v1/tokens/{id}")]
pub async fn revoke_token(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let access = state.access.clone();
    let token = blocking(move || Ok(access.revoke_token(&caller.attribution(), &id)?)).await?;
    Ok(HttpResponse::Ok().json(TokenView::from(token)))
}

/// Every role, built-in and custom.
#[utoipa::path(tag = "access", params(RoleQuery),
    responses((status = 200, body = RolePage), Errors),
    security(("bearer" = ["access.read"])))]
#[get("/v1/roles")]
pub async fn list_roles(
    state: web::Data<AppState>,
    query: web::Query<RoleQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let roles: Vec<Role> = state
        .access
        .roles()
        .into_iter()
        .filter(|r| q.builtin.is_none_or(|b| r.builtin == b))
        .filter(|r| {
            q.permission
                .as_deref()
                .is_none_or(|p| r.permissions.iter().any(|x| x.as_str() == p))
        })
        .collect();
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (items, next_cursor) = page(roles, |r| r.name.to_string(), &paging);
    Ok(HttpResponse::Ok().json(RolePage {
        items: items.into_iter().map(RoleView::from).collect(),
        next_cursor,
    }))
}

/// Create or replace a custom role.
#[utoipa::path(tag = "access", params(("name" = String, Path, description = "Role name")),
    request_body = PutRole,
    responses((status = 200, body = RoleView), (status = 201, body = RoleView), Errors),
    security(("bearer" = ["access.write"])))]
#[put("/v1/roles/{name}")]
pub async fn put_role(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
    body: Body<PutRole>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let access = state.access.clone();
    let (role, created) = blocking(move || {
        Ok(access.put_role(
            &caller.attribution(),
            &name,
            body.description,
            body.permissions,
        )?)
    })
    .await?;
    let mut answer = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(RoleView::from(role)))
}

/// Delete a custom role that no user holds.
#[utoipa::path(tag = "access", params(("name" = String, Path, description = "Role name")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["access.write"])))]
#[delete("/v1/roles/{name}")]
pub async fn delete_role(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let access = state.access.clone();
    blocking(move || Ok(access.delete_role(&caller.attribution(), &name)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every permission a role can grant.
#[utoipa::path(tag = "access",
    responses((status = 200, body = PermissionList), Errors),
    security(("bearer" = ["access.read"])))]
#[get("/v1/permissions")]
pub async fn list_permissions() -> HttpResponse {
    HttpResponse::Ok().json(PermissionList {
        items: Permission::ALL
            .iter()
            .map(|p| PermissionView {
                name: p.as_str().to_string(),
                description: p.description().to_string(),
            })
            .collect(),
    })
}
