//! `/conversations/{id}`: the transcript (oldest first, "Show older" pages back), an agent's
//! reply, escalate, resolve and reopen. New messages arrive live: panel.js opens the admin event
//! stream (`GET /api/v1/events`, the session cookie is its credential) and appends this
//! conversation's messages as text.
//!
//! The reply goes through the same store call as `POST /api/v1/conversations/{id}/messages`
//! (`agent_reply`, then `state.publish` for the widget and other panels) and answers
//! `HX-Trigger: {"kith-message": <the message as the API writes it>}`: panel.js appends it
//! through the same function as a streamed one, so a reply shows once whichever comes first.
//!
//! A resolved conversation offers "Reopen" (the store call of
//! `POST /api/v1/conversations/{id}/reopen`); a visitor's next message reopens it too.

use super::auth::{CsrfForm, PanelSession};
use super::contact::when;
use super::{is_htmx, render, Chrome, ErrorPage};
use crate::error::ApiError;
use crate::routes::widget::message_text;
use crate::state::AppState;
use crate::views;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kith_core::conversation::AuthorKind;
use kith_core::timeline::Actor;
use kith_core::ConversationId;
use kith_store::{AdminSession, Conversation, Message, StoreError};
use serde::Deserialize;

/// Messages per page of the transcript.
const PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}", get(show))
        .route("/conversations/{id}/messages", get(older))
        .route("/conversations/{id}/reply", post(reply))
        .route("/conversations/{id}/escalate", post(escalate))
        .route("/conversations/{id}/resolve", post(resolve))
        .route("/conversations/{id}/reopen", post(reopen))
}

pub struct MessageLine {
    pub id: String,
    pub author: &'static str,
    pub author_label: &'static str,
    pub body: String,
    pub at: String,
}

impl MessageLine {
    fn new(m: &Message) -> MessageLine {
        MessageLine {
            id: m.id.clone(),
            author: m.author.as_str(),
            author_label: match m.author {
                AuthorKind::Visitor => "Visitor",
                AuthorKind::Agent => "Agent",
                AuthorKind::Bot => "Bot",
                AuthorKind::System => "System",
            },
            body: m.body.clone(),
            at: when(m.created_at),
        }
    }
}

/// The status line and its buttons.
pub struct StatusView {
    pub id: String,
    pub status: &'static str,
    pub website: String,
    pub contact_id: String,
    pub contact_name: String,
}

impl StatusView {
    fn is(&self, s: &str) -> bool {
        self.status == s
    }
}

pub struct MessagesView {
    pub conversation_id: String,
    pub items: Vec<MessageLine>,
    /// Older messages exist: "Show older" pages back from here.
    pub before: Option<String>,
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage {
    chrome: Chrome,
    st: StatusView,
    ms: MessagesView,
}

#[derive(Template)]
#[template(path = "conversation/status.html")]
struct StatusPartial {
    st: StatusView,
}

#[derive(Template)]
#[template(path = "conversation/messages.html")]
struct MessagesPartial {
    ms: MessagesView,
}

fn not_found(e: StoreError) -> Response {
    match e {
        StoreError::NotFound => ErrorPage::new(
            StatusCode::NOT_FOUND,
            "Conversation not found",
            "There is no such conversation in this organization.",
        )
        .into_response(),
        e => ErrorPage::from_api(e.into()).into_response(),
    }
}

async fn status_view(
    state: &AppState,
    s: &AdminSession,
    c: &Conversation,
) -> Result<StatusView, StoreError> {
    let contact = state.store.org(&s.org_id).contact(&c.contact_id).await?;
    let contact_name = contact
        .name
        .or(contact.email)
        .or(contact.user_id)
        .unwrap_or_else(|| "Anonymous lead".into());
    Ok(StatusView {
        id: c.id.to_string(),
        status: c.status.as_str(),
        website: c.website.name.clone(),
        contact_id: c.contact_id.to_string(),
        contact_name,
    })
}

/// `GET /conversations/{id}`
async fn show(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    Path(id): Path<ConversationId>,
) -> Response {
    let org = state.store.org(&session.org_id);
    let (conv, page) = match org.conversation_with_messages(&id, PAGE).await {
        Ok(x) => x,
        Err(e) => return not_found(e),
    };
    let st = match status_view(&state, &session, &conv).await {
        Ok(s) => s,
        Err(e) => return not_found(e),
    };
    let page = ConversationPage {
        chrome: Chrome::new(&session, "contacts"),
        st,
        ms: MessagesView {
            conversation_id: id.to_string(),
            items: page.items.iter().map(MessageLine::new).collect(),
            before: page.next_cursor,
        },
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct OlderQuery {
    #[serde(default)]
    before: Option<String>,
}

/// `GET /conversations/{id}/messages?before=`: the page of older messages (and the next
/// "Show older" above them).
async fn older(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    Path(id): Path<ConversationId>,
    Query(q): Query<OlderQuery>,
) -> Response {
    match state
        .store
        .org(&session.org_id)
        .messages(&id, q.before.as_deref(), PAGE)
        .await
    {
        Ok(page) => render(
            StatusCode::OK,
            &MessagesPartial {
                ms: MessagesView {
                    conversation_id: id.to_string(),
                    items: page.items.iter().map(MessageLine::new).collect(),
                    before: page.next_cursor,
                },
            },
        ),
        Err(StoreError::BadCursor) => {
            ErrorPage::from_api(ApiError::from(StoreError::BadCursor)).into_response()
        }
        Err(e) => not_found(e),
    }
}

/// `POST /conversations/{id}/reply` with `body`: an agent's reply, published like the API's.
async fn reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ConversationId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let text = match message_text(Some(form.field("body"))) {
        Ok(t) => t,
        Err(ApiError::Invalid(v)) => {
            let mut resp = (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The reply {}.", v.message),
            )
                .into_response();
            let h = resp.headers_mut();
            h.insert("hx-retarget", HeaderValue::from_static("#reply-error"));
            h.insert("hx-reswap", HeaderValue::from_static("textContent"));
            return resp;
        }
        Err(e) => return ErrorPage::from_api(e).into_response(),
    };
    let author = Actor::Admin(s.admin_id.clone()).to_string();
    let posted = match state
        .store
        .org(&s.org_id)
        .agent_reply(&id, &author, &text)
        .await
    {
        Ok(p) => p,
        Err(e) => return not_found(e),
    };
    state.publish(&s.org_id, &posted).await;
    if !is_htmx(&headers) {
        return Redirect::to(&format!("/conversations/{id}")).into_response();
    }
    let event = serde_json::json!({ "kith-message": views::Message::from(&posted.message) });
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&event.to_string()) {
        resp.headers_mut().insert("hx-trigger", v);
    }
    resp
}

/// The status line after a change, or the page for a plain form.
async fn status_answer(
    state: &AppState,
    s: &AdminSession,
    headers: &HeaderMap,
    result: Result<Conversation, StoreError>,
) -> Response {
    let conv = match result {
        Ok(c) => c,
        Err(e) => return not_found(e),
    };
    if !is_htmx(headers) {
        return Redirect::to(&format!("/conversations/{}", conv.id)).into_response();
    }
    match status_view(state, s, &conv).await {
        Ok(st) => render(StatusCode::OK, &StatusPartial { st }),
        Err(e) => not_found(e),
    }
}

/// `POST /conversations/{id}/escalate`
async fn escalate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ConversationId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let result = state
        .store
        .org(&s.org_id)
        .escalate_conversation(&id, &Actor::Admin(s.admin_id.clone()))
        .await;
    status_answer(&state, s, &headers, result).await
}

/// `POST /conversations/{id}/resolve`
async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ConversationId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let result = state.store.org(&s.org_id).resolve_conversation(&id).await;
    status_answer(&state, s, &headers, result).await
}

/// `POST /conversations/{id}/reopen`
async fn reopen(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ConversationId>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    let result = state.store.org(&s.org_id).reopen_conversation(&id).await;
    status_answer(&state, s, &headers, result).await
}
