//! What a visitor does through the widget: identify, write, read its conversations, escalate.
//! Visibility (SPEC rule 6): an unverified visitor sees only the conversations it started; a
//! verified one also those of its contact on the same website that were started by visitors
//! verified for that contact. Conversations that reached the contact through somebody's
//! unverified email claim stay visible only to the visitor that started them.

use crate::conn::{args, Arg, Conn};
use crate::contact_rows::{
    contact_by, event_statements, expect_one, touch_contact, LAST_SEEN_INTERVAL_MS,
};
use crate::conversations::{
    append_message_after, start_with_message, NewConversation, PostedMessage, Visibility,
};
use crate::dialect::for_update;
use crate::ids::{new_id, now_ms};
use crate::message_batch::{Job, MessageBatcher};
use crate::model::{ConversationRow, Message, Website, CONVERSATION_SELECT};
use crate::resolution::{resolve_and_apply, Occasion, VisitorState};
use crate::{read, read_point, transact, Conversation, OrgStore, Page, StoreError, WebsiteStore};
use kith_core::conversation::AuthorKind;
use kith_core::identity::Claim;
use kith_core::timeline::{Actor, EventKind};
use kith_core::{ContactId, ConversationId, Status, VisitorId};
use serde_json::json;
use std::sync::LazyLock;

/// A visitor as stored (only once it identified or wrote).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Visitor {
    pub id: String,
    pub website_id: String,
    pub contact_id: Option<String>,
    pub verified: bool,
    /// Its link to its contact is its own (created by it, or reached by proof).
    pub link_proven: bool,
    pub pending_claim: Option<String>,
    pub last_seen_at: i64,
}
crate::lite::lite_row!(Visitor {
    id,
    website_id,
    contact_id,
    verified,
    link_proven,
    pending_claim,
    last_seen_at
});

/// The answer of an identify call: the contact it matched, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyOutcome {
    pub contact_id: Option<ContactId>,
    pub status: Option<Status>,
    /// The visitor belonged to another contact before this identify (a log-out/log-in switch
    /// of SPEC rule 4): its open event streams must end.
    pub switched: bool,
}

/// The conversations a visitor may see ([`Visibility`]), in the organization `$1`, the rule's
/// parameters `$2..$5`. Its parameters come from [`visible_args`] only, so every widget read
/// (list, messages, post, escalate, the event stream) decides visibility the same way.
static VISIBLE: LazyLock<String> =
    LazyLock::new(|| format!("cv.org_id = $1 AND {}", Visibility::predicate("cv.", 2)));

/// Whether the visitor is verified *for its current contact*: verified, and its link to the
/// contact is its own (created by it or reached by proof). Being verified for some other
/// identity is not enough: a link made without proof must not open the contact's history.
fn verified_for_contact(v: &Visitor) -> bool {
    v.verified && v.link_proven
}

/// What this visitor may see and write to, as it is now.
fn visibility(website: &Website, v: &Visitor) -> Visibility {
    visibility_on(website.id.as_str(), v)
}

/// [`visibility`] on the website of that id (the batched messages know only the id).
pub(crate) fn visibility_on(website_id: &str, v: &Visitor) -> Visibility {
    Visibility {
        website_id: website_id.to_string(),
        contact_id: v.contact_id.clone(),
        visitor_id: v.id.clone(),
        verified_for_contact: verified_for_contact(v),
    }
}

/// `$1..$5` of [`VISIBLE`] for this visitor: the organization, then [`Visibility::args`].
fn visible_args(website: &Website, v: &Visitor) -> Vec<Arg> {
    let mut args = args![&website.org_id];
    args.extend(visibility(website, v).args());
    args
}

/// How long an idempotency key answers with its first message (SPEC: 24 hours).
pub(crate) const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// The columns of [`Visitor`], as every read of a visitor's row names them.
pub(crate) const VISITOR_COLUMNS: &str =
    "id, website_id, contact_id, verified, link_proven, pending_claim, last_seen_at";

async fn load_visitor<C: Conn>(
    c: &mut C,
    org_id: &str,
    visitor_id: &str,
    lock: bool,
) -> Result<Option<Visitor>, StoreError> {
    let sql = format!(
        "SELECT {VISITOR_COLUMNS} FROM visitors WHERE org_id = $1 AND id = $2{}",
        if lock { for_update(c.dialect()) } else { "" }
    );
    Ok(c.fetch_optional(&sql, args![org_id, visitor_id]).await?)
}

/// How [`ensure_visitor`] locks a stored visitor's row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// `SELECT … FOR UPDATE`: nothing is written (an identify writes the visitor only when
    /// its state changes).
    Read,
    /// An `UPDATE` of its `last_seen_at` to `now` that answers the row: the lock and the write
    /// a message makes anyway, in one statement (one round trip on PostgreSQL).
    Touch,
}

/// The visitor's row, created on its first identify or message, and locked: two calls of
/// one visitor never decide on the same stale state.
async fn ensure_visitor<C: Conn>(
    c: &mut C,
    website: &Website,
    visitor_id: &str,
    now: i64,
    lock: Lock,
) -> Result<Visitor, StoreError> {
    let org_id = website.org_id.as_str();
    // Most calls come from a visitor already stored: read (and lock) it first, and insert
    // only when it is not there.
    let stored = match lock {
        Lock::Read => load_visitor(c, org_id, visitor_id, true).await?,
        Lock::Touch => {
            static TOUCH: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "UPDATE visitors SET last_seen_at = $3 WHERE org_id = $1 AND id = $2 \
                     RETURNING {VISITOR_COLUMNS}"
                )
            });
            c.fetch_optional(&TOUCH, args![org_id, visitor_id, now])
                .await?
        }
    };
    let v = match stored {
        Some(v) => v,
        None => {
            // A new visitor's row is last seen now.
            c.execute(
                "INSERT INTO visitors (org_id, id, website_id, contact_id, verified, pending_claim, \
                 created_at, last_seen_at) VALUES ($1, $2, $3, NULL, FALSE, NULL, $4, $4) \
                 ON CONFLICT (org_id, id) DO NOTHING",
                args![org_id, visitor_id, &website.id, now],
            )
            .await?;
            load_visitor(c, org_id, visitor_id, true)
                .await?
                .ok_or(StoreError::Raced)?
        }
    };
    if website.id != v.website_id {
        // Tokens are signed per website, so this means a forged or mixed-up id (the
        // transaction rolls back, a `Touch` with it).
        return Err(StoreError::NotFound);
    }
    Ok(v)
}

fn pending_claim(v: &Visitor) -> Result<Option<Claim>, StoreError> {
    v.pending_claim
        .as_deref()
        .map(|s| serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

async fn visible_conversation<C: Conn>(
    c: &mut C,
    website: &Website,
    v: &Visitor,
    conversation_id: &str,
) -> Result<ConversationRow, StoreError> {
    let sql = format!("{CONVERSATION_SELECT} WHERE {} AND cv.id = $6", *VISIBLE);
    let mut args = visible_args(website, v);
    args.push(conversation_id.into());
    c.fetch_optional(&sql, args)
        .await?
        .ok_or(StoreError::NotFound)
}

impl WebsiteStore<'_> {
    /// A `session` call of a returning visitor: refreshes its contact's `last_seen_at`, at
    /// most once a minute. Reads one row; writes only when the minute has passed and the
    /// visitor has a contact.
    pub async fn visitor_session(self, visitor_id: &VisitorId) -> Result<(), StoreError> {
        let website = self.website;
        let visitor_id = visitor_id.as_str();
        let org_id = website.org_id.as_str();
        // Every page view of a returning visitor asks: a point read on the calling thread.
        let v = read_point!(self.store, |c| load_visitor(c, org_id, visitor_id, false)
            .await)?;
        let Some(v) = v else { return Ok(()) };
        let now = now_ms();
        if v.contact_id.is_none() || now - v.last_seen_at < LAST_SEEN_INTERVAL_MS {
            return Ok(());
        }
        transact!(self.store, |c| async {
            // Re-checked under the write lock so parallel page views write once.
            let n = c
                .execute(
                    "UPDATE visitors SET last_seen_at = $3 WHERE org_id = $1 AND id = $2 \
                     AND last_seen_at <= $4",
                    args![org_id, visitor_id, now, now - LAST_SEEN_INTERVAL_MS],
                )
                .await?;
            if n == 1 {
                c.execute(
                    "UPDATE contacts SET last_seen_at = $3 WHERE org_id = $1 AND id = \
                     (SELECT contact_id FROM visitors WHERE org_id = $1 AND id = $2) \
                     AND (last_seen_at IS NULL OR last_seen_at < $3)",
                    args![org_id, visitor_id, now],
                )
                .await?;
            }
            Ok::<_, StoreError>(())
        }
        .await)
    }

    /// The stored visitor, if it ever identified or wrote.
    pub async fn visitor(self, visitor_id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        self.own_visitor(visitor_id.as_str()).await
    }

    async fn own_visitor(self, visitor_id: &str) -> Result<Option<Visitor>, StoreError> {
        let website = self.website;
        let org_id = website.org_id.as_str();
        let v = read!(self.store, |c| load_visitor(c, org_id, visitor_id, false)
            .await)?;
        Ok(v.filter(|v| website.id == v.website_id))
    }

    /// `POST /api/widget/v1/identify` with a verified (or verification-free) claim.
    pub async fn identify(
        self,
        visitor_id: &VisitorId,
        claim: &Claim,
    ) -> Result<IdentifyOutcome, StoreError> {
        let website = self.website;
        let visitor_id = visitor_id.as_str();
        let org_id = website.org_id.as_str();
        transact!(self.store, |c| async {
            let now = now_ms();
            let v = ensure_visitor(c, website, visitor_id, now, Lock::Read).await?;
            // Before the first message, identities add up: the newer values win.
            let claim = match (&v.contact_id, pending_claim(&v)?) {
                (None, Some(older)) => older.overlay(claim.clone())?,
                _ => claim.clone(),
            };
            let state = VisitorState {
                id: visitor_id,
                contact_id: v.contact_id.as_deref(),
                verified: v.verified,
                link_proven: v.link_proven,
            };
            let resolved =
                resolve_and_apply(c, org_id, state, &claim, Occasion::Identify, now).await?;
            let status = match &resolved.contact_id {
                Some(id) => contact_by(c, org_id, "id", id).await?.map(|r| {
                    if r.user_id.is_some() {
                        Status::Customer
                    } else {
                        Status::Lead
                    }
                }),
                None => None,
            };
            let switched = v.contact_id.is_some() && v.contact_id != resolved.contact_id;
            Ok::<_, StoreError>(IdentifyOutcome {
                contact_id: resolved.contact_id.map(ContactId::new),
                status,
                switched,
            })
        }
        .await)
    }

    /// `POST /api/widget/v1/messages`: the first message creates (or finds) the contact;
    /// without `conversation_id` a new conversation starts.
    ///
    /// With an idempotency key (already checked by `kith_core::conversation::idempotency_key`),
    /// a key this visitor used within the last 24 hours answers the message it wrote then,
    /// marked `replayed`, and writes nothing. Two calls racing with one key: on SQLite the
    /// writer lock orders them; on PostgreSQL the second one's insert of the key collides,
    /// its transaction is retried and finds the first one's message.
    pub async fn visitor_message(
        self,
        visitor_id: &VisitorId,
        body: &str,
        conversation_id: Option<&ConversationId>,
        idempotency_key: Option<&str>,
    ) -> Result<PostedMessage, StoreError> {
        let website = self.website;
        let visitor_id = visitor_id.as_str();
        let conversation_id = conversation_id.map(ConversationId::as_str);
        let org_id = website.org_id.as_str();
        if let (Some(conversation_id), Some(pool)) = (conversation_id, self.store.pg_pool()) {
            // PostgreSQL: a returning visitor's message goes in this process's next batch
            // (`message_batch`); what the batch declines, nothing of it written, runs below.
            let batcher = self
                .store
                .inner
                .message_batcher
                .get_or_init(|| MessageBatcher::start(pool.clone()));
            let job = Job {
                org_id: org_id.to_string(),
                website_id: website.id.as_str().to_string(),
                visitor_id: visitor_id.to_string(),
                conversation_id: conversation_id.to_string(),
                body: body.to_string(),
                key: idempotency_key.map(str::to_string),
            };
            if let Some(posted) = batcher.submit(job).await? {
                return Ok(posted);
            }
        }
        transact!(self.store, |c| {
            async {
            let now = now_ms();
            if let Some(key) = idempotency_key {
                let earlier: Option<(String,)> = c
                    .fetch_optional(
                        "SELECT message_id FROM idempotency_keys \
                         WHERE org_id = $1 AND visitor_id = $2 AND key = $3 AND created_at > $4",
                        args![org_id, visitor_id, key, now - IDEMPOTENCY_WINDOW_MS],
                    )
                    .await?;
                if let Some((message_id,)) = earlier {
                    let mut posted =
                        crate::conversations::load_posted(c, org_id, &message_id).await?;
                    posted.replayed = true;
                    return Ok(posted);
                }
            }
            // The visitor's `last_seen_at` moves to now with its lock.
            let mut v = ensure_visitor(c, website, visitor_id, now, Lock::Touch).await?;
            let contact_id = match v.contact_id.clone() {
                Some(id) => id,
                None => {
                    let claim = pending_claim(&v)?.unwrap_or_default();
                    let state = VisitorState {
                        id: visitor_id,
                        contact_id: None,
                        verified: v.verified,
                        link_proven: false,
                    };
                    let resolved = resolve_and_apply(
                        c,
                        org_id,
                        state,
                        &claim,
                        Occasion::FirstMessage,
                        now,
                    )
                    .await?;
                    let id = resolved.contact_id.ok_or(StoreError::Raced)?;
                    v.contact_id = Some(id.clone());
                    v.verified = resolved.visitor_verified;
                    v.link_proven = resolved.link_proven;
                    id
                }
            };
            // The contact's counters, then the rest of the message; on PostgreSQL each path
            // is one statement.
            let (posted, touched) = match conversation_id {
                Some(id) => {
                    let counters = (
                        "UPDATE contacts SET message_count = message_count + 1, last_seen_at = $3 \
                         WHERE org_id = $1 AND id = $2",
                        args![org_id, &contact_id, now],
                    );
                    // Whether the visitor may write to the conversation it names is checked by
                    // the conversation's update, at the end; a refusal takes back the rest.
                    let may = visibility(website, &v);
                    append_message_after(
                        c,
                        vec![counters],
                        Some(&may),
                        org_id,
                        (id, &contact_id),
                        (AuthorKind::Visitor, None, body),
                        now,
                    )
                    .await?
                }
                None => {
                    let id = new_id();
                    let mut writes: Vec<(&str, Vec<Arg>)> = vec![(
                        "UPDATE contacts SET conversation_count = conversation_count + 1, \
                         message_count = message_count + 1, last_seen_at = $3 \
                         WHERE org_id = $1 AND id = $2",
                        args![org_id, &contact_id, now],
                    )];
                    let (event, enqueue) = event_statements(
                        c.dialect(),
                        org_id,
                        &contact_id,
                        EventKind::ConversationStarted,
                        &Actor::Visitor,
                        json!({"conversation_id": id, "website_id": website.id, "website_name": website.name}),
                        now,
                    );
                    // Which of `writes` enqueues `conversation.started`, if any (its rows wake
                    // the deliverer).
                    let hook = enqueue.map(|i| writes.len() + i);
                    writes.extend(event);
                    let new = NewConversation {
                        id: &id,
                        website,
                        contact_id: &contact_id,
                        visitor_id,
                        verified_start: verified_for_contact(&v),
                    };
                    let (posted, touched) =
                        start_with_message(c, org_id, new, writes, body, now).await?;
                    if let Some(i) = hook {
                        crate::webhooks::note_enqueued(touched[i]);
                    }
                    (posted, touched)
                }
            };
            // The contact's counters must touch exactly its row.
            expect_one(touched[0])?;
            if let Some(key) = idempotency_key {
                // Keys past the window go, this visitor's only (the primary key's prefix).
                c.execute(
                    "DELETE FROM idempotency_keys WHERE org_id = $1 AND visitor_id = $2 \
                     AND created_at <= $3",
                    args![org_id, visitor_id, now - IDEMPOTENCY_WINDOW_MS],
                )
                .await?;
                c.execute(
                    "INSERT INTO idempotency_keys (org_id, visitor_id, key, message_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                    args![org_id, visitor_id, key, &posted.message.id, now],
                )
                .await?;
            }
            Ok::<_, StoreError>(posted)
        }
        .await
        })
    }

    /// `GET /api/widget/v1/conversations`: the conversations the visitor may see, newest
    /// activity first, one page after `cursor`.
    pub async fn visitor_conversations(
        self,
        visitor_id: &VisitorId,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Conversation>, StoreError> {
        let website = self.website;
        let visitor_id = visitor_id.as_str();
        let after = crate::conversations::decode_conversations_cursor(cursor)?;
        let Some(v) = self.own_visitor(visitor_id).await? else {
            return Ok(Page {
                items: vec![],
                total: None,
                next_cursor: None,
            });
        };
        read!(self.store, |c| crate::conversations::conversation_page(
            c,
            &VISIBLE,
            visible_args(website, &v),
            after.as_ref(),
            limit
        )
        .await)
    }

    /// Whether the visitor may see a conversation.
    pub async fn visitor_can_see(
        self,
        visitor_id: &VisitorId,
        conversation_id: &ConversationId,
    ) -> Result<bool, StoreError> {
        let visitor_id = visitor_id.as_str();
        let conversation_id = conversation_id.as_str();
        match self.own_visitor(visitor_id).await? {
            Some(v) => self.sees(&v, conversation_id).await,
            None => Ok(false),
        }
    }

    /// Whether an already loaded visitor may see a conversation (the event stream keeps the
    /// visitor it loaded).
    pub async fn visitor_sees(
        self,
        v: &Visitor,
        conversation_id: &ConversationId,
    ) -> Result<bool, StoreError> {
        self.sees(v, conversation_id.as_str()).await
    }

    async fn sees(self, v: &Visitor, conversation_id: &str) -> Result<bool, StoreError> {
        let website = self.website;
        match read!(self.store, |c| visible_conversation(
            c,
            website,
            v,
            conversation_id
        )
        .await)
        {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/widget/v1/conversations/{id}/messages`: the newest `limit` messages before
    /// the `before` cursor, oldest first.
    pub async fn visitor_messages(
        self,
        visitor_id: &VisitorId,
        conversation_id: &ConversationId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Page<Message>, StoreError> {
        let website = self.website;
        let visitor_id = visitor_id.as_str();
        let conversation_id = conversation_id.as_str();
        let before = crate::conversations::decode_messages_cursor(before)?;
        let v = self
            .own_visitor(visitor_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        read!(self.store, |c| async {
            visible_conversation(c, website, &v, conversation_id).await?;
            crate::conversations::message_page(
                c,
                website.org_id.as_str(),
                conversation_id,
                before.as_deref(),
                limit,
            )
            .await
        }
        .await)
    }

    /// `POST /api/widget/v1/conversations/{id}/escalate`.
    pub async fn visitor_escalate(
        self,
        visitor_id: &VisitorId,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, StoreError> {
        let website = self.website;
        let visitor_id = visitor_id.as_str();
        let conversation_id = conversation_id.as_str();
        let org_id = website.org_id.as_str();
        transact!(self.store, |c| async {
            let now = now_ms();
            let v = load_visitor(c, org_id, visitor_id, true)
                .await?
                .filter(|v| website.id == v.website_id)
                .ok_or(StoreError::NotFound)?;
            let conv = visible_conversation(c, website, &v, conversation_id).await?;
            crate::conversations::escalate(c, org_id, &conv, &Actor::Visitor, now).await?;
            touch_contact(c, org_id, &conv.contact_id, now).await?;
            let row = crate::conversations::conversation_row(c, org_id, conversation_id).await?;
            row.view()
        }
        .await)
    }
}

impl OrgStore<'_> {
    /// How many visitors of the organization are stored (only those that identified or wrote).
    pub async fn visitor_count(self) -> Result<i64, StoreError> {
        let org_id = self.org_id();
        read!(self.store, |c| c
            .fetch_one::<(i64,)>(
                "SELECT count(*) FROM visitors WHERE org_id = $1",
                args![org_id]
            )
            .await
            .map(|r| r.0))
    }
}
