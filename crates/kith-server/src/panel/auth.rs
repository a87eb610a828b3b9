//! Signing in and out, and who is signed in: the `PanelSession` extractor of every panel page,
//! `CsrfForm` for every panel form post, and the session cookie as a credential of the admin
//! JSON API (`admin_from_session`, used by `extract::Admin`).

use super::assets::AssetUrls;
use super::{cookies, csrf, render, ErrorPage};
use crate::error::ApiError;
use crate::extract::{Admin, ClientIp};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kith_core::timeline::Actor;
use kith_store::{AdminSession, SessionPolicy};
use std::collections::HashMap;
use std::net::IpAddr;

/// How long sessions live (idle and absolute); see `kith_store::SessionPolicy`.
pub const POLICY: SessionPolicy = SessionPolicy {
    idle_ms: 12 * 3600 * 1000,
    absolute_ms: 7 * 24 * 3600 * 1000,
};

/// The session cookie's `Max-Age`: the absolute lifetime (the server ends it earlier when idle).
const SESSION_MAX_AGE_SECS: i64 = POLICY.absolute_ms / 1000;
/// The sign-in form's token lives an hour.
const SIGNIN_MAX_AGE_SECS: i64 = 3600;

/// The live session named by the request's cookie, if any.
pub async fn session_of(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<AdminSession>, ApiError> {
    let Some(cookie) = cookies::get(headers, cookies::SESSION) else {
        return Ok(None);
    };
    Ok(state.store.admin_session(&cookie, POLICY).await?)
}

/// Whether the browser came over HTTPS (cookies then get `Secure`).
pub struct Https(pub bool);

impl FromRequestParts<AppState> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Https(cookies::came_over_https(parts, state)))
    }
}

/// A signed-in admin on a panel page. Without a live session: a redirect to `/signin`
/// (for htmx requests, `HX-Redirect`, so the whole page goes there).
pub struct PanelSession(pub AdminSession);

impl FromRequestParts<AppState> for PanelSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match session_of(&parts.headers, state).await {
            Ok(Some(s)) => Ok(PanelSession(s)),
            Ok(None) => Err(to_signin(&parts.headers)),
            Err(e) => Err(ErrorPage::from_api(e).into_response()),
        }
    }
}

fn to_signin(headers: &HeaderMap) -> Response {
    if super::is_htmx(headers) {
        (StatusCode::UNAUTHORIZED, [("hx-redirect", "/signin")]).into_response()
    } else {
        Redirect::to("/signin").into_response()
    }
}

/// A panel form post by a signed-in admin, its CSRF token checked (the `csrf_token` field or
/// the `X-CSRF-Token` header). No session: to `/signin`; a missing or wrong token: 403.
pub struct CsrfForm {
    pub session: AdminSession,
    pub fields: HashMap<String, String>,
}

impl CsrfForm {
    /// A field's value, `""` when absent.
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let PanelSession(session) = PanelSession::from_request_parts(&mut parts, state).await?;
        let header_token = csrf::from_header(&parts.headers).map(str::to_owned);
        let wants_json = super::is_htmx(&parts.headers);
        let Form(fields) =
            Form::<HashMap<String, String>>::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(|e| {
                    ErrorPage::new(e.status(), "Bad request", &e.body_text()).into_response()
                })?;
        let given = header_token
            .as_deref()
            .or(fields.get(csrf::FIELD).map(String::as_str));
        if !csrf::matches(&session.csrf_token, given) {
            return Err(csrf_refused(wants_json));
        }
        Ok(CsrfForm { session, fields })
    }
}

/// 403 for a state-changing panel request without the right token: the spec's JSON error
/// for htmx and scripts, a page for a plain form.
fn csrf_refused(json: bool) -> Response {
    let message = "this request did not carry the page's CSRF token; reload the page and try again";
    if json {
        ApiError::Forbidden {
            code: "csrf",
            message: message.into(),
        }
        .into_response()
    } else {
        ErrorPage::new(StatusCode::FORBIDDEN, "Request refused", message).into_response()
    }
}

/// The session cookie as an admin-API credential: the session's admin, acting as
/// `admin:<id>`; a state-changing method needs `X-CSRF-Token`. Called by `extract::Admin`
/// when a request has no `Authorization` header but a session cookie.
pub(crate) async fn admin_from_session(
    parts: &Parts,
    state: &AppState,
    ip: IpAddr,
    cookie: &str,
) -> Result<Admin, ApiError> {
    let Some(session) = state.store.admin_session(cookie, POLICY).await? else {
        return Err(crate::extract::failed(
            state,
            ip,
            ApiError::Unauthorized {
                code: "unauthorized",
                message: "the panel session has ended; sign in again".into(),
            },
        ));
    };
    if !csrf::is_safe(&parts.method)
        && !csrf::matches(&session.csrf_token, csrf::from_header(&parts.headers))
    {
        return Err(ApiError::Forbidden {
            code: "csrf",
            message: "a call made with the panel's session cookie must send its CSRF token in \
                      X-CSRF-Token (<meta name=\"csrf-token\"> of any panel page)"
                .into(),
        });
    }
    let credential = format!("session:{}", session.session_id);
    state
        .limiters
        .per_admin
        .check(&credential)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    Ok(Admin {
        org_id: session.org_id,
        actor: Actor::Admin(session.admin_id),
        credential,
    })
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    assets: AssetUrls,
    form_token: String,
    email: String,
    error: Option<String>,
}

/// The sign-in form's token: the one the browser already holds (another tab's form stays
/// valid), or a new one.
fn signin_token(headers: &HeaderMap) -> String {
    cookies::get(headers, cookies::SIGNIN)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(csrf::new_token)
}

fn signin_page(
    status: StatusCode,
    headers: &HeaderMap,
    https: bool,
    email: &str,
    error: Option<String>,
) -> Response {
    let form_token = signin_token(headers);
    let cookie = cookies::set(
        cookies::SIGNIN,
        &form_token,
        "/signin",
        Some(SIGNIN_MAX_AGE_SECS),
        https,
    );
    let page = SignInPage {
        assets: AssetUrls::get(),
        form_token,
        email: email.to_string(),
        error,
    };
    let mut resp = render(status, &page);
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

/// `GET /signin`: the form (signed in already: to the panel).
pub async fn signin_form(
    State(state): State<AppState>,
    Https(https): Https,
    headers: HeaderMap,
) -> Response {
    if let Ok(Some(_)) = session_of(&headers, &state).await {
        return Redirect::to("/").into_response();
    }
    signin_page(StatusCode::OK, &headers, https, "", None)
}

/// `POST /signin`: checks the form token (login CSRF), the attempt budget of this IP and
/// email, then the password; starts a session and goes to the panel.
pub async fn signin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Https(https): Https,
    headers: HeaderMap,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    let email = fields.get("email").map_or("", |e| e.trim());
    let password = fields.get("password").map_or("", String::as_str);
    let expected = cookies::get(&headers, cookies::SIGNIN).unwrap_or_default();
    if !csrf::matches(&expected, fields.get(csrf::FIELD).map(String::as_str)) {
        return signin_page(
            StatusCode::FORBIDDEN,
            &headers,
            https,
            email,
            Some("This sign-in form has expired. Please sign in again.".into()),
        );
    }
    // Per IP and email (capped: the key is what the client sent), and an IP spraying
    // passwords over many emails also spends its budget of failed authentications.
    let key_email: String = email.to_lowercase().chars().take(320).collect();
    let key = format!("{ip} {key_email}");
    let budget = state
        .limiters
        .failed_auth
        .admit(ip)
        .and_then(|()| state.limiters.signin.check(&key));
    if let Err(retry_after) = budget {
        crate::metrics::rate_limited("signin");
        let mut resp = signin_page(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            https,
            email,
            Some(format!(
                "Too many sign-in attempts. Try again in {retry_after} seconds."
            )),
        );
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let verified = match state.store.verify_admin_password(email, password).await {
        Ok(v) => v,
        Err(e) => return ErrorPage::from_api(e.into()).into_response(),
    };
    let Some(admin) = verified else {
        crate::metrics::auth_failure();
        if let Err(retry_after) = state.limiters.failed_auth.failed(ip) {
            tracing::debug!(
                retry_after,
                "client IP over its failed-authentication budget"
            );
        }
        // The same words whether or not the email exists.
        return signin_page(
            StatusCode::UNAUTHORIZED,
            &headers,
            https,
            email,
            Some("The email or password is not right.".into()),
        );
    };
    // A session this browser still had ends: one browser, one session.
    if let Some(previous) = cookies::get(&headers, cookies::SESSION) {
        if let Err(e) = state.store.end_admin_session(&previous).await {
            return ErrorPage::from_api(e.into()).into_response();
        }
    }
    let new = match state
        .store
        .create_admin_session(&admin.org_id, &admin.admin_id, POLICY)
        .await
    {
        Ok(n) => n,
        Err(e) => return ErrorPage::from_api(e.into()).into_response(),
    };
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookies::set(
            cookies::SESSION,
            &new.cookie,
            "/",
            Some(SESSION_MAX_AGE_SECS),
            https,
        ),
    );
    h.append(
        header::SET_COOKIE,
        cookies::clear(cookies::SIGNIN, "/signin", https),
    );
    resp
}

/// `POST /signout`: ends the session (the form carries its CSRF token) and goes to `/signin`.
pub async fn signout(
    State(state): State<AppState>,
    Https(https): Https,
    headers: HeaderMap,
    _form: CsrfForm,
) -> Response {
    if let Some(cookie) = cookies::get(&headers, cookies::SESSION) {
        if let Err(e) = state.store.end_admin_session(&cookie).await {
            return ErrorPage::from_api(e.into()).into_response();
        }
    }
    let mut resp = Redirect::to("/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookies::clear(cookies::SESSION, "/", https),
    );
    resp
}
