//! Bulk actions from the contacts page: over every contact of the list and filter shown
//! (not only the page on screen). Three steps, each a form post with the CSRF token:
//! preview (the exact count, in words), confirm (starts the job with that count and a fresh
//! idempotency key, so a double click or a retried post starts it once), and progress (the
//! job's counter, polled by htmx until it is done). Without JavaScript each step is a page.

use super::auth::{CsrfForm, PanelSession};
use super::contacts::View;
use super::{is_htmx, render, Chrome};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kith_core::filter::ListFilter;
use kith_core::timeline::Actor;
use kith_core::ListId;
use kith_store::{BulkAction, BulkJob, BulkRequest, OrgStore, StoreError};
use serde_json::json;

/// What the bulk panel shows: a question, a job's progress, or a problem.
#[derive(Template)]
#[template(path = "bulk_step.html")]
pub struct BulkStep {
    pub csrf_token: String,
    /// The view's fields, carried to the next step as hidden inputs.
    pub view_fields: Vec<(&'static str, String)>,
    pub action: String,
    pub tag: String,
    pub question: Option<Question>,
    pub job: Option<Progress>,
    pub error: Option<String>,
}

pub struct Question {
    pub text: String,
    pub count: i64,
    pub key: String,
    pub danger: bool,
}

pub struct Progress {
    pub id: String,
    pub done: i64,
    pub total: i64,
    pub finished: bool,
    pub summary: String,
}

/// The same step inside the layout, for a browser without JavaScript.
#[derive(Template)]
#[template(path = "bulk_page.html")]
struct BulkPage {
    chrome: Chrome,
    step_html: String,
}

fn respond(
    headers: &HeaderMap,
    session: &kith_store::AdminSession,
    status: StatusCode,
    step: BulkStep,
) -> Response {
    if is_htmx(headers) {
        return render(status, &step);
    }
    match step.render() {
        Ok(step_html) => render(
            status,
            &BulkPage {
                chrome: Chrome::new(session, "contacts"),
                step_html,
            },
        ),
        Err(e) => crate::error::ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

fn action_of(name: &str, tag: &str) -> Result<BulkAction, String> {
    let tag = tag.trim();
    let tags = || -> Result<Vec<String>, String> {
        if tag.is_empty() {
            return Err("Name the tag.".into());
        }
        kith_core::contact::Tags::parse("tag", &json!([tag]))
            .map(|t| t.as_slice().to_vec())
            .map_err(|e| format!("The tag {}.", e.message))
    };
    match name {
        "add_tags" => Ok(BulkAction::AddTags(tags()?)),
        "remove_tags" => Ok(BulkAction::RemoveTags(tags()?)),
        "delete" => Ok(BulkAction::Delete),
        _ => Err("Choose what to do.".into()),
    }
}

async fn selection(org: OrgStore<'_>, view: &View) -> Result<ListFilter, String> {
    let base = org
        .list_filter(&ListId::new(view.list.clone()))
        .await
        .map_err(|_| "This list no longer exists.".to_string())?;
    let own = view
        .filter()
        .map_err(|e| format!("The filter's {} {}.", e.field, e.message))?;
    Ok(base.and(own))
}

fn plural(n: i64) -> String {
    if n == 1 {
        "1 contact".into()
    } else {
        format!("{n} contacts")
    }
}

fn progress(job: &BulkJob) -> Progress {
    let finished = job.status == "done";
    let verb = match &job.action {
        BulkAction::AddTags(t) => format!("Tagged {} with “{}”", plural(job.changed), t.join(", ")),
        BulkAction::RemoveTags(t) => {
            format!("Removed “{}” from {}", t.join(", "), plural(job.changed))
        }
        BulkAction::Delete => format!("Deleted {}", plural(job.changed)),
    };
    let mut summary = if finished {
        format!("Done. {verb}.")
    } else {
        format!("Working: {} of {} handled.", job.done, job.total)
    };
    if finished && job.changed < job.total {
        summary.push_str(&format!(
            " {} already were as asked or were gone.",
            plural(job.total - job.changed - job.failed)
        ));
    }
    if job.failed > 0 {
        summary.push_str(&format!(
            " {} could not be changed (a limit, e.g. 100 tags).",
            plural(job.failed)
        ));
    }
    Progress {
        id: job.id.clone(),
        done: job.done,
        total: job.total,
        finished,
        summary,
    }
}

fn step(form: &CsrfForm, view: &View) -> BulkStep {
    BulkStep {
        csrf_token: form.session.csrf_token.clone(),
        view_fields: view.pairs(),
        action: form.field("action").to_string(),
        tag: form.field("tag").to_string(),
        question: None,
        job: None,
        error: None,
    }
}

/// `POST /bulk/preview`: the exact count, as a question to confirm.
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let view = View::from_pairs(|k| form.fields.get(k).cloned());
    let org = state.store.org(&form.session.org_id);
    let mut out = step(&form, &view);
    let asked = async {
        let action = action_of(form.field("action"), form.field("tag"))?;
        let filter = selection(org, &view).await?;
        let count = org.count_contacts(&filter).await.map_err(|e| {
            tracing::warn!(error = %e, "bulk preview");
            "The contacts could not be counted; retry shortly.".to_string()
        })?;
        let who = plural(count);
        let text = match &action {
            BulkAction::AddTags(t) => format!("Add the tag “{}” to {who}?", t.join(", ")),
            BulkAction::RemoveTags(t) => format!("Remove the tag “{}” from {who}?", t.join(", ")),
            BulkAction::Delete => {
                format!("Delete {who} with their conversations? This cannot be undone.")
            }
        };
        Ok::<_, String>(Question {
            text,
            count,
            key: kith_store::new_id(),
            danger: action == BulkAction::Delete,
        })
    }
    .await;
    let status = match asked {
        Ok(q) => {
            out.question = Some(q);
            StatusCode::OK
        }
        Err(e) => {
            out.error = Some(e);
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    respond(&headers, &form.session, status, out)
}

/// `POST /bulk/start`: starts the job with the confirmed count.
pub async fn start(State(state): State<AppState>, headers: HeaderMap, form: CsrfForm) -> Response {
    let view = View::from_pairs(|k| form.fields.get(k).cloned());
    let org = state.store.org(&form.session.org_id);
    let mut out = step(&form, &view);
    let started = async {
        let action = action_of(form.field("action"), form.field("tag"))?;
        let filter = selection(org, &view).await?;
        let expected_count: i64 = form
            .field("expected_count")
            .trim()
            .parse()
            .map_err(|_| "Preview the action first.".to_string())?;
        let key = Some(form.field("key").trim())
            .filter(|k| !k.is_empty() && k.len() <= 64)
            .map(str::to_string);
        org.start_bulk(&BulkRequest {
            filter,
            selection: json!({"list": view.list, "panel_view": view.url_of()}),
            action,
            expected_count,
            idempotency_key: key,
            actor: Actor::Admin(form.session.admin_id.clone()),
        })
        .await
        .map_err(|e| match e {
            StoreError::CountChanged { current, .. } => format!(
                "The selection changed: {} match now. Preview again.",
                plural(current)
            ),
            e => {
                tracing::warn!(error = %e, "bulk start");
                "The action could not be started; retry shortly.".to_string()
            }
        })
    }
    .await;
    let status = match started {
        Ok((job, started_now)) => {
            if started_now && job.status == "running" {
                crate::routes::admin::bulk::run_in_background(
                    state.store.clone(),
                    form.session.org_id.clone(),
                    job.id.clone(),
                );
            }
            out.job = Some(progress(&job));
            StatusCode::OK
        }
        Err(e) => {
            out.error = Some(e);
            StatusCode::CONFLICT
        }
    };
    respond(&headers, &form.session, status, out)
}

/// `GET /bulk/{id}`: the job's progress (what the panel polls).
pub async fn show(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut out = BulkStep {
        csrf_token: session.csrf_token.clone(),
        view_fields: vec![],
        action: String::new(),
        tag: String::new(),
        question: None,
        job: None,
        error: None,
    };
    let status = match state.store.org(&session.org_id).bulk_job(&id).await {
        Ok(job) => {
            out.job = Some(progress(&job));
            StatusCode::OK
        }
        Err(StoreError::NotFound) => {
            out.error = Some("No such bulk action.".into());
            StatusCode::NOT_FOUND
        }
        Err(e) => {
            tracing::warn!(error = %e, "bulk progress");
            out.error = Some("The progress could not be read; retry shortly.".into());
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    respond(&headers, &session, status, out)
}
