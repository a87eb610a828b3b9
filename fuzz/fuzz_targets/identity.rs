//! The identity normalizers: `Email`, `Phone`, `Text`, `Tags`, `Metadata::parse_patch`,
//! `ProfilePatch::parse` and `Claim::from_identify` (with verification on and off), plus the
//! remembered identity (`Claim::overlay`).
//!
//! Input: JSON (an identify or PATCH body, a tag array, a metadata object), and the same bytes
//! as text for the single-field parsers; every string value of a JSON object also goes
//! through them. Invariants: what is accepted is within the spec's limits, trimmed and stable
//! (parsing the stored value again gives it back); the email key is lower-case ASCII and
//! stable; tags are unique ignoring case; a claim is verified only by a matching hash.
//!
//! Identity tokens (`Claim::from_identity_token`): the input as a token string, and the JSON
//! as the payload of a token signed here with the right secret, with a wrong one, and with one
//! byte of its signature changed. Invariants: only the right secret verifies; a verified claim
//! carries a user id or an email, only values of the payload, within the limits; its `exp`
//! lies within the allowed window; overlaying it never adds proof to another claim.
#![no_main]

use kith_core::contact::{Email, Metadata, Phone, ProfilePatch, Tags, Text};
use base64::Engine;
use kith_core::identity::{Claim, IdentifyError};
use kith_core::identity_token::{TokenClaimError, CLOCK_SKEW_SECS, MAX_LIFETIME_SECS};
use kith_core::limits::{
    FIELD_MAX_CHARS, METADATA_KEY_MAX_CHARS, METADATA_MAX_KEYS, METADATA_VALUE_MAX_CHARS, TAGS_MAX,
    TAG_MAX_CHARS,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const SECRET: &str = "fuzz-identity-secret";
/// The fuzz target's clock (tokens are checked at a given time; the core has no clock).
const NOW: i64 = 1_800_000_000;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 JWT of `payload`, signed with `secret`.
fn sign(payload: &Value, secret: &str) -> String {
    let signing = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(payload.to_string().as_bytes())
    );
    let sig = kith_core::verify::hmac_sha256(secret.as_bytes(), signing.as_bytes());
    format!("{signing}.{}", b64(&sig))
}

/// Checks the identity-token invariants for this input; returns the verified claim, if any.
fn tokens(data: &[u8], body: Option<&Value>) -> Option<Claim> {
    if let Ok(s) = std::str::from_utf8(data) {
        // Arbitrary text is a token only by forging HMAC-SHA256: never verified.
        assert!(
            Claim::from_identity_token(s, &[SECRET], NOW).is_err(),
            "random bytes verified as a token: {s:?}"
        );
    }
    let payload = body?;
    let token = sign(payload, SECRET);
    let wrong = sign(payload, "another-secret");
    assert!(matches!(
        Claim::from_identity_token(&wrong, &[SECRET], NOW),
        Err(TokenClaimError::Token(_))
    ));
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2; // a full base64 character of the signature
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert!(Claim::from_identity_token(&tampered, &[SECRET], NOW).is_err());
    let claim = match Claim::from_identity_token(&token, &["", "other", SECRET], NOW) {
        Ok(c) => c,
        Err(TokenClaimError::Invalid(e)) => {
            assert!(!e.field.is_empty());
            return None;
        }
        Err(TokenClaimError::Token(_)) => return None,
    };
    let exp = payload["exp"].as_f64().expect("a verified token has a numeric exp");
    let skew = CLOCK_SKEW_SECS as f64;
    assert!(exp + skew > NOW as f64 && exp <= (NOW + MAX_LIFETIME_SECS) as f64 + skew);
    assert!(claim.verified && (claim.user_id.is_some() || claim.email.is_some()));
    assert_eq!(claim.user_id_verified, claim.user_id.is_some());
    assert_eq!(claim.email_verified, claim.email.is_some());
    assert!(claim.unverified.is_empty(), "a token's values are all proven");
    claim.user_id.iter().chain(&claim.name).chain(&claim.company).for_each(check_text);
    claim.email.iter().for_each(check_email);
    claim.phone.iter().for_each(check_phone);
    check_metadata(&claim.metadata);
    // Only the payload's own values: what it sent as user id is what the claim holds.
    if let Some(u) = &claim.user_id {
        assert_eq!(payload["user_id"].as_str().map(str::trim), Some(u.as_str()));
    }
    Some(claim)
}

fn check_text(t: &Text) {
    let s = t.as_str();
    assert!(!s.is_empty() && s.trim() == s && s.chars().count() <= FIELD_MAX_CHARS);
    assert_eq!(Text::parse("f", s), Ok(Some(t.clone())));
}

fn check_email(e: &Email) {
    let s = e.as_str();
    assert!(!s.is_empty() && s.trim() == s && s.chars().count() <= FIELD_MAX_CHARS);
    assert_eq!(Email::parse("email", s), Ok(Some(e.clone())));
    let key = e.key();
    assert_eq!(key, key.to_ascii_lowercase());
    let again = Email::parse("email", &key)
        .expect("the key is an email too")
        .expect("not empty");
    assert_eq!(again.key(), key, "the key is stable");
}

fn check_phone(p: &Phone) {
    let s = p.as_str();
    let digits = s.strip_prefix('+').expect("E.164 starts with +");
    assert!((2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
    assert!(!digits.starts_with('0'));
    assert_eq!(Phone::parse("phone", s), Ok(Some(p.clone())));
}

fn check_tags(t: &Tags) {
    let tags = t.as_slice();
    assert!(tags.len() <= TAGS_MAX);
    let mut lower: Vec<String> = tags.iter().map(|s| s.to_lowercase()).collect();
    for s in tags {
        assert!(!s.is_empty() && s.trim() == s && s.chars().count() <= TAG_MAX_CHARS);
    }
    lower.sort();
    lower.dedup();
    assert_eq!(lower.len(), tags.len(), "unique ignoring case: {tags:?}");
    assert_eq!(Tags::parse("tags", &json!(tags)).as_ref(), Ok(t), "stable");
}

fn check_metadata(m: &kith_core::contact::MetadataPatch) {
    assert!(m.len() <= METADATA_MAX_KEYS);
    for (k, v) in m {
        assert!(!k.is_empty() && k.trim() == k && k.chars().count() <= METADATA_KEY_MAX_CHARS);
        match v {
            None | Some(Value::Bool(_)) | Some(Value::Number(_)) => {}
            Some(Value::String(s)) => assert!(s.chars().count() <= METADATA_VALUE_MAX_CHARS),
            Some(other) => panic!("nested value kept: {other}"),
        }
    }
    let stored: serde_json::Map<String, Value> = m
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or(Value::Null)))
        .collect();
    assert_eq!(
        Metadata::parse_patch("metadata", &Value::Object(stored)).as_ref(),
        Ok(m),
        "stable"
    );
}

fn check_claim(c: &Claim, body: &Value, secret: Option<&str>) {
    c.user_id
        .iter()
        .chain(&c.name)
        .chain(&c.company)
        .for_each(check_text);
    c.email.iter().for_each(check_email);
    c.phone.iter().for_each(check_phone);
    check_metadata(&c.metadata);
    match secret {
        None => assert!(c.verified && c.user_id_verified && c.email_verified),
        Some(secret) => {
            // Only a hash of exactly what was sent verifies it.
            let hash = body.get("user_hash").and_then(Value::as_str).unwrap_or("");
            let sent = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
            if c.user_id.is_some() {
                assert!(c.user_id_verified);
                assert!(kith_core::verify::hash_matches(
                    secret,
                    sent("user_id"),
                    hash
                ));
            }
            if c.email_verified {
                assert!(c.user_id.is_none());
                assert!(kith_core::verify::hash_matches(secret, sent("email"), hash));
            }
            assert_eq!(c.verified, c.user_id_verified || c.email_verified);
        }
    }
}

fn single_fields(s: &str) {
    if let Ok(Some(t)) = Text::parse("name", s) {
        check_text(&t);
    }
    if let Ok(Some(e)) = Email::parse("email", s) {
        check_email(&e);
    }
    if let Ok(Some(p)) = Phone::parse("phone", s) {
        check_phone(&p);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        single_fields(s);
    }
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        tokens(data, None);
        return;
    };
    let token_claim = tokens(data, Some(&body));
    if let Ok(t) = Tags::parse("tags", &body) {
        check_tags(&t);
    }
    if let Ok(m) = Metadata::parse_patch("metadata", &body) {
        check_metadata(&m);
    }
    if let Ok(p) = ProfilePatch::parse(&body) {
        for t in [&p.user_id, &p.name, &p.company]
            .into_iter()
            .flatten()
            .flatten()
        {
            check_text(t);
        }
        p.email.iter().flatten().for_each(check_email);
        p.phone.iter().flatten().for_each(check_phone);
        p.tags.iter().for_each(check_tags);
        p.metadata.iter().for_each(check_metadata);
    }
    if let Some(obj) = body.as_object() {
        obj.values()
            .filter_map(Value::as_str)
            .for_each(single_fields);
    }
    let mut claims = vec![];
    for secret in [Some(SECRET), None] {
        match Claim::from_identify(&body, secret) {
            Ok(c) => {
                check_claim(&c, &body, secret);
                claims.push(c);
            }
            Err(IdentifyError::Unverified) => {
                assert!(secret.is_some(), "verification off never refuses a hash");
            }
            Err(IdentifyError::Invalid(e)) => assert!(!e.field.is_empty()),
        }
    }
    // The remembered identity: a claim overlaid on itself and on the other keeps the limits.
    claims.extend(token_claim);
    if claims.len() >= 2 {
        let (a, b) = (&claims[0], &claims[claims.len() - 1]);
        for (older, newer) in [(a, b), (b, a), (a, a)] {
            if let Ok(c) = older.clone().overlay(newer.clone()) {
                check_metadata(&c.metadata);
                assert!(!c.verified || newer.verified, "overlay never adds proof");
            }
        }
    }
});
