//! The organization's event stream for the admin panel.

use crate::error::{ApiError, ApiResult};
use crate::extract::Admin;
use crate::state::AppState;
use crate::views;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde::Serialize;
use std::convert::Infallible;

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
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
                    struct Out<'a> { conversation_id: &'a str, contact_id: &'a str, website_id: &'a str, message: &'a views::Message }
                    let out = Out { conversation_id: ev.conversation_id.as_str(), contact_id: ev.contact_id.as_str(), website_id: ev.website_id.as_str(), message: &ev.message };
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
