//! Deleting a contact (with everything that belongs to it) and exporting one contact's data:
//! the two halves of what a person may ask of an organization under the GDPR.
//!
//! A delete removes, in one transaction: the contact, its tags, notes, timeline,
//! conversations with their messages, the idempotency keys that answered those messages, the
//! ids merged into it and the snapshots of the manual merges it took part in,
//! and its visitors (a visitor that still started a conversation of another contact, after a
//! log-out and log-in on a shared browser, is kept but unlinked and forgotten). The counts and
//! the contact index follow at commit, as for every write. What is left is one audit-log entry
//! without personal data: the contact's id (random, not derived from the person) and how many
//! rows went. `erase` records the delete as an erasure and, beyond a plain delete, removes
//! the records other features keep about the contact (see `erase_extras`). Both raise the
//! `contact.deleted` webhook event in the same transaction.

use crate::conn::{args, Conn};
use crate::contact_rows::contact_by;
use crate::contacts::missing;
use crate::ids::{new_id, now_ms};
use crate::model::{
    Contact, Conversation, EventRow, Message, MessageRow, TimelineEvent, CONTACT_COLUMNS,
};
use crate::{read, transact, OrgStore, StoreError};
use kith_core::timeline::Actor;
use kith_core::webhook::EventType;
use kith_core::ContactId;
use serde_json::json;

/// What a delete removed (also what its audit entry says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub contact_id: ContactId,
    pub erased: bool,
    pub conversations: i64,
    pub messages: i64,
    pub visitors: i64,
    pub timeline_entries: i64,
}

/// One visitor (browser) that was linked to a contact, as an export shows it.
#[derive(Debug, Clone)]
pub struct VisitorRecord {
    pub id: String,
    pub website_id: String,
    pub verified: bool,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Everything the organization holds about one contact.
#[derive(Debug, Clone)]
pub struct ContactExport {
    pub contact: Contact,
    /// Oldest first, every entry.
    pub timeline: Vec<TimelineEvent>,
    /// Each conversation with all of its messages, oldest first.
    pub conversations: Vec<(Conversation, Vec<Message>)>,
    pub visitors: Vec<VisitorRecord>,
    /// Oldest first.
    pub notes: Vec<crate::notes::Note>,
    /// Ids of contacts merged into this one (they answer 404 `merged`).
    pub merged_ids: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct VisitorRow {
    id: String,
    website_id: String,
    verified: bool,
    created_at: i64,
    last_seen_at: i64,
}
crate::lite::lite_row!(VisitorRow {
    id,
    website_id,
    verified,
    created_at,
    last_seen_at
});

/// Removes one contact and what belongs to it, inside the caller's transaction. Answers
/// `None` when the contact is not there (any more). Shared by the single delete and by bulk
/// deletes, so both remove exactly the same rows.
pub(crate) async fn delete_contact_rows<C: Conn>(
    c: &mut C,
    org_id: &str,
    id: &str,
    erase: bool,
    actor: &Actor,
    now: i64,
) -> Result<Option<Deleted>, StoreError> {
    // Locks the row: a concurrent write of this contact waits, then finds it gone.
    if contact_by(c, org_id, "id", id).await?.is_none() {
        return Ok(None);
    }
    let of_contact = "SELECT id FROM conversations WHERE org_id = $1 AND contact_id = $2";
    let (messages,): (i64,) = c
        .fetch_one(
            &format!(
                "SELECT count(*) FROM messages WHERE org_id = $1 AND conversation_id IN ({of_contact})"
            ),
            args![org_id, id],
        )
        .await?;
    c.execute(
        &format!(
            "DELETE FROM idempotency_keys WHERE org_id = $1 AND message_id IN \
             (SELECT id FROM messages WHERE org_id = $1 AND conversation_id IN ({of_contact}))"
        ),
        args![org_id, id],
    )
    .await?;
    c.execute(
        &format!("DELETE FROM messages WHERE org_id = $1 AND conversation_id IN ({of_contact})"),
        args![org_id, id],
    )
    .await?;
    let conversations = c
        .execute(
            "DELETE FROM conversations WHERE org_id = $1 AND contact_id = $2",
            args![org_id, id],
        )
        .await? as i64;
    // Visitors that no remaining conversation names go; the others (they started a
    // conversation of another contact) stay for that conversation, unlinked and with their
    // remembered identity forgotten.
    let visitors = c
        .execute(
            "DELETE FROM visitors WHERE org_id = $1 AND contact_id = $2 AND NOT EXISTS \
             (SELECT 1 FROM conversations cv WHERE cv.org_id = $1 AND cv.visitor_id = visitors.id)",
            args![org_id, id],
        )
        .await? as i64;
    let unlinked = c
        .execute(
            "UPDATE visitors SET contact_id = NULL, verified = FALSE, link_proven = FALSE, \
             pending_claim = NULL WHERE org_id = $1 AND contact_id = $2",
            args![org_id, id],
        )
        .await? as i64;
    // Notes first (they name the contact), and the manual merges it took part in: their
    // snapshots hold the personal data of both sides, and no undo can apply once it is gone.
    c.execute(
        "DELETE FROM contact_notes WHERE org_id = $1 AND contact_id = $2",
        args![org_id, id],
    )
    .await?;
    c.execute(
        "DELETE FROM merges WHERE org_id = $1 AND (survivor_id = $2 OR absorbed_id = $2 \
         OR survivor_id IN (SELECT absorbed_id FROM contact_merges WHERE org_id = $1 AND merged_into = $2) \
         OR absorbed_id IN (SELECT absorbed_id FROM contact_merges WHERE org_id = $1 AND merged_into = $2))",
        args![org_id, id],
    )
    .await?;
    let timeline_entries = c
        .execute(
            "DELETE FROM contact_events WHERE org_id = $1 AND contact_id = $2",
            args![org_id, id],
        )
        .await? as i64;
    c.execute(
        "DELETE FROM contact_tags WHERE org_id = $1 AND contact_id = $2",
        args![org_id, id],
    )
    .await?;
    c.execute(
        "DELETE FROM contact_merges WHERE org_id = $1 AND merged_into = $2",
        args![org_id, id],
    )
    .await?;
    if erase {
        erase_extras(c, org_id, id).await?;
    }
    // Subscribers learn of it (after anything still queued for the contact, in order); the
    // event names the contact by id only.
    crate::webhooks::enqueue(
        c,
        org_id,
        EventType::ContactDeleted,
        id,
        json!({"contact_id": id, "erased": erase, "actor": actor.to_string()}),
        now,
    )
    .await?;
    c.execute(
        "DELETE FROM contacts WHERE org_id = $1 AND id = $2",
        args![org_id, id],
    )
    .await?;
    let deleted = Deleted {
        contact_id: ContactId::new(id.to_string()),
        erased: erase,
        conversations,
        messages,
        visitors: visitors + unlinked,
        timeline_entries,
    };
    // The tombstone: ids and counts only, no personal data.
    c.execute(
        "INSERT INTO audit_log (org_id, id, at, actor, action, subject, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            org_id,
            new_id(),
            now,
            actor.to_string(),
            if erase {
                "contact.erased"
            } else {
                "contact.deleted"
            },
            format!("contact:{id}"),
            json!({
                "conversations": deleted.conversations,
                "messages": deleted.messages,
                "visitors": deleted.visitors,
                "timeline_entries": deleted.timeline_entries,
            })
            .to_string()
        ],
    )
    .await?;
    Ok(Some(deleted))
}

/// What an erasure removes beyond a delete: earlier audit entries about the contact (their
/// data may describe it; the new tombstone replaces them), and its webhook deliveries, sent
/// or not, with their attempts (their payloads hold the contact as it was).
async fn erase_extras<C: Conn>(c: &mut C, org_id: &str, id: &str) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM webhook_attempts WHERE org_id = $1 AND delivery_id IN \
         (SELECT id FROM webhook_deliveries WHERE org_id = $1 AND contact_id = $2)",
        args![org_id, id],
    )
    .await?;
    c.execute(
        "DELETE FROM webhook_deliveries WHERE org_id = $1 AND contact_id = $2",
        args![org_id, id],
    )
    .await?;
    c.execute(
        "DELETE FROM audit_log WHERE org_id = $1 AND subject = $2",
        args![org_id, format!("contact:{id}")],
    )
    .await?;
    Ok(())
}

impl OrgStore<'_> {
    /// Deletes a contact and everything that belongs to it (see the module). A merged id
    /// answers `Merged`, an unknown one `NotFound`.
    pub async fn delete_contact(
        self,
        id: &ContactId,
        erase: bool,
        actor: &Actor,
    ) -> Result<Deleted, StoreError> {
        let (org_id, id) = (self.org_id(), id.as_str());
        transact!(self.store, |c| async {
            match delete_contact_rows(c, org_id, id, erase, actor, now_ms()).await? {
                Some(d) => Ok(d),
                None => Err(missing(c, org_id, id).await?),
            }
        }
        .await)
    }

    /// Everything held about one contact, read in one snapshot.
    pub async fn export_contact(self, id: &ContactId) -> Result<ContactExport, StoreError> {
        let (org_id, id) = (self.org_id(), id.as_str());
        let contact_sql =
            format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
        read!(self.store, |c| async {
            let Some(row) = c
                .fetch_optional::<crate::model::ContactRow>(&contact_sql, args![org_id, id])
                .await?
            else {
                return Err(missing(c, org_id, id).await?);
            };
            let events: Vec<EventRow> = c
                .fetch_all(
                    "SELECT id, kind, actor, data, at FROM contact_events \
                     WHERE org_id = $1 AND contact_id = $2 ORDER BY id",
                    args![org_id, id],
                )
                .await?;
            let conversations =
                crate::conversations::contact_conversations_all(c, org_id, id).await?;
            let mut with_messages = Vec::with_capacity(conversations.len());
            for conv in conversations {
                let rows: Vec<MessageRow> = c
                    .fetch_all(
                        "SELECT id, conversation_id, author, body, created_at FROM messages \
                         WHERE org_id = $1 AND conversation_id = $2 ORDER BY id",
                        args![org_id, conv.id.as_str()],
                    )
                    .await?;
                let messages = rows
                    .iter()
                    .map(MessageRow::view)
                    .collect::<Result<Vec<_>, _>>()?;
                with_messages.push((conv, messages));
            }
            let visitors: Vec<VisitorRow> = c
                .fetch_all(
                    "SELECT id, website_id, verified, created_at, last_seen_at FROM visitors \
                     WHERE org_id = $1 AND contact_id = $2 ORDER BY id",
                    args![org_id, id],
                )
                .await?;
            let merged: Vec<(String,)> = c
                .fetch_all(
                    "SELECT absorbed_id FROM contact_merges \
                     WHERE org_id = $1 AND merged_into = $2 ORDER BY absorbed_id",
                    args![org_id, id],
                )
                .await?;
            let notes = crate::notes::contact_notes_all(c, org_id, id).await?;
            Ok::<_, StoreError>(ContactExport {
                notes,
                contact: row.view()?,
                timeline: events
                    .iter()
                    .map(EventRow::view)
                    .collect::<Result<_, _>>()?,
                conversations: with_messages,
                visitors: visitors
                    .into_iter()
                    .map(|v| VisitorRecord {
                        id: v.id,
                        website_id: v.website_id,
                        verified: v.verified,
                        created_at: v.created_at,
                        last_seen_at: v.last_seen_at,
                    })
                    .collect(),
                merged_ids: merged.into_iter().map(|(m,)| m).collect(),
            })
        }
        .await)
    }
}
