//! The realtime bus: every message written is published here after its transaction commits,
//! and event streams (widget visitors, admins) subscribe and filter. In one process this is a
//! broadcast channel; with PostgreSQL, publications also travel through LISTEN/NOTIFY so a
//! subscriber connected to another process receives them.

use crate::state::AppState;
use crate::views;
use kith_core::conversation::AuthorKind;
use kith_core::{ContactId, ConversationId, OrgId, VisitorId, WebsiteId};
use kith_store::{Announcement, PostedMessage};
use std::time::Duration;
use tokio::sync::broadcast;

/// One new message, with what subscribers need to decide whether they may see it.
#[derive(Debug, Clone)]
pub struct MessageEvent {
    pub org_id: OrgId,
    pub website_id: WebsiteId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub starter_visitor_id: VisitorId,
    /// As the API writes a message, so every stream sends the same JSON.
    pub message: views::Message,
}

impl MessageEvent {
    pub fn new(org_id: &OrgId, posted: &PostedMessage) -> Self {
        MessageEvent {
            org_id: org_id.clone(),
            website_id: posted.conversation.website.id.clone(),
            conversation_id: posted.conversation.id.clone(),
            contact_id: posted.contact_id.clone(),
            starter_visitor_id: posted.starter_visitor_id.clone(),
            message: views::Message::from(&posted.message),
        }
    }
}

/// A visitor's identify linked it to another person: streams opened for the previous one end.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitorSwitch {
    pub org_id: OrgId,
    pub visitor_id: VisitorId,
    /// Whom the visitor belongs to now. A stream opened for exactly that contact (the widget
    /// may already have reopened one before a NOTIFY arrives) stays open.
    pub now_for: Option<ContactId>,
}

/// Fan-out of message events (and visitor switches) inside this process.
#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<MessageEvent>,
    switches: broadcast::Sender<VisitorSwitch>,
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
        let (switches, _) = broadcast::channel(1024);
        Bus { local, switches }
    }

    /// Delivers to this process's subscribers.
    pub fn deliver_local(&self, event: MessageEvent) {
        // No subscribers is fine.
        let _ = self.local.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<MessageEvent> {
        self.local.subscribe()
    }

    pub fn deliver_switch_local(&self, switch: VisitorSwitch) {
        let _ = self.switches.send(switch);
    }

    pub fn subscribe_switches(&self) -> broadcast::Receiver<VisitorSwitch> {
        self.switches.subscribe()
    }
}

impl AppState {
    /// Sends a committed message to every subscriber: through PostgreSQL to every process
    /// (this one included, via its listener), or straight to this process's bus on SQLite.
    pub async fn publish(&self, org_id: &OrgId, posted: &PostedMessage) {
        if posted.message.author == AuthorKind::Agent {
            crate::metrics::agent_message();
        }
        match self
            .store
            .announce_message(org_id, &posted.message.id)
            .await
        {
            Ok(true) => {}
            Ok(false) => self.bus.deliver_local(MessageEvent::new(org_id, posted)),
            Err(e) => {
                // The message is stored; only the live push failed. Deliver here at least.
                tracing::warn!(error = %e, "could not announce a message to other processes");
                self.bus.deliver_local(MessageEvent::new(org_id, posted));
            }
        }
    }

    /// Tells every process that a visitor now belongs to another contact, so each ends the
    /// event streams it holds for the previous one at once (issue 20).
    pub async fn publish_visitor_switch(
        &self,
        org_id: &OrgId,
        visitor_id: &VisitorId,
        now_for: Option<&ContactId>,
    ) {
        let switch = VisitorSwitch {
            org_id: org_id.clone(),
            visitor_id: visitor_id.clone(),
            now_for: now_for.cloned(),
        };
        match self
            .store
            .announce_visitor_switch(org_id, visitor_id, now_for)
            .await
        {
            Ok(true) => {}
            Ok(false) => self.bus.deliver_switch_local(switch),
            Err(e) => {
                // Streams still end at their next event concerning the visitor; here at once.
                tracing::warn!(error = %e, "could not announce a visitor switch to other processes");
                self.bus.deliver_switch_local(switch);
            }
        }
    }

    /// On PostgreSQL: feeds messages announced by any process into this process's bus,
    /// starting with `first` (already listening, so nothing published after start is missed).
    pub(crate) async fn relay_announcements(self, first: Option<kith_store::MessageListener>) {
        let mut first = first;
        loop {
            let mut listener = match first.take() {
                Some(l) => l,
                None => match self.store.listen_messages().await {
                    Ok(Some(l)) => l,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            loop {
                match listener.next().await {
                    Ok(Announcement::Message(org_id, message_id)) => {
                        match self.store.org(&org_id).posted_message(&message_id).await {
                            Ok(posted) => {
                                self.bus.deliver_local(MessageEvent::new(&org_id, &posted))
                            }
                            Err(e) => tracing::warn!(error = %e, "announced message not loadable"),
                        }
                    }
                    Ok(Announcement::VisitorSwitched(org_id, visitor_id, now_for)) => {
                        self.bus.deliver_switch_local(VisitorSwitch {
                            org_id,
                            visitor_id,
                            now_for,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}
