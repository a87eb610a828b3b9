//! Identity verification: `user_hash` is the lowercase hex HMAC-SHA256 of the user id (or, when
//! no user id is given, the email) exactly as sent, keyed with the website's identity secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `message` under `key` (also the signature of an HS256 identity token).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The hash a customer's backend computes for `value`.
pub fn user_hash(identity_secret: &str, value: &str) -> String {
    hex::encode(hmac_sha256(identity_secret.as_bytes(), value.as_bytes()))
}

/// Whether `given` is the right hash of `value`. Empty or wrong hashes count as none; the
/// comparison takes the same time wherever the first differing byte is.
pub fn hash_matches(identity_secret: &str, value: &str, given: &str) -> bool {
    if given.is_empty() {
        return false;
    }
    let expected = user_hash(identity_secret, value);
    // Accept upper-case hex from clients; the spec's form is lower-case.
    let given = given.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Whether `given` is the right hash of `value` under any of `secrets` (the current identity
/// secret and, during a rotation, the previous one).
pub fn hash_matches_any(secrets: &[&str], value: &str, given: &str) -> bool {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .any(|s| hash_matches(s, value, given))
}

/// How a website verifies identify calls (issue 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerificationMode {
    /// Every identify counts as verified (no proof asked).
    Off,
    /// A `user_hash` or an `identity_token` verifies (the default).
    #[default]
    HmacOrJwt,
    /// Only a `user_hash` verifies; identity tokens are refused.
    Hmac,
    /// Only an `identity_token` verifies; a bare `user_hash` is refused.
    JwtOnly,
}

impl VerificationMode {
    pub const ALL: [VerificationMode; 4] = [
        VerificationMode::Off,
        VerificationMode::HmacOrJwt,
        VerificationMode::Hmac,
        VerificationMode::JwtOnly,
    ];

    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationMode::Off => "off",
            VerificationMode::HmacOrJwt => "hmac-or-jwt",
            VerificationMode::Hmac => "hmac",
            VerificationMode::JwtOnly => "jwt-only",
        }
    }

    pub fn parse(s: &str) -> Option<VerificationMode> {
        Self::ALL.into_iter().find(|m| m.as_str() == s.trim())
    }

    pub fn accepts_hash(self) -> bool {
        matches!(self, VerificationMode::HmacOrJwt | VerificationMode::Hmac)
    }

    pub fn accepts_token(self) -> bool {
        matches!(
            self,
            VerificationMode::HmacOrJwt | VerificationMode::JwtOnly
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // RFC 4231-style check computed independently with `openssl dgst -sha256 -hmac`.
        assert_eq!(
            user_hash("key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn wrong_and_empty_hashes_do_not_match() {
        let good = user_hash("s3cret", "user-1");
        assert!(hash_matches("s3cret", "user-1", &good));
        assert!(hash_matches("s3cret", "user-1", &good.to_uppercase()));
        assert!(!hash_matches("s3cret", "user-2", &good));
        assert!(!hash_matches("other", "user-1", &good));
        assert!(!hash_matches("s3cret", "user-1", ""));
        assert!(!hash_matches("s3cret", "user-1", &good[..10]));
        assert!(hash_matches_any(&["new", "s3cret"], "user-1", &good));
        assert!(!hash_matches_any(&["new", ""], "user-1", &good));
    }

    #[test]
    fn modes_round_trip() {
        for m in VerificationMode::ALL {
            assert_eq!(VerificationMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(VerificationMode::parse("on"), None);
    }
}
