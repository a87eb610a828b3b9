//! Activity timeline entries: their kinds and who caused them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    ConversationStarted,
    Escalated,
    FieldsUpdated,
    Promoted,
    Merged,
    /// A manual merge was undone (both contacts exist again).
    MergeUndone,
    /// An admin's or API client's note; the entry shows the note as it now is.
    Note,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::ConversationStarted => "conversation_started",
            EventKind::Escalated => "escalated",
            EventKind::FieldsUpdated => "fields_updated",
            EventKind::Promoted => "promoted",
            EventKind::Merged => "merged",
            EventKind::MergeUndone => "merge_undone",
            EventKind::Note => "note",
        }
    }
}

/// Who caused an entry: `visitor`, `admin:<id>` (panel session), `api` (bearer token) or
/// `system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Visitor,
    Admin(String),
    Api,
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Visitor => f.write_str("visitor"),
            Actor::Admin(id) => write!(f, "admin:{id}"),
            Actor::Api => f.write_str("api"),
            Actor::System => f.write_str("system"),
        }
    }
}
