//! The catalogue through the API: drafts (whole TOML documents, single items, prefix tables as
//! CSV uploads), validation, publishing with an effective date, and published versions, which
//! stay readable forever.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_domain::admin::{CatalogueDraft, CatalogueVersion, PrefixTableInfo, TableOwner};
use tollgate_domain::catalogue::Problems;
use tollgate_domain::catalogue::document;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{Body, read_limited};
use super::error::{ApiError, Errors};
use super::page::{PageQuery, page};
use super::{AppState, blocking};
use crate::catalogue_admin::CatalogueError;

impl From<CatalogueError> for ApiError {
    fn from(e: CatalogueError) -> ApiError {
        match e {
            CatalogueError::Store(s) => ApiError::storage(&s),
            CatalogueError::NotFound { code, message } => ApiError::not_found(code, message),
            CatalogueError::Document(d) => ApiError::unprocessable(d.code(), d.to_string()),
            CatalogueError::Invalid(problems) => ApiError::unprocessable(
                "catalogue.invalid",
                format!("the catalogue has {} problem(s)", problems.0.len()),
            )
            .with_details(serde_json::json!({ "problems": problem_list(&problems) })),
            CatalogueError::Refused { code, message } => ApiError::unprocessable(code, message),
            e @ CatalogueError::Stale { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "catalogue.stale_revision",
                e.to_string(),
            ),
        }
    }
}

/// One validation problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    /// Where: the draft or version and, for prefix tables, the table.
    pub file: String,
    /// Line in the generated TOML or the CSV, when known.
    pub line: Option<usize>,
    /// Key path, e.g. `plans[2].rules[0].price`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn problem_list(problems: &Problems) -> Vec<ProblemView> {
    problems
        .0
        .iter()
        .map(|p| ProblemView {
            file: p.file.clone(),
            line: p.line,
            key: p.key.clone(),
            message: p.message.clone(),
        })
        .collect()
}

/// Size and checksum of a stored prefix table.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableInfo {
    /// Data rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

impl From<PrefixTableInfo> for TableInfo {
    fn from(i: PrefixTableInfo) -> TableInfo {
        TableInfo {
            rows: i.rows,
            bytes: i.bytes,
            sha256: i.sha256,
        }
    }
}

/// A published version, without its document.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionMeta {
    /// Version number.
    pub version: u64,
    /// From when it prices usage (by record start time).
    pub effective_from: String,
    /// When it was published.
    pub published_at: String,
    /// Who published it.
    pub published_by: String,
    /// The draft it came from.
    pub draft: String,
    /// Notes.
    pub notes: String,
    /// Prefix tables.
    #[schema(value_type = Object)]
    pub prefix_tables: std::collections::BTreeMap<String, PrefixTableInfo>,
}

impl From<&CatalogueVersion> for VersionMeta {
    fn from(v: &CatalogueVersion) -> VersionMeta {
        VersionMeta {
            version: v.version,
            effective_from: v.effective_from.to_string(),
            published_at: v.published_at.to_string(),
            published_by: v.published_by.to_string(),
            draft: v.draft.to_string(),
            notes: v.notes.clone(),
            prefix_tables: v.prefix_tables.clone(),
        }
    }
}

/// A published version with its document.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// The version.
    #[serde(flatten)]
    pub meta: VersionMeta,
    /// The catalogue document (the TOML tables as JSON).
    #[schema(value_type = Object)]
    pub document: Value,
}

/// A page of versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionPage {
    /// Versions, oldest first.
    pub items: Vec<VersionMeta>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// A draft.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    /// Id.
    pub id: String,
    /// The version it was copied from.
    pub based_on: Option<u64>,
    /// Revision (bumped by every change; publish may name it).
    pub revision: u64,
    /// Created.
    pub created_at: String,
    /// Creator.
    pub created_by: String,
    /// Last change.
    pub updated_at: String,
    /// Prefix tables.
    #[schema(value_type = Object)]
    pub prefix_tables: std::collections::BTreeMap<String, PrefixTableInfo>,
    /// The document (absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub document: Option<Value>,
}

fn draft_view(d: CatalogueDraft, with_document: bool) -> DraftView {
    DraftView {
        id: d.id.to_string(),
        based_on: d.based_on,
        revision: d.revision,
        created_at: d.created_at.to_string(),
        created_by: d.created_by.to_string(),
        updated_at: d.updated_at.to_string(),
        prefix_tables: d.prefix_tables,
        document: with_document.then_some(d.document),
    }
}

/// A page of drafts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftPage {
    /// Drafts, by id.
    pub items: Vec<DraftView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// Body of a draft creation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDraft {
    /// Copy this version (document and prefix tables).
    #[serde(default)]
    pub from_version: Option<u64>,
    /// Or start from this catalogue TOML document (prefix tables uploaded separately).
    #[serde(default)]
    pub document: Option<String>,
}

/// The outcome of a validation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Validation {
    /// Whether the draft would publish.
    pub valid: bool,
    /// Every problem.
    pub problems: Vec<ProblemView>,
}

/// Body of a publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// From when the version prices usage (RFC 3339; not in the past unless `backdate`).
    #[schema(value_type = String, format = DateTime)]
    pub effective_from: jiff::Timestamp,
    /// The draft revision validated by the caller (409 if the draft changed since).
    #[serde(default)]
    pub revision: Option<u64>,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// A correction in force from a past date (e.g. a missing rate that put records in
    /// suspense): records rated from now on, recycled or rerated use it for their time;
    /// records already rated keep their charge until they are rerated. Requires `notes` (the
    /// reason, kept in the version and the audit trail).
    #[serde(default)]
    pub backdate: bool,
}

/// Items of a section.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    /// Items, in document order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// Filters and paging of the version list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    /// Only versions published by this user.
    pub published_by: Option<String>,
    /// Only versions effective at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub effective_from: Option<jiff::Timestamp>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters and paging of the draft list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DraftQuery {
    /// Only drafts created by this user.
    pub created_by: Option<String>,
    /// Only drafts copied from this version.
    pub based_on: Option<u64>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// When to look up the version in force.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InForceQuery {
    /// The instant (RFC 3339); default now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub at: Option<jiff::Timestamp>,
}

/// The version in force at an instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct InForce {
    /// The instant asked about.
    pub at: String,
    /// The version, null before the first.
    pub version: Option<u64>,
}

fn csv_answer(bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(bytes)
}

/// Published versions, oldest first.
#[utoipa::path(tag = "catalogue", params(VersionQuery),
    responses((status = 200, body = VersionPage), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/versions")]
pub async fn list_versions(
    state: web::Data<AppState>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let admin = state.catalogue.clone();
    let versions: Vec<CatalogueVersion> = blocking(move || Ok(admin.versions()?))
        .await?
        .into_iter()
        .filter(|v| {
            q.published_by
                .as_deref()
                .is_none_or(|p| v.published_by == p)
        })
        .filter(|v| q.effective_from.is_none_or(|f| v.effective_from >= f))
        .collect();
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (items, next_cursor) = page(versions, |v| format!("{:020}", v.version), &paging);
    Ok(HttpResponse::Ok().json(VersionPage {
        items: items.iter().map(VersionMeta::from).collect(),
        next_cursor,
    }))
}

/// One published version with its document.
#[utoipa::path(tag = "catalogue", params(("version" = u64, Path, description = "Version number")),
    responses((status = 200, body = VersionView), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/versions/{version}")]
pub async fn get_version(
    state: web::Data<AppState>,
    version: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let admin = state.catalogue.clone();
    let v = blocking(move || Ok(admin.version(*version)?)).await?;
    Ok(HttpResponse::Ok().json(VersionView {
        meta: VersionMeta::from(&v),
        document: v.document,
    }))
}

/// A prefix table of a published version, as CSV.
#[utoipa::path(tag = "catalogue",
    params(("version" = u64, Path, description = "Version number"), ("name" = String, Path, description = "Table name")),
    responses((status = 200, description = "The table", content_type = "text/csv", body = String), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/versions/{version}/prefix-tables/{name}")]
pub async fn get_version_table(
    state: web::Data<AppState>,
    path: web::Path<(u64, String)>,
) -> Result<HttpResponse, ApiError> {
    let admin = state.catalogue.clone();
    let (version, name) = path.into_inner();
    let csv =
        blocking(move || Ok(admin.prefix_table(&TableOwner::Version(version), &name)?)).await?;
    Ok(csv_answer(csv))
}

/// The version in force at an instant.
#[utoipa::path(tag = "catalogue", params(InForceQuery),
    responses((status = 200, body = InForce), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/in-force")]
pub async fn in_force(
    state: web::Data<AppState>,
    query: web::Query<InForceQuery>,
) -> Result<HttpResponse, ApiError> {
    let at = query.at.unwrap_or_else(jiff::Timestamp::now);
    Ok(HttpResponse::Ok().json(InForce {
        at: at.to_string(),
        version: state.catalogue.in_force(at),
    }))
}

/// Drafts.
#[utoipa::path(tag = "catalogue", params(DraftQuery),
    responses((status = 200, body = DraftPage), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/drafts")]
pub async fn list_drafts(
    state: web::Data<AppState>,
    query: web::Query<DraftQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let admin = state.catalogue.clone();
    let drafts: Vec<CatalogueDraft> = blocking(move || Ok(admin.drafts()?))
        .await?
        .into_iter()
        .filter(|d| q.created_by.as_deref().is_none_or(|c| d.created_by == c))
        .filter(|d| q.based_on.is_none_or(|b| d.based_on == Some(b)))
        .collect();
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (items, next_cursor) = page(drafts, |d| d.id.to_string(), &paging);
    Ok(HttpResponse::Ok().json(DraftPage {
        items: items.into_iter().map(|d| draft_view(d, false)).collect(),
        next_cursor,
    }))
}

/// Create a draft: a copy of a version, a TOML document, or empty.
#[utoipa::path(tag = "catalogue", request_body = CreateDraft,
    responses((status = 201, body = DraftView), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[post("/v1/catalogue/drafts")]
pub async fn create_draft(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreateDraft>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let admin = state.catalogue.clone();
    let draft = blocking(move || {
        Ok(admin.create_draft(
            &caller.attribution(),
            body.from_version,
            body.document.as_deref(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Created().json(draft_view(draft, true)))
}

/// One draft with its document.
#[utoipa::path(tag = "catalogue", params(("draft" = String, Path, description = "Draft id")),
    responses((status = 200, body = DraftView), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/drafts/{draft}")]
pub async fn get_draft(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = state.catalogue.clone();
    let draft = blocking(move || Ok(admin.draft(&id)?)).await?;
    Ok(HttpResponse::Ok().json(draft_view(draft, true)))
}

/// Delete a draft and its prefix tables.
#[utoipa::path(tag = "catalogue", params(("draft" = String, Path, description = "Draft id")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[delete("/v1/catalogue/drafts/{draft}")]
pub async fn delete_draft(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = state.catalogue.clone();
    blocking(move || Ok(admin.delete_draft(&caller.attribution(), &id)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replace a draft's whole document with a catalogue TOML file.
#[utoipa::path(tag = "catalogue", params(("draft" = String, Path, description = "Draft id")),
    request_body(content = String, content_type = "text/plain", description = "A catalogue TOML document (any text content type is accepted)"),
    responses((status = 200, body = DraftView), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[put("/v1/catalogue/drafts/{draft}/document")]
pub async fn put_document(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = read_limited(body, state.upload_limit_bytes).await?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("request.malformed", "the document is not UTF-8"))?;
    let admin = state.catalogue.clone();
    let draft = blocking(move || {
        let new_doc = document::from_toml(&text).map_err(CatalogueError::Invalid)?;
        Ok(admin.edit_draft(
            &caller.attribution(),
            &id,
            "catalogue.draft.put_document",
            "document",
            |doc| {
                let changes = crate::catalogue_admin::diff_documents(Some(doc), &new_doc);
                *doc = new_doc;
                Ok((None, Some(serde_json::json!({ "changes": changes }))))
            },
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(draft_view(draft, true)))
}

/// Replace a draft's header (the `[catalogue]` table: name, currency, timezone, rounding).
#[utoipa::path(tag = "catalogue", params(("draft" = String, Path, description = "Draft id")),
    request_body(content = Object, description = "The [catalogue] table as JSON"),
    responses((status = 200, body = DraftView), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[put("/v1/catalogue/drafts/{draft}/header")]
pub async fn put_header(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let header = body.into_inner();
    let admin = state.catalogue.clone();
    let draft = blocking(move || {
        Ok(admin.edit_draft(
            &caller.attribution(),
            &id,
            "catalogue.draft.put_header",
            "header",
            |doc| {
                let before = document::get_header(doc)?;
                document::put_header(doc, header.clone())?;
                Ok((before, Some(header)))
            },
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(draft_view(draft, true)))
}

/// Items of one section of a draft (`services`, `zones`, `destinations`, `schedules`, `plans`,
/// `products`, `bundles`, ...).
#[utoipa::path(tag = "catalogue",
    params(("draft" = String, Path, description = "Draft id"), ("section" = String, Path, description = "Section")),
    responses((status = 200, body = ItemList), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/drafts/{draft}/items/{section}")]
pub async fn list_items(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, section) = path.into_inner();
    let admin = state.catalogue.clone();
    let draft = blocking(move || Ok(admin.draft(&id)?)).await?;
    let items = document::list_items(&draft.document, &section).map_err(CatalogueError::from)?;
    Ok(HttpResponse::Ok().json(ItemList { items }))
}

/// One item of a draft.
#[utoipa::path(tag = "catalogue",
    params(("draft" = String, Path, description = "Draft id"), ("section" = String, Path, description = "Section"), ("id" = String, Path, description = "Item id")),
    responses((status = 200, description = "The item", body = Object), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/drafts/{draft}/items/{section}/{id}")]
pub async fn get_item(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (draft_id, section, id) = path.into_inner();
    let admin = state.catalogue.clone();
    let draft = blocking(move || Ok(admin.draft(&draft_id)?)).await?;
    let item = document::get_item(&draft.document, &section, &id)
        .map_err(CatalogueError::from)?
        .ok_or_else(|| {
            ApiError::not_found(
                "catalogue.unknown_item",
                format!("no {section} item {id:?}"),
            )
        })?;
    Ok(HttpResponse::Ok().json(item))
}

/// Create or replace one item of a draft (a plan, a product, a schedule, ...). Checked as a
/// whole on validate and publish.
#[utoipa::path(tag = "catalogue",
    params(("draft" = String, Path, description = "Draft id"), ("section" = String, Path, description = "Section"), ("id" = String, Path, description = "Item id")),
    request_body(content = Object, description = "The item as JSON (the keys of the TOML file)"),
    responses((status = 200, body = DraftView), (status = 201, body = DraftView), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[put("/v1/catalogue/drafts/{draft}/items/{section}/{id}")]
pub async fn put_item(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: Body<Value>,
) -> Result<HttpResponse, ApiError> {
    let (draft_id, section, id) = path.into_inner();
    let item = body.into_inner();
    let admin = state.catalogue.clone();
    let (draft, created) = blocking(move || {
        let mut created = false;
        let target = format!("items/{section}/{id}");
        let draft = admin.edit_draft(
            &caller.attribution(),
            &draft_id,
            "catalogue.draft.put_item",
            &target,
            |doc| {
                let before = document::get_item(doc, &section, &id)?;
                created = document::put_item(doc, &section, &id, item)?;
                let after = document::get_item(doc, &section, &id)?;
                Ok((before, after))
            },
        )?;
        Ok((draft, created))
    })
    .await?;
    let mut answer = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(draft_view(draft, false)))
}

/// Delete one item of a draft.
#[utoipa::path(tag = "catalogue",
    params(("draft" = String, Path, description = "Draft id"), ("section" = String, Path, description = "Section"), ("id" = String, Path, description = "Item id")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[delete("/v1/catalogue/drafts/{draft}/items/{section}/{id}")]
pub async fn delete_item(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (draft_id, section, id) = path.into_inner();
    let admin = state.catalogue.clone();
    blocking(move || {
        let target = format!("items/{section}/{id}");
        admin.edit_draft(
            &caller.attribution(),
            &draft_id,
            "catalogue.draft.delete_item",
            &target,
            |doc| {
                let before = document::get_item(doc, &section, &id)?;
                if !document::delete_item(doc, &section, &id)? {
                    return Err(CatalogueError::NotFound {
                        code: "catalogue.unknown_item",
                        message: format!("no {section} item {id:?}"),
                    });
                }
                Ok((before, None))
            },
        )?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Upload (or replace) a prefix table of a draft: CSV `prefix,zone[,description]`, 100k+ rows.
/// Every row is checked; the limit is `http.upload_limit_bytes`.
#[utoipa::path(tag = "catalogue",
    params(("draft" = String, Path, description = "Draft id"), ("name" = String, Path, description = "Table name (what destinations' `file` names)")),
    request_body(content = String, content_type = "text/csv", description = "prefix,zone[,description]"),
    responses((status = 200, body = TableInfo), (status = 201, body = TableInfo), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[put("/v1/catalogue/drafts/{draft}/prefix-tables/{name}")]
pub async fn put_table(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (draft_id, name) = path.into_inner();
    let csv = read_limited(body, state.upload_limit_bytes).await?;
    let admin = state.catalogue.clone();
    let (info, created) =
        blocking(move || Ok(admin.put_table(&caller.attribution(), &draft_id, &name, csv)?))
            .await?;
    let mut answer = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(TableInfo::from(info)))
}

/// A prefix table of a draft, as CSV.
#[utoipa::path(tag = "catalogue",
    params(("draft" = String, Path, description = "Draft id"), ("name" = String, Path, description = "Table name")),
    responses((status = 200, description = "The table", content_type = "text/csv", body = String), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[get("/v1/catalogue/drafts/{draft}/prefix-tables/{name}")]
pub async fn get_table(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (draft_id, name) = path.into_inner();
    let admin = state.catalogue.clone();
    let csv = blocking(move || Ok(admin.prefix_table(&TableOwner::Draft(draft_id.into()), &name)?))
        .await?;
    Ok(csv_answer(csv))
}

/// Delete a prefix table of a draft.
#[utoipa::path(tag = "catalogue",
    params(("draft" = String, Path, description = "Draft id"), ("name" = String, Path, description = "Table name")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["catalogue.write"])))]
#[delete("/v1/catalogue/drafts/{draft}/prefix-tables/{name}")]
pub async fn delete_table(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (draft_id, name) = path.into_inner();
    let admin = state.catalogue.clone();
    blocking(move || Ok(admin.delete_table(&caller.attribution(), &draft_id, &name)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Validate a draft as a whole (the checks of `tollgate check-catalogue`).
#[utoipa::path(tag = "catalogue", params(("draft" = String, Path, description = "Draft id")),
    responses((status = 200, body = Validation), Errors),
    security(("bearer" = ["catalogue.read"])))]
#[post("/v1/catalogue/drafts/{draft}/validate")]
pub async fn validate(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = state.catalogue.clone();
    let result = blocking(move || Ok(admin.validate(&id)?)).await?;
    Ok(HttpResponse::Ok().json(match result {
        Ok(_) => Validation {
            valid: true,
            problems: Vec::new(),
        },
        Err(problems) => Validation {
            valid: false,
            problems: problem_list(&problems),
        },
    }))
}

/// Publish a draft as the next version, effective from a date: validated as a whole, stored
/// with its audit record, then swapped into running actors without a restart. Idempotent per
/// draft (a replay answers 200 with the version it became).
#[utoipa::path(tag = "catalogue", params(("draft" = String, Path, description = "Draft id")),
    request_body = Publish,
    responses((status = 201, body = VersionMeta), (status = 200, body = VersionMeta, description = "Already published"), Errors),
    security(("bearer" = ["catalogue.publish"])))]
#[post("/v1/catalogue/drafts/{draft}/publish")]
pub async fn publish(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Body<Publish>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let admin = state.catalogue.clone();
    let published = blocking(move || {
        Ok(admin.publish(
            &caller.attribution(),
            &id,
            body.effective_from,
            body.revision,
            body.notes,
            body.backdate,
        )?)
    })
    .await?;
    let mut answer = if published.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(VersionMeta::from(&published.version)))
}
