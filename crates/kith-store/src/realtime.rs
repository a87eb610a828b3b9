//! Cross-process realtime on PostgreSQL: a committed message is announced with NOTIFY
//! (a small reference, well under NOTIFY's 8000-byte payload limit), and every server process
//! LISTENs and loads the message to hand to its own subscribers. SQLite serves one process,
//! whose in-process bus needs none of this.

use crate::conversations::PostedMessage;
use crate::{read, OrgStore, Store, StoreError};
use kith_core::{ContactId, OrgId, VisitorId};
use sqlx::postgres::PgListener;

const CHANNEL: &str = "kith_messages";
/// Visitors whose identify linked them to another person (SPEC 1 rule 4): every process ends
/// the event streams it holds for them at once.
const SWITCH_CHANNEL: &str = "kith_visitor_switches";

/// What another process (or this one) announced.
#[derive(Debug, Clone, PartialEq)]
pub enum Announcement {
    /// A committed message, by id.
    Message(OrgId, String),
    /// A visitor now belongs to another contact than before (`None`: to none yet).
    VisitorSwitched(OrgId, VisitorId, Option<ContactId>),
}

/// Announcements of any process.
pub struct MessageListener(PgListener);

impl MessageListener {
    /// The next announcement. Reconnects by itself after a lost connection (announcements
    /// made meanwhile are missed, as with any LISTEN).
    pub async fn next(&mut self) -> Result<Announcement, StoreError> {
        loop {
            let n = self.0.recv().await?;
            let Some((org, id)) = n.payload().split_once(' ') else {
                continue;
            };
            return Ok(if n.channel() == SWITCH_CHANNEL {
                // `visitor contact`, or `visitor` alone when it belongs to no contact yet.
                let (visitor, contact) = match id.split_once(' ') {
                    Some((v, c)) => (v, Some(ContactId::new(c))),
                    None => (id, None),
                };
                Announcement::VisitorSwitched(OrgId::new(org), VisitorId::new(visitor), contact)
            } else {
                Announcement::Message(OrgId::new(org), id.to_string())
            });
        }
    }
}

impl Store {
    /// Announces a committed message to every process. `Ok(false)` on SQLite: the caller
    /// delivers it in process.
    pub async fn announce_message(
        &self,
        org_id: &OrgId,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let Some(pool) = self.pg_pool() else {
            return Ok(false);
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{org_id} {message_id}"))
            .execute(pool)
            .await?;
        Ok(true)
    }

    /// Announces that a visitor switched to another contact. `Ok(false)` on SQLite: the
    /// caller delivers it in process.
    pub async fn announce_visitor_switch(
        &self,
        org_id: &OrgId,
        visitor_id: &VisitorId,
        now_for: Option<&ContactId>,
    ) -> Result<bool, StoreError> {
        let Some(pool) = self.pg_pool() else {
            return Ok(false);
        };
        let payload = match now_for {
            Some(c) => format!("{org_id} {visitor_id} {c}"),
            None => format!("{org_id} {visitor_id}"),
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(SWITCH_CHANNEL)
            .bind(payload)
            .execute(pool)
            .await?;
        Ok(true)
    }

    /// Subscribes to announcements; `None` on SQLite.
    pub async fn listen_messages(&self) -> Result<Option<MessageListener>, StoreError> {
        let Some(pool) = self.pg_pool() else {
            return Ok(None);
        };
        let mut l = PgListener::connect_with(pool).await?;
        l.listen_all([CHANNEL, SWITCH_CHANNEL]).await?;
        Ok(Some(MessageListener(l)))
    }
}

impl OrgStore<'_> {
    /// A message with its conversation, as the realtime bus carries it.
    pub async fn posted_message(self, message_id: &str) -> Result<PostedMessage, StoreError> {
        let org_id = self.org_id();
        read!(self.store, |c| crate::conversations::load_posted(
            c, org_id, message_id
        )
        .await)
    }
}
