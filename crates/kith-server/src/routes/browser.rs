//! What browsers load from Kith itself for the chat: the widget script (`/widget.js`, loaded
//! by any website) and the demo page (`/demo`), which shows the widget for the server's
//! default website and lets a new user play both a lead and an identified customer.

use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kith_core::ValidationError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::LazyLock;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(widget_js))
        .route("/demo", get(demo_page))
        .route("/demo.js", get(demo_js))
        .route("/demo/identify", post(demo_identify))
}

/// A static text file served from the binary: as is, and gzipped once at first use (the
/// widget's size budget is what travels, so it travels compressed).
pub struct StaticFile {
    pub body: &'static str,
    pub gzip: Vec<u8>,
    etag: String,
    content_type: &'static str,
}

impl StaticFile {
    fn new(body: &'static str, content_type: &'static str) -> StaticFile {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(body.as_bytes())
            .and_then(|_| gz.finish())
            .map(|gzip| StaticFile {
                body,
                etag: format!(
                    "\"{}\"",
                    &hex::encode(Sha256::digest(body.as_bytes()))[..16]
                ),
                gzip,
                content_type,
            })
            .expect("gzip into memory cannot fail")
    }

    /// The file, gzipped when the client accepts it, `304` when its `If-None-Match` holds the
    /// current version. Cached for a short time and then revalidated: the URL of the widget is
    /// fixed (websites embed it), so a new release must reach visitors within minutes.
    fn respond(&self, headers: &HeaderMap) -> Response {
        let gzip = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        // One entity tag per representation, as HTTP asks of content codings.
        let etag = if gzip {
            format!("{}-gz\"", self.etag.trim_end_matches('"'))
        } else {
            self.etag.clone()
        };
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        let mut resp = if matches {
            StatusCode::NOT_MODIFIED.into_response()
        } else if gzip {
            let mut r = self.gzip.clone().into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            self.body.into_response()
        };
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        resp
    }
}

/// The chat widget (source: `crates/kith-server/widget/widget.js`, hand-written, no build).
pub static WIDGET_JS: LazyLock<StaticFile> = LazyLock::new(|| {
    StaticFile::new(
        include_str!("../../widget/widget.js"),
        "text/javascript; charset=utf-8",
    )
});

static DEMO_JS: LazyLock<StaticFile> = LazyLock::new(|| {
    StaticFile::new(
        include_str!("../../widget/demo.js"),
        "text/javascript; charset=utf-8",
    )
});

async fn widget_js(headers: HeaderMap) -> Response {
    let mut resp = WIDGET_JS.respond(&headers);
    // Any website loads it, also as a module or with `crossorigin`.
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp.headers_mut().insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    resp
}

async fn demo_js(headers: HeaderMap) -> Response {
    DEMO_JS.respond(&headers)
}

/// The demo page's own policy: the panel's, plus the inline styles of this one static page.
const DEMO_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

async fn demo_page(State(state): State<AppState>) -> ApiResult<Response> {
    if state.config.disable_demo {
        return Err(ApiError::NotFound(
            "the demo page is turned off on this server".into(),
        ));
    }
    let website = state
        .store
        .default_website()
        .await?
        .ok_or_else(|| ApiError::NotFound("no website yet; run `kith org create`".into()))?;
    let page = include_str!("../../widget/demo.html")
        .replace("{{website_name}}", &html_escape(&website.name))
        .replace("{{website_key}}", &html_escape(&website.website_key));
    let mut resp = Html(page).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DEMO_CSP),
    );
    Ok(resp)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Test users of the demo: only user ids under this prefix get a hash from the server.
pub const DEMO_USER_PREFIX: &str = "demo-";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DemoIdentifyRequest {
    /// Must start with `demo-`.
    pub user_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DemoIdentifyResponse {
    pub user_id: String,
    pub user_hash: String,
}

/// The `user_hash` a real website's server computes, computed here for the demo's test users
/// only: ids outside `demo-…` are refused, so this never vouches for a real customer.
async fn demo_identify(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DemoIdentifyRequest>,
) -> ApiResult<Json<DemoIdentifyResponse>> {
    if state.config.disable_demo {
        return Err(ApiError::NotFound(
            "the demo page is turned off on this server".into(),
        ));
    }
    let user_id = body.user_id.trim();
    let valid = user_id.len() > DEMO_USER_PREFIX.len()
        && user_id.len() <= 64
        && user_id.starts_with(DEMO_USER_PREFIX)
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ValidationError::new(
            "user_id",
            "the demo identifies test users only: demo- followed by letters, digits, - or _",
        )
        .into());
    }
    let website = state
        .store
        .default_website()
        .await?
        .ok_or_else(|| ApiError::NotFound("no website yet".into()))?;
    Ok(Json(DemoIdentifyResponse {
        user_hash: kith_core::verify::user_hash(&website.identity_secret, user_id),
        user_id: user_id.to_string(),
    }))
}
