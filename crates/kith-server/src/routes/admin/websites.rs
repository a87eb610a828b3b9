//! Websites: where the widget runs, with their widget keys, identity verification mode and
//! identity secrets (rotation), plus the organization's audit log of those settings.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody, QueryMap};
use crate::routes::limit_param;
use crate::state::AppState;
use crate::views::{AuditEntryView, WebsiteView};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use kith_core::verify::VerificationMode;
use kith_core::{ValidationError, WebsiteId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/websites", get(websites).post(create_website))
        .route("/websites/{id}", axum::routing::patch(update_website))
        .route("/websites/{id}/rotate-secret", post(rotate_secret))
        .route(
            "/websites/{id}/retire-previous-secret",
            post(retire_previous_secret),
        )
        .route("/audit", get(audit))
}

/// How a website verifies identify calls (schema only; parsed by `VerificationMode::parse`).
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum IdentityVerificationMode {
    /// Every identify counts as verified.
    Off,
    /// A `user_hash` or an `identity_token` verifies (the default).
    HmacOrJwt,
    /// Only a `user_hash` verifies.
    Hmac,
    /// Only an `identity_token` verifies; a bare `user_hash` is refused.
    JwtOnly,
}

#[derive(Serialize, ToSchema)]
pub struct WebsiteList {
    pub items: Vec<WebsiteView>,
}

/// The organization's websites, with their widget keys.
#[utoipa::path(get, path = "/api/v1/websites", tag = "websites",
    responses((status = 200, body = WebsiteList)),
    security(("bearer" = [])))]
async fn websites(State(state): State<AppState>, admin: Admin) -> ApiResult<Json<WebsiteList>> {
    let items = admin.org(&state).websites().await?;
    Ok(Json(WebsiteList {
        items: items.iter().map(WebsiteView::from).collect(),
    }))
}

/// A new website.
#[derive(Deserialize, ToSchema)]
pub struct CreateWebsiteRequest {
    /// 1 to 255 characters after trimming.
    // Optional to serde so a missing name answers 422 naming `name`, as a wrong one does.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// Default true. `false` is `identity_verification_mode: off`, `true` the default mode.
    #[serde(default)]
    pub identity_verification: Option<bool>,
    /// `off`, `hmac-or-jwt` (default), `hmac` or `jwt-only`; wins over `identity_verification`.
    #[serde(default)]
    #[schema(value_type = Option<IdentityVerificationMode>)]
    pub identity_verification_mode: Option<String>,
    /// Origins allowed to call the widget API, e.g. `https://example.com`; empty: any.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
}

fn mode_param(
    mode: Option<&str>,
    on: Option<bool>,
) -> Result<Option<VerificationMode>, ValidationError> {
    match (mode, on) {
        (Some(m), _) => VerificationMode::parse(m).map(Some).ok_or_else(|| {
            ValidationError::new(
                "identity_verification_mode",
                "must be one of off, hmac-or-jwt, hmac, jwt-only",
            )
        }),
        (None, Some(true)) => Ok(Some(VerificationMode::HmacOrJwt)),
        (None, Some(false)) => Ok(Some(VerificationMode::Off)),
        (None, None) => Ok(None),
    }
}

fn origins_param(origins: &[String]) -> Result<Vec<String>, ValidationError> {
    origins
        .iter()
        .map(|s| {
            Some(s.trim().trim_end_matches('/').to_string())
                .filter(|s| s == "*" || s.starts_with("http://") || s.starts_with("https://"))
                .ok_or_else(|| {
                    ValidationError::new(
                        "allowed_origins",
                        "each must be an origin like https://example.com",
                    )
                })
        })
        .collect()
}

/// Add a website.
#[utoipa::path(post, path = "/api/v1/websites", tag = "websites",
    request_body = CreateWebsiteRequest,
    responses((status = 201, body = WebsiteView), (status = 422)),
    security(("bearer" = [])))]
async fn create_website(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<CreateWebsiteRequest>,
) -> ApiResult<impl IntoResponse> {
    let name = body
        .name
        .ok_or_else(|| ValidationError::new("name", "is required (a string)"))?;
    let mode = mode_param(
        body.identity_verification_mode.as_deref(),
        body.identity_verification,
    )?
    .unwrap_or_default();
    let origins = origins_param(&body.allowed_origins.unwrap_or_default())?;
    let w = admin
        .org(&state)
        .create_website(&name, mode, &origins)
        .await?;
    Ok((StatusCode::CREATED, Json(WebsiteView::from(&w))))
}

/// Changes to a website; absent fields keep their value.
#[derive(Deserialize, ToSchema)]
pub struct WebsitePatchRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// `false` is mode `off`, `true` mode `hmac-or-jwt`.
    #[serde(default)]
    pub identity_verification: Option<bool>,
    /// `off`, `hmac-or-jwt`, `hmac` or `jwt-only`; wins over `identity_verification`. A
    /// change is written to the audit log.
    #[serde(default)]
    #[schema(value_type = Option<IdentityVerificationMode>)]
    pub identity_verification_mode: Option<String>,
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
}

/// Change a website's name, identity verification mode or allowed origins.
#[utoipa::path(patch, path = "/api/v1/websites/{id}", tag = "websites",
    params(("id" = String, Path)), request_body = WebsitePatchRequest,
    responses((status = 200, body = WebsiteView), (status = 404), (status = 422)),
    security(("bearer" = [])))]
async fn update_website(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<WebsiteId>,
    JsonBody(body): JsonBody<WebsitePatchRequest>,
) -> ApiResult<Json<WebsiteView>> {
    let mode = mode_param(
        body.identity_verification_mode.as_deref(),
        body.identity_verification,
    )?;
    let origins = body
        .allowed_origins
        .as_deref()
        .map(origins_param)
        .transpose()?;
    let w = admin
        .org(&state)
        .update_website(
            &id,
            body.name.as_deref(),
            mode,
            origins.as_deref(),
            &admin.author_id(),
        )
        .await
        .map_err(ApiError::not_found_as("website"))?;
    Ok(Json(WebsiteView::from(&w)))
}

/// Make a new identity secret current; the old one keeps verifying `user_hash`es and identity
/// tokens until `retire-previous-secret`. The answer shows the new secret; the rotation is
/// written to the audit log (without secrets).
#[utoipa::path(post, path = "/api/v1/websites/{id}/rotate-secret", tag = "websites",
    params(("id" = String, Path)),
    responses((status = 200, body = WebsiteView), (status = 404)),
    security(("bearer" = [])))]
async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<WebsiteId>,
) -> ApiResult<Json<WebsiteView>> {
    let w = admin
        .org(&state)
        .rotate_identity_secret(&id, &admin.author_id())
        .await
        .map_err(ApiError::not_found_as("website"))?;
    tracing::info!(website = %w.id, "identity secret rotated");
    Ok(Json(WebsiteView::from(&w)))
}

/// End the previous identity secret: only the current one verifies from now on.
#[utoipa::path(post, path = "/api/v1/websites/{id}/retire-previous-secret", tag = "websites",
    params(("id" = String, Path)),
    responses((status = 200, body = WebsiteView), (status = 404)),
    security(("bearer" = [])))]
async fn retire_previous_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<WebsiteId>,
) -> ApiResult<Json<WebsiteView>> {
    let w = admin
        .org(&state)
        .retire_previous_secret(&id, &admin.author_id())
        .await
        .map_err(ApiError::not_found_as("website"))?;
    Ok(Json(WebsiteView::from(&w)))
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The organization's audit log (secret rotations and verification mode changes), newest
/// first. Read-only.
#[utoipa::path(get, path = "/api/v1/audit", tag = "websites",
    params(("cursor" = Option<String>, Query, description = "from next_cursor"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50")),
    responses((status = 200, body = AuditPage), (status = 400, description = "undecodable cursor"),
              (status = 422, description = "invalid limit")),
    security(("bearer" = [])))]
async fn audit(
    State(state): State<AppState>,
    admin: Admin,
    q: QueryMap,
) -> ApiResult<Json<AuditPage>> {
    let limit = limit_param(&q)?;
    let page = admin.org(&state).audit_log(q.one("cursor"), limit).await?;
    Ok(Json(AuditPage {
        items: page.items.iter().map(AuditEntryView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
