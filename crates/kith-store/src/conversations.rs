//! Conversations and messages, shared by the widget (visitor side) and the admin API.

use crate::conn::{args, shift_params, Arg, Conn};
use crate::contact_rows::{contact_by, insert_event};
use crate::cursor;
use crate::dialect::fold_into_cte;
use crate::ids::{new_id, now_ms};
use crate::model::{
    ConversationRow, Message, MessageRow, CONVERSATION_RETURNING, CONVERSATION_SELECT,
};
use crate::webhooks;
use crate::{read, transact, Conversation, OrgStore, Page, StoreError};
use kith_core::contact::preview;
use kith_core::conversation::AuthorKind;
use kith_core::timeline::{Actor, EventKind};
use kith_core::{ContactId, ConversationId, VisitorId};
use serde_json::{json, Value};
use std::sync::LazyLock;

/// A message as written, with the conversation after it: what the API answers and what the
/// realtime bus carries.
#[derive(Debug, Clone)]
pub struct PostedMessage {
    pub message: Message,
    pub conversation: Conversation,
    pub contact_id: ContactId,
    /// The visitor that started the conversation.
    pub starter_visitor_id: VisitorId,
    pub conversation_started: bool,
    /// An idempotent retry: this is the message an earlier call with the same key wrote, and
    /// nothing was written now (so nothing is published again).
    pub replayed: bool,
}

/// A stored message with its conversation, as `append_message` answered when it was written
/// (what the realtime relay and a replayed idempotent post send).
pub(crate) async fn load_posted<C: Conn>(
    c: &mut C,
    org_id: &str,
    message_id: &str,
) -> Result<PostedMessage, StoreError> {
    let m: MessageRow = c
        .fetch_optional(
            "SELECT id, conversation_id, author, body, created_at FROM messages \
             WHERE org_id = $1 AND id = $2",
            args![org_id, message_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let conv = conversation_row(c, org_id, &m.conversation_id).await?;
    Ok(PostedMessage {
        message: m.view()?,
        contact_id: ContactId::new(conv.contact_id.clone()),
        starter_visitor_id: VisitorId::new(conv.visitor_id.clone()),
        conversation: conv.view()?,
        conversation_started: false,
        replayed: false,
    })
}

/// Adds a message and updates the conversation (count, preview, time). A visitor writing to
/// a resolved conversation reopens it.
pub(crate) async fn append_message<C: Conn>(
    c: &mut C,
    org_id: &str,
    (conversation_id, contact_id): (&str, &str),
    author: AuthorKind,
    author_id: Option<&str>,
    body: &str,
    now: i64,
) -> Result<PostedMessage, StoreError> {
    let message = (author, author_id, body);
    let (posted, _) = append_message_after(
        c,
        Vec::new(),
        Before::Independent,
        None,
        org_id,
        (conversation_id, contact_id),
        message,
        now,
    )
    .await?;
    Ok(posted)
}

/// What the statements given to [`append_message_after`] before the message may share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Before {
    /// Each touches rows that no other statement of the message touches, and reads nothing
    /// they write: on PostgreSQL they may run inside the conversation's update, as CTEs that
    /// all see one snapshot (see [`fold_message`]).
    Independent,
    /// A later statement depends on one of them (the conversation was inserted in this
    /// transaction, and its update must see it): they run one by one.
    InOrder,
}

/// Who may write to a conversation, checked by the conversation's own update (a statement
/// fewer than reading it first): the conversation must be of this website and contact, and
/// started by this visitor or, when the visitor is verified for the contact, verified.
#[derive(Debug, Clone)]
pub(crate) struct WriterMay {
    pub website_id: String,
    pub contact_id: String,
    pub visitor_id: String,
    pub verified_for_contact: bool,
}

/// `append_message`, with `before` run first (`Conn::execute_many`);
/// answers the rows each statement of `before` touched too.
///
/// With `may`, a conversation the writer may not write to is not found: the update touches
/// no row and this answers [`StoreError::NotFound`] (a conversation that does not exist
/// fails the message's foreign key first, answered the same); the caller's transaction, or
/// savepoint, then takes back what `before` and the message wrote.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn append_message_after<C: Conn>(
    c: &mut C,
    before: Vec<(&str, Vec<Arg>)>,
    kind: Before,
    may: Option<&WriterMay>,
    org_id: &str,
    (conversation_id, contact_id): (&str, &str),
    (author, author_id, body): (AuthorKind, Option<&str>, &str),
    now: i64,
) -> Result<(PostedMessage, Vec<u64>), StoreError> {
    let id = new_id();
    let reopen = author == AuthorKind::Visitor;
    let mut statements = before;
    let own = statements.len();
    // The message and its `message.created`, ordered after the contact's row lock (the
    // visitor path updates its counters first; an agent reply locks it in `agent_reply`).
    let data = json!({
        "contact_id": contact_id,
        "conversation_id": conversation_id,
        "message": {
            "id": &id,
            "author": author.as_str(),
            "body": body,
            "created_at": kith_core::Timestamp(now),
        },
    });
    // On PostgreSQL, independent statements and the message's run as one statement (see
    // `fold_message`), so the message's insert and enqueue come apart, as CTEs of it.
    let fold = kind == Before::Independent && fold_into_cte(c.dialect());
    let (written, hook) = webhooks::message_statements(
        c.dialect(),
        !fold,
        org_id,
        (&id, conversation_id, author.as_str(), author_id, body),
        contact_id,
        data,
        now,
    );
    let hook = hook.map(|i| statements.len() + i);
    statements.extend(written);
    let mut update_args = args![org_id, conversation_id, preview(body), now, reopen];
    if let Some(may) = may {
        update_args.extend(args![
            &may.website_id,
            &may.contact_id,
            &may.visitor_id,
            may.verified_for_contact
        ]);
    }
    let set = if may.is_some() {
        UPDATE_CONVERSATION_SET_MAY.as_str()
    } else {
        UPDATE_CONVERSATION_SET
    };
    // A statement with CTEs of its own cannot be folded (PostgreSQL takes data-modifying
    // CTEs only at the top level). None may come here: a silent fallback once hid that the
    // fold never ran, so this fails the tests loudly instead.
    debug_assert!(
        !fold || statements.iter().all(|(sql, _)| !sql.starts_with("WITH")),
        "a statement with CTEs of its own cannot be folded"
    );
    let written = async {
        if fold {
            FOLDED_MESSAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (sql, args) = fold_message(set, statements, update_args);
            let folded: Option<FoldedUpdate> = c.fetch_optional(&sql, args).await?;
            let Some(folded) = folded else {
                return Ok(None);
            };
            let touched = folded.touched()?;
            Ok(Some((folded.conversation, touched)))
        } else {
            let touched = c.execute_many(statements).await?;
            // The conversation as this message leaves it, answered by its own update (one
            // statement fewer than reading it back; a round trip fewer on PostgreSQL).
            let sql = if may.is_some() {
                &UPDATE_CONVERSATION_MAY
            } else {
                &UPDATE_CONVERSATION
            };
            let conv: Option<ConversationRow> = c.fetch_optional(sql, update_args).await?;
            Ok::<_, StoreError>(conv.map(|conv| (conv, touched)))
        }
    };
    let (conv, mut touched) = match written.await {
        Ok(Some(written)) => written,
        Ok(None) => return Err(StoreError::NotFound),
        // The message's conversation does not exist (checked here only when `may` is given:
        // otherwise the caller knows it does). Only the message's own key: another one (a
        // webhook endpoint deleted meanwhile, say) is a race, retried as before. SQLite names
        // no constraint, and its one writer meets no such race.
        Err(StoreError::Database(sqlx::Error::Database(e)))
            if may.is_some()
                && e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation
                && e.constraint()
                    .is_none_or(|c| c == "messages_org_id_conversation_id_fkey") =>
        {
            return Err(StoreError::NotFound)
        }
        Err(e) => return Err(e),
    };
    if let Some(i) = hook {
        webhooks::note_enqueued(touched[i]);
    }
    touched.truncate(own);
    Ok((
        PostedMessage {
            message: Message {
                id,
                conversation_id: ConversationId::new(conversation_id),
                author,
                body: body.to_string(),
                created_at: kith_core::Timestamp(now),
            },
            contact_id: ContactId::new(conv.contact_id.clone()),
            starter_visitor_id: VisitorId::new(conv.visitor_id.clone()),
            conversation: conv.view()?,
            conversation_started: false,
            replayed: false,
        },
        touched,
    ))
}

/// Messages written through [`fold_message`] by this process: a test's proof that the
/// folded statement is the one PostgreSQL runs.
static FOLDED_MESSAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many messages this process wrote as one folded statement (PostgreSQL; tests).
#[doc(hidden)]
pub fn folded_messages() -> u64 {
    FOLDED_MESSAGES.load(std::sync::atomic::Ordering::Relaxed)
}

/// A message's update of its conversation: count, preview, time; a visitor's message
/// reopens a resolved conversation. Binds $1 org, $2 conversation, $3 preview, $4 now,
/// $5 whether to reopen.
const UPDATE_CONVERSATION_SET: &str =
    "UPDATE conversations SET message_count = message_count + 1, \
     last_message_preview = $3, last_message_at = $4, updated_at = $4, \
     status = CASE WHEN $5 AND status = 'resolved' THEN 'open' ELSE status END \
     WHERE org_id = $1 AND id = $2";

/// [`UPDATE_CONVERSATION_SET`] only where the writer may write ([`WriterMay`], $6 to $9).
static UPDATE_CONVERSATION_SET_MAY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{UPDATE_CONVERSATION_SET} AND website_id = $6 AND contact_id = $7 \
         AND (visitor_id = $8 OR ($9 AND verified_start))"
    )
});

static UPDATE_CONVERSATION: LazyLock<String> =
    LazyLock::new(|| format!("{UPDATE_CONVERSATION_SET} {CONVERSATION_RETURNING}"));

static UPDATE_CONVERSATION_MAY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} {CONVERSATION_RETURNING}",
        UPDATE_CONVERSATION_SET_MAY.as_str()
    )
});

/// The conversation's update with the statements before it folded in as data-modifying CTEs
/// (PostgreSQL): one statement, one round trip and one executor start instead of one each.
///
/// The CTEs run in order before the conversation is read: the update's `WHERE` gates on their
/// counts (a one-time filter, evaluated before the scan), so the contact's row is still locked
/// before the conversation's, as in the statements one by one. Each answers how many rows it
/// touched, in the `touched` column. All of them see the snapshot the statement started with,
/// which is why only [`Before::Independent`] statements are folded.
fn fold_message(
    set: &str,
    statements: Vec<(&str, Vec<Arg>)>,
    update_args: Vec<Arg>,
) -> (String, Vec<Arg>) {
    let mut args = update_args;
    let mut ctes = Vec::with_capacity(statements.len());
    let mut counts = Vec::with_capacity(statements.len());
    for (i, (sql, more)) in statements.into_iter().enumerate() {
        ctes.push(format!(
            "s{i} AS ({} RETURNING 1)",
            shift_params(sql, args.len())
        ));
        counts.push(format!("(SELECT count(*) FROM s{i})"));
        args.extend(more);
    }
    let sql = format!(
        "WITH {ctes} {set} AND {sum} >= 0 {CONVERSATION_RETURNING}, \
         concat_ws(',', {list}) AS touched",
        ctes = ctes.join(", "),
        sum = counts.join(" + "),
        list = counts.join(", "),
    );
    (sql, args)
}

/// The row of a [`fold_message`] statement: the conversation, and the rows each folded
/// statement touched, comma-separated (a text column reads the same on both databases).
#[derive(sqlx::FromRow)]
struct FoldedUpdate {
    #[sqlx(flatten)]
    conversation: ConversationRow,
    touched: String,
}

impl crate::lite::FromLite for FoldedUpdate {
    fn from_lite(row: &rusqlite::Row<'_>) -> Result<Self, sqlx::Error> {
        Ok(FoldedUpdate {
            conversation: ConversationRow::from_lite(row)?,
            touched: crate::lite::col(row, "touched")?,
        })
    }
}

impl FoldedUpdate {
    fn touched(&self) -> Result<Vec<u64>, StoreError> {
        self.touched
            .split(',')
            .map(|n| {
                n.parse()
                    .map_err(|_| StoreError::Corrupt(format!("a count of rows: {n:?}")))
            })
            .collect()
    }
}

/// Marks a conversation escalated and writes `escalated` to the contact's timeline. Escalating
/// an escalated conversation changes nothing.
pub(crate) async fn escalate<C: Conn>(
    c: &mut C,
    org_id: &str,
    conv: &ConversationRow,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    // Conditional, so two concurrent escalations record one event.
    let changed = c
        .execute(
            "UPDATE conversations SET status = 'escalated', updated_at = $3 \
             WHERE org_id = $1 AND id = $2 AND status <> 'escalated'",
            args![org_id, &conv.id, now],
        )
        .await?;
    if changed == 0 {
        return Ok(());
    }
    // Orders the webhook event among the contact's others (see `dialect::next_delivery_seq`).
    contact_by(c, org_id, "id", &conv.contact_id).await?;
    insert_event(
        c,
        org_id,
        &conv.contact_id,
        EventKind::Escalated,
        actor,
        json!({"conversation_id": conv.id, "website_id": conv.website_id}),
        now,
    )
    .await?;
    Ok(())
}

/// The order of message pages: by id (ids are time-ordered ULIDs), newest first.
const MESSAGES_ORDER: &str = "-id";
/// The order of conversation pages: newest activity (last message, or start before any
/// message) first, ties by id.
const CONVERSATIONS_ORDER: &str = "-activity";
const ACTIVITY: &str = "coalesce(cv.last_message_at, cv.created_at)";

/// Where a message page ends: the id of the newest message it may hold is below this one.
pub(crate) fn decode_messages_cursor(before: Option<&str>) -> Result<Option<String>, StoreError> {
    before
        .map(|raw| cursor::decode(raw, MESSAGES_ORDER).map(|c| c.id))
        .transpose()
}

/// Where a conversation page starts: after this (activity, id).
pub(crate) fn decode_conversations_cursor(
    raw: Option<&str>,
) -> Result<Option<(i64, String)>, StoreError> {
    raw.map(|r| cursor::decode_int(r, CONVERSATIONS_ORDER))
        .transpose()
}

/// The newest `limit` messages of a conversation older than `before` (a message id), returned
/// oldest first; `next_cursor` pages back to older ones. Seeks the `(org_id, conversation_id,
/// id)` index, so the cost of a page does not grow with the conversation.
pub(crate) async fn message_page<C: Conn>(
    c: &mut C,
    org_id: &str,
    conversation_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Page<Message>, StoreError> {
    let rows: Vec<MessageRow> = match before {
        Some(before) => {
            c.fetch_all(
                "SELECT id, conversation_id, author, body, created_at FROM messages \
                 WHERE org_id = $1 AND conversation_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
                args![org_id, conversation_id, before, limit + 1],
            )
            .await?
        }
        None => {
            c.fetch_all(
                "SELECT id, conversation_id, author, body, created_at FROM messages \
                 WHERE org_id = $1 AND conversation_id = $2 ORDER BY id DESC LIMIT $3",
                args![org_id, conversation_id, limit + 1],
            )
            .await?
        }
    };
    let more = rows.len() as i64 > limit;
    let mut items: Vec<Message> = rows
        .iter()
        .take(limit as usize)
        .map(MessageRow::view)
        .collect::<Result<_, _>>()?;
    items.reverse();
    Ok(Page {
        next_cursor: match items.first() {
            Some(oldest) if more => Some(cursor::encode(MESSAGES_ORDER, None, &oldest.id)),
            _ => None,
        },
        items,
        total: None,
    })
}

/// One page of the conversations matching `condition` (SQL over `cv`, with placeholders
/// `$1..$n` bound by `args`), newest activity first, after `after`.
pub(crate) async fn conversation_page<C: Conn>(
    c: &mut C,
    condition: &str,
    mut args: Vec<Arg>,
    after: Option<&(i64, String)>,
    limit: i64,
) -> Result<Page<Conversation>, StoreError> {
    let mut sql = format!("{CONVERSATION_SELECT} WHERE {condition}");
    if let Some((activity, id)) = after {
        let (a, b) = (args.len() + 1, args.len() + 2);
        sql.push_str(&format!(
            " AND ({ACTIVITY} < ${a} OR ({ACTIVITY} = ${a} AND cv.id < ${b}))"
        ));
        args.push(Arg::Int(Some(*activity)));
        args.push(Arg::Text(Some(id.clone())));
    }
    sql.push_str(&format!(
        " ORDER BY {ACTIVITY} DESC, cv.id DESC LIMIT ${}",
        args.len() + 1
    ));
    args.push(Arg::Int(Some(limit + 1)));
    let rows: Vec<ConversationRow> = c.fetch_all(&sql, args).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    Ok(Page {
        next_cursor: match rows.last() {
            Some(last) if more => Some(cursor::encode(
                CONVERSATIONS_ORDER,
                Some(Value::from(last.last_message_at.unwrap_or(last.created_at))),
                &last.id,
            )),
            _ => None,
        },
        items: rows
            .iter()
            .map(ConversationRow::view)
            .collect::<Result<_, _>>()?,
        total: None,
    })
}

pub(crate) async fn conversation_row<C: Conn>(
    c: &mut C,
    org_id: &str,
    id: &str,
) -> Result<ConversationRow, StoreError> {
    let sql = format!("{CONVERSATION_SELECT} WHERE cv.org_id = $1 AND cv.id = $2");
    c.fetch_optional(&sql, args![org_id, id])
        .await?
        .ok_or(StoreError::NotFound)
}

/// Every conversation of a contact, newest activity first (an export reads them all).
pub(crate) async fn contact_conversations_all<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
) -> Result<Vec<Conversation>, StoreError> {
    let sql = format!(
        "{CONVERSATION_SELECT} WHERE cv.org_id = $1 AND cv.contact_id = $2 \
         ORDER BY {ACTIVITY} DESC, cv.id DESC"
    );
    let rows: Vec<ConversationRow> = c.fetch_all(&sql, args![org_id, contact_id]).await?;
    rows.iter().map(ConversationRow::view).collect()
}

impl OrgStore<'_> {
    /// A conversation and its newest `limit` messages (returned oldest first), read together.
    pub async fn conversation_with_messages(
        self,
        conversation_id: &ConversationId,
        limit: i64,
    ) -> Result<(Conversation, Page<Message>), StoreError> {
        let (org_id, conversation_id) = (self.org_id(), conversation_id.as_str());
        read!(self.store, |c| async {
            let conv = conversation_row(c, org_id, conversation_id).await?;
            let messages = message_page(c, org_id, conversation_id, None, limit).await?;
            Ok::<_, StoreError>((conv.view()?, messages))
        }
        .await)
    }

    /// One page of a conversation's messages: the newest `limit` before the `before` cursor,
    /// oldest first.
    pub async fn messages(
        self,
        conversation_id: &ConversationId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Page<Message>, StoreError> {
        let (org_id, conversation_id) = (self.org_id(), conversation_id.as_str());
        let before = decode_messages_cursor(before)?;
        read!(self.store, |c| async {
            conversation_row(c, org_id, conversation_id).await?;
            message_page(c, org_id, conversation_id, before.as_deref(), limit).await
        }
        .await)
    }

    /// An agent's reply from the admin API.
    pub async fn agent_reply(
        self,
        conversation_id: &ConversationId,
        author_id: &str,
        body: &str,
    ) -> Result<PostedMessage, StoreError> {
        let (org_id, conversation_id) = (self.org_id(), conversation_id.as_str());
        transact!(self.store, |c| async {
            let conv = conversation_row(c, org_id, conversation_id).await?;
            // The contact's row lock orders this reply's webhook event among the contact's
            // others (see `dialect::next_delivery_seq`).
            contact_by(c, org_id, "id", &conv.contact_id).await?;
            append_message(
                c,
                org_id,
                (conversation_id, &conv.contact_id),
                AuthorKind::Agent,
                Some(author_id),
                body,
                now_ms(),
            )
            .await
        }
        .await)
    }

    pub async fn escalate_conversation(
        self,
        conversation_id: &ConversationId,
        actor: &Actor,
    ) -> Result<Conversation, StoreError> {
        let (org_id, conversation_id) = (self.org_id(), conversation_id.as_str());
        transact!(self.store, |c| async {
            let conv = conversation_row(c, org_id, conversation_id).await?;
            escalate(c, org_id, &conv, actor, now_ms()).await?;
            conversation_row(c, org_id, conversation_id).await
        }
        .await)
        .and_then(|r| r.view())
    }

    pub async fn resolve_conversation(
        self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, StoreError> {
        self.set_status(
            conversation_id,
            "UPDATE conversations SET status = 'resolved', updated_at = $3 \
             WHERE org_id = $1 AND id = $2 AND status <> 'resolved'",
        )
        .await
    }

    /// Opens a resolved conversation again (an admin's "Reopen"); an open or escalated one
    /// is answered unchanged.
    pub async fn reopen_conversation(
        self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, StoreError> {
        self.set_status(
            conversation_id,
            "UPDATE conversations SET status = 'open', updated_at = $3 \
             WHERE org_id = $1 AND id = $2 AND status = 'resolved'",
        )
        .await
    }

    /// Runs one status `update` (binding org, id, now) on an existing conversation and
    /// answers it as it then is; a conversation already in the target status is unchanged.
    async fn set_status(
        self,
        conversation_id: &ConversationId,
        update: &'static str,
    ) -> Result<Conversation, StoreError> {
        let (org_id, conversation_id) = (self.org_id(), conversation_id.as_str());
        transact!(self.store, |c| async {
            conversation_row(c, org_id, conversation_id).await?;
            c.execute(update, args![org_id, conversation_id, now_ms()])
                .await?;
            conversation_row(c, org_id, conversation_id).await
        }
        .await)
        .and_then(|r| r.view())
    }

    /// A contact's conversations across the organization's websites, newest activity first,
    /// one page after `cursor`.
    pub async fn contact_conversations(
        self,
        contact_id: &ContactId,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Conversation>, StoreError> {
        let after = decode_conversations_cursor(cursor)?;
        self.contact(contact_id).await?;
        let (org_id, contact_id) = (self.org_id(), contact_id.as_str());
        read!(self.store, |c| conversation_page(
            c,
            "cv.org_id = $1 AND cv.contact_id = $2",
            args![org_id, contact_id],
            after.as_ref(),
            limit
        )
        .await)
    }
}
