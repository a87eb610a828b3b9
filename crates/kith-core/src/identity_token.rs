//! Identity tokens (issue 20): a JWT that the customer's backend signs with the website's
//! identity secret, carrying the visitor's `user_id` and/or `email` (and optionally `name`,
//! `phone`, `company`, `metadata`). Unlike a `user_hash`, a token expires.
//!
//! The rules, all checked here and nowhere else:
//! - HS256 only: `none`, HS384, HS512, RS256 and every other `alg` are refused
//!   ([`TokenError::BadAlgorithm`]), so a token can never choose how it is checked.
//! - The signature must verify under one of the website's secrets (current, then previous
//!   while a rotation is under way).
//! - `exp` is required, and at most [`MAX_LIFETIME_SECS`] ahead of `now`; `nbf` and `iat`, when
//!   present, must not be in the future. Every time check allows [`CLOCK_SKEW_SECS`].
//!
//! Pure: `now` is an argument (this crate has no clock). `jsonwebtoken` does the parsing, the
//! algorithm restriction and the constant-time signature check; its own clock-based checks are
//! switched off and the time rules are applied below with the given `now`.

use crate::identity::{Claim, IdentifyError};
use crate::validate::ValidationError;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The longest a token may live: `exp` at most this far after `now` (plus the skew).
pub const MAX_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// Clock difference allowed between the customer's servers and Kith, each way.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Why an identity token is refused. Each has a stable API code (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON objects, or a claim of the wrong type.
    Malformed,
    /// The header names another algorithm than HS256 (`none` included).
    BadAlgorithm,
    /// The signature verifies under none of the website's secrets.
    BadSignature,
    /// No `exp` claim.
    MissingExp,
    /// `exp` is in the past (beyond the skew).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the skew).
    NotYetValid,
    /// `exp` is more than 24 hours ahead.
    ExpTooFar,
    /// The token names neither a `user_id` nor an `email`.
    MissingIdentity,
}

impl TokenError {
    /// The API error code.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::BadAlgorithm => "token_bad_algorithm",
            TokenError::BadSignature => "token_bad_signature",
            TokenError::MissingExp => "token_missing_exp",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::ExpTooFar => "token_exp_too_far",
            TokenError::MissingIdentity => "token_missing_identity",
        }
    }

    /// A message a developer can act on.
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Malformed => "the identity_token is not a well-formed JWT (three base64url parts of JSON; exp, nbf and iat numbers)",
            TokenError::BadAlgorithm => "the identity_token must be signed with HS256",
            TokenError::BadSignature => "the identity_token's signature does not match the website's identity secret",
            TokenError::MissingExp => "the identity_token needs an exp claim (at most 24 hours ahead)",
            TokenError::Expired => "the identity_token has expired; mint a new one",
            TokenError::NotYetValid => "the identity_token is not valid yet (nbf or iat in the future); check the server clock",
            TokenError::ExpTooFar => "the identity_token's exp is more than 24 hours ahead",
            TokenError::MissingIdentity => "the identity_token must carry a user_id or an email",
        }
    }
}

/// Why an identify with a token is refused: the token (401) or a value inside it (422).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenClaimError {
    Token(TokenError),
    Invalid(ValidationError),
}

impl From<TokenError> for TokenClaimError {
    fn from(e: TokenError) -> Self {
        TokenClaimError::Token(e)
    }
}

/// A NumericDate claim: absent, or a number of seconds (fractions allowed, as RFC 7519 says).
fn numeric_date(claims: &Map<String, Value>, key: &str) -> Result<Option<f64>, TokenError> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(TokenError::Malformed),
        Some(_) => Err(TokenError::Malformed),
    }
}

/// The `alg` a token's header names, read without trusting anything else in it.
fn header_alg(token: &str) -> Result<String, TokenError> {
    let header = token.split('.').next().ok_or(TokenError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    match json.get("alg") {
        Some(Value::String(alg)) => Ok(alg.clone()),
        _ => Err(TokenError::Malformed),
    }
}

/// Checks `token` against the website's `secrets` (current first, then previous) at `now`
/// (unix seconds) and returns its claims.
pub fn verify_token(
    token: &str,
    secrets: &[&str],
    now: i64,
) -> Result<Map<String, Value>, TokenError> {
    let token = token.trim();
    if token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    if header_alg(token)? != "HS256" {
        return Err(TokenError::BadAlgorithm);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    // Time rules are ours (with the given `now`); no audience or issuer is asked for.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    let mut claims = None;
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let Ok(key) = DecodingKey::from_secret(secret.as_bytes()) else {
            continue;
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token.as_bytes(), &key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => match e.kind() {
                ErrorKind::InvalidSignature => continue,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    return Err(TokenError::BadAlgorithm)
                }
                _ => return Err(TokenError::Malformed),
            },
        }
    }
    let claims = claims.ok_or(TokenError::BadSignature)?;
    let now = now as f64;
    let skew = CLOCK_SKEW_SECS as f64;
    let exp = numeric_date(&claims, "exp")?.ok_or(TokenError::MissingExp)?;
    let nbf = numeric_date(&claims, "nbf")?;
    let iat = numeric_date(&claims, "iat")?;
    if exp + skew <= now {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|t| t > now + skew) || iat.is_some_and(|t| t > now + skew) {
        return Err(TokenError::NotYetValid);
    }
    if exp > now + MAX_LIFETIME_SECS as f64 + skew {
        return Err(TokenError::ExpTooFar);
    }
    Ok(claims)
}

impl Claim {
    /// The claim of a verified identity token: every value in it is verified (it may
    /// overwrite stored values), like a valid `user_hash` — and the email too, since the
    /// token signs it. Values are parsed with the same rules as an identify body.
    pub fn from_identity_token(
        token: &str,
        secrets: &[&str],
        now: i64,
    ) -> Result<Claim, TokenClaimError> {
        let claims = verify_token(token, secrets, now)?;
        let mut body = Map::new();
        for key in ["user_id", "email", "name", "phone", "company", "metadata"] {
            if let Some(v) = claims.get(key) {
                body.insert(key.to_string(), v.clone());
            }
        }
        let mut claim = Claim::from_identify(&Value::Object(body), None).map_err(|e| match e {
            IdentifyError::Invalid(v) => TokenClaimError::Invalid(v),
            IdentifyError::Unverified => TokenClaimError::Token(TokenError::BadSignature),
        })?;
        if claim.user_id.is_none() && claim.email.is_none() {
            return Err(TokenError::MissingIdentity.into());
        }
        claim.user_id_verified = claim.user_id.is_some();
        claim.email_verified = claim.email.is_some();
        claim.verified = true;
        Ok(claim)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::verify::hmac_sha256;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token made by hand: header and payload as given, signed with HMAC-SHA256.
    pub fn token(header: &Value, payload: &Value, secret: &str) -> String {
        let signing = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let sig = hmac_sha256(secret.as_bytes(), signing.as_bytes());
        format!("{signing}.{}", b64(&sig))
    }

    fn hs256(payload: Value, secret: &str) -> String {
        token(&json!({"alg": "HS256", "typ": "JWT"}), &payload, secret)
    }

    #[test]
    fn a_valid_token_verifies_its_identity() {
        let t = hs256(
            json!({"user_id": "u1", "email": "A@x.io", "name": "Ann", "exp": NOW + 600, "iat": NOW}),
            "s1",
        );
        let c = Claim::from_identity_token(&t, &["s1"], NOW).unwrap();
        assert_eq!(c.user_id.unwrap().as_str(), "u1");
        assert_eq!(c.email.unwrap().as_str(), "A@x.io");
        assert_eq!(c.name.unwrap().as_str(), "Ann");
        assert!(c.verified && c.user_id_verified && c.email_verified);
    }

    #[test]
    fn an_email_only_token_verifies_the_email() {
        let t = hs256(json!({"email": "a@x.io", "exp": NOW + 60}), "s1");
        let c = Claim::from_identity_token(&t, &["s1"], NOW).unwrap();
        assert!(c.verified && c.email_verified && !c.user_id_verified);
    }

    #[test]
    fn the_previous_secret_verifies_too() {
        let t = hs256(json!({"user_id": "u1", "exp": NOW + 60}), "old");
        assert!(verify_token(&t, &["new", "old"], NOW).is_ok());
        assert_eq!(
            verify_token(&t, &["new"], NOW).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn only_hs256_is_accepted() {
        let p = json!({"user_id": "u1", "exp": NOW + 60});
        for alg in ["none", "HS512", "HS384", "RS256", "hs256", ""] {
            let t = token(&json!({"alg": alg}), &p, "s1");
            assert_eq!(
                verify_token(&t, &["s1"], NOW),
                Err(TokenError::BadAlgorithm),
                "{alg}"
            );
        }
        // `alg: none` with an empty signature part, as attackers send it.
        let unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(p.to_string().as_bytes())
        );
        assert_eq!(
            verify_token(&unsigned, &["s1"], NOW),
            Err(TokenError::BadAlgorithm)
        );
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_payload_is_a_bad_signature() {
        let t = hs256(json!({"user_id": "u1", "exp": NOW + 60}), "s1");
        assert_eq!(
            verify_token(&t, &["s2"], NOW),
            Err(TokenError::BadSignature)
        );
        let parts: Vec<&str> = t.split('.').collect();
        let forged = b64(json!({"user_id": "admin", "exp": NOW + 60})
            .to_string()
            .as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(
            verify_token(&tampered, &["s1"], NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify_token(&t, &[], NOW), Err(TokenError::BadSignature));
        assert_eq!(verify_token(&t, &[""], NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn time_rules_with_sixty_seconds_of_skew() {
        let at = |payload: Value| verify_token(&hs256(payload, "s"), &["s"], NOW);
        assert_eq!(at(json!({"user_id": "u"})), Err(TokenError::MissingExp));
        assert_eq!(
            at(json!({"user_id": "u", "exp": null})),
            Err(TokenError::MissingExp)
        );
        assert_eq!(
            at(json!({"user_id": "u", "exp": "soon"})),
            Err(TokenError::Malformed)
        );
        assert!(at(json!({"user_id": "u", "exp": NOW - 59})).is_ok());
        assert_eq!(
            at(json!({"user_id": "u", "exp": NOW - 60})),
            Err(TokenError::Expired)
        );
        assert!(at(json!({"user_id": "u", "exp": NOW + 86_400 + 60})).is_ok());
        assert_eq!(
            at(json!({"user_id": "u", "exp": NOW + 86_400 + 61})),
            Err(TokenError::ExpTooFar)
        );
        assert!(
            at(json!({"user_id": "u", "exp": NOW + 600, "nbf": NOW + 60, "iat": NOW + 60})).is_ok()
        );
        assert_eq!(
            at(json!({"user_id": "u", "exp": NOW + 600, "nbf": NOW + 61})),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            at(json!({"user_id": "u", "exp": NOW + 600, "iat": NOW + 61})),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn malformed_tokens() {
        for t in ["", "abc", "a.b", "a.b.c.d", "!!.??.xx", "e30.e30"] {
            assert_eq!(
                verify_token(t, &["s"], NOW),
                Err(TokenError::Malformed),
                "{t}"
            );
        }
        // A payload that is not a JSON object.
        let t = token(&json!({"alg": "HS256"}), &json!([1, 2]), "s");
        assert_eq!(verify_token(&t, &["s"], NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn a_token_without_identity_or_with_bad_values_is_refused() {
        let t = hs256(json!({"name": "Ann", "exp": NOW + 60}), "s");
        assert_eq!(
            Claim::from_identity_token(&t, &["s"], NOW),
            Err(TokenClaimError::Token(TokenError::MissingIdentity))
        );
        let t = hs256(
            json!({"user_id": "u", "email": "nope", "exp": NOW + 60}),
            "s",
        );
        match Claim::from_identity_token(&t, &["s"], NOW) {
            Err(TokenClaimError::Invalid(e)) => assert_eq!(e.field, "email"),
            other => panic!("{other:?}"),
        }
    }
}
