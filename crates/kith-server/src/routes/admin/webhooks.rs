//! Webhooks: an organization's endpoints (URL, subscribed events, enabled, signing secret)
//! and each endpoint's delivery log. Delivery itself is `crate::webhooks`.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody, QueryMap};
use crate::routes::limit_param;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use kith_core::webhook::{parse_events, parse_url, EventType};
use kith_core::{Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(retry_delivery),
        )
}

/// An endpoint events are delivered to.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// Subscribed event types.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Signs every body (`Kith-Signature`); shown to the organization's admins only.
    pub secret: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&kith_store::WebhookEndpoint> for WebhookView {
    fn from(e: &kith_store::WebhookEndpoint) -> Self {
        WebhookView {
            id: e.id.clone(),
            url: e.url.clone(),
            events: e.events.iter().map(|t| t.as_str().to_string()).collect(),
            enabled: e.enabled,
            secret: e.secret.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptView {
    /// 1 for the first attempt.
    pub attempt: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The receiver's HTTP status; `null` when no answer came (connection refused, timeout).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    /// Sent as `Kith-Webhook-Id`, the same on every attempt: receivers dedupe by it.
    pub id: String,
    /// The event (`id` in the body).
    pub event_id: String,
    pub event_type: String,
    pub contact_id: String,
    /// `pending`, `delivered` or `failed` (gave up after the configured attempts).
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// Pending only.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The body that is sent.
    #[schema(value_type = Object)]
    pub payload: Value,
    pub attempt_log: Vec<WebhookAttemptView>,
}

impl From<&kith_store::WebhookDelivery> for WebhookDeliveryView {
    fn from(d: &kith_store::WebhookDelivery) -> Self {
        WebhookDeliveryView {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            contact_id: d.contact_id.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
            payload: d.payload.clone(),
            attempt_log: d
                .attempt_log
                .iter()
                .map(|a| WebhookAttemptView {
                    attempt: a.attempt,
                    at: Timestamp(a.at),
                    status_code: a.status_code,
                    error: a.error.clone(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDeliveryPage {
    pub items: Vec<WebhookDeliveryView>,
    pub next_cursor: Option<String>,
}

/// An event type an endpoint subscribes to (schema only; parsed by `EventType::parse`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum WebhookEventType {
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.merged")]
    ContactMerged,
    #[serde(rename = "contact.promoted")]
    ContactPromoted,
    #[serde(rename = "contact.deleted")]
    ContactDeleted,
    #[serde(rename = "conversation.started")]
    ConversationStarted,
    #[serde(rename = "conversation.escalated")]
    ConversationEscalated,
    #[serde(rename = "message.created")]
    MessageCreated,
}

/// A new endpoint.
#[derive(Deserialize, ToSchema)]
pub struct CreateWebhookRequest {
    /// An absolute `http://` or `https://` URL.
    #[serde(default)]
    #[schema(value_type = String, required = true, format = "uri")]
    pub url: Option<String>,
    /// One or more event types (an unknown one answers 422 naming `events`).
    #[serde(default)]
    #[schema(value_type = Vec<WebhookEventType>, required = true, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; absent fields keep their value.
#[derive(Deserialize, ToSchema)]
pub struct WebhookPatchRequest {
    #[serde(default)]
    #[schema(format = "uri")]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// A disabled endpoint gets no new events, and its pending deliveries wait.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `true`: a new secret signs from now on (the old one stops at once).
    #[serde(default)]
    pub rotate_secret: Option<bool>,
}

/// The organization's webhook endpoints.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)), security(("bearer" = [])))]
async fn list_webhooks(
    State(state): State<AppState>,
    admin: Admin,
) -> ApiResult<Json<WebhookList>> {
    let items = admin.org(&state).webhooks().await?;
    Ok(Json(WebhookList {
        items: items.iter().map(WebhookView::from).collect(),
    }))
}

/// Add an endpoint; the answer shows its signing secret.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses((status = 201, body = WebhookView), (status = 422, description = "bad URL or unknown event type")),
    security(("bearer" = [])))]
async fn create_webhook(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<CreateWebhookRequest>,
) -> ApiResult<impl IntoResponse> {
    let url = body
        .url
        .ok_or_else(|| ValidationError::new("url", "is required (a string)"))?;
    let url = parse_url(&url)?;
    let events = body
        .events
        .ok_or_else(|| ValidationError::new("events", "is required (a list of event types)"))?;
    let events: Vec<EventType> = parse_events(&events)?;
    let e = admin
        .org(&state)
        .create_webhook(&url, &events, body.enabled.unwrap_or(true))
        .await?;
    Ok((StatusCode::CREATED, Json(WebhookView::from(&e))))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404)), security(("bearer" = [])))]
async fn get_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    let e = admin
        .org(&state)
        .webhook(&id)
        .await
        .map_err(ApiError::not_found_as("webhook"))?;
    Ok(Json(WebhookView::from(&e)))
}

/// Change an endpoint's URL, events or enabled state, or rotate its secret.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)), request_body = WebhookPatchRequest,
    responses((status = 200, body = WebhookView), (status = 404), (status = 422)),
    security(("bearer" = [])))]
async fn update_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<WebhookPatchRequest>,
) -> ApiResult<Json<WebhookView>> {
    let url = body.url.as_deref().map(parse_url).transpose()?;
    let events = body.events.as_deref().map(parse_events).transpose()?;
    let e = admin
        .org(&state)
        .update_webhook(
            &id,
            url.as_deref(),
            events.as_deref(),
            body.enabled,
            body.rotate_secret.unwrap_or(false),
        )
        .await
        .map_err(ApiError::not_found_as("webhook"))?;
    Ok(Json(WebhookView::from(&e)))
}

/// A deleted endpoint: `{"id", "deleted": true}`.
#[derive(Serialize, ToSchema)]
pub struct WebhookDeleted {
    pub id: String,
    pub deleted: bool,
}

/// Delete an endpoint with its pending deliveries and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookDeleted), (status = 404)), security(("bearer" = [])))]
async fn delete_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookDeleted>> {
    admin
        .org(&state)
        .delete_webhook(&id)
        .await
        .map_err(ApiError::not_found_as("webhook"))?;
    Ok(Json(WebhookDeleted { id, deleted: true }))
}

/// An endpoint's delivery log, newest first, each delivery with its attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = WebhookDeliveryPage), (status = 400, description = "bad cursor"), (status = 404)),
    security(("bearer" = [])))]
async fn deliveries(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    q: QueryMap,
) -> ApiResult<Json<WebhookDeliveryPage>> {
    let limit = limit_param(&q)?;
    let page = admin
        .org(&state)
        .webhook_deliveries(&id, q.one("cursor"), limit)
        .await
        .map_err(ApiError::not_found_as("webhook"))?;
    Ok(Json(WebhookDeliveryPage {
        items: page.items.iter().map(WebhookDeliveryView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Send a delivery again now (one more attempt for a failed one). A pending one is answered
/// unchanged.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 200, body = WebhookDeliveryView), (status = 404)),
    security(("bearer" = [])))]
async fn retry_delivery(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Json<WebhookDeliveryView>> {
    let d = admin
        .org(&state)
        .retry_webhook_delivery(&id, &delivery_id)
        .await
        .map_err(ApiError::not_found_as("delivery"))?;
    Ok(Json(WebhookDeliveryView::from(&d)))
}
