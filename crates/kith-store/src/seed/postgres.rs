//! Writing a seed batch on PostgreSQL: whole columns bound as arrays, one
//! `INSERT … SELECT FROM unnest(arrays)` per table.

use super::generate::Contact;
use super::{wrong_encoding, Encoded, WriteBatch};
use crate::conn::{Arg, Conn, Dialect};
use crate::contact_rows::PROFILE_COLUMNS;
use crate::dialect::next_rid;
use crate::StoreError;
use sqlx::PgConnection;

/// One column of profile values for `unnest`, typed after what `profile_args` gives it.
pub(super) enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

impl Column {
    fn for_arg(arg: &Arg) -> Column {
        match arg {
            Arg::Int(_) => Column::Int(Vec::new()),
            Arg::Bool(_) => Column::Bool(Vec::new()),
            _ => Column::Text(Vec::new()),
        }
    }

    /// The array type `unnest` reads it as.
    fn sql_type(&self) -> &'static str {
        match self {
            Column::Text(_) => "text[]",
            Column::Int(_) => "int8[]",
            Column::Bool(_) => "bool[]",
        }
    }

    fn push(&mut self, arg: Arg) -> Result<(), StoreError> {
        match (self, arg) {
            (Column::Text(v), Arg::Text(t)) => v.push(t),
            (Column::Int(v), Arg::Int(i)) => v.push(i),
            (Column::Bool(v), Arg::Bool(b)) => v.push(b),
            _ => {
                return Err(StoreError::Seed {
                    reason: "a profile column changed its type between contacts",
                    source: None,
                })
            }
        }
        Ok(())
    }
}

/// Per table, one array per column (the org and website are bound once per statement).
#[derive(Default)]
pub(super) struct PgColumns {
    pub(super) id: Vec<String>,
    /// One array per `PROFILE_COLUMNS` entry, in that order.
    pub(super) profile: Vec<Column>,
    pub(super) conversation_count: Vec<i64>,
    pub(super) message_count: Vec<i64>,
    pub(super) last_seen_at: Vec<Option<i64>>,
    pub(super) created_at: Vec<i64>,
    pub(super) tag_contact: Vec<String>,
    pub(super) tag: Vec<String>,
    pub(super) visitor_id: Vec<String>,
    pub(super) visitor_contact: Vec<String>,
    pub(super) visitor_verified: Vec<bool>,
    pub(super) visitor_created: Vec<i64>,
    pub(super) visitor_seen: Vec<i64>,
    pub(super) conversation_id: Vec<String>,
    pub(super) conversation_contact: Vec<String>,
    pub(super) conversation_visitor: Vec<String>,
    pub(super) conversation_status: Vec<&'static str>,
    pub(super) conversation_messages: Vec<i64>,
    pub(super) conversation_preview: Vec<&'static str>,
    pub(super) conversation_created: Vec<i64>,
    pub(super) conversation_updated: Vec<i64>,
    pub(super) conversation_verified: Vec<bool>,
    pub(super) message_id: Vec<String>,
    pub(super) message_conversation: Vec<String>,
    pub(super) message_body: Vec<&'static str>,
    pub(super) message_at: Vec<i64>,
    pub(super) event_id: Vec<String>,
    pub(super) event_contact: Vec<String>,
    pub(super) event_kind: Vec<&'static str>,
    pub(super) event_actor: Vec<&'static str>,
    pub(super) event_data: Vec<String>,
    pub(super) event_at: Vec<i64>,
}

impl PgColumns {
    pub(super) fn push(&mut self, c: Contact) -> Result<(), StoreError> {
        for tag in c.tag_keys {
            self.tag_contact.push(c.id.clone());
            self.tag.push(tag);
        }
        for e in c.events {
            self.event_id.push(e.id);
            self.event_contact.push(c.id.clone());
            self.event_kind.push(e.kind);
            self.event_actor.push(e.actor);
            self.event_data.push(e.data);
            self.event_at.push(e.at);
        }
        let (conversations, messages) = match c.conversation {
            Some(cv) => {
                let count = cv.message_ids.len() as i64;
                self.visitor_id.push(cv.visitor_id.clone());
                self.visitor_contact.push(c.id.clone());
                self.visitor_verified.push(cv.verified);
                self.visitor_created.push(c.created_at);
                self.visitor_seen.push(c.updated_at);
                for m in cv.message_ids {
                    self.message_id.push(m);
                    self.message_conversation.push(cv.id.clone());
                    self.message_body.push(cv.body);
                    self.message_at.push(c.updated_at);
                }
                self.conversation_id.push(cv.id);
                self.conversation_contact.push(c.id.clone());
                self.conversation_visitor.push(cv.visitor_id);
                self.conversation_status.push(cv.status);
                self.conversation_messages.push(count);
                self.conversation_preview.push(cv.body);
                self.conversation_created.push(c.created_at);
                self.conversation_updated.push(c.updated_at);
                self.conversation_verified.push(cv.verified);
                (1, count)
            }
            None => (0, 0),
        };
        self.id.push(c.id);
        if self.profile.is_empty() {
            self.profile = c.profile.iter().map(Column::for_arg).collect();
        }
        for (column, value) in self.profile.iter_mut().zip(c.profile) {
            column.push(value)?;
        }
        self.conversation_count.push(conversations);
        self.message_count.push(messages);
        self.last_seen_at.push(c.last_seen_at);
        self.created_at.push(c.created_at);
        Ok(())
    }
}

impl WriteBatch for PgConnection {
    async fn write_batch(
        &mut self,
        (org_id, website_id): (&str, &str),
        pending: &mut Option<Encoded>,
    ) -> Result<(), StoreError> {
        // Borrowed, not taken: PostgreSQL may abort the transaction for a deadlock with a
        // concurrent writer on the contact counters, and the batch is then written again.
        let Some(Encoded::Postgres(b)) = pending.as_ref() else {
            return Err(wrong_encoding());
        };
        // A seed can be run again, so losing its last transactions in a crash costs nothing;
        // not waiting for each commit's WAL flush saves a disk round trip per batch. (It never
        // risks corruption, and ends with the transaction.)
        self.execute("SET LOCAL synchronous_commit = off", vec![])
            .await?;
        // PostgreSQL only: whole columns bound as arrays, one statement per table. Search-index
        // numbers come from the sequence as in `create_contact`; unnest yields the rows in
        // array order, so they increase with the ids.
        let mut arrays = vec!["$2::text[]".to_string()];
        let mut n = 3;
        for column in &b.profile {
            arrays.push(format!("${n}::{}", column.sql_type()));
            n += 1;
        }
        for _ in 0..4 {
            arrays.push(format!("${n}::int8[]"));
            n += 1;
        }
        let contacts = format!(
            "INSERT INTO contacts (org_id, id, {}, conversation_count, message_count, \
             last_seen_at, created_at, rid) SELECT $1, *, {} FROM unnest({})",
            PROFILE_COLUMNS.join(", "),
            next_rid(Dialect::Postgres),
            arrays.join(", ")
        );
        let mut query = sqlx::query(&contacts).bind(org_id).bind(&b.id);
        for column in &b.profile {
            query = match column {
                Column::Text(v) => query.bind(v),
                Column::Int(v) => query.bind(v),
                Column::Bool(v) => query.bind(v),
            };
        }
        query
            .bind(&b.conversation_count)
            .bind(&b.message_count)
            .bind(&b.last_seen_at)
            .bind(&b.created_at)
            .execute(&mut *self)
            .await?;
        sqlx::query(
            "INSERT INTO contact_tags (org_id, contact_id, tag) \
             SELECT $1, * FROM unnest($2::text[], $3::text[])",
        )
        .bind(org_id)
        .bind(&b.tag_contact)
        .bind(&b.tag)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO visitors (org_id, id, website_id, contact_id, verified, pending_claim, \
             created_at, last_seen_at, link_proven) \
             SELECT $1, u.id, $2, u.contact_id, u.verified, NULL, u.created_at, u.seen, TRUE \
             FROM unnest($3::text[], $4::text[], $5::bool[], $6::int8[], $7::int8[]) \
             AS u(id, contact_id, verified, created_at, seen)",
        )
        .bind(org_id)
        .bind(website_id)
        .bind(&b.visitor_id)
        .bind(&b.visitor_contact)
        .bind(&b.visitor_verified)
        .bind(&b.visitor_created)
        .bind(&b.visitor_seen)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO conversations (org_id, id, website_id, contact_id, visitor_id, status, \
             message_count, last_message_preview, last_message_at, created_at, updated_at, \
             verified_start) \
             SELECT $1, u.id, $2, u.contact_id, u.visitor_id, u.status, u.messages, u.preview, \
             u.updated_at, u.created_at, u.updated_at, u.verified \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], \
             $8::text[], $9::int8[], $10::int8[], $11::bool[]) \
             AS u(id, contact_id, visitor_id, status, messages, preview, created_at, \
             updated_at, verified)",
        )
        .bind(org_id)
        .bind(website_id)
        .bind(&b.conversation_id)
        .bind(&b.conversation_contact)
        .bind(&b.conversation_visitor)
        .bind(&b.conversation_status)
        .bind(&b.conversation_messages)
        .bind(&b.conversation_preview)
        .bind(&b.conversation_created)
        .bind(&b.conversation_updated)
        .bind(&b.conversation_verified)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO messages (org_id, id, conversation_id, author, author_id, body, \
             created_at) \
             SELECT $1, u.id, u.conversation_id, 'visitor', NULL, u.body, u.created_at \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[]) \
             AS u(id, conversation_id, body, created_at)",
        )
        .bind(org_id)
        .bind(&b.message_id)
        .bind(&b.message_conversation)
        .bind(&b.message_body)
        .bind(&b.message_at)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO contact_events (org_id, id, contact_id, kind, actor, data, at) \
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::int8[])",
        )
        .bind(org_id)
        .bind(&b.event_id)
        .bind(&b.event_contact)
        .bind(&b.event_kind)
        .bind(&b.event_actor)
        .bind(&b.event_data)
        .bind(&b.event_at)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}
