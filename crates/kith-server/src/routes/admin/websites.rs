//! Websites: where the widget runs, with their widget keys.

use crate::error::ApiResult;
use crate::extract::{Admin, JsonBody};
use crate::state::AppState;
use crate::views::WebsiteView;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use kith_core::ValidationError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/websites", get(websites).post(create_website))
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
    /// Default true.
    #[serde(default)]
    pub identity_verification: Option<bool>,
    /// Origins allowed to call the widget API, e.g. `https://example.com`; empty: any.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
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
    let verification = body.identity_verification.unwrap_or(true);
    let origins = body
        .allowed_origins
        .unwrap_or_default()
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
        .collect::<Result<Vec<_>, _>>()?;
    let w = admin
        .org(&state)
        .create_website(&name, verification, &origins)
        .await?;
    Ok((StatusCode::CREATED, Json(WebsiteView::from(&w))))
}
