//! The contact page's notes and manual merge (issue 19), beside `contact.rs`:
//!
//! - Notes: a textarea and "Add note", each note with "Edit" and "Delete" in place. The same
//!   store calls as `/api/v1/contacts/{id}/notes`; every change reloads the timeline
//!   (`HX-Trigger: contact-changed`), where each note shows as an entry.
//! - Merge…: a search field lists other contacts; picking one shows the dry run of
//!   `POST /api/v1/contacts/{id}/merge` (which values win, what moves) with a confirm button;
//!   the merge reloads the page. The timeline's entry of a manual merge has "Undo merge",
//!   which answers a refusal (409) in words beside the button.

use super::auth::{CsrfForm, PanelSession};
use super::contact::{gone_saying, to, when, EditQuery};
use super::{is_htmx, render, ErrorPage};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kith_core::contact::parse_message_body;
use kith_core::filter::{search_term, ListFilter, Sort};
use kith_core::merge::MergeRefusal;
use kith_core::timeline::Actor;
use kith_core::ContactId;
use kith_store::{AdminSession, Contact, Note, StoreError};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/{id}/notes", get(notes).post(add_note))
        .route("/contacts/{id}/notes/{note_id}", post(edit_note))
        .route("/contacts/{id}/notes/{note_id}/delete", post(delete_note))
        .route("/contacts/{id}/merge/candidates", get(candidates))
        .route("/contacts/{id}/merge/preview", get(preview))
        .route("/contacts/{id}/merge", post(merge))
        .route("/contacts/{id}/merges/{merge_id}/undo", post(undo))
}

/// What a contact is called in a list or a sentence.
fn label(c: &Contact) -> String {
    c.name
        .clone()
        .or_else(|| c.email.clone())
        .or_else(|| c.user_id.clone())
        .unwrap_or_else(|| format!("Anonymous lead {}", c.id))
}

pub struct NoteLine {
    pub id: String,
    pub body: String,
    pub by: String,
    pub at: String,
    pub edited: bool,
}

pub struct NotesView {
    pub contact_id: String,
    pub items: Vec<NoteLine>,
    /// The note being edited in place.
    pub editing: Option<String>,
    pub draft: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "contact/notes.html")]
pub struct NotesPartial {
    pub n: NotesView,
}

/// How many notes the contact page shows (newest first); the API pages through all.
const NOTES_SHOWN: i64 = 50;

fn note_line(n: &Note, me: &str) -> NoteLine {
    let by = match (n.author.kind.as_str(), &n.author.id, &n.author.email) {
        ("admin", Some(id), _) if id == me => "by you".to_string(),
        ("admin", _, Some(email)) => format!("by {email}"),
        ("admin", _, None) => "by an admin".to_string(),
        _ => "via the API".to_string(),
    };
    NoteLine {
        id: n.id.clone(),
        body: n.body.clone(),
        by,
        at: when(n.created_at),
        edited: n.updated_at != n.created_at,
    }
}

pub async fn notes_view(
    state: &AppState,
    s: &AdminSession,
    id: &ContactId,
) -> Result<NotesView, StoreError> {
    let page = state
        .store
        .org(&s.org_id)
        .notes(id, None, NOTES_SHOWN)
        .await?;
    Ok(NotesView {
        contact_id: id.to_string(),
        items: page
            .items
            .iter()
            .map(|n| note_line(n, &s.admin_id))
            .collect(),
        editing: None,
        draft: String::new(),
        error: None,
    })
}

/// A missing contact or note: the page it went to, or a 404 page.
fn gone(e: StoreError, headers: &HeaderMap) -> Response {
    gone_saying(
        e,
        headers,
        (
            "Not found",
            "There is no such contact or note in this organization.",
        ),
    )
}

/// The notes section after a change; the timeline reloads on `contact-changed`.
async fn notes_answer(
    state: &AppState,
    s: &AdminSession,
    headers: &HeaderMap,
    id: &ContactId,
    result: Result<(), StoreError>,
    draft: &str,
    editing: Option<String>,
) -> Response {
    if !is_htmx(headers) {
        return match result {
            Err(e @ (StoreError::Merged { .. } | StoreError::NotFound)) => gone(e, headers),
            _ => Redirect::to(&format!("/contacts/{id}")).into_response(),
        };
    }
    let (status, error) = match result {
        Ok(()) => (StatusCode::OK, None),
        Err(StoreError::Invalid(v)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(format!("The note {}.", v.message)),
        ),
        Err(e) => return gone(e, headers),
    };
    let mut n = match notes_view(state, s, id).await {
        Ok(n) => n,
        Err(e) => return gone(e, headers),
    };
    let ok = error.is_none();
    n.error = error;
    if !ok {
        n.draft = draft.to_string();
        n.editing = editing;
    }
    let mut resp = render(status, &NotesPartial { n });
    if ok {
        resp.headers_mut()
            .insert("hx-trigger", HeaderValue::from_static("contact-changed"));
    }
    resp
}

/// `GET /contacts/{id}/notes[?edit=note_id]`: the notes section, one note in its edit form.
async fn notes(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    Query(q): Query<EditQuery>,
) -> Response {
    if !is_htmx(&headers) {
        return Redirect::to(&format!("/contacts/{id}")).into_response();
    }
    match notes_view(&state, &session, &id).await {
        Ok(mut n) => {
            n.editing = q.edit;
            render(StatusCode::OK, &NotesPartial { n })
        }
        Err(e) => gone(e, &headers),
    }
}

/// `POST /contacts/{id}/notes` with `body`.
async fn add_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let raw = form.field("body");
    let result = async {
        let body = parse_message_body(raw)?;
        state
            .store
            .org(&s.org_id)
            .add_note(&id, &body, &Actor::Admin(s.admin_id.clone()))
            .await
            .map(|_| ())
    }
    .await;
    notes_answer(&state, s, &headers, &id, result, raw, None).await
}

/// `POST /contacts/{id}/notes/{note_id}` with `body`: the note's new text.
async fn edit_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, note_id)): Path<(ContactId, String)>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let raw = form.field("body");
    let result = async {
        let body = parse_message_body(raw)?;
        state
            .store
            .org(&s.org_id)
            .edit_note(&id, &note_id, &body)
            .await
            .map(|_| ())
    }
    .await;
    notes_answer(&state, s, &headers, &id, result, raw, Some(note_id.clone())).await
}

/// `POST /contacts/{id}/notes/{note_id}/delete`.
async fn delete_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, note_id)): Path<(ContactId, String)>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let result = state.store.org(&s.org_id).delete_note(&id, &note_id).await;
    notes_answer(&state, s, &headers, &id, result, "", None).await
}

pub struct Candidate {
    pub id: String,
    pub label: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "contact/merge_candidates.html")]
struct CandidatesPartial {
    contact_id: String,
    items: Vec<Candidate>,
    searched: bool,
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /contacts/{id}/merge/candidates?q=`: up to ten other contacts matching `q`.
async fn candidates(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    Query(q): Query<SearchQuery>,
) -> Response {
    if !is_htmx(&headers) {
        return Redirect::to(&format!("/contacts/{id}")).into_response();
    }
    let mut filter = ListFilter::default();
    let items = match search_term("q", &q.q) {
        Ok(Some(term)) => {
            filter.q.push(term);
            match state
                .store
                .org(&session.org_id)
                .list_contacts(&filter, &Sort::default(), None, 11)
                .await
            {
                Ok(page) => page
                    .items
                    .iter()
                    .filter(|c| c.id != id)
                    .take(10)
                    .map(|c| Candidate {
                        id: c.id.to_string(),
                        label: label(c),
                        detail: [c.email.clone(), c.user_id.clone()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" · "),
                    })
                    .collect(),
                Err(e) => return ErrorPage::from_api(e.into()).into_response(),
            }
        }
        _ => vec![],
    };
    render(
        StatusCode::OK,
        &CandidatesPartial {
            contact_id: id.to_string(),
            searched: !q.q.trim().is_empty(),
            items,
        },
    )
}

pub struct FieldRow {
    pub label: &'static str,
    pub value: String,
    /// `this contact` or the other contact's label.
    pub from: String,
}

#[derive(Template)]
#[template(path = "contact/merge_preview.html")]
struct PreviewPartial {
    contact_id: String,
    other_id: String,
    other_label: String,
    fields: Vec<FieldRow>,
    tags_added: Vec<String>,
    metadata_added: Vec<String>,
    promoted: bool,
    moves: kith_store::MoveCounts,
    error: Option<String>,
}

#[derive(Deserialize)]
struct PreviewQuery {
    #[serde(default)]
    other: String,
}

fn refusal_text(e: &StoreError) -> Option<String> {
    Some(match e {
        StoreError::MergeRefused(MergeRefusal::UserIdConflict) => {
            "These two contacts have different user IDs: they are two people and are never \
             merged."
                .into()
        }
        StoreError::MergeRefused(MergeRefusal::SameContact) => {
            "A contact cannot be merged with itself.".into()
        }
        StoreError::Merged { .. } | StoreError::NotFound => {
            "That contact no longer exists (it was merged or deleted); search again.".into()
        }
        _ => return None,
    })
}

/// The dry run as the page shows it, or the refusal in words.
async fn preview_of(
    state: &AppState,
    s: &AdminSession,
    id: &ContactId,
    other: &ContactId,
) -> Response {
    let org = state.store.org(&s.org_id);
    let other_label = match org.contact(other).await {
        Ok(c) => label(&c),
        Err(_) => other.to_string(),
    };
    let mut page = PreviewPartial {
        contact_id: id.to_string(),
        other_id: other.to_string(),
        other_label: other_label.clone(),
        fields: vec![],
        tags_added: vec![],
        metadata_added: vec![],
        promoted: false,
        moves: Default::default(),
        error: None,
    };
    match org
        .merge_contacts(id, other, true, &Actor::Admin(s.admin_id.clone()))
        .await
    {
        Ok(o) => {
            page.fields = o
                .fields
                .iter()
                .map(|f| FieldRow {
                    label: match f.field {
                        "user_id" => "User ID",
                        "email" => "Email",
                        "name" => "Name",
                        "phone" => "Phone",
                        _ => "Company",
                    },
                    value: f.value.as_str().unwrap_or_default().to_string(),
                    from: match f.from {
                        kith_core::merge::Side::Survivor => "this contact".into(),
                        kith_core::merge::Side::Other => other_label.clone(),
                    },
                })
                .collect();
            page.tags_added = o.tags_added;
            page.metadata_added = o.metadata_added;
            page.promoted = o.promoted;
            page.moves = o.moves;
            render(StatusCode::OK, &page)
        }
        Err(e) => match refusal_text(&e) {
            Some(text) => {
                page.error = Some(text);
                render(StatusCode::CONFLICT, &page)
            }
            None => ErrorPage::from_api(e.into()).into_response(),
        },
    }
}

/// `GET /contacts/{id}/merge/preview?other=`: what merging `other` into this contact does.
async fn preview(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    Query(q): Query<PreviewQuery>,
) -> Response {
    if !is_htmx(&headers) {
        return Redirect::to(&format!("/contacts/{id}")).into_response();
    }
    preview_of(&state, &session, &id, &ContactId::new(q.other)).await
}

/// `POST /contacts/{id}/merge` with `other_id`: the merge; the page reloads on success.
async fn merge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let other = ContactId::new(form.field("other_id").trim().to_string());
    match state
        .store
        .org(&s.org_id)
        .merge_contacts(&id, &other, false, &Actor::Admin(s.admin_id.clone()))
        .await
    {
        Ok(_) => to(&headers, &format!("/contacts/{id}")),
        Err(e) if refusal_text(&e).is_some() && is_htmx(&headers) => {
            preview_of(&state, s, &id, &other).await
        }
        Err(e) => gone(e, &headers),
    }
}

#[derive(Template)]
#[template(
    source = r#"<p class="field-error" role="alert">{{ message }}</p>"#,
    ext = "html"
)]
struct UndoRefused {
    message: String,
}

/// What changed since a merge, in words (`survivor.fields` → "this contact's fields").
fn changed_words(changed: &[String]) -> String {
    let words: Vec<&str> = changed
        .iter()
        .map(|c| match c.as_str() {
            "survivor.fields" => "this contact's fields",
            "survivor.tags" => "its tags",
            "survivor.stats" => "its activity (messages, last seen)",
            "survivor.visitors" => "its visitors",
            "survivor.conversations" => "its conversations",
            "survivor.notes" => "its notes",
            "survivor.timeline" => "its timeline",
            "survivor.gone" => "this contact itself (merged or deleted)",
            "absorbed.email" => "who holds the merged contact's email",
            "absorbed.user_id" => "who holds the merged contact's user ID",
            other => other,
        })
        .collect();
    words.join(", ")
}

/// `POST /contacts/{id}/merges/{merge_id}/undo`: the page reloads on success; a refusal is
/// said beside the button.
async fn undo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, merge_id)): Path<(ContactId, String)>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let message = match state
        .store
        .org(&s.org_id)
        .undo_merge(&merge_id, &Actor::Admin(s.admin_id.clone()))
        .await
    {
        Ok(_) => return to(&headers, &format!("/contacts/{id}")),
        Err(StoreError::MergeChanged { changed }) => format!(
            "This merge can no longer be undone: {} changed since.",
            changed_words(&changed)
        ),
        Err(StoreError::AlreadyUndone) => "This merge was already undone.".to_string(),
        Err(StoreError::NotFound) => "There is no such merge.".to_string(),
        Err(e) => return ErrorPage::from_api(e.into()).into_response(),
    };
    render(StatusCode::CONFLICT, &UndoRefused { message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_changed_reads_as_words() {
        assert_eq!(
            changed_words(&["survivor.fields".into(), "survivor.conversations".into()]),
            "this contact's fields, its conversations"
        );
    }
}
