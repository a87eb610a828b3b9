//! Websites: where the widget runs, with their widget keys.

use crate::error::ApiResult;
use crate::extract::{Admin, JsonBody};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use kith_core::ValidationError;
use kith_store::WebsiteView;
use serde::Serialize;
use serde_json::Value;
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
    let items = state.store.websites(&admin.org_id).await?;
    Ok(Json(WebsiteList {
        items: items.iter().map(WebsiteView::from).collect(),
    }))
}

/// A new website (a schema only: the handler reads the JSON).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateWebsiteRequest {
    /// 1 to 255 characters after trimming.
    #[schema(min_length = 1, max_length = 255)]
    name: String,
    /// Default true.
    identity_verification: Option<bool>,
    /// Origins allowed to call the widget API, e.g. `https://example.com`; empty: any.
    allowed_origins: Option<Vec<String>>,
}

/// Add a website.
#[utoipa::path(post, path = "/api/v1/websites", tag = "websites",
    request_body = CreateWebsiteRequest,
    responses((status = 201, body = WebsiteView), (status = 422)),
    security(("bearer" = [])))]
async fn create_website(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody,
) -> ApiResult<impl IntoResponse> {
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(ValidationError::new("name", "is required (a string)").into()),
    };
    let verification = match body.get("identity_verification") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(
                ValidationError::new("identity_verification", "must be true or false").into(),
            )
        }
    };
    let origins = match body.get("allowed_origins") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.trim().trim_end_matches('/').to_string())
                    .filter(|s| s == "*" || s.starts_with("http://") || s.starts_with("https://"))
                    .ok_or_else(|| {
                        ValidationError::new(
                            "allowed_origins",
                            "each must be an origin like https://example.com",
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(
                ValidationError::new("allowed_origins", "must be an array of origins").into(),
            )
        }
    };
    let w = state
        .store
        .create_website(&admin.org_id, &name, verification, &origins)
        .await?;
    Ok((StatusCode::CREATED, Json(WebsiteView::from(&w))))
}
