//! Conversations and messages, shared by the widget (visitor side) and the admin API.

use crate::conn::{args, Conn};
use crate::ids::{new_id, now_ms};
use crate::model::{ConversationRow, Message, MessageRow, CONVERSATION_SELECT};
use crate::resolution::insert_event;
use crate::{read, transact, Conversation, Store, StoreError};
use kith_core::contact::preview;
use kith_core::timeline::{Actor, EventKind};
use serde_json::json;

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
}

/// A message as written, with the conversation after it: what the API answers and what the
/// realtime bus carries.
#[derive(Debug, Clone)]
pub struct PostedMessage {
    pub message: Message,
    pub conversation: Conversation,
    pub contact_id: String,
    /// The visitor that started the conversation.
    pub starter_visitor_id: String,
    pub conversation_started: bool,
}

/// Adds a message and updates the conversation (count, preview, time). A visitor writing to
/// a resolved conversation reopens it.
pub(crate) async fn append_message<C: Conn>(
    c: &mut C,
    org_id: &str,
    conversation_id: &str,
    author: AuthorKind,
    author_id: Option<&str>,
    body: &str,
    now: i64,
) -> Result<PostedMessage, StoreError> {
    let id = new_id();
    c.execute(
        "INSERT INTO messages (org_id, id, conversation_id, author, author_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            org_id,
            &id,
            conversation_id,
            author.as_str(),
            author_id,
            body,
            now
        ],
    )
    .await?;
    let reopen = author == AuthorKind::Visitor;
    c.execute(
        "UPDATE conversations SET message_count = message_count + 1, last_message_preview = $3, \
         last_message_at = $4, updated_at = $4, \
         status = CASE WHEN $5 AND status = 'resolved' THEN 'open' ELSE status END \
         WHERE org_id = $1 AND id = $2",
        args![org_id, conversation_id, preview(body), now, reopen],
    )
    .await?;
    let conv = conversation_row(c, org_id, conversation_id).await?;
    Ok(PostedMessage {
        message: Message {
            id,
            conversation_id: conversation_id.to_string(),
            author: author.as_str().to_string(),
            body: body.to_string(),
            created_at: kith_core::Timestamp(now),
        },
        contact_id: conv.contact_id.clone(),
        starter_visitor_id: conv.visitor_id.clone(),
        conversation: conv.view(),
        conversation_started: false,
    })
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
    insert_event(
        c,
        org_id,
        &conv.contact_id,
        EventKind::Escalated,
        actor,
        json!({"conversation_id": conv.id, "website_id": conv.website_id}),
        now,
    )
    .await
}

/// Messages of a conversation, oldest first.
pub(crate) async fn messages_of<C: Conn>(
    c: &mut C,
    org_id: &str,
    conversation_id: &str,
) -> Result<Vec<Message>, StoreError> {
    let rows: Vec<MessageRow> = c
        .fetch_all(
            "SELECT id, conversation_id, author, body, created_at FROM messages \
             WHERE org_id = $1 AND conversation_id = $2 ORDER BY id LIMIT 1000",
            args![org_id, conversation_id],
        )
        .await?;
    Ok(rows.iter().map(MessageRow::view).collect())
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

impl Store {
    /// A conversation and its messages (oldest first), read together.
    pub async fn conversation_with_messages(
        &self,
        org_id: &str,
        conversation_id: &str,
    ) -> Result<(Conversation, Vec<Message>), StoreError> {
        read!(self, |c| async {
            let conv = conversation_row(c, org_id, conversation_id).await?;
            let messages = messages_of(c, org_id, conversation_id).await?;
            Ok::<_, StoreError>((conv.view(), messages))
        }
        .await)
    }

    /// Messages of a conversation, oldest first.
    pub async fn messages(
        &self,
        org_id: &str,
        conversation_id: &str,
    ) -> Result<Vec<Message>, StoreError> {
        Ok(self
            .conversation_with_messages(org_id, conversation_id)
            .await?
            .1)
    }

    /// An agent's reply from the admin API.
    pub async fn agent_reply(
        &self,
        org_id: &str,
        conversation_id: &str,
        author_id: &str,
        body: &str,
    ) -> Result<PostedMessage, StoreError> {
        transact!(self, |c| async {
            conversation_row(c, org_id, conversation_id).await?;
            append_message(
                c,
                org_id,
                conversation_id,
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
        &self,
        org_id: &str,
        conversation_id: &str,
        actor: &Actor,
    ) -> Result<Conversation, StoreError> {
        transact!(self, |c| async {
            let conv = conversation_row(c, org_id, conversation_id).await?;
            escalate(c, org_id, &conv, actor, now_ms()).await?;
            conversation_row(c, org_id, conversation_id).await
        }
        .await)
        .map(|r| r.view())
    }

    pub async fn resolve_conversation(
        &self,
        org_id: &str,
        conversation_id: &str,
    ) -> Result<Conversation, StoreError> {
        transact!(self, |c| async {
            conversation_row(c, org_id, conversation_id).await?;
            c.execute(
                "UPDATE conversations SET status = 'resolved', updated_at = $3 \
                 WHERE org_id = $1 AND id = $2 AND status <> 'resolved'",
                args![org_id, conversation_id, now_ms()],
            )
            .await?;
            conversation_row(c, org_id, conversation_id).await
        }
        .await)
        .map(|r| r.view())
    }

    /// All conversations of a contact across the organization's websites, newest activity first.
    pub async fn contact_conversations(
        &self,
        org_id: &str,
        contact_id: &str,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.contact(org_id, contact_id).await?;
        let sql = format!(
            "{CONVERSATION_SELECT} WHERE cv.org_id = $1 AND cv.contact_id = $2 \
             ORDER BY coalesce(cv.last_message_at, cv.created_at) DESC, cv.id DESC LIMIT 500"
        );
        let rows: Vec<ConversationRow> =
            read!(self, |c| c.fetch_all(&sql, args![org_id, contact_id]).await)?;
        Ok(rows.iter().map(ConversationRow::view).collect())
    }
}
