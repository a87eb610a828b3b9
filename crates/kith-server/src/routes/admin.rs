//! Admin API (`/api/v1`): contacts, their timelines and conversations, conversations, and
//! websites. The organization always comes from the credential.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody, QueryMap};
use crate::realtime::MessageJson;
use crate::routes::widget::message_body;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use kith_core::contact::ProfilePatch;
use kith_core::filter::{search_term, tag_key, ListFilter, Sort};
use kith_core::{Status, ValidationError};
use kith_store::{Contact, ContactList, Conversation, Message, TimelineEvent, WebsiteView};
use serde::Serialize;
use serde_json::Value;
use std::convert::Infallible;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list_contacts))
        .route("/lists", get(lists).post(create_list))
        .route(
            "/lists/{id}",
            get(get_list).patch(update_list).delete(delete_list),
        )
        .route("/contacts/{id}", get(get_contact).patch(patch_contact))
        .route("/contacts/{id}/timeline", get(timeline))
        .route("/contacts/{id}/conversations", get(contact_conversations))
        .route("/conversations/{id}", get(get_conversation))
        .route(
            "/conversations/{id}/messages",
            get(conversation_messages).post(reply),
        )
        .route("/conversations/{id}/escalate", post(escalate))
        .route("/conversations/{id}/resolve", post(resolve))
        .route("/websites", get(websites).post(create_website))
        .route("/events", get(events))
}

/// `limit`: 1 to 200, `default` when absent; anything else answers 422 naming `limit`.
pub(crate) fn limit_param(q: &QueryMap, default: i64) -> ApiResult<i64> {
    match q.one("limit") {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                ValidationError::new("limit", "must be a whole number from 1 to 200").into()
            }),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ContactPage {
    pub items: Vec<Contact>,
    /// Exact number of contacts matching.
    pub total: i64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What `GET /api/v1/contacts` reads from its query string, apart from `list` (a stored
/// filter, looked up by the handler) and `cursor` (decoded by the store).
pub struct ContactQuery {
    /// The ad-hoc conditions: `status`, every `tag`, `q` and `filter`, combined with AND.
    pub filter: ListFilter,
    pub sort: Sort,
    pub limit: i64,
}

/// Turns the query pairs of `GET /api/v1/contacts` into a filter, an order and a page size,
/// or the 422 naming the bad parameter. Pure, so it is fuzzed as it is (fuzz/).
pub fn filter_from_query(q: &QueryMap) -> ApiResult<ContactQuery> {
    let limit = limit_param(q, 50)?;
    let sort = match q.one("sort") {
        Some(s) => Sort::parse(s)?,
        None => Sort::default(),
    };
    let mut adhoc = ListFilter::default();
    if let Some(s) = q.one("status") {
        adhoc.status.push(
            Status::parse(s.trim())
                .ok_or_else(|| ValidationError::new("status", "must be lead or customer"))?,
        );
    }
    let tags = q.all("tag");
    if tags.len() > kith_core::limits::TAGS_MAX {
        return Err(ValidationError::new("tag", "at most 100 tags").into());
    }
    for t in tags {
        adhoc.tags_all.push(tag_key("tag", t)?);
    }
    if let Some(text) = q.one("q") {
        adhoc.q.extend(search_term("q", text)?);
    }
    if let Some(raw) = q.one("filter") {
        let v: Value = serde_json::from_str(raw)
            .map_err(|_| ValidationError::new("filter", "must be a JSON object"))?;
        adhoc = adhoc.and(ListFilter::parse(&v)?);
    }
    Ok(ContactQuery {
        filter: adhoc,
        sort,
        limit,
    })
}

/// Contacts of a list and/or matching ad-hoc filters, one page in the chosen order, with the
/// exact total. All given parameters combine with AND.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts",
    params(("list" = Option<String>, Query, description = "a list id: all, leads, customers or a custom list"),
           ("status" = Option<String>, Query, description = "lead or customer"),
           ("tag" = Option<Vec<String>>, Query, description = "may repeat: contacts with all of them"),
           ("q" = Option<String>, Query, description = "case-insensitive substring of name, email, phone, company, user_id or a metadata value"),
           ("filter" = Option<String>, Query, description = "a full filter as JSON (the lists' filter shape)"),
           ("sort" = Option<String>, Query, description = "last_seen_at, created_at or name; leading - for descending; default -last_seen_at"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50"),
           ("cursor" = Option<String>, Query, description = "from next_cursor")),
    responses((status = 200, body = ContactPage), (status = 400, description = "undecodable cursor"),
              (status = 404, description = "unknown list"),
              (status = 422, description = "invalid parameter, naming it")),
    security(("bearer" = [])))]
async fn list_contacts(
    State(state): State<AppState>,
    admin: Admin,
    q: QueryMap,
) -> ApiResult<Json<ContactPage>> {
    let ContactQuery {
        filter: adhoc,
        sort,
        limit,
    } = filter_from_query(&q)?;
    let filter = match q.one("list") {
        Some(id) => state
            .store
            .list_filter(&admin.org_id, id.trim())
            .await
            .map_err(|e| match e {
                kith_store::StoreError::NotFound => ApiError::not_found("list"),
                e => e.into(),
            })?,
        None => ListFilter::default(),
    }
    .and(adhoc);
    let page = state
        .store
        .list_contacts(&admin.org_id, &filter, &sort, q.one("cursor"), limit)
        .await?;
    Ok(Json(ContactPage {
        items: page.items,
        total: page.total.unwrap_or(0),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ListList {
    pub items: Vec<ContactList>,
}

fn list_error(e: kith_store::StoreError) -> ApiError {
    match e {
        kith_store::StoreError::NotFound => ApiError::not_found("list"),
        e => e.into(),
    }
}

/// Every list with its exact count: the built-ins (all, leads, customers), then custom lists.
#[utoipa::path(get, path = "/api/v1/lists", tag = "lists",
    responses((status = 200, body = ListList)), security(("bearer" = [])))]
async fn lists(State(state): State<AppState>, admin: Admin) -> ApiResult<Json<ListList>> {
    Ok(Json(ListList {
        items: state.store.lists(&admin.org_id).await?,
    }))
}

/// One list with its exact count.
#[utoipa::path(get, path = "/api/v1/lists/{id}", tag = "lists",
    params(("id" = String, Path)),
    responses((status = 200, body = ContactList), (status = 404)), security(("bearer" = [])))]
async fn get_list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<ContactList>> {
    Ok(Json(
        state
            .store
            .list(&admin.org_id, &id)
            .await
            .map_err(list_error)?,
    ))
}

/// A new list (a schema only: `list_body` parses the JSON itself to name the field at fault).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ListRequest {
    /// 1 to 255 characters after trimming.
    #[schema(min_length = 1, max_length = 255)]
    name: String,
    /// Omitted or `null`: every contact.
    #[schema(schema_with = crate::openapi::filter_schema)]
    filter: Option<Value>,
}

/// A list edit: each given field replaces the list's.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ListPatchRequest {
    #[schema(min_length = 1, max_length = 255)]
    name: Option<String>,
    #[schema(schema_with = crate::openapi::filter_schema)]
    filter: Option<Value>,
}

fn list_body(body: &Value, require: bool) -> ApiResult<(Option<String>, Option<ListFilter>)> {
    let name = match body.get("name") {
        None | Some(Value::Null) if !require => None,
        Some(Value::String(s)) => Some(s.clone()),
        _ => return Err(ValidationError::new("name", "is required (a string)").into()),
    };
    let filter = match body.get("filter") {
        None | Some(Value::Null) if !require => None,
        None | Some(Value::Null) => Some(ListFilter::default()),
        Some(v) => Some(ListFilter::parse(v)?),
    };
    Ok((name, filter))
}

/// Save a segment.
#[utoipa::path(post, path = "/api/v1/lists", tag = "lists", request_body = ListRequest,
    responses((status = 201, body = ContactList), (status = 422, description = "invalid filter, naming the field")),
    security(("bearer" = [])))]
async fn create_list(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody,
) -> ApiResult<impl IntoResponse> {
    let (name, filter) = list_body(&body, true)?;
    let list = state
        .store
        .create_list(
            &admin.org_id,
            &name.unwrap_or_default(),
            &filter.unwrap_or_default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(list)))
}

/// Rename or re-filter a custom list. Built-ins answer 409 `builtin_list`.
#[utoipa::path(patch, path = "/api/v1/lists/{id}", tag = "lists",
    params(("id" = String, Path)), request_body = ListPatchRequest,
    responses((status = 200, body = ContactList), (status = 404), (status = 409, description = "`builtin_list`"), (status = 422)),
    security(("bearer" = [])))]
async fn update_list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<ContactList>> {
    let (name, filter) = list_body(&body, false)?;
    Ok(Json(
        state
            .store
            .update_list(&admin.org_id, &id, name.as_deref(), filter.as_ref())
            .await
            .map_err(list_error)?,
    ))
}

/// Delete a custom list. Built-ins answer 409 `builtin_list`.
#[utoipa::path(delete, path = "/api/v1/lists/{id}", tag = "lists",
    params(("id" = String, Path)),
    responses((status = 200, body = crate::openapi::Deleted), (status = 404), (status = 409, description = "`builtin_list`")),
    security(("bearer" = [])))]
async fn delete_list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state
        .store
        .delete_list(&admin.org_id, &id)
        .await
        .map_err(list_error)?;
    Ok(Json(serde_json::json!({"id": id, "deleted": true})))
}

fn contact_error(e: kith_store::StoreError) -> ApiError {
    match e {
        kith_store::StoreError::NotFound => ApiError::not_found("contact"),
        e => e.into(),
    }
}

/// One contact with its stats. A merged id answers 404 `merged` with `merged_into`.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path)),
    responses((status = 200, body = Contact), (status = 404, description = "`not_found`, or `merged` with `merged_into`")),
    security(("bearer" = [])))]
async fn get_contact(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Contact>> {
    Ok(Json(
        state
            .store
            .contact(&admin.org_id, &id)
            .await
            .map_err(contact_error)?,
    ))
}

/// An admin's edit (a schema only: `ProfilePatch::parse` reads the JSON). Text is trimmed;
/// `null` or empty clears; other fields (`id`, stats, `status`, times) are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ContactPatchRequest {
    /// `null` clears. Setting one makes the contact a customer; clearing makes it a lead.
    #[schema(max_length = 255)]
    user_id: Option<String>,
    #[schema(max_length = 255, format = Email)]
    email: Option<String>,
    #[schema(max_length = 255)]
    name: Option<String>,
    /// E.164, e.g. +14155550100 (spaces, dashes, dots and parentheses are dropped).
    #[schema(max_length = 255)]
    phone: Option<String>,
    #[schema(max_length = 255)]
    company: Option<String>,
    #[schema(schema_with = crate::openapi::tags_schema)]
    tags: Option<Vec<String>>,
    /// Merges keys; a `null` value deletes the key.
    #[schema(schema_with = crate::openapi::metadata_schema)]
    metadata: Option<Value>,
}

/// Edit a contact. Never merges: an email or user_id another contact holds answers 409.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path)), request_body = ContactPatchRequest,
    responses((status = 200, body = Contact),
              (status = 409, description = "`conflict` with `field` and `contact_id` of the holder"),
              (status = 422, description = "invalid value, naming the field")),
    security(("bearer" = [])))]
async fn patch_contact(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Contact>> {
    let patch = ProfilePatch::parse(&body)?;
    Ok(Json(
        state
            .store
            .patch_contact(&admin.org_id, &id, &patch, &admin.actor)
            .await
            .map_err(contact_error)?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct TimelinePage {
    pub items: Vec<TimelineEvent>,
    pub next_cursor: Option<String>,
}

/// A contact's activity, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", tag = "contacts",
    params(("id" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = TimelinePage)),
    security(("bearer" = [])))]
async fn timeline(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    q: QueryMap,
) -> ApiResult<Json<TimelinePage>> {
    let limit = limit_param(&q, 50)?;
    let page = state
        .store
        .timeline(&admin.org_id, &id, q.one("cursor"), limit)
        .await
        .map_err(contact_error)?;
    Ok(Json(TimelinePage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ConversationList {
    pub items: Vec<Conversation>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The contact's conversations across the organization's websites, newest activity first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/conversations", tag = "contacts",
    params(("id" = String, Path),
           ("cursor" = Option<String>, Query, description = "from next_cursor"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50")),
    responses((status = 200, body = ConversationList), (status = 400, description = "undecodable cursor"),
              (status = 404, description = "`not_found`, or `merged` with `merged_into`"),
              (status = 422, description = "invalid limit")),
    security(("bearer" = [])))]
async fn contact_conversations(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    q: QueryMap,
) -> ApiResult<Json<ConversationList>> {
    let limit = limit_param(&q, 50)?;
    let page = state
        .store
        .contact_conversations(&admin.org_id, &id, q.one("cursor"), limit)
        .await
        .map_err(contact_error)?;
    Ok(Json(ConversationList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

fn conversation_error(e: kith_store::StoreError) -> ApiError {
    match e {
        kith_store::StoreError::NotFound => ApiError::not_found("conversation"),
        e => e.into(),
    }
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
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationWithMessages>> {
    let (conversation, page) = state
        .store
        .conversation_with_messages(&admin.org_id, &id, CONVERSATION_MESSAGES)
        .await
        .map_err(conversation_error)?;
    Ok(Json(ConversationWithMessages {
        conversation,
        messages: page.items,
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
    Path(id): Path<String>,
    q: QueryMap,
) -> ApiResult<Json<MessageList>> {
    let limit = limit_param(&q, 50)?;
    let page = state
        .store
        .messages(&admin.org_id, &id, q.one("before"), limit)
        .await
        .map_err(conversation_error)?;
    Ok(Json(MessageList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// An agent's reply.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path)), request_body = crate::routes::widget::PostMessageRequest,
    responses((status = 201, body = Message), (status = 404), (status = 422)),
    security(("bearer" = [])))]
async fn reply(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<impl IntoResponse> {
    let text = message_body(&body)?;
    let posted = state
        .store
        .agent_reply(&admin.org_id, &id, &admin.author_id(), &text)
        .await
        .map_err(conversation_error)?;
    state.publish(&admin.org_id, &posted).await;
    Ok((StatusCode::CREATED, Json(posted.message)))
}

/// Mark a conversation escalated (no change when it already is).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/escalate", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404)),
    security(("bearer" = [])))]
async fn escalate(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    Ok(Json(
        state
            .store
            .escalate_conversation(&admin.org_id, &id, &admin.actor)
            .await
            .map_err(conversation_error)?,
    ))
}

/// Mark a conversation resolved. A visitor's next message reopens it.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/resolve", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404)),
    security(("bearer" = [])))]
async fn resolve(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    Ok(Json(
        state
            .store
            .resolve_conversation(&admin.org_id, &id)
            .await
            .map_err(conversation_error)?,
    ))
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

/// Server-Sent Events: every new message of the organization (for the admin panel).
#[utoipa::path(get, path = "/api/v1/events", tag = "conversations",
    responses((status = 200, description = "text/event-stream of `message` events"),
              (status = 429, description = "too many calls, or too many open streams for this token")),
    security(("bearer" = [])))]
async fn events(
    State(state): State<AppState>,
    admin: Admin,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Held for the stream's life: the slot frees itself when the client goes away.
    let slot = state
        .limiters
        .streams_per_token
        .acquire(&admin.credential)
        .ok_or(ApiError::TooManyStreams("token"))?;
    let mut rx = state.bus.subscribe();
    let org_id = admin.org_id;
    let stream = async_stream::stream! {
        let _slot = slot;
        let _gauge = crate::metrics::SseGuard::new();
        yield Ok(Event::default().event("ready").data("{}"));
        loop {
            match rx.recv().await {
                Ok(ev) if ev.org_id == org_id => {
                    #[derive(Serialize)]
                    struct Out<'a> { conversation_id: &'a str, contact_id: &'a str, website_id: &'a str, message: &'a MessageJson }
                    let out = Out { conversation_id: &ev.conversation_id, contact_id: &ev.contact_id, website_id: &ev.website_id, message: &ev.message };
                    if let Ok(data) = serde_json::to_string(&out) {
                        yield Ok(Event::default().event("message").data(data));
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
