//! `/webhooks`: the organization's webhook endpoints (add with URL and event checkboxes,
//! enable or disable, delete) and `/webhooks/{id}`: one endpoint's delivery log. Plain forms
//! with the session's CSRF token; every stored string is escaped by askama.

use super::auth::{CsrfForm, PanelSession};
use super::{render, Chrome, ErrorPage};
use crate::extract::QueryMap;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kith_core::webhook::{parse_events, parse_url, EventType};
use kith_core::Timestamp;
use kith_store::{AdminSession, StoreError, WebhookDelivery, WebhookEndpoint};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(show).post(add))
        .route("/webhooks/{id}", get(log))
        .route("/webhooks/{id}/toggle", post(toggle))
        .route("/webhooks/{id}/delete", post(delete))
        .route("/webhooks/{id}/deliveries/{delivery_id}/retry", post(retry))
}

/// An event type as a checkbox: its name and the form field that carries it.
pub struct EventChoice {
    pub name: &'static str,
    pub field: String,
    pub checked: bool,
}

fn choices(checked: &[String]) -> Vec<EventChoice> {
    EventType::ALL
        .iter()
        .map(|t| EventChoice {
            name: t.as_str(),
            field: format!("event_{}", t.as_str()),
            checked: checked.iter().any(|c| c == t.as_str()),
        })
        .collect()
}

pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub enabled: bool,
    pub secret: String,
}

impl From<&WebhookEndpoint> for EndpointRow {
    fn from(e: &WebhookEndpoint) -> Self {
        EndpointRow {
            id: e.id.clone(),
            url: e.url.clone(),
            events: e
                .events
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            enabled: e.enabled,
            secret: e.secret.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    endpoints: Vec<EndpointRow>,
    events: Vec<EventChoice>,
    url: String,
    ok: Option<String>,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    session: &AdminSession,
    status: StatusCode,
    (url, checked): (String, Vec<String>),
    ok: Option<String>,
    error: Option<String>,
) -> Response {
    let endpoints = match state.store.org(&session.org_id).webhooks().await {
        Ok(e) => e,
        Err(e) => return ErrorPage::from_api(e.into()).into_response(),
    };
    render(
        status,
        &WebhooksPage {
            chrome: Chrome::new(session, "webhooks"),
            endpoints: endpoints.iter().map(EndpointRow::from).collect(),
            events: choices(&checked),
            url,
            ok,
            error,
        },
    )
}

/// `GET /webhooks`
async fn show(State(state): State<AppState>, PanelSession(session): PanelSession) -> Response {
    page(
        &state,
        &session,
        StatusCode::OK,
        Default::default(),
        None,
        None,
    )
    .await
}

/// `POST /webhooks`: `url` and one `event_<type>` field per checked event type.
async fn add(State(state): State<AppState>, form: CsrfForm) -> Response {
    let url = form.field("url").trim().to_string();
    let checked: Vec<String> = EventType::ALL
        .iter()
        .filter(|t| !form.field(&format!("event_{}", t.as_str())).is_empty())
        .map(|t| t.as_str().to_string())
        .collect();
    let parsed = parse_url(&url).and_then(|u| Ok((u, parse_events(&checked)?)));
    let s = &form.session;
    match parsed {
        Err(v) => {
            let message = match v.field.as_str() {
                "url" => "The URL must be an absolute http:// or https:// address.".to_string(),
                _ => "Choose at least one event.".to_string(),
            };
            page(
                &state,
                s,
                StatusCode::UNPROCESSABLE_ENTITY,
                (url, checked),
                None,
                Some(message),
            )
            .await
        }
        Ok((url, events)) => match state
            .store
            .org(&s.org_id)
            .create_webhook(&url, &events, true)
            .await
        {
            Ok(e) => {
                let ok = format!("Endpoint added. Its signing secret is {}.", e.secret);
                page(
                    &state,
                    s,
                    StatusCode::OK,
                    Default::default(),
                    Some(ok),
                    None,
                )
                .await
            }
            Err(e) => ErrorPage::from_api(e.into()).into_response(),
        },
    }
}

fn not_found_page() -> Response {
    ErrorPage::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "No such webhook endpoint in this organization.",
    )
    .into_response()
}

/// `POST /webhooks/{id}/toggle`: enables a disabled endpoint, disables an enabled one.
async fn toggle(State(state): State<AppState>, Path(id): Path<String>, form: CsrfForm) -> Response {
    let s = &form.session;
    let org = state.store.org(&s.org_id);
    let result = match org.webhook(&id).await {
        Ok(e) => {
            org.update_webhook(&id, None, None, Some(!e.enabled), false)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(e) => {
            let ok = format!(
                "{} is {}.",
                e.url,
                if e.enabled { "enabled" } else { "disabled" }
            );
            page(
                &state,
                s,
                StatusCode::OK,
                Default::default(),
                Some(ok),
                None,
            )
            .await
        }
        Err(StoreError::NotFound) => not_found_page(),
        Err(e) => ErrorPage::from_api(e.into()).into_response(),
    }
}

/// `POST /webhooks/{id}/delete`
async fn delete(State(state): State<AppState>, Path(id): Path<String>, form: CsrfForm) -> Response {
    let s = &form.session;
    match state.store.org(&s.org_id).delete_webhook(&id).await {
        Ok(()) => {
            let ok = "The endpoint and its delivery log were deleted.".to_string();
            page(
                &state,
                s,
                StatusCode::OK,
                Default::default(),
                Some(ok),
                None,
            )
            .await
        }
        Err(StoreError::NotFound) => not_found_page(),
        Err(e) => ErrorPage::from_api(e.into()).into_response(),
    }
}

pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub contact_id: String,
    pub status: String,
    pub attempts: i64,
    pub last: String,
    pub created_at: String,
    pub next_attempt_at: String,
    pub delivered_at: String,
}

fn when(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

impl From<&WebhookDelivery> for DeliveryRow {
    fn from(d: &WebhookDelivery) -> Self {
        let last = match (d.last_status_code, &d.last_error) {
            (_, Some(e)) => e.clone(),
            (Some(code), None) => code.to_string(),
            (None, None) => String::new(),
        };
        DeliveryRow {
            id: d.id.clone(),
            event_type: d.event_type.clone(),
            contact_id: d.contact_id.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            last,
            created_at: when(Some(d.created_at)),
            next_attempt_at: when(d.next_attempt_at),
            delivered_at: when(d.delivered_at),
        }
    }
}

#[derive(Template)]
#[template(path = "webhook_log.html")]
struct LogPage {
    chrome: Chrome,
    ok: Option<String>,
    endpoint: EndpointRow,
    deliveries: Vec<DeliveryRow>,
    next_cursor: Option<String>,
}

/// `GET /webhooks/{id}?cursor=`: the endpoint's delivery log, newest first.
async fn log(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    Path(id): Path<String>,
    q: QueryMap,
) -> Response {
    log_page(&state, &session, &id, q.one("cursor"), None).await
}

/// `POST /webhooks/{id}/deliveries/{delivery_id}/retry`: sends a failed delivery again now.
async fn retry(
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
    form: CsrfForm,
) -> Response {
    let s = &form.session;
    match state
        .store
        .org(&s.org_id)
        .retry_webhook_delivery(&id, &delivery_id)
        .await
    {
        Ok(d) => {
            let ok = format!("The {} delivery will be sent again now.", d.event_type);
            log_page(&state, s, &id, None, Some(ok)).await
        }
        Err(StoreError::NotFound) => not_found_page(),
        Err(e) => ErrorPage::from_api(e.into()).into_response(),
    }
}

async fn log_page(
    state: &AppState,
    session: &AdminSession,
    id: &str,
    cursor: Option<&str>,
    ok: Option<String>,
) -> Response {
    let org = state.store.org(&session.org_id);
    let endpoint = match org.webhook(id).await {
        Ok(e) => e,
        Err(StoreError::NotFound) => return not_found_page(),
        Err(e) => return ErrorPage::from_api(e.into()).into_response(),
    };
    let page = match org.webhook_deliveries(id, cursor, 50).await {
        Ok(p) => p,
        Err(StoreError::BadCursor) => {
            return ErrorPage::new(
                StatusCode::BAD_REQUEST,
                "Bad link",
                "That page link is not valid.",
            )
            .into_response()
        }
        Err(e) => return ErrorPage::from_api(e.into()).into_response(),
    };
    render(
        StatusCode::OK,
        &LogPage {
            chrome: Chrome::new(session, "webhooks"),
            ok,
            endpoint: EndpointRow::from(&endpoint),
            deliveries: page.items.iter().map(DeliveryRow::from).collect(),
            next_cursor: page.next_cursor,
        },
    )
}
