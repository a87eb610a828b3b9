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
        None,
        org_id,
        (conversation_id, contact_id),
        message,
        now,
    )
    .await?;
    Ok(posted)
}

/// The conversations a visitor may see and write to (SPEC rule 6): those of its current
/// contact on this website that it started itself, and — when it is verified for that
/// contact — those started by visitors verified for it.
///
/// This is the one statement of that rule. Every widget read (list, messages, post, escalate,
/// the event stream) and the check of a returning message, folded into its conversation's
/// update, render it from [`Visibility::predicate`] and bind [`Visibility::args`], so a change
/// to the rule cannot miss one of them.
#[derive(Debug, Clone)]
pub(crate) struct Visibility {
    pub website_id: String,
    /// `None` (a visitor without a contact yet) sees nothing: `contact_id = NULL` is never true.
    pub contact_id: Option<String>,
    pub visitor_id: String,
    /// Verified, and its link to the contact its own (see `widget::verified_for_contact`).
    pub verified_for_contact: bool,
}

impl Visibility {
    /// The rule over the conversations row named by `alias` (`"cv."`, or `""` in an update of
    /// the table itself), its parameters numbered `$first` on; bind [`Self::args`] there.
    /// The organization is not part of it: every caller already scopes by it.
    pub(crate) fn predicate(alias: &str, first: usize) -> String {
        let [website, contact, visitor, verified] =
            [first, first + 1, first + 2, first + 3].map(|n| format!("${n}"));
        Self::rule(alias, [&website, &contact, &visitor, &verified])
    }

    /// The rule with its four values given as SQL expressions, in [`Self::args`]'s order: the
    /// batched messages (`message_batch`) take them from columns, one writer per row.
    pub(crate) fn rule(alias: &str, [website, contact, visitor, verified]: [&str; 4]) -> String {
        format!(
            "{alias}website_id = {website} AND {alias}contact_id = {contact} \
             AND ({alias}visitor_id = {visitor} OR ({verified} AND {alias}verified_start))"
        )
    }

    /// The parameters of [`Self::predicate`], in its order.
    pub(crate) fn args(&self) -> Vec<Arg> {
        args![
            &self.website_id,
            self.contact_id.clone(),
            &self.visitor_id,
            self.verified_for_contact
        ]
    }
}

/// `append_message`, with `before` run first (`Conn::execute_many`);
/// answers the rows each statement of `before` touched too.
///
/// Each statement of `before` must touch rows that no other statement of the message
/// touches, and read nothing they write: on PostgreSQL they run inside the conversation's
/// update, as CTEs that all see one snapshot (see [`fold_message`]).
///
/// With `may`, a conversation the writer may not write to is not found: the update touches
/// no row and this answers [`StoreError::NotFound`] (a conversation that does not exist
/// fails the message's foreign key first, answered the same); the caller's transaction, or
/// savepoint, then takes back what `before` and the message wrote.
pub(crate) async fn append_message_after<C: Conn>(
    c: &mut C,
    before: Vec<(&str, Vec<Arg>)>,
    may: Option<&Visibility>,
    org_id: &str,
    (conversation_id, contact_id): (&str, &str),
    (author, author_id, body): (AuthorKind, Option<&str>, &str),
    now: i64,
) -> Result<(PostedMessage, Vec<u64>), StoreError> {
    let id = new_id();
    let reopen = author == AuthorKind::Visitor;
    let mut statements = before;
    let own = statements.len();
    // On PostgreSQL, the statements before and the message's run as one statement (see
    // `fold_message`). The message comes after the contact's row lock (the visitor path
    // updates its counters first; an agent reply locks it in `agent_reply`).
    let fold = fold_into_cte(c.dialect());
    let hook = push_message(
        c.dialect(),
        fold,
        &mut statements,
        org_id,
        (&id, conversation_id, contact_id),
        (author, author_id, body),
        now,
    );
    let mut update_args = args![org_id, conversation_id, preview(body), now, reopen];
    // The update, its form that answers the conversation (when not folded), and whether a
    // foreign-key failure of the message means its conversation does not exist.
    let (set, update, checked) = match may {
        Some(may) => {
            update_args.extend(may.args());
            (
                UPDATE_CONVERSATION_SET_MAY.as_str(),
                UPDATE_CONVERSATION_MAY.as_str(),
                true,
            )
        }
        None => (UPDATE_CONVERSATION_SET, UPDATE_CONVERSATION.as_str(), false),
    };
    let written = async {
        if fold {
            FOLDED_MESSAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (sql, args) = fold_message(set, statements, update_args);
            let folded: Option<FoldedUpdate> = c.fetch_optional(&sql, args).await?;
            let Some(folded) = folded else {
                return Ok(None);
            };
            let touched = parse_touched(&folded.touched)?;
            Ok(Some((folded.conversation, touched)))
        } else {
            let touched = c.execute_many(statements).await?;
            // The conversation as this message leaves it, answered by its own update (one
            // statement fewer than reading it back; a round trip fewer on PostgreSQL).
            let conv: Option<ConversationRow> = c.fetch_optional(update, update_args).await?;
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
            if checked
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
    let message = (id, author, body, now);
    Ok((posted(message, conv, false)?, touched))
}

/// A conversation a visitor's first message starts.
pub(crate) struct NewConversation<'a> {
    pub id: &'a str,
    pub website: &'a crate::Website,
    pub contact_id: &'a str,
    pub visitor_id: &'a str,
    /// Started by a visitor verified for the contact (see [`Visibility`]).
    pub verified_start: bool,
}

/// Starts a conversation with a visitor's first message: the conversation is inserted with
/// the message already counted (no update of it follows), then `between` runs, then the
/// message is inserted. Answers the rows each statement of `between` touched.
///
/// On PostgreSQL all of it is one statement ([`fold_all`]): no part reads what another
/// writes, and the message's foreign key is checked at the statement's end, when the
/// conversation is there. The conversation is new, so no other transaction waits for its row.
pub(crate) async fn start_with_message<C: Conn>(
    c: &mut C,
    org_id: &str,
    new: NewConversation<'_>,
    between: Vec<(&str, Vec<Arg>)>,
    body: &str,
    now: i64,
) -> Result<(PostedMessage, Vec<u64>), StoreError> {
    let id = new_id();
    let author = AuthorKind::Visitor;
    let conv = ConversationRow {
        id: new.id.to_string(),
        website_id: new.website.id.as_str().to_string(),
        // The name the request was served under (a rename racing it may not show here).
        website_name: new.website.name.clone(),
        contact_id: new.contact_id.to_string(),
        visitor_id: new.visitor_id.to_string(),
        status: "open".to_string(),
        message_count: 1,
        last_message_preview: Some(preview(body)),
        last_message_at: Some(now),
        created_at: now,
        updated_at: now,
    };
    let mut statements = vec![(
        "INSERT INTO conversations (org_id, id, website_id, contact_id, visitor_id, status, \
         message_count, last_message_preview, last_message_at, created_at, updated_at, \
         verified_start) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9, $10)",
        args![
            org_id,
            &conv.id,
            &conv.website_id,
            &conv.contact_id,
            &conv.visitor_id,
            &conv.status,
            conv.message_count,
            conv.last_message_preview.clone(),
            now,
            new.verified_start
        ],
    )];
    statements.extend(between);
    let own = statements.len();
    let fold = fold_into_cte(c.dialect());
    let hook = push_message(
        c.dialect(),
        fold,
        &mut statements,
        org_id,
        (&id, new.id, new.contact_id),
        (author, None, body),
        now,
    );
    let mut touched = if fold {
        FOLDED_MESSAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sql, args) = fold_all(statements);
        let (touched,): (String,) = c.fetch_one(&sql, args).await?;
        parse_touched(&touched)?
    } else {
        c.execute_many(statements).await?
    };
    // The conversation's insert (the caller checks its own statements').
    crate::contact_rows::expect_one(touched[0])?;
    if let Some(i) = hook {
        webhooks::note_enqueued(touched[i]);
    }
    touched.truncate(own);
    touched.remove(0);
    Ok((posted((id, author, body, now), conv, true)?, touched))
}

/// The `data` of a message's `message.created` event.
pub(crate) fn message_data(
    (id, conversation_id, contact_id): (&str, &str, &str),
    author: AuthorKind,
    body: &str,
    now: i64,
) -> Value {
    json!({
        "contact_id": contact_id,
        "conversation_id": conversation_id,
        "message": {
            "id": id,
            "author": author.as_str(),
            "body": body,
            "created_at": kith_core::Timestamp(now),
        },
    })
}

/// Adds a message's insert and its `message.created` enqueue to `statements`, to be folded
/// into one statement (`fold`, PostgreSQL: the two come apart, as CTEs of it) or run one by
/// one; answers which of `statements` enqueues, if any.
fn push_message(
    d: crate::conn::Dialect,
    fold: bool,
    statements: &mut Vec<(&str, Vec<Arg>)>,
    org_id: &str,
    (id, conversation_id, contact_id): (&str, &str, &str),
    (author, author_id, body): (AuthorKind, Option<&str>, &str),
    now: i64,
) -> Option<usize> {
    let data = message_data((id, conversation_id, contact_id), author, body, now);
    let (written, hook) = webhooks::message_statements(
        d,
        !fold,
        org_id,
        (id, conversation_id, author.as_str(), author_id, body),
        contact_id,
        data,
        now,
    );
    let hook = hook.map(|i| statements.len() + i);
    statements.extend(written);
    // A statement with CTEs of its own cannot be folded (PostgreSQL takes data-modifying
    // CTEs only at the top level). None may come here: a silent fallback once hid that the
    // fold never ran, so this fails the tests loudly instead.
    debug_assert!(
        !fold || statements.iter().all(|(sql, _)| !sql.starts_with("WITH")),
        "a statement with CTEs of its own cannot be folded"
    );
    hook
}

/// A message as written (id, author, body, time), in `conv` as it leaves it.
pub(crate) fn posted(
    (id, author, body, now): (String, AuthorKind, &str, i64),
    conv: ConversationRow,
    started: bool,
) -> Result<PostedMessage, StoreError> {
    Ok(PostedMessage {
        message: Message {
            id,
            conversation_id: ConversationId::new(conv.id.clone()),
            author,
            body: body.to_string(),
            created_at: kith_core::Timestamp(now),
        },
        contact_id: ContactId::new(conv.contact_id.clone()),
        starter_visitor_id: VisitorId::new(conv.visitor_id.clone()),
        conversation: conv.view()?,
        conversation_started: started,
        replayed: false,
    })
}

/// Folded statements this process attempted ([`fold_message`] or [`fold_all`], counted before
/// each runs, so a refused or retried one counts too): a test's proof that the folded
/// statement is the one PostgreSQL runs.
static FOLDED_MESSAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many folded message statements this process attempted (PostgreSQL; tests).
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

/// [`UPDATE_CONVERSATION_SET`] only where the writer may write ([`Visibility`], $6 to $9).
static UPDATE_CONVERSATION_SET_MAY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{UPDATE_CONVERSATION_SET} AND {}",
        Visibility::predicate("", 6)
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
/// which is why no statement folded may read what another writes.
fn fold_message(
    set: &str,
    statements: Vec<(&str, Vec<Arg>)>,
    update_args: Vec<Arg>,
) -> (String, Vec<Arg>) {
    let mut args = update_args;
    let (ctes, counts) = as_ctes(statements, &mut args);
    let sql = format!(
        "WITH {ctes} {set} AND {sum} >= 0 {CONVERSATION_RETURNING}, \
         concat_ws(',', {list}) AS touched",
        sum = counts.join(" + "),
        list = counts.join(", "),
    );
    (sql, args)
}

/// Independent statements folded into one (PostgreSQL), answering the rows each touched,
/// comma-separated, in the `touched` column (see [`fold_message`]). The CTEs run as the
/// `concat_ws` reads them, left to right, so in the order given: a caller that locks a row
/// before an enqueue takes its sequence number (see `dialect::next_delivery_seq`) lists it
/// first, as it would run them one by one.
fn fold_all(statements: Vec<(&str, Vec<Arg>)>) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let (ctes, counts) = as_ctes(statements, &mut args);
    let sql = format!(
        "WITH {ctes} SELECT concat_ws(',', {list}) AS touched",
        list = counts.join(", ")
    );
    (sql, args)
}

/// `statements` as data-modifying CTEs `s0, s1, …` (their parameters renumbered after `args`,
/// to which they are added), and an expression of the rows each touched.
fn as_ctes(statements: Vec<(&str, Vec<Arg>)>, args: &mut Vec<Arg>) -> (String, Vec<String>) {
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
    (ctes.join(", "), counts)
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

/// The rows each folded statement touched, from their comma-separated form.
fn parse_touched(touched: &str) -> Result<Vec<u64>, StoreError> {
    touched
        .split(',')
        .map(|n| {
            n.parse()
                .map_err(|_| StoreError::Corrupt(format!("a count of rows: {n:?}")))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::Visibility;
    use crate::conn::Arg;

    /// The predicate numbers exactly the parameters `args` binds, from `first` on, and each
    /// column is compared with its own value: a parameter added to one and not the other, or
    /// two swapped, would bind the wrong values (a stranger's contact for the visitor's).
    #[test]
    fn visibility_binds_what_it_numbers() {
        let v = Visibility {
            website_id: "the-website".into(),
            contact_id: Some("the-contact".into()),
            visitor_id: "the-visitor".into(),
            verified_for_contact: true,
        };
        let args = v.args();
        for first in [1, 2, 6] {
            let mut sql = Visibility::predicate("cv.", first);
            // Bind by number, highest first ($12 before $1), as the database would.
            for (i, arg) in args.iter().enumerate().rev() {
                let value = match arg {
                    Arg::Text(Some(t)) => format!("'{t}'"),
                    Arg::Bool(b) => b.to_string(),
                    other => panic!("unexpected {other:?}"),
                };
                sql = sql.replace(&format!("${}", first + i), &value);
            }
            assert!(!sql.contains('$'), "a parameter is not bound: {sql}");
            for bound in [
                "cv.website_id = 'the-website'",
                "cv.contact_id = 'the-contact'",
                "cv.visitor_id = 'the-visitor'",
                "(true AND cv.verified_start)",
            ] {
                assert!(sql.contains(bound), "{bound} in {sql}");
            }
        }
    }
}
