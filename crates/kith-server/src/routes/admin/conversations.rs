//! Conversations: one with its newest messages, paging back, an agent's reply, escalate and
//! resolve, reopen.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody, QueryMap};
use crate::routes::limit_param;
use crate::routes::widget::message_text;
use crate::state::AppState;
use crate::views::{self, Conversation, Message};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use kith_core::ConversationId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}", get(get_conversation))
        .route(
            "/conversations/{id}/messages",
            get(conversation_messages).post(reply),
        )
        .route("/conversations/{id}/escalate", post(escalate))
        .route("/conversations/{id}/resolve", post(resolve))
        .route("/conversations/{id}/reopen", post(reopen))
}

#[derive(Serialize, ToSchema)]
pub struct ConversationList {
    pub items: Vec<Conversation>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// How many of the newest messages `GET /api/v1/conversations/{id}` carries.
const CONVERSATION_MESSAGES: i64 = 50;

#[derive(Serialize, ToSchema)]
pub struct ConversationWithMessages {
    #[serde(flatten)]
    pub conversation: Conversation,
    /// The newest 50 messages, oldest first.
    pub messages: Vec<Message>,
    /// Pass as `before` to `GET /api/v1/conversations/{id}/messages` for older messages;
    /// `null` when `messages` holds them all.
    pub messages_next_cursor: Option<String>,
}

/// A conversation with its newest messages (oldest first); older ones page through
/// `GET /api/v1/conversations/{id}/messages?before=`.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = ConversationWithMessages), (status = 404)),
    security(("bearer" = [])))]
async fn get_conversation(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ConversationId>,
) -> ApiResult<Json<ConversationWithMessages>> {
    let (conversation, page) = admin
        .org(&state)
        .conversation_with_messages(&id, CONVERSATION_MESSAGES)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    Ok(Json(ConversationWithMessages {
        conversation: Conversation::from(&conversation),
        messages: views::all(&page.items),
        messages_next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    /// Oldest first.
    pub items: Vec<Message>,
    /// Pass as `before` for the page of older messages; `null` when there are none.
    pub next_cursor: Option<String>,
}

/// A page of a conversation's messages: the newest `limit` before the `before` cursor,
/// returned oldest first. Without `before`, the newest messages.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path),
           ("before" = Option<String>, Query, description = "from next_cursor (or messages_next_cursor)"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50")),
    responses((status = 200, body = MessageList), (status = 400, description = "undecodable cursor"),
              (status = 404), (status = 422, description = "invalid limit")),
    security(("bearer" = [])))]
async fn conversation_messages(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ConversationId>,
    q: QueryMap,
) -> ApiResult<Json<MessageList>> {
    let limit = limit_param(&q)?;
    let page = admin
        .org(&state)
        .messages(&id, q.one("before"), limit)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    Ok(Json(MessageList {
        items: views::all(&page.items),
        next_cursor: page.next_cursor,
    }))
}

/// An agent's reply.
#[derive(Deserialize, ToSchema)]
pub struct ReplyRequest {
    /// 1 to 10,000 characters after trimming.
    // Optional to serde so a missing body answers 422 naming `body`, as a wrong one does.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 10000)]
    pub body: Option<String>,
}

/// An agent's reply.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path)), request_body = ReplyRequest,
    responses((status = 201, body = Message), (status = 404), (status = 422)),
    security(("bearer" = [])))]
async fn reply(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ConversationId>,
    JsonBody(body): JsonBody<ReplyRequest>,
) -> ApiResult<impl IntoResponse> {
    let text = message_text(body.body.as_deref())?;
    let posted = admin
        .org(&state)
        .agent_reply(&id, &admin.author_id(), &text)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    state.publish(&admin.org_id, &posted).await;
    Ok((StatusCode::CREATED, Json(Message::from(&posted.message))))
}

/// Mark a conversation escalated (no change when it already is).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/escalate", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404)),
    security(("bearer" = [])))]
async fn escalate(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ConversationId>,
) -> ApiResult<Json<Conversation>> {
    let conversation = admin
        .org(&state)
        .escalate_conversation(&id, &admin.actor)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    Ok(Json(Conversation::from(&conversation)))
}

/// Mark a conversation resolved. A visitor's next message reopens it.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/resolve", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404)),
    security(("bearer" = [])))]
async fn resolve(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ConversationId>,
) -> ApiResult<Json<Conversation>> {
    let conversation = admin
        .org(&state)
        .resolve_conversation(&id)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    Ok(Json(Conversation::from(&conversation)))
}

/// Reopen a resolved conversation; an open or escalated one is answered unchanged.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/reopen", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404)),
    security(("bearer" = [])))]
async fn reopen(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ConversationId>,
) -> ApiResult<Json<Conversation>> {
    let conversation = admin
        .org(&state)
        .reopen_conversation(&id)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    Ok(Json(Conversation::from(&conversation)))
}
