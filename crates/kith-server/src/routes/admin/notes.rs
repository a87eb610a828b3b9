//! Notes on a contact: add, list, edit, delete. Each note shows in the contact's timeline as a
//! `note` entry that follows its edits and goes with it when deleted.

use super::lists::Deleted;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody, QueryMap};
use crate::routes::limit_param;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use axum::{Json, Router};
use kith_core::contact::parse_message_body;
use kith_core::{ContactId, Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/{id}/notes", get(list_notes).post(add_note))
        .route(
            "/contacts/{id}/notes/{note_id}",
            patch(edit_note).delete(delete_note),
        )
}

/// Who wrote a note.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoteAuthorView {
    /// `admin` (the panel) or `api` (a bearer token).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The admin's email when the note was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoteView {
    pub id: String,
    pub body: String,
    pub author: NoteAuthorView,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&kith_store::Note> for NoteView {
    fn from(n: &kith_store::Note) -> Self {
        NoteView {
            id: n.id.clone(),
            body: n.body.clone(),
            author: NoteAuthorView {
                kind: n.author.kind.clone(),
                id: n.author.id.clone(),
                email: n.author.email.clone(),
            },
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NoteList {
    pub items: Vec<NoteView>,
    pub next_cursor: Option<String>,
}

/// A note's text: 1 to 10,000 characters after trimming.
#[derive(Deserialize, ToSchema)]
pub struct NoteRequest {
    // Optional to serde so a missing body answers 422 naming `body`, as an empty one does.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 10000)]
    pub body: Option<String>,
}

fn note_body(req: &NoteRequest) -> Result<String, ApiError> {
    match &req.body {
        Some(b) => Ok(parse_message_body(b)?),
        None => Err(ValidationError::new("body", "is required").into()),
    }
}

/// A contact's notes, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/notes", tag = "contacts",
    params(("id" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = NoteList), (status = 404)),
    security(("bearer" = [])))]
async fn list_notes(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
    q: QueryMap,
) -> ApiResult<Json<NoteList>> {
    let limit = limit_param(&q)?;
    let page = admin
        .org(&state)
        .notes(&id, q.one("cursor"), limit)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok(Json(NoteList {
        items: page.items.iter().map(NoteView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Add a note; it shows in the timeline as a `note` entry.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/notes", tag = "contacts",
    params(("id" = String, Path)), request_body = NoteRequest,
    responses((status = 201, body = NoteView), (status = 404),
              (status = 422, description = "`body` empty or longer than 10,000 characters")),
    security(("bearer" = [])))]
async fn add_note(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
    JsonBody(req): JsonBody<NoteRequest>,
) -> ApiResult<impl IntoResponse> {
    let body = note_body(&req)?;
    let note = admin
        .org(&state)
        .add_note(&id, &body, &admin.actor)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok((StatusCode::CREATED, Json(NoteView::from(&note))))
}

/// Edit a note's text; its timeline entry shows the new text.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}/notes/{note_id}", tag = "contacts",
    params(("id" = String, Path), ("note_id" = String, Path)), request_body = NoteRequest,
    responses((status = 200, body = NoteView), (status = 404), (status = 422)),
    security(("bearer" = [])))]
async fn edit_note(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, note_id)): Path<(ContactId, String)>,
    JsonBody(req): JsonBody<NoteRequest>,
) -> ApiResult<Json<NoteView>> {
    let body = note_body(&req)?;
    let note = admin
        .org(&state)
        .edit_note(&id, &note_id, &body)
        .await
        .map_err(ApiError::not_found_as("note"))?;
    Ok(Json(NoteView::from(&note)))
}

/// Delete a note; its timeline entry goes with it. Answers `{"id", "deleted": true}`.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/notes/{note_id}", tag = "contacts",
    params(("id" = String, Path), ("note_id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404)),
    security(("bearer" = [])))]
async fn delete_note(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, note_id)): Path<(ContactId, String)>,
) -> ApiResult<Json<Deleted>> {
    admin
        .org(&state)
        .delete_note(&id, &note_id)
        .await
        .map_err(ApiError::not_found_as("note"))?;
    Ok(Json(Deleted {
        id: note_id,
        deleted: true,
    }))
}
