//! Bulk actions over every contact of a list or an ad-hoc filter: preview the exact count,
//! start with that count confirmed, follow the progress. The work runs in the background
//! (`run_in_background`), one transaction per step, resumable after a restart.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody};
use crate::state::AppState;
use crate::views::BulkJob;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use kith_core::filter::ListFilter;
use kith_core::{ListId, OrgId, ValidationError};
use kith_store::{BulkAction, BulkRequest, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::LazyLock;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bulk-actions", post(start).get(recent))
        .route("/bulk-actions/preview", post(preview))
        .route("/bulk-actions/{id}", get(one))
}

/// Names this process's runner in job leases.
static RUNNER: LazyLock<String> = LazyLock::new(|| format!("runner-{}", kith_store::new_id()));

/// Runs a job to its end in the background. A failure leaves the job's lease to expire, after
/// which the periodic sweep (`resume_orphans`) takes it up again.
pub fn run_in_background(store: Store, org: OrgId, job_id: String) {
    tokio::spawn(async move {
        if let Err(e) = store.org(&org).run_bulk(&job_id, &RUNNER).await {
            tracing::warn!(job = %job_id, error = %e, "bulk job step failed; it will resume");
        }
    });
}

/// Picks up jobs no runner holds (a restart, a crashed process): called at start and then
/// periodically by `kith serve`.
pub async fn resume_orphans(store: &Store) {
    match store.orphaned_bulk_jobs().await {
        Ok(jobs) => {
            for (org, id) in jobs {
                run_in_background(store.clone(), org, id);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not look for unfinished bulk jobs"),
    }
}

/// Which contacts, and what to do with them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// A list id (`all`, `leads`, `customers` or a custom list); combined with `filter` by AND.
    pub list: Option<String>,
    /// An ad-hoc filter in the lists' filter shape.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    pub action: ActionName,
    /// The tags to add or remove (1 to 100); none for `delete`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Starting only: the count the preview showed, which the selection must still have.
    pub expected_count: Option<i64>,
}

/// What to do with every selected contact.
#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    AddTags,
    RemoveTags,
    Delete,
}

/// How many contacts an action would touch.
#[derive(Serialize, ToSchema)]
pub struct BulkPreview {
    /// Exactly the contacts matching now.
    pub count: i64,
    pub action: String,
    pub tags: Vec<String>,
}

/// The recent jobs.
#[derive(Serialize, ToSchema)]
pub struct BulkJobList {
    pub items: Vec<BulkJob>,
}

async fn selection(
    state: &AppState,
    admin: &Admin,
    body: &BulkBody,
) -> ApiResult<(ListFilter, Value, BulkAction)> {
    let action = match body.action {
        ActionName::AddTags | ActionName::RemoveTags => {
            if body.tags.is_empty() {
                return Err(ValidationError::new("tags", "name at least one tag").into());
            }
            // The domain's own tag parsing: limits, trimming, case-insensitive duplicates.
            let tags = kith_core::contact::Tags::parse("tags", &json!(body.tags))?;
            let tags = tags.as_slice().to_vec();
            if body.action == ActionName::AddTags {
                BulkAction::AddTags(tags)
            } else {
                BulkAction::RemoveTags(tags)
            }
        }
        ActionName::Delete => {
            if !body.tags.is_empty() {
                return Err(ValidationError::new("tags", "delete takes no tags").into());
            }
            BulkAction::Delete
        }
    };
    let mut filter = match &body.list {
        Some(id) => admin
            .org(state)
            .list_filter(&ListId::new(id.trim()))
            .await
            .map_err(ApiError::not_found_as("list"))?,
        None => ListFilter::default(),
    };
    if let Some(f) = &body.filter {
        filter = filter.and(ListFilter::parse(f)?);
    }
    let shown = json!({"list": body.list.as_deref().map(str::trim), "filter": body.filter});
    Ok((filter, shown, action))
}

/// The exact number of contacts an action over this selection would touch now. Show it to
/// the person and pass it as `expected_count` to start.
#[utoipa::path(post, path = "/api/v1/bulk-actions/preview", tag = "bulk",
    request_body = BulkBody,
    responses((status = 200, body = BulkPreview), (status = 404, description = "unknown list"),
              (status = 422, description = "invalid action, tags or filter, naming the field")),
    security(("bearer" = [])))]
async fn preview(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<BulkBody>,
) -> ApiResult<Json<BulkPreview>> {
    let (filter, _, action) = selection(&state, &admin, &body).await?;
    let count = admin.org(&state).count_contacts(&filter).await?;
    Ok(Json(BulkPreview {
        count,
        action: action.name().to_string(),
        tags: action.tags().to_vec(),
    }))
}

/// Starts an action over every contact of the selection (not one page), once its count is
/// confirmed: `expected_count` must equal the number matching now, else 409 `count_changed`
/// with nothing started. The job works through exactly those contacts in the background,
/// writing one timeline entry per contact it changes. With an `Idempotency-Key` header, a
/// retry answers the job the first request started (200) instead of starting another.
#[utoipa::path(post, path = "/api/v1/bulk-actions", tag = "bulk",
    request_body = BulkBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "≤ 64 printable characters")),
    responses((status = 202, body = BulkJob, description = "started"),
              (status = 200, body = BulkJob, description = "the job an earlier request with this key started"),
              (status = 404, description = "unknown list"),
              (status = 409, description = "`count_changed`: the selection no longer has `expected_count` contacts"),
              (status = 422, description = "invalid action, tags, filter or missing expected_count")),
    security(("bearer" = [])))]
async fn start(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    JsonBody(body): JsonBody<BulkBody>,
) -> ApiResult<(StatusCode, Json<BulkJob>)> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(kith_core::conversation::idempotency_key(
            v.to_str().map_err(|_| {
                ValidationError::new("Idempotency-Key", "must be printable ASCII without spaces")
            })?,
        )?),
        None => None,
    };
    let (filter, shown, action) = selection(&state, &admin, &body).await?;
    let expected_count = body.expected_count.filter(|n| *n >= 0).ok_or_else(|| {
        ValidationError::new(
            "expected_count",
            "confirm the count from POST /api/v1/bulk-actions/preview",
        )
    })?;
    let (job, started_now) = admin
        .org(&state)
        .start_bulk(&BulkRequest {
            filter,
            selection: shown,
            action,
            expected_count,
            idempotency_key: key.map(str::to_string),
            actor: admin.actor.clone(),
        })
        .await?;
    // A retry answers the job; its runner is the first request's (or the orphan sweep's).
    if started_now && job.status == "running" {
        run_in_background(state.store.clone(), admin.org_id.clone(), job.id.clone());
    }
    let status = if started_now {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(BulkJob::from(&job))))
}

/// One job with its progress.
#[utoipa::path(get, path = "/api/v1/bulk-actions/{id}", tag = "bulk",
    params(("id" = String, Path)),
    responses((status = 200, body = BulkJob), (status = 404, description = "not found")),
    security(("bearer" = [])))]
async fn one(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<BulkJob>> {
    let job = admin
        .org(&state)
        .bulk_job(&id)
        .await
        .map_err(ApiError::not_found_as("bulk action"))?;
    Ok(Json(BulkJob::from(&job)))
}

/// The organization's 50 newest jobs, newest first.
#[utoipa::path(get, path = "/api/v1/bulk-actions", tag = "bulk",
    responses((status = 200, body = BulkJobList)),
    security(("bearer" = [])))]
async fn recent(State(state): State<AppState>, admin: Admin) -> ApiResult<Json<BulkJobList>> {
    let jobs = admin.org(&state).bulk_jobs(50).await?;
    Ok(Json(BulkJobList {
        items: crate::views::all(&jobs),
    }))
}
