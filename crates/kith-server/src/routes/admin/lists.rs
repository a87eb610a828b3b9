//! Saved lists (segments) with their exact counts.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody};
use crate::state::AppState;
use crate::views::{self, ContactList};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use kith_core::filter::ListFilter;
use kith_core::{ListId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lists", get(lists).post(create_list))
        .route(
            "/lists/{id}",
            get(get_list).patch(update_list).delete(delete_list),
        )
}

#[derive(Serialize, ToSchema)]
pub struct ListList {
    pub items: Vec<ContactList>,
}

/// Every list with its exact count: the built-ins (all, leads, customers), then custom lists.
#[utoipa::path(get, path = "/api/v1/lists", tag = "lists",
    responses((status = 200, body = ListList)), security(("bearer" = [])))]
async fn lists(State(state): State<AppState>, admin: Admin) -> ApiResult<Json<ListList>> {
    Ok(Json(ListList {
        items: views::all(&admin.org(&state).lists().await?),
    }))
}

/// One list with its exact count.
#[utoipa::path(get, path = "/api/v1/lists/{id}", tag = "lists",
    params(("id" = String, Path)),
    responses((status = 200, body = ContactList), (status = 404)), security(("bearer" = [])))]
async fn get_list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ListId>,
) -> ApiResult<Json<ContactList>> {
    let list = admin
        .org(&state)
        .list(&id)
        .await
        .map_err(ApiError::not_found_as("list"))?;
    Ok(Json(ContactList::from(&list)))
}

/// A new list.
#[derive(Deserialize, ToSchema)]
pub struct ListRequest {
    /// 1 to 255 characters after trimming.
    // Optional to serde so a missing name answers 422 naming `name`, as a wrong one does.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// Omitted or `null`: every contact.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::filter_schema)]
    pub filter: Option<Value>,
}

/// A list edit: each given field replaces the list's.
#[derive(Deserialize, ToSchema)]
pub struct ListPatchRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::filter_schema)]
    pub filter: Option<Value>,
}

/// A list's filter as `ListFilter::parse` reads it (422 naming the field at fault).
fn parse_filter(filter: Option<&Value>) -> ApiResult<Option<ListFilter>> {
    Ok(filter.map(ListFilter::parse).transpose()?)
}

/// Save a segment.
#[utoipa::path(post, path = "/api/v1/lists", tag = "lists", request_body = ListRequest,
    responses((status = 201, body = ContactList), (status = 422, description = "invalid filter, naming the field")),
    security(("bearer" = [])))]
async fn create_list(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<ListRequest>,
) -> ApiResult<impl IntoResponse> {
    let name = body
        .name
        .ok_or_else(|| ValidationError::new("name", "is required (a string)"))?;
    // No filter (or `null`) is every contact.
    let filter = parse_filter(body.filter.as_ref())?.unwrap_or_default();
    let list = admin.org(&state).create_list(&name, &filter).await?;
    Ok((StatusCode::CREATED, Json(ContactList::from(&list))))
}

/// Rename or re-filter a custom list. Built-ins answer 409 `builtin_list`.
#[utoipa::path(patch, path = "/api/v1/lists/{id}", tag = "lists",
    params(("id" = String, Path)), request_body = ListPatchRequest,
    responses((status = 200, body = ContactList), (status = 404), (status = 409, description = "`builtin_list`"), (status = 422)),
    security(("bearer" = [])))]
async fn update_list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ListId>,
    JsonBody(body): JsonBody<ListPatchRequest>,
) -> ApiResult<Json<ContactList>> {
    let filter = parse_filter(body.filter.as_ref())?;
    let list = admin
        .org(&state)
        .update_list(&id, body.name.as_deref(), filter.as_ref())
        .await
        .map_err(ApiError::not_found_as("list"))?;
    Ok(Json(ContactList::from(&list)))
}

/// A deleted list: `{"id", "deleted": true}`.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// Delete a custom list. Built-ins answer 409 `builtin_list`.
#[utoipa::path(delete, path = "/api/v1/lists/{id}", tag = "lists",
    params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404), (status = 409, description = "`builtin_list`")),
    security(("bearer" = [])))]
async fn delete_list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ListId>,
) -> ApiResult<Json<Deleted>> {
    admin
        .org(&state)
        .delete_list(&id)
        .await
        .map_err(ApiError::not_found_as("list"))?;
    Ok(Json(Deleted {
        id: id.into_string(),
        deleted: true,
    }))
}
