//! The realtime bus: every message written is published here after its transaction commits,
//! and event streams (widget visitors, admins) subscribe and filter. In one process this is a
//! broadcast channel; with PostgreSQL, publications also travel through LISTEN/NOTIFY so a
//! subscriber connected to another process receives them.

use kith_store::{Message, PostedMessage};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// One new message, with what subscribers need to decide whether they may see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageEvent {
    pub org_id: String,
    pub website_id: String,
    pub conversation_id: String,
    pub contact_id: String,
    pub starter_visitor_id: String,
    pub message: MessageJson,
}

/// The message as streams send it (same fields as the API's message).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageJson {
    pub id: String,
    pub conversation_id: String,
    pub author: String,
    pub body: String,
    pub created_at: String,
}

impl From<&Message> for MessageJson {
    fn from(m: &Message) -> Self {
        MessageJson {
            id: m.id.clone(),
            conversation_id: m.conversation_id.clone(),
            author: m.author.as_str().to_string(),
            body: m.body.clone(),
            created_at: m.created_at.to_rfc3339(),
        }
    }
}

impl MessageEvent {
    pub fn new(org_id: &str, posted: &PostedMessage) -> Self {
        MessageEvent {
            org_id: org_id.to_string(),
            website_id: posted.conversation.website.id.clone(),
            conversation_id: posted.conversation.id.clone(),
            contact_id: posted.contact_id.clone(),
            starter_visitor_id: posted.starter_visitor_id.clone(),
            message: MessageJson::from(&posted.message),
        }
    }
}

/// Fan-out of message events inside this process.
#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<MessageEvent>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        // Slow subscribers that fall this far behind skip events rather than hold memory.
        let (local, _) = broadcast::channel(4096);
        Bus { local }
    }

    /// Delivers to this process's subscribers.
    pub fn deliver_local(&self, event: MessageEvent) {
        // No subscribers is fine.
        let _ = self.local.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<MessageEvent> {
        self.local.subscribe()
    }
}
