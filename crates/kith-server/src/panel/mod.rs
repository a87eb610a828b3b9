//! The admin panel: server-rendered HTML (askama templates in `templates/`, one struct per
//! page) with htmx, served by the binary with its assets embedded.
//!
//! - `assets.rs`   embedded, fingerprinted static files (`/assets/...`)
//! - `contact.rs`  `/contacts/{id}`: a contact's fields edited in place, tags, metadata,
//!   timeline, conversations
//! - `contact_crm.rs` the contact page's notes and manual merge (preview, confirm, undo)
//! - `conversation.rs` `/conversations/{id}`: transcript, agent reply, escalate, resolve
//! - `auth.rs`     sign-in and sign-out, `PanelSession` and `CsrfForm` extractors, the session
//!   cookie as an admin-API credential
//! - `cookies.rs`  reading and writing the panel's cookies (flags in one place)
//! - `csrf.rs`     CSRF tokens: the session's, and the sign-in form's double-submit token
//! - `contacts.rs` `/`: lists with counts, the filtered, sorted, paged table; saving,
//!   renaming and deleting lists
//! - `bulk.rs`     bulk actions over the list and filter shown: preview, confirm, progress
//! - `import.rs`   `/contacts/import`: the CSV upload and its summary
//! - `settings.rs` `/settings`: add an admin, change one's own password
//! - `webhooks.rs` `/webhooks`: webhook endpoints and each one's delivery log
//!
//! Every page is rendered through [`render`] (`Cache-Control: no-store`: pages carry the
//! CSRF token and organization data); the CSP and other browser headers come from
//! `security_headers` in `lib.rs`, as for every answer.

pub mod assets;
pub mod auth;
pub mod bulk;
pub mod contact;
pub mod contact_crm;
pub mod contacts;
pub mod conversation;
pub mod cookies;
pub mod csrf;
pub mod import;
pub mod settings;
pub mod webhooks;

use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use assets::AssetUrls;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kith_store::AdminSession;
use tower_http::compression::CompressionLayer;

/// The panel's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(contacts::show))
        .route("/lists", post(contacts::save))
        .route("/lists/{id}/rename", post(contacts::rename))
        .route("/lists/{id}/delete", post(contacts::delete))
        .route("/bulk/preview", post(bulk::preview))
        .route("/bulk/start", post(bulk::start))
        .route("/bulk/{id}", get(bulk::show))
        .route("/signin", get(auth::signin_form).post(auth::signin))
        .route("/signout", post(auth::signout))
        .route("/settings", get(settings::show))
        .route("/settings/admins", post(settings::add_admin))
        .route("/settings/password", post(settings::change_password))
        .route("/assets/{file}", get(assets::serve))
        .route(
            "/contacts/import",
            get(import::show)
                .post(import::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    import::UPLOAD_MAX_BYTES,
                )),
        )
        .merge(contact::router())
        .merge(contact_crm::router())
        .merge(conversation::router())
        .merge(webhooks::router())
        // Pages and htmx partials travel gzipped (a contacts page is ~5x smaller); assets
        // arrive already gzipped and pass through (a response with a Content-Encoding is
        // left alone), and event streams are never buffered (the default predicate).
        .layer(CompressionLayer::new())
}

/// Whether htmx made the request (`HX-Request`), so a handler may answer with the partial
/// alone (kanidm's pattern: the full page otherwise, for a bookmark or a reload). A history
/// restore (`HX-History-Restore-Request`) needs the full page, so it does not count.
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}

/// What the layout (`base.html`) shows around every page.
pub struct Chrome {
    pub org_name: String,
    pub email: String,
    pub csrf_token: String,
    /// Which nav entry is current: `contacts`, `webhooks` or `settings`.
    pub section: &'static str,
    pub assets: AssetUrls,
}

impl Chrome {
    pub fn new(session: &AdminSession, section: &'static str) -> Chrome {
        Chrome {
            org_name: session.org_name.clone(),
            email: session.email.clone(),
            csrf_token: session.csrf_token.clone(),
            section,
            assets: AssetUrls::get(),
        }
    }
}

/// A rendered page with `status`; a template that fails to render is a 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut resp = (status, Html(html)).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

/// An error as a page (for browsers navigating, not scripts).
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    status: StatusCode,
    title: String,
    message: String,
    assets: AssetUrls,
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: &str, message: &str) -> ErrorPage {
        ErrorPage {
            status,
            title: title.into(),
            message: message.into(),
            assets: AssetUrls::get(),
        }
    }

    /// A page for an error of the API's kind; internal causes are logged, not shown.
    pub fn from_api(e: ApiError) -> ErrorPage {
        let resp = e.into_response();
        let status = resp.status();
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "The service is busy; retry shortly.",
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong on our side; it was logged.",
            _ => "The request could not be completed.",
        };
        ErrorPage::new(status, "Something went wrong", message)
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        render(self.status, &self)
    }
}
