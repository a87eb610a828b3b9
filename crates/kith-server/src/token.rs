//! Visitor tokens: `<visitor_id>.<signature>`, the signature an HMAC-SHA256 of the website and
//! visitor ids under the website's token secret. Self-verifying, so a `session` call for a
//! new visitor writes nothing and a token of one website is worthless on another.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(token_secret: &str, website_id: &str, visitor_id: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(token_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(b"kith-visitor-v1\0");
    mac.update(website_id.as_bytes());
    mac.update(b"\0");
    mac.update(visitor_id.as_bytes());
    mac
}

/// A new token for `visitor_id`.
pub fn issue(token_secret: &str, website_id: &str, visitor_id: &str) -> String {
    format!(
        "{visitor_id}.{}",
        hex::encode(
            mac(token_secret, website_id, visitor_id)
                .finalize()
                .into_bytes()
        )
    )
}

/// The visitor id of a valid token, `None` for anything else.
pub fn verify(token_secret: &str, website_id: &str, token: &str) -> Option<String> {
    let (visitor_id, sig_hex) = token.split_once('.')?;
    if visitor_id.is_empty()
        || visitor_id.len() > 64
        || !visitor_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let sig = hex::decode(sig_hex).ok()?;
    // Constant-time comparison.
    mac(token_secret, website_id, visitor_id)
        .verify_slice(&sig)
        .ok()?;
    Some(visitor_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_website_and_secret() {
        let t = issue("secret", "w1", "v1");
        assert_eq!(verify("secret", "w1", &t).as_deref(), Some("v1"));
        assert_eq!(verify("secret", "w2", &t), None);
        assert_eq!(verify("other", "w1", &t), None);
        let (id, sig) = t.split_once('.').unwrap();
        assert_eq!(verify("secret", "w1", &format!("{id}x.{sig}")), None);
        assert_eq!(verify("secret", "w1", &format!("{id}.{}", &sig[2..])), None);
        assert_eq!(verify("secret", "w1", "garbage"), None);
        assert_eq!(verify("secret", "w1", ""), None);
    }
}
