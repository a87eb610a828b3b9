//! Engagement stats a contact carries beside its profile.

/// Engagement stats and times, kept by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub conversation_count: i64,
    pub message_count: i64,
    pub last_seen_at: Option<i64>,
    pub created_at: i64,
}

impl Stats {
    /// Merge rule 3 for stats: counts add up, `last_seen_at` is the later and `created_at`
    /// the earlier of the two.
    pub fn absorb(&mut self, other: &Stats) {
        self.conversation_count += other.conversation_count;
        self.message_count += other.message_count;
        self.last_seen_at = match (self.last_seen_at, other.last_seen_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.created_at = self.created_at.min(other.created_at);
    }
}
