//! Kith's HTTP server: the widget API, the admin API, realtime streams and operations
//! endpoints. Handlers are thin: extract and authorize (the organization comes from the
//! credential), call the store, map errors.

pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod panel;
pub mod realtime;
pub mod routes;
pub mod state;
pub mod token;
pub mod views;
pub mod webhooks;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use error::ApiError;
use state::AppState;
use std::net::SocketAddr;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use state::{Config, Limits};

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi::ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see /api/openapi.json".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The route template a response answered (`/api/v1/contacts/{id}`), set by routers whose
/// matched path the outer layers cannot see (the widget API is nested as a service).
#[derive(Clone)]
struct RouteLabel(String);

async fn label_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut resp = next.run(req).await;
    if let Some(r) = route {
        resp.extensions_mut().insert(RouteLabel(r));
    }
    resp
}

/// Latency per route and status, responses by class, and one debug line per request (inside
/// the request's span, so it carries the request id).
async fn observe(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone())
        .or(matched)
        .unwrap_or_else(|| "unmatched".into());
    let took = started.elapsed();
    let status = resp.status().as_u16();
    metrics::record_request(method.as_str(), &route, status, took);
    tracing::debug!(status, ms = took.as_secs_f64() * 1e3, route = %route, "answered");
    resp
}

/// The request's id: the caller's `X-Request-Id` when it is a plain token (letters, digits,
/// `-`, `_`, `.`, at most 64), else a new one. It is on the response and in the request's
/// span, so every log line of the request names it.
async fn request_id(mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned);
    let id = given.unwrap_or_else(kith_store::new_id);
    let value = HeaderValue::from_str(&id).expect("checked or generated token");
    req.headers_mut().insert(REQUEST_ID, value.clone());
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(REQUEST_ID, value);
    resp
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The Content-Security-Policy of everything this binary serves. No inline script or style
/// anywhere (the admin panel and widget load theirs from files), so stored visitor text can
/// never run as script; `frame-ancestors 'none'` keeps the panel out of other sites' frames
/// (the widget runs in the customer's page as a script, reached through CORS, not a frame).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Browser security headers on every answer (routes, 404s, errors, preflights, panics), unless
/// a handler chose its own. `Referrer-Policy: no-referrer`: panel URLs name contacts and
/// conversations, and nothing we serve needs another site to learn where a click came from.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    resp
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("a handler panicked".into()).into_response()
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    metrics::handle();
    let store = state.store.clone();
    let widget_cors = CorsLayer::new()
        // Which origins may call is each website's setting: the browser hears its origin back
        // only when the website the call names (header, or `website_key` in the query, which
        // is how preflights name it) allows it. A preflight that names no website is let
        // through: the call itself still names one and is refused (403) without it.
        .allow_origin(AllowOrigin::async_predicate(
            move |origin: HeaderValue, parts: &axum::http::request::Parts| {
                let store = store.clone();
                let key = extract::website_key(parts);
                async move {
                    let Some(key) = key else { return true };
                    let origin = origin.to_str().unwrap_or("");
                    match store.website_by_key(key.trim()).await {
                        Ok(Some(website)) => website.allows_origin(origin),
                        _ => false,
                    }
                }
            },
        ))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-kith-website"),
            HeaderName::from_static("x-kith-visitor"),
            HeaderName::from_static("idempotency-key"),
        ])
        .max_age(Duration::from_secs(3600));
    let body_limit = match state.config.limits.max_body_bytes {
        0 => DefaultBodyLimit::disable(),
        n => DefaultBodyLimit::max(n),
    };
    // Nested as a service so the CORS layer answers preflights before any method routing.
    let widget = routes::widget::router()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(label_route))
        .layer(widget_cors)
        .with_state(state.clone());
    Router::new()
        .nest_service("/api/widget/v1", widget)
        .nest("/api/v1", routes::admin::router())
        .merge(routes::health::router())
        .merge(routes::browser::router())
        .merge(panel::router())
        .route("/api/openapi.json", get(openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(body_limit)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(observe))
        .layer(
            // Paths only: query strings may carry visitor tokens.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let announcements = state
        .store
        .listen_messages()
        .await
        .map_err(|e| std::io::Error::other(format!("LISTEN on the database: {e}")))?;
    let relay = announcements.map(|l| tokio::spawn(state.clone().relay_announcements(Some(l))));
    let limiters = state.clone();
    metrics::handle();
    // Bulk actions a stopped process left unfinished, then any whose runner dies later.
    let bulk_store = state.store.clone();
    let bulk_sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tick.tick().await;
            routes::admin::bulk::resume_orphans(&bulk_store).await;
        }
    });
    let janitor = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            metrics::upkeep();
            limiters.limiters.shrink();
        }
    });
    let deliverer = webhooks::spawn(state.store.clone(), state.config.webhooks.clone());
    let app = router(state);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    janitor.abort();
    bulk_sweeper.abort();
    if let Some(d) = deliverer {
        d.abort();
    }
    if let Some(r) = relay {
        r.abort();
    }
    result
}
