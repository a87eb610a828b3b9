//! Cross-process realtime on PostgreSQL: a committed message is announced with NOTIFY
//! (a small reference, well under NOTIFY's 8000-byte payload limit), and every server process
//! LISTENs and loads the message to hand to its own subscribers. SQLite serves one process,
//! whose in-process bus needs none of this.

use crate::conversations::PostedMessage;
use crate::{read, OrgStore, Store, StoreError};
use kith_core::{ContactId, OrgId, VisitorId};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

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

/// Announcements NOTIFYed together at most: a round's payloads stay far below PostgreSQL's
/// notification queue page, and one slow round holds up no more callers than this.
const ROUND: usize = 256;

/// NOTIFY rounds this process ran: a test's proof that announcements share them.
static ANNOUNCE_ROUNDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many NOTIFY rounds this process's announcers ran (PostgreSQL; tests).
#[doc(hidden)]
pub fn announce_rounds() -> u64 {
    ANNOUNCE_ROUNDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// How a round went: its error is shared by every caller of the round.
type Sent = Result<(), std::sync::Arc<sqlx::Error>>;

/// One announcement waiting for its round, and who to tell how the round went.
type Pending = (&'static str, String, oneshot::Sender<Sent>);

/// One NOTIFY per announcement, in order (`unnest … WITH ORDINALITY … ORDER BY`: PostgreSQL
/// evaluates a volatile function of the select list after the sort).
const NOTIFY_ROUND: &str = "SELECT pg_notify(c, p) \
     FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS n(c, p, i) ORDER BY i";

/// Sends a process's announcements, all that queued while the last round ran in one
/// statement (`pg_notify` over arrays): one transaction, one notification-queue lock and one
/// signal to the listeners per round, instead of each per message. No wait is added: a round
/// starts as soon as the last one ended. Callers still hear once their NOTIFY committed.
pub(crate) struct Announcer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Announcer {
    fn start(pool: PgPool) -> Announcer {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        // Ends when the store (which holds the only sender) is dropped.
        tokio::spawn(async move {
            let mut round = Vec::with_capacity(ROUND);
            while rx.recv_many(&mut round, ROUND).await > 0 {
                ANNOUNCE_ROUNDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut channels = Vec::with_capacity(round.len());
                let mut payloads = Vec::with_capacity(round.len());
                let mut waiting = Vec::with_capacity(round.len());
                for (channel, payload, done) in round.drain(..) {
                    channels.push(channel);
                    payloads.push(payload);
                    waiting.push(done);
                }
                // Notifications of one transaction are delivered in the order they were
                // sent, which is the arrays' order here; PostgreSQL drops a repeat of the
                // same payload on the same channel within one, which changes nothing for
                // the listeners (a message id is announced once; a switch twice is the same
                // switch).
                let sent: Sent = sqlx::query(NOTIFY_ROUND)
                    .bind(channels)
                    .bind(payloads)
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(std::sync::Arc::new);
                for done in waiting {
                    let _ = done.send(sent.clone());
                }
            }
        });
        Announcer { tx }
    }
}

impl Store {
    /// NOTIFYs `payload` on `channel` in the next round of this process's [`Announcer`];
    /// answers once it committed. `Ok(false)` on SQLite.
    async fn announce(&self, channel: &'static str, payload: String) -> Result<bool, StoreError> {
        let Some(pool) = self.pg_pool() else {
            return Ok(false);
        };
        let announcer = self
            .inner
            .announcer
            .get_or_init(|| Announcer::start(pool.clone()));
        let (done, heard) = oneshot::channel();
        let heard = match announcer.tx.send((channel, payload, done)) {
            Ok(()) => heard.await.ok(),
            Err(mpsc::error::SendError((_, payload, _))) => {
                // The announcer's task is gone (its runtime shut down while the store lives
                // on): announce alone rather than not at all.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(channel)
                    .bind(payload)
                    .execute(pool)
                    .await?;
                return Ok(true);
            }
        };
        match heard {
            Some(Ok(())) => Ok(true),
            Some(Err(e)) => Err(StoreError::Database(match &*e {
                // The kinds a caller may act on keep their kind; the rest their text.
                sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
                sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
                other => sqlx::Error::Protocol(format!("NOTIFY failed: {other}")),
            })),
            // The task went away with this announcement (its runtime shut down mid-round).
            None => Err(StoreError::Database(sqlx::Error::PoolClosed)),
        }
    }

    /// Announces a committed message to every process. `Ok(false)` on SQLite: the caller
    /// delivers it in process.
    pub async fn announce_message(
        &self,
        org_id: &OrgId,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        self.announce(CHANNEL, format!("{org_id} {message_id}"))
            .await
    }

    /// Announces that a visitor switched to another contact. `Ok(false)` on SQLite: the
    /// caller delivers it in process.
    pub async fn announce_visitor_switch(
        &self,
        org_id: &OrgId,
        visitor_id: &VisitorId,
        now_for: Option<&ContactId>,
    ) -> Result<bool, StoreError> {
        let payload = match now_for {
            Some(c) => format!("{org_id} {visitor_id} {c}"),
            None => format!("{org_id} {visitor_id}"),
        };
        self.announce(SWITCH_CHANNEL, payload).await
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
