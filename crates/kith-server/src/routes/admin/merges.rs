//! Manual merges: an admin merges one contact into another it chose as the survivor, previews
//! that first (`dry_run`), and may undo it while neither contact changed since.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody};
use crate::state::AppState;
use crate::views::Contact;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use kith_core::{ContactId, Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/{id}/merge", post(merge_contact))
        .route("/merges/{id}", get(get_merge))
        .route("/merges/{id}/undo", post(undo_merge))
}

/// Merge `other_id` into the contact of the path (the survivor).
#[derive(Deserialize, ToSchema)]
pub struct MergeRequest {
    /// The contact absorbed. Optional to serde so a missing one answers 422 naming it.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    pub other_id: Option<String>,
    /// `true`: answer what the merge would do and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// One field of the merged contact and whose value it is.
#[derive(Serialize, ToSchema)]
pub struct FieldWinner {
    #[schema(value_type = Object)]
    pub value: Value,
    /// `survivor` or `other`.
    pub from: String,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
pub struct MergeMoves {
    pub visitors: i64,
    pub conversations: i64,
    pub timeline_entries: i64,
    pub notes: i64,
}

impl From<kith_store::MoveCounts> for MergeMoves {
    fn from(m: kith_store::MoveCounts) -> Self {
        MergeMoves {
            visitors: m.visitors,
            conversations: m.conversations,
            timeline_entries: m.timeline_entries,
            notes: m.notes,
        }
    }
}

/// What a merge does (dry run) or did. Both come from one plan, so they agree.
#[derive(Serialize, ToSchema)]
pub struct MergeResult {
    pub dry_run: bool,
    /// Set when the merge was done (not on a dry run): pass it to `/api/v1/merges/{id}/undo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_id: Option<String>,
    /// The survivor as it is (dry run: as it would be) after the merge. In a dry run,
    /// `updated_at` is the time of the preview.
    pub survivor: Contact,
    pub absorbed_id: String,
    /// Each field that holds a value after the merge (`user_id`, `email`, `name`, `phone`,
    /// `company`): its value and which contact it comes from.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Tags the survivor gains.
    pub tags_added: Vec<String>,
    /// Metadata keys the survivor gains.
    pub metadata_added: Vec<String>,
    /// The survivor was a lead and takes the other's user_id: it becomes a customer.
    pub promoted: bool,
    pub moves: MergeMoves,
}

impl MergeResult {
    fn from(o: &kith_store::MergeOutcome, dry_run: bool) -> Self {
        let fields = o
            .fields
            .iter()
            .map(|f| {
                (
                    f.field.to_string(),
                    serde_json::json!({"value": f.value, "from": f.from.as_str()}),
                )
            })
            .collect();
        MergeResult {
            dry_run,
            merge_id: o.merge_id.clone(),
            survivor: Contact::from(&o.survivor),
            absorbed_id: o.absorbed_id.to_string(),
            fields,
            tags_added: o.tags_added.clone(),
            metadata_added: o.metadata_added.clone(),
            promoted: o.promoted,
            moves: o.moves.into(),
        }
    }
}

/// Merge another contact into this one (the survivor): same rules as the automatic merge
/// (the survivor's values win, absent fields and missing metadata keys are filled, tags
/// united, stats summed; visitors, conversations, timeline and notes move; the absorbed id
/// answers 404 `merged`). Two contacts with different user ids are never merged.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/merge", tag = "contacts",
    params(("id" = String, Path, description = "the survivor")), request_body = MergeRequest,
    responses((status = 200, body = MergeResult),
              (status = 404, description = "either contact unknown (`not_found`) or merged (`merged`)"),
              (status = 409, description = "`user_id_conflict`: both have a user_id and they differ; nothing changed"),
              (status = 422, description = "`other_id` missing or the same contact")),
    security(("bearer" = [])))]
async fn merge_contact(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
    JsonBody(body): JsonBody<MergeRequest>,
) -> ApiResult<Json<MergeResult>> {
    let other = body
        .other_id
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ValidationError::new("other_id", "is required"))?;
    let outcome = admin
        .org(&state)
        .merge_contacts(&id, &ContactId::new(other), body.dry_run, &admin.actor)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok(Json(MergeResult::from(&outcome, body.dry_run)))
}

/// A manual merge as recorded.
#[derive(Serialize, ToSchema)]
pub struct MergeView {
    pub id: String,
    pub survivor_id: String,
    pub absorbed_id: String,
    /// `admin:<id>` or `api`.
    pub actor: String,
    #[schema(value_type = String, format = DateTime)]
    pub merged_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub undone_at: Option<Timestamp>,
    pub undone_by: Option<String>,
    pub moves: MergeMoves,
}

impl From<&kith_store::MergeRecord> for MergeView {
    fn from(r: &kith_store::MergeRecord) -> Self {
        MergeView {
            id: r.id.clone(),
            survivor_id: r.survivor_id.to_string(),
            absorbed_id: r.absorbed_id.to_string(),
            actor: r.actor.clone(),
            merged_at: r.merged_at,
            undone_at: r.undone_at,
            undone_by: r.undone_by.clone(),
            moves: r.moves.into(),
        }
    }
}

/// One manual merge (automatic identity merges keep no record and cannot be undone).
#[utoipa::path(get, path = "/api/v1/merges/{id}", tag = "contacts",
    params(("id" = String, Path)),
    responses((status = 200, body = MergeView), (status = 404)),
    security(("bearer" = [])))]
async fn get_merge(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<MergeView>> {
    let record = admin
        .org(&state)
        .merge_record(&id)
        .await
        .map_err(ApiError::not_found_as("merge"))?;
    Ok(Json(MergeView::from(&record)))
}

/// An undone merge and both contacts as they are again.
#[derive(Serialize, ToSchema)]
pub struct UndoResult {
    pub merge: MergeView,
    pub survivor: Contact,
    /// The absorbed contact, back as it was.
    pub restored: Contact,
}

/// Undo a manual merge: both contacts exactly as before it (fields, tags, metadata, stats,
/// times, visitors, conversations, timeline entries, notes), each timeline showing the
/// merge and its undo at its head. Only while neither contact changed since the merge.
#[utoipa::path(post, path = "/api/v1/merges/{id}/undo", tag = "contacts",
    params(("id" = String, Path)),
    responses((status = 200, body = UndoResult), (status = 404),
              (status = 409, description = "`merge_changed` with `changed` naming what changed since the merge (e.g. `survivor.fields`, `survivor.conversations`), or `already_undone`")),
    security(("bearer" = [])))]
async fn undo_merge(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<UndoResult>> {
    let undone = admin
        .org(&state)
        .undo_merge(&id, &admin.actor)
        .await
        .map_err(ApiError::not_found_as("merge"))?;
    Ok(Json(UndoResult {
        merge: MergeView::from(&undone.record),
        survivor: Contact::from(&undone.survivor),
        restored: Contact::from(&undone.restored),
    }))
}
