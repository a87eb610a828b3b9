//! Cross-site request forgery. Every state-changing request made with the session cookie must
//! carry the session's CSRF token: htmx sends it as the `X-CSRF-Token` header (panel.js reads
//! it from `<meta name="csrf-token">`), plain forms as the hidden field `csrf_token`. Another
//! site can make a browser send the cookie (SameSite=Lax still lets top-level POSTs through
//! in old browsers, and same-site subdomains always), but it cannot read the token.
//!
//! The sign-in form has no session yet: it is guarded by a double-submit token (a random
//! value in the `kith_signin` cookie, repeated in a hidden field), so another site cannot sign
//! a browser into the attacker's account (login CSRF).

use axum::http::{HeaderMap, Method};
use subtle::ConstantTimeEq;

/// The header htmx and scripts send the token in.
pub const HEADER: &str = "x-csrf-token";
/// The hidden form field plain forms send it in.
pub const FIELD: &str = "csrf_token";

/// Methods that change nothing and need no token.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether `given` is `expected`, compared in constant time. Empty never matches.
pub fn matches(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(g) if !g.is_empty() && !expected.is_empty() => {
            bool::from(expected.as_bytes().ct_eq(g.as_bytes()))
        }
        _ => false,
    }
}

/// The token a request sent in the header.
pub fn from_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok())
}

/// A new random token (for the sign-in form).
pub fn new_token() -> String {
    kith_store::new_secret()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_exact_token_matches() {
        assert!(super::matches("abc", Some("abc")));
        assert!(!super::matches("abc", Some("abd")));
        assert!(!super::matches("abc", Some("")));
        assert!(!super::matches("", Some("")));
        assert!(!super::matches("abc", None));
    }
}
