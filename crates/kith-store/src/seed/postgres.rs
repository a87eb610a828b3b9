//! Writing a seed batch on PostgreSQL: whole columns bound as arrays, one
//! `INSERT … SELECT FROM unnest(arrays)` per table.

use super::generate::Contact;
use super::{wrong_encoding, Encoded, WriteBatch};
use crate::conn::{Conn, Dialect};
use crate::dialect::next_rid;
use crate::StoreError;
use sqlx::PgConnection;

/// Per table, one array per column (the org and website are bound once per statement).
#[derive(Default)]
pub(super) struct PgColumns {
    pub(super) id: Vec<String>,
    pub(super) user_id: Vec<Option<String>>,
    pub(super) email: Vec<Option<String>>,
    pub(super) email_lower: Vec<Option<String>>,
    pub(super) name: Vec<Option<String>>,
    pub(super) phone: Vec<Option<String>>,
    pub(super) company: Vec<Option<String>>,
    pub(super) tags: Vec<String>,
    pub(super) metadata: Vec<String>,
    pub(super) conversation_count: Vec<i64>,
    pub(super) message_count: Vec<i64>,
    pub(super) last_seen_at: Vec<Option<i64>>,
    pub(super) created_at: Vec<i64>,
    pub(super) updated_at: Vec<i64>,
    pub(super) status: Vec<&'static str>,
    pub(super) name_lower: Vec<Option<String>>,
    pub(super) search_text: Vec<String>,
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
}

impl PgColumns {
    pub(super) fn push(&mut self, c: Contact) {
        for tag in c.tag_keys {
            self.tag_contact.push(c.id.clone());
            self.tag.push(tag);
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
        self.user_id.push(c.user_id);
        self.email.push(c.email);
        self.email_lower.push(c.email_lower);
        self.name.push(c.name);
        self.phone.push(c.phone);
        self.company.push(c.company);
        self.tags.push(c.tags);
        self.metadata.push(c.metadata);
        self.conversation_count.push(conversations);
        self.message_count.push(messages);
        self.last_seen_at.push(c.last_seen_at);
        self.created_at.push(c.created_at);
        self.updated_at.push(c.updated_at);
        self.status.push(c.status);
        self.name_lower.push(c.name_lower);
        self.search_text.push(c.search_text);
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
        let contacts = format!(
            "INSERT INTO contacts (org_id, id, user_id, email, email_lower, name, phone, company, \
             tags, metadata, conversation_count, message_count, last_seen_at, created_at, \
             updated_at, status, name_lower, search_text, rid) \
             SELECT $1, *, {} FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[], \
             $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::text[], $17::text[], \
             $18::text[])",
            next_rid(Dialect::Postgres)
        );
        sqlx::query(&contacts)
            .bind(org_id)
            .bind(&b.id)
            .bind(&b.user_id)
            .bind(&b.email)
            .bind(&b.email_lower)
            .bind(&b.name)
            .bind(&b.phone)
            .bind(&b.company)
            .bind(&b.tags)
            .bind(&b.metadata)
            .bind(&b.conversation_count)
            .bind(&b.message_count)
            .bind(&b.last_seen_at)
            .bind(&b.created_at)
            .bind(&b.updated_at)
            .bind(&b.status)
            .bind(&b.name_lower)
            .bind(&b.search_text)
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
        Ok(())
    }
}
