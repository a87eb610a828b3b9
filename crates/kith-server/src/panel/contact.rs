//! `/contacts/{id}`: one contact, every field editable in place, its tags and metadata, its
//! activity timeline in sentences and its conversations across websites.
//!
//! Each part of the page is a partial of its own (`templates/contact/*.html`) that htmx
//! fetches and swaps: a field's value or its edit form, the tags, the metadata, a page of the
//! timeline, a page of conversations. Every edit goes through the same store call as
//! `PATCH /api/v1/contacts/{id}` (`ProfilePatch::parse` of the same JSON, then
//! `patch_contact`), so the panel cannot edit by other rules than the API. A successful edit
//! answers `HX-Trigger: contact-changed`, on which the summary (status, stats) and the
//! timeline reload themselves.

use super::auth::{CsrfForm, PanelSession};
use super::{is_htmx, render, Chrome, ErrorPage};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kith_core::contact::ProfilePatch;
use kith_core::timeline::{Actor, EventKind};
use kith_core::{ContactId, Timestamp};
use kith_store::{AdminSession, Contact, StoreError, TagEdit, TimelineEvent};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Timeline entries and conversations per page.
const PAGE: i64 = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/{id}", get(show))
        .route("/contacts/{id}/summary", get(summary))
        .route("/contacts/{id}/fields/{field}", get(field).post(save_field))
        .route("/contacts/{id}/tags", post(add_tag))
        .route("/contacts/{id}/tags/remove", post(remove_tag))
        .route("/contacts/{id}/metadata", get(metadata).post(save_metadata))
        .route("/contacts/{id}/metadata/remove", post(remove_metadata))
        .route("/contacts/{id}/timeline", get(timeline))
        .route("/contacts/{id}/conversations", get(conversations))
        .route("/contacts/{id}/delete", post(delete))
}

/// `POST /contacts/{id}/delete`: deletes (or, with `erase=true`, erases) the contact, then
/// back to the contacts with the outcome in the address (`?deleted=1`).
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<ContactId>,
    form: super::auth::CsrfForm,
) -> Response {
    let erase = form.field("erase") == "true";
    let actor = Actor::Admin(form.session.admin_id.clone());
    match state
        .store
        .org(&form.session.org_id)
        .delete_contact(&id, erase, &actor)
        .await
    {
        Ok(_) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut().insert(
                axum::http::header::LOCATION,
                axum::http::HeaderValue::from_static("/?deleted=1"),
            );
            resp
        }
        Err(e) => gone(e, &HeaderMap::new()),
    }
}

/// A time as people read it: `2026-11-30 06:26 UTC`.
pub fn when(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// The editable text fields, in page order: (form key, label).
const FIELDS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("company", "Company"),
    ("user_id", "User ID"),
];

fn field_label(key: &str) -> Option<&'static str> {
    FIELDS.iter().find(|(k, _)| *k == key).map(|(_, l)| *l)
}

/// An error shown beside the field it is about; for a conflict, the contact holding the value.
pub struct FieldError {
    pub message: String,
    pub holder: Option<Holder>,
}

/// The contact that already holds an email or user id.
pub struct Holder {
    pub id: String,
    pub label: String,
}

/// One field as shown: its value, or its edit form (with the error of the last try).
pub struct FieldView {
    pub contact_id: String,
    pub key: &'static str,
    pub label: &'static str,
    pub input_type: &'static str,
    pub value: String,
    pub editing: bool,
    pub error: Option<FieldError>,
}

impl FieldView {
    fn new(c: &Contact, key: &'static str, label: &'static str) -> FieldView {
        let value = match key {
            "name" => c.name.clone(),
            "email" => c.email.clone(),
            "phone" => c.phone.clone(),
            "company" => c.company.clone(),
            _ => c.user_id.clone(),
        };
        FieldView {
            contact_id: c.id.to_string(),
            key,
            label,
            input_type: match key {
                "email" => "email",
                "phone" => "tel",
                _ => "text",
            },
            value: value.unwrap_or_default(),
            editing: false,
            error: None,
        }
    }

    fn lower_label(&self) -> String {
        if self.key == "user_id" {
            "user ID".into()
        } else {
            self.label.to_lowercase()
        }
    }
}

/// Status, stats and times at the top of the page.
pub struct SummaryView {
    pub contact_id: String,
    pub title: String,
    pub status: &'static str,
    pub conversation_count: i64,
    pub message_count: i64,
    pub last_seen: String,
    pub created: String,
}

impl SummaryView {
    fn new(c: &Contact) -> SummaryView {
        SummaryView {
            contact_id: c.id.to_string(),
            title: display_name(c),
            status: c.status.as_str(),
            conversation_count: c.conversation_count,
            message_count: c.message_count,
            last_seen: c.last_seen_at.map(when).unwrap_or_else(|| "never".into()),
            created: when(c.created_at),
        }
    }
}

/// What a contact is called on the page: its name, else its email, else its user id.
fn display_name(c: &Contact) -> String {
    c.name
        .clone()
        .or_else(|| c.email.clone())
        .or_else(|| c.user_id.clone())
        .unwrap_or_else(|| "Anonymous lead".into())
}

pub struct TagsView {
    pub contact_id: String,
    pub tags: Vec<String>,
    pub draft: String,
    pub error: Option<String>,
}

pub struct MetaEntry {
    pub key: String,
    pub value: String,
}

pub struct MetadataView {
    pub contact_id: String,
    pub entries: Vec<MetaEntry>,
    /// The key whose value is being edited in place.
    pub editing: Option<String>,
    pub draft_key: String,
    pub draft_value: String,
    pub error: Option<String>,
}

/// A metadata value as text (strings as they are, others as JSON).
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl MetadataView {
    fn new(c: &Contact) -> MetadataView {
        let entries = c
            .metadata
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| MetaEntry {
                        key: k.clone(),
                        value: value_text(v),
                    })
                    .collect()
            })
            .unwrap_or_default();
        MetadataView {
            contact_id: c.id.to_string(),
            entries,
            editing: None,
            draft_key: String::new(),
            draft_value: String::new(),
            error: None,
        }
    }
}

/// One timeline entry as sentences.
pub struct EventLine {
    pub sentences: Vec<String>,
    /// Who did it (`by you`, `by ann@acme.test`, `via the API`), empty for the visitor and
    /// system.
    pub by: String,
    pub at: String,
    /// A conversation the entry is about, linked.
    pub conversation_id: Option<String>,
    /// A manual merge into this contact that may still be undone: its id.
    pub undo: Option<String>,
}

pub struct TimelineView {
    pub contact_id: String,
    pub items: Vec<EventLine>,
    pub next_cursor: Option<String>,
}

pub struct ConversationLine {
    pub id: String,
    pub website: String,
    pub status: &'static str,
    pub message_count: i64,
    pub preview: String,
    pub at: String,
}

pub struct ConversationsView {
    pub contact_id: String,
    pub items: Vec<ConversationLine>,
    pub next_cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    chrome: Chrome,
    s: SummaryView,
    fields: Vec<FieldView>,
    t: TagsView,
    m: MetadataView,
    tl: TimelineView,
    cl: ConversationsView,
    n: super::contact_crm::NotesView,
}

#[derive(Template)]
#[template(path = "contact/summary.html")]
struct SummaryPartial {
    s: SummaryView,
}

#[derive(Template)]
#[template(path = "contact/field.html")]
struct FieldPartial {
    f: FieldView,
}

#[derive(Template)]
#[template(path = "contact/tags.html")]
struct TagsPartial {
    t: TagsView,
}

#[derive(Template)]
#[template(path = "contact/metadata.html")]
struct MetadataPartial {
    m: MetadataView,
}

#[derive(Template)]
#[template(path = "contact/timeline.html")]
struct TimelinePartial {
    tl: TimelineView,
}

#[derive(Template)]
#[template(path = "contact/conversations.html")]
struct ConversationsPartial {
    cl: ConversationsView,
}

/// Where a missing contact sends the browser: the contact it was merged into, or a 404 page.
fn gone(e: StoreError, headers: &HeaderMap) -> Response {
    gone_saying(
        e,
        headers,
        (
            "Contact not found",
            "There is no such contact in this organization.",
        ),
    )
}

/// `gone` with the 404 page's own (title, message), for pages about more than the contact.
pub(super) fn gone_saying(
    e: StoreError,
    headers: &HeaderMap,
    (title, message): (&str, &str),
) -> Response {
    match e {
        StoreError::Merged { merged_into } => to(headers, &format!("/contacts/{merged_into}")),
        StoreError::NotFound => {
            ErrorPage::new(StatusCode::NOT_FOUND, title, message).into_response()
        }
        e => ErrorPage::from_api(e.into()).into_response(),
    }
}

/// A redirect that works for plain navigation and for htmx (`HX-Redirect`: the whole page).
pub(super) fn to(headers: &HeaderMap, path: &str) -> Response {
    if is_htmx(headers) {
        let mut resp = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(path) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        resp
    } else {
        Redirect::to(path).into_response()
    }
}

/// A partial after a successful edit: the other parts of the page reload on this event.
fn changed(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("hx-trigger", HeaderValue::from_static("contact-changed"));
    resp
}

async fn load(state: &AppState, s: &AdminSession, id: &ContactId) -> Result<Contact, StoreError> {
    state.store.org(&s.org_id).contact(id).await
}

/// `GET /contacts/{id}`
async fn show(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
) -> Response {
    let c = match load(&state, &session, &id).await {
        Ok(c) => c,
        Err(e) => return gone(e, &headers),
    };
    let tl = match timeline_view(&state, &session, &id, None).await {
        Ok(t) => t,
        Err(e) => return gone(e, &headers),
    };
    let cl = match conversations_view(&state, &session, &id, None).await {
        Ok(t) => t,
        Err(e) => return gone(e, &headers),
    };
    let n = match super::contact_crm::notes_view(&state, &session, &id).await {
        Ok(n) => n,
        Err(e) => return gone(e, &headers),
    };
    let page = ContactPage {
        chrome: Chrome::new(&session, "contacts"),
        s: SummaryView::new(&c),
        fields: FIELDS
            .iter()
            .map(|&(k, l)| FieldView::new(&c, k, l))
            .collect(),
        t: TagsView {
            contact_id: c.id.to_string(),
            tags: c.tags.clone(),
            draft: String::new(),
            error: None,
        },
        m: MetadataView::new(&c),
        tl,
        cl,
        n,
    };
    render(StatusCode::OK, &page)
}

/// `GET /contacts/{id}/summary`: status and stats (reloaded after an edit).
async fn summary(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
) -> Response {
    match load(&state, &session, &id).await {
        Ok(c) => render(
            StatusCode::OK,
            &SummaryPartial {
                s: SummaryView::new(&c),
            },
        ),
        Err(e) => gone(e, &headers),
    }
}

/// `?edit=…`: which item of a contact section to show in its edit form.
#[derive(Deserialize)]
pub(super) struct EditQuery {
    #[serde(default)]
    pub edit: Option<String>,
}

/// `GET /contacts/{id}/fields/{field}[?edit=1]`: a field's value, or its edit form.
async fn field(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path((id, key)): Path<(ContactId, String)>,
    Query(q): Query<EditQuery>,
) -> Response {
    let Some(&(key, label)) = FIELDS.iter().find(|(k, _)| *k == key) else {
        return ErrorPage::new(StatusCode::NOT_FOUND, "Not found", "No such field.")
            .into_response();
    };
    if !is_htmx(&headers) {
        return Redirect::to(&format!("/contacts/{id}")).into_response();
    }
    match load(&state, &session, &id).await {
        Ok(c) => {
            let mut f = FieldView::new(&c, key, label);
            f.editing = q.edit.is_some();
            render(StatusCode::OK, &FieldPartial { f })
        }
        Err(e) => gone(e, &headers),
    }
}

/// An edit through the API's own path: the JSON a `PATCH` would carry, parsed by the domain.
async fn patch(
    state: &AppState,
    s: &AdminSession,
    id: &ContactId,
    body: Value,
) -> Result<Contact, StoreError> {
    let patch = ProfilePatch::parse(&body)?;
    state
        .store
        .org(&s.org_id)
        .patch_contact(id, &patch, &Actor::Admin(s.admin_id.clone()))
        .await
}

/// What to show beside a field for a refused edit (`None`: not the field's business; the
/// caller shows a page).
async fn field_error(
    state: &AppState,
    s: &AdminSession,
    e: &StoreError,
) -> Option<(StatusCode, FieldError)> {
    match e {
        StoreError::Invalid(v) => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            FieldError {
                message: format!("{} {}.", field_name(&v.field), v.message),
                holder: None,
            },
        )),
        StoreError::Conflict { field, contact_id } => {
            let label = match state
                .store
                .org(&s.org_id)
                .contact(&ContactId::new(contact_id.clone()))
                .await
            {
                Ok(h) => display_name(&h),
                Err(_) => format!("contact {contact_id}"),
            };
            let what = if field == "user_id" {
                "user ID"
            } else {
                field.as_str()
            };
            Some((
                StatusCode::CONFLICT,
                FieldError {
                    message: format!(
                        "already has this {what}. Admins never merge contacts by editing: \
                         change or clear it there first."
                    ),
                    holder: Some(Holder {
                        id: contact_id.clone(),
                        label,
                    }),
                },
            ))
        }
        _ => None,
    }
}

/// A field name from a validation error, as the page labels it (`metadata.plan` → `plan`).
fn field_name(field: &str) -> String {
    if let Some(label) = field_label(field) {
        return label.to_string();
    }
    if let Some(k) = field.strip_prefix("metadata.") {
        return format!("The value of {k}:");
    }
    match field {
        "tags" => "Tag:".into(),
        "metadata" => "Metadata:".into(),
        other => other.to_string(),
    }
}

/// `POST /contacts/{id}/fields/{field}` with `value` (empty clears the field).
async fn save_field(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, key)): Path<(ContactId, String)>,
    form: CsrfForm,
) -> Response {
    let Some(&(key, label)) = FIELDS.iter().find(|(k, _)| *k == key) else {
        return ErrorPage::new(StatusCode::NOT_FOUND, "Not found", "No such field.")
            .into_response();
    };
    let s = &form.session;
    let raw = form.field("value");
    let value = if raw.trim().is_empty() {
        Value::Null
    } else {
        Value::String(raw.to_string())
    };
    let mut body = Map::new();
    body.insert(key.to_string(), value);
    match patch(&state, s, &id, Value::Object(body)).await {
        Ok(c) => {
            if !is_htmx(&headers) {
                return Redirect::to(&format!("/contacts/{id}")).into_response();
            }
            changed(render(
                StatusCode::OK,
                &FieldPartial {
                    f: FieldView::new(&c, key, label),
                },
            ))
        }
        Err(e) => {
            let Some((status, error)) = field_error(&state, s, &e).await else {
                return gone(e, &headers);
            };
            let c = match load(&state, s, &id).await {
                Ok(c) => c,
                Err(e) => return gone(e, &headers),
            };
            let mut f = FieldView::new(&c, key, label);
            f.editing = true;
            f.value = raw.to_string();
            f.error = Some(error);
            render(status, &FieldPartial { f })
        }
    }
}

/// The tags section after an edit (or with its error).
async fn tags_answer(
    state: &AppState,
    s: &AdminSession,
    headers: &HeaderMap,
    id: &ContactId,
    result: Result<Contact, StoreError>,
    draft: &str,
) -> Response {
    match result {
        Ok(c) => changed(render(
            StatusCode::OK,
            &TagsPartial {
                t: TagsView {
                    contact_id: c.id.to_string(),
                    tags: c.tags.clone(),
                    draft: String::new(),
                    error: None,
                },
            },
        )),
        Err(e) => {
            let Some((status, error)) = field_error(state, s, &e).await else {
                return gone(e, headers);
            };
            match load(state, s, id).await {
                Ok(c) => render(
                    status,
                    &TagsPartial {
                        t: TagsView {
                            contact_id: c.id.to_string(),
                            tags: c.tags.clone(),
                            draft: draft.to_string(),
                            error: Some(error.message),
                        },
                    },
                ),
                Err(e) => gone(e, headers),
            }
        }
    }
}

/// `POST /contacts/{id}/tags` with `tag`: one tag added, atomically in the store (the domain
/// drops a tag already there in another spelling).
async fn add_tag(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let tag = form.field("tag").to_string();
    let result = if tag.trim().is_empty() {
        Err(StoreError::Invalid(kith_core::ValidationError::new(
            "tags",
            "a tag must not be empty",
        )))
    } else {
        state
            .store
            .org(&s.org_id)
            .edit_tag(&id, TagEdit::Add(&tag), &Actor::Admin(s.admin_id.clone()))
            .await
    };
    tags_answer(&state, s, &headers, &id, result, &tag).await
}

/// `POST /contacts/{id}/tags/remove` with `tag`: one tag removed, atomically in the store.
async fn remove_tag(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let tag = form.field("tag").to_string();
    let result = state
        .store
        .org(&s.org_id)
        .edit_tag(
            &id,
            TagEdit::Remove(&tag),
            &Actor::Admin(s.admin_id.clone()),
        )
        .await;
    tags_answer(&state, s, &headers, &id, result, "").await
}

/// `GET /contacts/{id}/metadata[?edit=key]`: the metadata section, a key's value in an edit
/// form when asked.
async fn metadata(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    Query(q): Query<EditQuery>,
) -> Response {
    if !is_htmx(&headers) {
        return Redirect::to(&format!("/contacts/{id}")).into_response();
    }
    match load(&state, &session, &id).await {
        Ok(c) => {
            let mut m = MetadataView::new(&c);
            m.editing = q.edit;
            render(StatusCode::OK, &MetadataPartial { m })
        }
        Err(e) => gone(e, &headers),
    }
}

/// The value to store for `text` under `key`: a key that holds a number or a boolean keeps
/// its type when the new text reads as one; anything else is stored as text.
fn typed_value(current: Option<&Value>, text: &str) -> Value {
    let t = text.trim();
    match current {
        Some(Value::Number(_)) => match serde_json::from_str::<serde_json::Number>(t) {
            Ok(n) => Value::Number(n),
            Err(_) => Value::String(text.to_string()),
        },
        Some(Value::Bool(_)) if t == "true" || t == "false" => Value::Bool(t == "true"),
        _ => Value::String(text.to_string()),
    }
}

/// The metadata section after an edit (or with its error, the form filled back in).
async fn metadata_answer(
    state: &AppState,
    s: &AdminSession,
    headers: &HeaderMap,
    id: &ContactId,
    result: Result<Contact, StoreError>,
    draft: (&str, &str, Option<String>),
) -> Response {
    match result {
        Ok(c) => changed(render(
            StatusCode::OK,
            &MetadataPartial {
                m: MetadataView::new(&c),
            },
        )),
        Err(e) => {
            let Some((status, error)) = field_error(state, s, &e).await else {
                return gone(e, headers);
            };
            match load(state, s, id).await {
                Ok(c) => {
                    let mut m = MetadataView::new(&c);
                    m.error = Some(error.message);
                    m.editing = draft.2;
                    if m.editing.is_none() {
                        m.draft_key = draft.0.to_string();
                        m.draft_value = draft.1.to_string();
                    }
                    render(status, &MetadataPartial { m })
                }
                Err(e) => gone(e, headers),
            }
        }
    }
}

/// `POST /contacts/{id}/metadata` with `key` and `value`: adds the key or changes its value
/// (`editing` set when the form was a key's in-place edit).
async fn save_metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let (key, text) = (form.field("key").to_string(), form.field("value"));
    let editing = form.fields.get("editing").map(|_| key.clone());
    let result = async {
        if key.trim().is_empty() {
            return Err(StoreError::Invalid(kith_core::ValidationError::new(
                "metadata",
                "a key must not be empty",
            )));
        }
        let c = load(&state, s, &id).await?;
        let value = typed_value(c.metadata.get(key.trim()), text);
        let mut m = Map::new();
        m.insert(key.clone(), value);
        patch(&state, s, &id, json!({ "metadata": m })).await
    }
    .await;
    metadata_answer(&state, s, &headers, &id, result, (&key, text, editing)).await
}

/// `POST /contacts/{id}/metadata/remove` with `key` (the API's `null` value deletes a key).
async fn remove_metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let key = form.field("key").to_string();
    let mut m = Map::new();
    m.insert(key, Value::Null);
    let result = patch(&state, s, &id, json!({ "metadata": m })).await;
    metadata_answer(&state, s, &headers, &id, result, ("", "", None)).await
}

/// A field's value in a sentence: quoted text, or `empty`.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "empty".into(),
        Value::String(s) if s.is_empty() => "empty".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The sentences of one `fields_updated` change.
fn change_sentences(field: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match field {
        "tags" => {
            let list = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().map(value_text).collect())
                    .unwrap_or_default()
            };
            let (before, after) = (list(old), list(new));
            let lower = |v: &[String]| v.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>();
            let (bl, al) = (lower(&before), lower(&after));
            for t in &after {
                if !bl.contains(&t.to_lowercase()) {
                    out.push(format!("Tag {t} added"));
                }
            }
            for t in &before {
                if !al.contains(&t.to_lowercase()) {
                    out.push(format!("Tag {t} removed"));
                }
            }
        }
        "metadata" => {
            let empty = Map::new();
            let (b, a) = (
                old.as_object().unwrap_or(&empty),
                new.as_object().unwrap_or(&empty),
            );
            for (k, v) in a {
                match b.get(k) {
                    None => out.push(format!("Metadata {k} set to {}", shown(v))),
                    Some(was) if was != v => out.push(format!(
                        "Metadata {k} changed from {} to {}",
                        shown(was),
                        shown(v)
                    )),
                    _ => {}
                }
            }
            for (k, was) in b {
                if !a.contains_key(k) {
                    out.push(format!("Metadata {k} removed (was {})", shown(was)));
                }
            }
        }
        f => {
            let label = field_label(f).unwrap_or(f);
            out.push(match (old.is_null(), new.is_null()) {
                (true, false) => format!("{label} set to {}", shown(new)),
                (false, true) => format!("{label} removed (was {})", shown(old)),
                _ => format!("{label} changed from {} to {}", shown(old), shown(new)),
            });
        }
    }
}

/// One timeline entry in words.
fn event_line(e: &TimelineEvent, me: &str, admins: &[(String, String)]) -> EventLine {
    let d = &e.data;
    let str_of = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut sentences = vec![];
    let mut conversation_id = None;
    let mut undo = None;
    match e.kind {
        EventKind::Created => sentences.push(match str_of("status").as_deref() {
            Some("customer") => "Created as a customer".to_string(),
            _ => "Created as a lead".to_string(),
        }),
        EventKind::ConversationStarted => {
            conversation_id = str_of("conversation_id");
            sentences.push(match str_of("website_name") {
                Some(w) => format!("Started a conversation on {w}"),
                None => "Started a conversation".to_string(),
            });
        }
        EventKind::Escalated => {
            conversation_id = str_of("conversation_id");
            sentences.push("Conversation escalated".to_string());
        }
        EventKind::Promoted => sentences.push("Promoted from lead to customer".to_string()),
        EventKind::Merged => {
            let by = match str_of("by").as_deref() {
                Some("user_id") => " (by user ID)".to_string(),
                // A manual merge: the actor says who.
                Some("admin") => String::new(),
                Some(k) => format!(" (by {k})"),
                None => String::new(),
            };
            if let Some(into) = str_of("merged_into") {
                // The restored side of an undone manual merge.
                let who = str_of("survivor_name")
                    .or_else(|| str_of("survivor_email"))
                    .unwrap_or(into);
                sentences.push(format!("Merged into {who}"));
            } else {
                // Anonymous (or merged before the name and email were kept in the event).
                let who = str_of("absorbed_name")
                    .or_else(|| str_of("absorbed_email"))
                    .unwrap_or_else(|| "an anonymous contact".into());
                sentences.push(format!("Merged with {who}{by}"));
                undo = str_of("merge_id");
            }
        }
        EventKind::MergeUndone => sentences.push(match str_of("absorbed_contact_id") {
            Some(_) => "Merge undone: the merged contact is separate again".to_string(),
            None => "Merge undone".to_string(),
        }),
        EventKind::Note => {
            sentences.push(format!("Note: {}", str_of("body").unwrap_or_default()));
        }
        EventKind::FieldsUpdated => {
            if let Some(changes) = d.get("changes").and_then(Value::as_object) {
                for (field, ch) in changes {
                    let null = Value::Null;
                    change_sentences(
                        field,
                        ch.get("old").unwrap_or(&null),
                        ch.get("new").unwrap_or(&null),
                        &mut sentences,
                    );
                }
            }
            if sentences.is_empty() {
                sentences.push("Fields updated".to_string());
            }
        }
    }
    let by = match &e.actor {
        Actor::Admin(id) if id == me => "by you".to_string(),
        // Another admin by email; one since removed reads "by an admin".
        Actor::Admin(id) => admins
            .iter()
            .find(|(a, _)| a == id)
            .map(|(_, email)| format!("by {email}"))
            .unwrap_or_else(|| "by an admin".to_string()),
        Actor::Api => "via the API".to_string(),
        Actor::Visitor | Actor::System => String::new(),
    };
    EventLine {
        sentences,
        by,
        at: when(e.at),
        conversation_id,
        undo,
    }
}

async fn timeline_view(
    state: &AppState,
    s: &AdminSession,
    id: &ContactId,
    cursor: Option<&str>,
) -> Result<TimelineView, StoreError> {
    let page = state
        .store
        .org(&s.org_id)
        .timeline(id, cursor, PAGE)
        .await?;
    // Admin emails only when another admin acted on this page (rare): no extra read otherwise.
    let others = page
        .items
        .iter()
        .any(|e| matches!(&e.actor, Actor::Admin(a) if *a != s.admin_id));
    let admins = if others {
        state.store.org(&s.org_id).admin_emails().await?
    } else {
        vec![]
    };
    // A merge undone is no longer offered for undo (its undo entry is newer, so on this
    // page or an earlier one; an older page may still offer it, and the undo then says so).
    let undone: Vec<&str> = page
        .items
        .iter()
        .filter(|e| e.kind == EventKind::MergeUndone)
        .filter_map(|e| e.data.get("merge_id").and_then(Value::as_str))
        .collect();
    Ok(TimelineView {
        contact_id: id.to_string(),
        items: page
            .items
            .iter()
            .map(|e| {
                let mut line = event_line(e, &s.admin_id, &admins);
                if line.undo.as_deref().is_some_and(|m| undone.contains(&m)) {
                    line.undo = None;
                }
                line
            })
            .collect(),
        next_cursor: page.next_cursor,
    })
}

async fn conversations_view(
    state: &AppState,
    s: &AdminSession,
    id: &ContactId,
    cursor: Option<&str>,
) -> Result<ConversationsView, StoreError> {
    let page = state
        .store
        .org(&s.org_id)
        .contact_conversations(id, cursor, PAGE)
        .await?;
    Ok(ConversationsView {
        contact_id: id.to_string(),
        items: page
            .items
            .iter()
            .map(|c| ConversationLine {
                id: c.id.to_string(),
                website: c.website.name.clone(),
                status: c.status.as_str(),
                message_count: c.message_count,
                preview: c
                    .last_message
                    .as_ref()
                    .map(|m| m.preview.clone())
                    .unwrap_or_default(),
                at: when(
                    c.last_message
                        .as_ref()
                        .map(|m| m.at)
                        .unwrap_or(c.updated_at),
                ),
            })
            .collect(),
        next_cursor: page.next_cursor,
    })
}

#[derive(Deserialize)]
struct CursorQuery {
    #[serde(default)]
    cursor: Option<String>,
}

/// A page error as the page shows it: a bad cursor is a 400, others as usual.
fn page_error(e: StoreError, headers: &HeaderMap) -> Response {
    match e {
        StoreError::BadCursor => ErrorPage::from_api(ApiError::from(e)).into_response(),
        e => gone(e, headers),
    }
}

/// `GET /contacts/{id}/timeline[?cursor=]`: a page of entries (and "Show older").
async fn timeline(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    Query(q): Query<CursorQuery>,
) -> Response {
    match timeline_view(&state, &session, &id, q.cursor.as_deref()).await {
        Ok(tl) => render(StatusCode::OK, &TimelinePartial { tl }),
        Err(e) => page_error(e, &headers),
    }
}

/// `GET /contacts/{id}/conversations[?cursor=]`: a page of conversations (and "Show more").
async fn conversations(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    Path(id): Path<ContactId>,
    Query(q): Query<CursorQuery>,
) -> Response {
    match conversations_view(&state, &session, &id, q.cursor.as_deref()).await {
        Ok(cl) => render(StatusCode::OK, &ConversationsPartial { cl }),
        Err(e) => page_error(e, &headers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_sentences() {
        let mut out = vec![];
        change_sentences("email", &json!("a@x"), &json!("b@y"), &mut out);
        change_sentences("name", &Value::Null, &json!("Ada"), &mut out);
        change_sentences("tags", &json!(["vip"]), &json!(["trial"]), &mut out);
        change_sentences(
            "metadata",
            &json!({"plan": "free"}),
            &json!({"plan": "pro", "seats": 3}),
            &mut out,
        );
        assert_eq!(
            out,
            [
                "Email changed from a@x to b@y",
                "Name set to Ada",
                "Tag trial added",
                "Tag vip removed",
                "Metadata plan changed from free to pro",
                "Metadata seats set to 3",
            ]
        );
    }

    #[test]
    fn a_number_stays_a_number() {
        assert_eq!(typed_value(Some(&json!(3)), "4"), json!(4));
        assert_eq!(typed_value(Some(&json!(3)), "four"), json!("four"));
        assert_eq!(typed_value(Some(&json!(true)), "false"), json!(false));
        assert_eq!(typed_value(None, "4"), json!("4"));
    }

    #[test]
    fn times_read_in_utc_minutes() {
        assert_eq!(when(Timestamp(0)), "1970-01-01 00:00 UTC");
    }
}
