//! The panel's cookies: reading one from a request, and writing `Set-Cookie` with the flags
//! every panel cookie carries (HttpOnly, SameSite=Lax, and Secure when the browser came over
//! HTTPS).

use crate::state::AppState;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use std::net::{IpAddr, SocketAddr};

/// The session: `ks_<org_id>_<secret>`, stored hashed.
pub const SESSION: &str = "kith_session";
/// The sign-in form's anti-forgery token (login CSRF), set by `GET /signin`.
pub const SIGNIN: &str = "kith_signin";

/// The value of cookie `name`, if the request carries it.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_string())
        })
}

/// Whether the browser reached us over HTTPS. Kith itself serves plain HTTP, so that is only
/// known from a trusted proxy (`KITH_TRUSTED_PROXIES`) saying `X-Forwarded-Proto: https`;
/// from anyone else the header is ignored.
pub fn came_over_https(parts: &Parts, state: &AppState) -> bool {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    state.config.trusted_proxies.contains(&peer)
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for `name=value` on `path`, living `max_age` seconds (`None`: until the
/// browser closes).
pub fn set(name: &str, value: &str, path: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are hex and ids")
}

/// `Set-Cookie` that removes cookie `name`.
pub fn clear(name: &str, path: &str, secure: bool) -> HeaderValue {
    set(name, "", path, Some(0), secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_many() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; kith_session=ks_o_ff; b=2"),
        );
        assert_eq!(get(&h, SESSION).as_deref(), Some("ks_o_ff"));
        assert_eq!(get(&h, "c"), None);
        let c = set(SESSION, "v", "/", None, true);
        assert_eq!(c, "kith_session=v; Path=/; HttpOnly; SameSite=Lax; Secure");
    }
}
