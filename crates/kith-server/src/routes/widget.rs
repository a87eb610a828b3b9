//! Widget API (`/api/widget/v1`): what the chat widget calls from the customer's website.
//! Every answer shows the visitor only what it may see (SPEC rule 6): its conversations and
//! messages, never the stored profile of its contact.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, JsonBody, QueryMap, VisitorAuth, WidgetSite};
use crate::metrics;
use crate::routes::limit_param;
use crate::state::AppState;
use crate::token;
use crate::views::{self, LastMessage};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use kith_core::contact::parse_message_body;
use kith_core::conversation::idempotency_key;
use kith_core::identity::{Claim, IdentifyError, Unverified};
use kith_core::identity_token::TokenClaimError;
use kith_core::verify::VerificationMode;
use kith_core::{ConversationId, ValidationError, VisitorId};
use kith_store::{new_id, Conversation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", post(session))
        .route("/identify", post(identify))
        .route("/messages", post(post_message))
        .route("/conversations", get(conversations))
        .route("/conversations/{id}/messages", get(messages))
        .route("/conversations/{id}/escalate", post(escalate))
        .route("/events", get(events))
}

#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    /// Keep this in a first-party cookie and send it as `X-Kith-Visitor`.
    pub visitor_token: String,
}

/// Start or resume a visitor session. Writes nothing for a visitor that never wrote.
#[utoipa::path(post, path = "/api/widget/v1/session", tag = "widget",
    params(("X-Kith-Visitor" = Option<String>, Header, description = "a token from an earlier session")),
    request_body(content = Option<Object>, description = "`{}`, or no body"),
    responses((status = 200, body = SessionResponse), (status = 401, description = "unknown website"),
              (status = 429, description = "too many new sessions from this IP")))]
async fn session(
    State(state): State<AppState>,
    WidgetSite(website): WidgetSite,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    _body: JsonBody,
) -> ApiResult<Json<SessionResponse>> {
    let sent = headers
        .get("x-kith-visitor")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| {
            token::verify(&website.token_secret, website.id.as_str(), t.trim())
                .map(|id| (t.trim().to_string(), id))
        });
    if let Some((token, visitor_id)) = sent {
        // A returning visitor's page view is a widget call like any other (SPEC "Limits").
        state
            .limiters
            .per_visitor
            .check(&visitor_id)
            .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
        state
            .store
            .website(&website)
            .visitor_session(&VisitorId::new(visitor_id))
            .await?;
        return Ok(Json(SessionResponse {
            visitor_token: token,
        }));
    }
    state
        .limiters
        .sessions_per_ip
        .check(&ip.to_string())
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let visitor_id = new_id();
    Ok(Json(SessionResponse {
        visitor_token: token::issue(&website.token_secret, website.id.as_str(), &visitor_id),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct IdentifyResponse {
    /// The matched contact, or `null` until the visitor's first message creates one.
    pub contact_id: Option<String>,
    /// `lead`, `customer` or `null`.
    pub status: Option<String>,
}

/// What `identify` reads. Text is trimmed; empty or `null` is absent. `Claim::from_identify`
/// turns it into the domain claim and checks the hash.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct IdentifyRequest {
    /// Needs a valid `user_hash` (else 401).
    #[serde(
        default,
        deserialize_with = "user_id_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(max_length = 255)]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, format = Email)]
    pub email: Option<String>,
    /// Lowercase hex HMAC-SHA256(identity_secret, user_id as sent — or email when no user_id).
    /// Refused (401 `user_hash_not_accepted`) by a website in `jwt-only` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_hash: Option<String>,
    /// A JWT signed with HS256 under the website's identity secret, carrying `user_id` and/or
    /// `email` (optionally `name`, `phone`, `company`, `metadata`), `exp` at most 24 h ahead,
    /// `iat`. Its claims are verified identity. Fields beside the token are unverified: `name`,
    /// `phone`, `company` and `metadata` only fill values the contact lacks, an `email` the
    /// token lacks is an unproven email, a `user_id` or `email` contradicting the token's is
    /// refused (422), a `user_hash` is ignored.
    /// Refusals answer 401 with a code naming the reason (`token_expired`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 8192)]
    pub identity_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub name: Option<String>,
    /// E.164, e.g. +14155550100 (spaces, dashes, dots and parentheses are dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub company: Option<String>,
    /// Fills keys the contact lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::metadata_schema)]
    pub metadata: Option<Value>,
}

/// `user_id` as text or `null`. The hash covers the id exactly as sent, so a number would be
/// ambiguous (42 vs 42.0): the 422 asks for the text the app hashed.
fn user_id_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string (send numeric ids as text, e.g. \"42\")")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(s.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Text)
}

/// Beside an identity token the token's claims are the verified identity. The body may
/// repeat its `user_id` unchanged (a different one would be a second, unproven person: 422).
/// An `email` the token lacks is taken as an unproven email (as beside a `user_hash` that
/// covers only the user id); one that contradicts the token's is refused (422). `name`,
/// `phone`, `company` and `metadata` outside the token are unverified: they only fill fields
/// the contact lacks. A `user_hash` beside a token proves nothing more and is ignored.
fn with_fields_beside_a_token(body: &IdentifyRequest, mut claim: Claim) -> Result<Claim, ApiError> {
    let differs = |field: &str, why: &str| {
        ApiError::Invalid(ValidationError::new(
            field,
            format!("differs from the identity_token's claim: {why}"),
        ))
    };
    if let Some(u) = body.user_id.as_deref().filter(|u| !u.trim().is_empty()) {
        if claim.user_id.as_ref().map(|t| t.as_str()) != Some(u.trim()) {
            return Err(differs(
                "user_id",
                "a user id is proven only inside the token",
            ));
        }
    }
    // The body's fields, parsed and limited like any identify's (verification is not asked).
    let json = serde_json::json!({
        "email": body.email,
        "name": body.name,
        "phone": body.phone,
        "company": body.company,
        "metadata": body.metadata,
    });
    let beside = Claim::from_identify_with(&json, None).map_err(|e| match e {
        IdentifyError::Invalid(v) => ApiError::Invalid(v),
        IdentifyError::Unverified => ApiError::Internal("no user id, nothing to verify".into()),
    })?;
    match (&claim.email, beside.email) {
        (Some(proven), Some(given)) if proven.key() != given.key() => {
            return Err(differs(
                "email",
                "send one email, inside the token, or none beside it",
            ));
        }
        (None, Some(given)) => {
            claim.email = Some(given);
            claim.email_verified = false;
        }
        _ => {}
    }
    claim.unverified = Unverified {
        name: beside.name,
        phone: beside.phone,
        company: beside.company,
        metadata: beside.metadata,
    };
    Ok(claim)
}

/// Tell Kith who the visitor is (from the customer's app, through the widget SDK).
#[utoipa::path(post, path = "/api/widget/v1/identify", tag = "widget",
    request_body = IdentifyRequest,
    responses((status = 200, body = IdentifyResponse),
              (status = 401, description = "user_id without a valid user_hash or identity_token (`identity_unverified`), an identity_token refused (`token_expired`, `token_not_yet_valid`, `token_bad_signature`, `token_bad_algorithm`, `token_missing_exp`, `token_exp_too_far`, `token_malformed`, `token_missing_identity`), a user_hash on a jwt-only website (`user_hash_not_accepted`), a token on an hmac website (`identity_token_not_accepted`), or no visitor token"),
              (status = 422, description = "invalid value, naming the field")))]
async fn identify(
    State(state): State<AppState>,
    auth: VisitorAuth,
    JsonBody(body): JsonBody<IdentifyRequest>,
) -> ApiResult<Json<IdentifyResponse>> {
    let website = &auth.website;
    let mode = website.verification;
    let secrets = website.verifying_secrets();
    let claim = match body.identity_token.as_deref() {
        Some(token) => {
            if !mode.accepts_token() && mode != VerificationMode::Off {
                return Err(ApiError::Unauthorized {
                    code: "identity_token_not_accepted",
                    message: "this website verifies identities with user_hash only (mode hmac)"
                        .into(),
                });
            }
            // A token is always checked, even with verification off: a token that does not
            // verify is a mistake of the app that minted it, better seen at once.
            let all = std::iter::once(website.identity_secret.as_str())
                .chain(website.previous_identity_secret.as_deref())
                .collect::<Vec<_>>();
            let now_secs = kith_store::now_ms().div_euclid(1000);
            let claim = Claim::from_identity_token(token, &all, now_secs).map_err(|e| match e {
                TokenClaimError::Token(t) => ApiError::Unauthorized {
                    code: t.code(),
                    message: t.message().into(),
                },
                TokenClaimError::Invalid(v) => ApiError::Invalid(ValidationError::new(
                    "identity_token",
                    format!("claim {}: {}", v.field, v.message),
                )),
            })?;
            with_fields_beside_a_token(&body, claim)?
        }
        None => {
            if mode == VerificationMode::JwtOnly
                && body
                    .user_hash
                    .as_deref()
                    .is_some_and(|h| !h.trim().is_empty())
            {
                return Err(ApiError::Unauthorized {
                    code: "user_hash_not_accepted",
                    message:
                        "this website verifies identities with identity_token only (mode jwt-only)"
                            .into(),
                });
            }
            // The domain parser reads the claim as JSON (absent fields stay absent). In
            // jwt-only mode no secret verifies a hash: a user id without a token is refused.
            let json =
                serde_json::to_value(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
            let secrets: Option<Vec<&str>> = match mode {
                VerificationMode::JwtOnly => Some(Vec::new()),
                _ => secrets,
            };
            Claim::from_identify_with(&json, secrets.as_deref()).map_err(|e| match e {
                IdentifyError::Invalid(v) => ApiError::Invalid(v),
                IdentifyError::Unverified => ApiError::Unauthorized {
                    code: "identity_unverified",
                    message: if mode == VerificationMode::JwtOnly {
                        "a user_id needs a valid identity_token (this website is jwt-only)".into()
                    } else {
                        "a user_id needs a valid user_hash (HMAC-SHA256 of the user_id with the website's identity secret) or identity_token".into()
                    },
                },
            })?
        }
    };
    let out = state
        .store
        .website(&auth.website)
        .identify(&auth.visitor_id, &claim)
        .await?;
    metrics::identify();
    if out.switched {
        state
            .publish_visitor_switch(
                &auth.website.org_id,
                &auth.visitor_id,
                out.contact_id.as_ref(),
            )
            .await;
    }
    Ok(Json(IdentifyResponse {
        contact_id: out.contact_id.map(|id| id.into_string()),
        status: out.status.map(|s| s.as_str().to_string()),
    }))
}

/// A visitor's message.
#[derive(Deserialize, ToSchema)]
pub struct PostMessageRequest {
    /// 1 to 10,000 characters after trimming.
    // Optional to serde so a missing body answers 422 naming `body`, as a wrong one does.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 10000)]
    pub body: Option<String>,
    /// Omit to start a new conversation.
    #[serde(default)]
    pub conversation_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PostMessageResponse {
    pub message_id: String,
    pub conversation_id: String,
    pub contact_id: String,
}

/// The text of a message body as `parse_message_body` accepts it; 422 naming `body` otherwise.
pub(crate) fn message_text(body: Option<&str>) -> Result<String, ApiError> {
    match body {
        Some(s) => Ok(parse_message_body(s)?),
        None => Err(ValidationError::new("body", "is required").into()),
    }
}

/// Send a visitor message. The first one creates the contact (or finds it, SPEC rule 2).
/// With `Idempotency-Key`, sending the same key again within 24 hours answers the first
/// message again (201, same ids) and writes nothing: a retry after a lost answer is safe.
#[utoipa::path(post, path = "/api/widget/v1/messages", tag = "widget",
    params(("Idempotency-Key" = Option<String>, Header,
            description = "1–64 printable ASCII characters; the same key again within 24 h answers the first message")),
    request_body = PostMessageRequest,
    responses((status = 201, body = PostMessageResponse),
              (status = 404, description = "a conversation this visitor may not see"),
              (status = 422, description = "invalid body")))]
async fn post_message(
    State(state): State<AppState>,
    auth: VisitorAuth,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PostMessageRequest>,
) -> ApiResult<impl IntoResponse> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            idempotency_key(v.to_str().map_err(|_| {
                ValidationError::new("Idempotency-Key", "must be printable ASCII without spaces")
            })?)?
            .to_string(),
        ),
        None => None,
    };
    let text = message_text(body.body.as_deref())?;
    let conversation_id = body.conversation_id.map(|s| ConversationId::new(s.trim()));
    // The write and its announcement run to their end in a task of their own, whether or not
    // the client still waits: on PostgreSQL a queued message is written with its batch even
    // when its request goes away, and must still reach the agents.
    let posted = tokio::spawn(async move {
        let posted = state
            .store
            .website(&auth.website)
            .visitor_message(
                &auth.visitor_id,
                &text,
                conversation_id.as_ref(),
                key.as_deref(),
            )
            .await?;
        if !posted.replayed {
            state.publish(&auth.website.org_id, &posted).await;
            metrics::visitor_message();
        }
        Ok::<_, kith_store::StoreError>(posted)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    .map_err(ApiError::not_found_as("conversation"))?;
    Ok((
        StatusCode::CREATED,
        Json(PostMessageResponse {
            message_id: posted.message.id,
            conversation_id: posted.conversation.id.into_string(),
            contact_id: posted.contact_id.into_string(),
        }),
    ))
}

/// A conversation as the widget shows it: no contact data.
#[derive(Serialize, ToSchema)]
pub struct WidgetConversation {
    pub id: String,
    pub status: String,
    pub message_count: i64,
    pub last_message: Option<LastMessage>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Conversation> for WidgetConversation {
    fn from(c: Conversation) -> Self {
        WidgetConversation {
            id: c.id.into_string(),
            status: c.status.as_str().to_string(),
            message_count: c.message_count,
            last_message: c.last_message.as_ref().map(LastMessage::from),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WidgetConversations {
    pub items: Vec<WidgetConversation>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The conversations this visitor may see on this website (SPEC rule 6), newest activity
/// first.
#[utoipa::path(get, path = "/api/widget/v1/conversations", tag = "widget",
    params(("cursor" = Option<String>, Query, description = "from next_cursor"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50")),
    responses((status = 200, body = WidgetConversations), (status = 400, description = "undecodable cursor"),
              (status = 422, description = "invalid limit")))]
async fn conversations(
    State(state): State<AppState>,
    auth: VisitorAuth,
    q: QueryMap,
) -> ApiResult<Json<WidgetConversations>> {
    let limit = limit_param(&q)?;
    let page = state
        .store
        .website(&auth.website)
        .visitor_conversations(&auth.visitor_id, q.one("cursor"), limit)
        .await?;
    Ok(Json(WidgetConversations {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct WidgetMessages {
    /// Oldest first.
    pub items: Vec<views::Message>,
    /// Pass as `before` for the page of older messages; `null` when there are none.
    pub next_cursor: Option<String>,
}

/// A page of the messages of a conversation this visitor may see: the newest `limit` before
/// the `before` cursor, returned oldest first. Without `before`, the newest messages.
#[utoipa::path(get, path = "/api/widget/v1/conversations/{id}/messages", tag = "widget",
    params(("id" = String, Path),
           ("before" = Option<String>, Query, description = "from next_cursor"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50")),
    responses((status = 200, body = WidgetMessages), (status = 400, description = "undecodable cursor"),
              (status = 404, description = "not visible to this visitor"),
              (status = 422, description = "invalid limit")))]
async fn messages(
    State(state): State<AppState>,
    auth: VisitorAuth,
    Path(id): Path<ConversationId>,
    q: QueryMap,
) -> ApiResult<Json<WidgetMessages>> {
    let limit = limit_param(&q)?;
    let page = state
        .store
        .website(&auth.website)
        .visitor_messages(&auth.visitor_id, &id, q.one("before"), limit)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    Ok(Json(WidgetMessages {
        items: page.items.iter().map(views::Message::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Ask for a human. Escalating an escalated conversation changes nothing.
#[utoipa::path(post, path = "/api/widget/v1/conversations/{id}/escalate", tag = "widget",
    params(("id" = String, Path)),
    responses((status = 200, body = WidgetConversation), (status = 404, description = "not visible to this visitor")))]
async fn escalate(
    State(state): State<AppState>,
    auth: VisitorAuth,
    Path(id): Path<ConversationId>,
) -> ApiResult<Json<WidgetConversation>> {
    let conv = state
        .store
        .website(&auth.website)
        .visitor_escalate(&auth.visitor_id, &id)
        .await
        .map_err(ApiError::not_found_as("conversation"))?;
    Ok(Json(conv.into()))
}

/// How often an event stream re-reads its visitor when no event concerns it: a merge or a
/// link may have given the visitor a contact whose events it did not recognise yet.
const STREAM_VISITOR_REFRESH: Duration = Duration::from_secs(5);

/// Events a stream takes from its queue at once; one visitor read serves them all.
const STREAM_BATCH: usize = 256;

/// Server-Sent Events: `message` events for new messages in the conversations this visitor
/// may see. EventSource cannot send headers, so `?website_key=&visitor_token=` work too.
/// Streams are capped per visitor and per client IP (429 past the cap).
#[utoipa::path(get, path = "/api/widget/v1/events", tag = "widget",
    responses((status = 200, description = "text/event-stream of `message` events (data: a message)"),
              (status = 429, description = "too many calls, or too many open streams for this visitor or IP")))]
async fn events(
    State(state): State<AppState>,
    auth: VisitorAuth,
    ClientIp(ip): ClientIp,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let too_many = ApiError::TooManyStreams;
    // Held for the stream's life: the slots free themselves when the client goes away.
    let visitor_slot = state
        .limiters
        .streams_per_visitor
        .acquire(auth.visitor_id.as_str())
        .ok_or(too_many("visitor"))?;
    let ip_slot = state
        .limiters
        .streams_per_ip
        .acquire(&ip.to_string())
        .ok_or(too_many("address"))?;
    let mut rx = state.bus.subscribe();
    let mut switches = state.bus.subscribe_switches();
    let website = auth.website.clone();
    let visitor_id = auth.visitor_id.clone();
    // The contact this stream serves. When the visitor later turns out to be linked to
    // another contact (a log-out/log-in switch of SPEC rule 4, or a merge), the stream ends:
    // a shared browser never receives the previous person's replies, and the widget reopens
    // the stream for whoever it is now (issue 20).
    let mut opened_for = state
        .store
        .website(&website)
        .visitor(&visitor_id)
        .await?
        .and_then(|v| v.contact_id);
    let stream = async_stream::stream! {
        let _slots = (visitor_slot, ip_slot);
        let _gauge = metrics::SseGuard::new();
        yield Ok(Event::default().event("ready").data(json!({"visitor": "ok"}).to_string()));
        // Work per event is bounded: events of other websites and other contacts cost no
        // query; the visitor is re-read once per batch of events that concern it (read after
        // they arrived, so never staler than they are) and otherwise at most every
        // STREAM_VISITOR_REFRESH; visibility is checked once per conversation in a batch.
        let mut visitor: Option<kith_store::Visitor> = None;
        let mut refreshed: Option<Instant> = None;
        let mut batch = Vec::with_capacity(16);
        loop {
            batch.clear();
            let next = tokio::select! {
                ev = rx.recv() => ev,
                switch = switches.recv() => match switch {
                    // This visitor is somebody else now: end at once, before any event of
                    // the new person could be judged against the old one.
                    Ok(s) if s.org_id == website.org_id
                        && s.visitor_id == visitor_id
                        && s.now_for.as_ref().map(|c| c.as_str()) != opened_for.as_deref() => break,
                    Ok(_) => continue,
                    // Switches missed while lagging: re-read the visitor with the next batch.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        refreshed = None;
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            };
            match next {
                Ok(ev) => batch.push(ev),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
            while batch.len() < STREAM_BATCH {
                match rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
            batch.retain(|ev| ev.org_id == website.org_id && ev.website_id == website.id);
            if batch.is_empty() {
                continue;
            }
            let contact_of = |v: &Option<kith_store::Visitor>| {
                v.as_ref().and_then(|v| v.contact_id.clone())
            };
            let known = contact_of(&visitor);
            let concerns_it = batch.iter().any(|ev| {
                ev.starter_visitor_id == visitor_id
                    || known.as_deref() == Some(ev.contact_id.as_str())
            });
            if concerns_it || refreshed.is_none_or(|t| t.elapsed() > STREAM_VISITOR_REFRESH) {
                visitor = state.store.website(&website).visitor(&visitor_id).await.ok().flatten();
                refreshed = Some(Instant::now());
            }
            let now_for = contact_of(&visitor);
            if opened_for.is_some() && now_for != opened_for {
                break;
            }
            if opened_for.is_none() && now_for.is_some() {
                opened_for = now_for;
            }
            let Some(v) = &visitor else { continue };
            let Some(contact_id) = v.contact_id.as_deref() else { continue };
            let mut decided: Vec<(ConversationId, bool)> = Vec::new();
            for ev in batch.iter().filter(|ev| ev.contact_id == contact_id) {
                let visible = match decided.iter().find(|(id, _)| *id == ev.conversation_id) {
                    Some((_, seen)) => *seen,
                    None => {
                        let seen = state
                            .store
                            .website(&website)
                            .visitor_sees(v, &ev.conversation_id)
                            .await
                            .unwrap_or(false);
                        decided.push((ev.conversation_id.clone(), seen));
                        seen
                    }
                };
                if visible {
                    if let Ok(data) = serde_json::to_string(&ev.message) {
                        yield Ok(Event::default().event("message").data(data));
                    }
                }
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
