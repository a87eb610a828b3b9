//! What a conversation and its messages are, apart from their text (contact/message.rs):
//! who wrote a message, where a conversation stands, and the key that makes a retried
//! message idempotent.

use crate::limits::IDEMPOTENCY_KEY_MAX_CHARS;
use crate::validate::ValidationError;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorKind {
    Visitor,
    Agent,
    Bot,
    System,
}

impl AuthorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorKind::Visitor => "visitor",
            AuthorKind::Agent => "agent",
            AuthorKind::Bot => "bot",
            AuthorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<AuthorKind> {
        [
            AuthorKind::Visitor,
            AuthorKind::Agent,
            AuthorKind::Bot,
            AuthorKind::System,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Where a conversation stands: a visitor's message reopens a resolved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationStatus {
    Open,
    Escalated,
    Resolved,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Escalated => "escalated",
            ConversationStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<ConversationStatus> {
        [
            ConversationStatus::Open,
            ConversationStatus::Escalated,
            ConversationStatus::Resolved,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// The `Idempotency-Key` of a visitor's message: 1 to 64 printable ASCII characters (what
/// a UUID, a ULID or a counter gives), or a 422 naming the header.
pub fn idempotency_key(raw: &str) -> Result<&str, ValidationError> {
    let key = raw.trim();
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_CHARS {
        return Err(ValidationError::new(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} characters"),
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new(
            "Idempotency-Key",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_short_printable_ascii() {
        assert_eq!(idempotency_key(" 0b6f-4c1e "), Ok("0b6f-4c1e"));
        assert_eq!(idempotency_key(&"k".repeat(64)).map(str::len), Ok(64));
        for bad in ["", "   ", &"k".repeat(65), "two words", "caf\u{e9}", "a\tb"] {
            let err = idempotency_key(bad).unwrap_err();
            assert_eq!(err.field, "Idempotency-Key", "{bad:?}");
        }
    }

    #[test]
    fn names_read_back() {
        for a in [
            AuthorKind::Visitor,
            AuthorKind::Agent,
            AuthorKind::Bot,
            AuthorKind::System,
        ] {
            assert_eq!(AuthorKind::parse(a.as_str()), Some(a));
        }
        for s in [
            ConversationStatus::Open,
            ConversationStatus::Escalated,
            ConversationStatus::Resolved,
        ] {
            assert_eq!(ConversationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(AuthorKind::parse("Agent"), None);
        assert_eq!(ConversationStatus::parse(""), None);
    }
}
