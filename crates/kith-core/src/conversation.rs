//! What a conversation and its messages are, apart from their text (contact/message.rs):
//! who wrote a message, and where a conversation stands.

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

#[cfg(test)]
mod tests {
    use super::*;

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
