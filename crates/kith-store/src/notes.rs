//! Notes on a contact (issue 19): written by an admin in the panel or an API client, shown in
//! the contact's timeline. Each note has exactly one `note` timeline entry (its `event_id`),
//! which is rewritten when the note is edited and removed when the note is deleted, so the
//! timeline always shows the notes as they are. Notes move with a manual merge and come back
//! with its undo (see `merges`).

use crate::conn::{args, Conn};
use crate::contact_rows::{contact_by, insert_event};
use crate::contacts::missing;
use crate::ids::{new_id, now_ms};
use crate::{read, transact, OrgStore, Page, StoreError};
use kith_core::timeline::{Actor, EventKind};
use kith_core::{ContactId, Timestamp};
use serde_json::{json, Value};

/// Who wrote a note: `admin` (with the admin's id and email, as it was then) or `api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteAuthor {
    pub kind: String,
    pub id: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Note {
    pub id: String,
    pub contact_id: ContactId,
    pub body: String,
    pub author: NoteAuthor,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: String,
    contact_id: String,
    event_id: String,
    body: String,
    author_kind: String,
    author_id: Option<String>,
    author_email: Option<String>,
    created_at: i64,
    updated_at: i64,
}
crate::lite::lite_row!(NoteRow {
    id,
    contact_id,
    event_id,
    body,
    author_kind,
    author_id,
    author_email,
    created_at,
    updated_at
});

const NOTE_COLUMNS: &str = "id, contact_id, event_id, body, author_kind, author_id, author_email, \
                            created_at, updated_at";

impl NoteRow {
    fn view(&self) -> Note {
        Note {
            id: self.id.clone(),
            contact_id: ContactId::new(self.contact_id.clone()),
            body: self.body.clone(),
            author: NoteAuthor {
                kind: self.author_kind.clone(),
                id: self.author_id.clone(),
                email: self.author_email.clone(),
            },
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        }
    }

    /// The data of the note's timeline entry: the note as it now is.
    fn event_data(&self) -> Value {
        json!({
            "note_id": self.id,
            "body": self.body,
            "author": author_json(&self.author_kind, &self.author_id, &self.author_email),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

fn author_json(kind: &str, id: &Option<String>, email: &Option<String>) -> Value {
    let mut a = json!({ "kind": kind });
    if let Some(id) = id {
        a["id"] = json!(id);
    }
    if let Some(email) = email {
        a["email"] = json!(email);
    }
    a
}

/// The contact, locked, or why it is not there (`Merged` / `NotFound`).
async fn lock_contact<C: Conn>(c: &mut C, org_id: &str, id: &str) -> Result<(), StoreError> {
    match contact_by(c, org_id, "id", id).await? {
        Some(_) => Ok(()),
        None => Err(missing(c, org_id, id).await?),
    }
}

async fn note_row<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
    note_id: &str,
) -> Result<NoteRow, StoreError> {
    let sql = format!(
        "SELECT {NOTE_COLUMNS} FROM contact_notes WHERE org_id = $1 AND contact_id = $2 AND id = $3"
    );
    c.fetch_optional(&sql, args![org_id, contact_id, note_id])
        .await?
        .ok_or(StoreError::NotFound)
}

/// Every note of a contact, oldest first (an export reads them all).
pub(crate) async fn contact_notes_all<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
) -> Result<Vec<Note>, StoreError> {
    let sql = format!(
        "SELECT {NOTE_COLUMNS} FROM contact_notes WHERE org_id = $1 AND contact_id = $2 ORDER BY id"
    );
    let rows: Vec<NoteRow> = c.fetch_all(&sql, args![org_id, contact_id]).await?;
    Ok(rows.iter().map(NoteRow::view).collect())
}

impl OrgStore<'_> {
    /// Adds a note (`body` already checked: `kith_core::contact::parse_message_body`) and its
    /// timeline entry. An admin author is named with the email it has now.
    pub async fn add_note(
        self,
        contact_id: &ContactId,
        body: &str,
        actor: &Actor,
    ) -> Result<Note, StoreError> {
        let (org_id, contact_id) = (self.org_id(), contact_id.as_str());
        transact!(self.store, |c| async {
            let now = now_ms();
            lock_contact(c, org_id, contact_id).await?;
            let (kind, author_id, author_email) = match actor {
                Actor::Admin(id) => {
                    let email: Option<(String,)> = c
                        .fetch_optional(
                            "SELECT email FROM admins WHERE org_id = $1 AND id = $2",
                            args![org_id, id.as_str()],
                        )
                        .await?;
                    ("admin", Some(id.clone()), email.map(|(e,)| e))
                }
                _ => ("api", None, None),
            };
            let mut row = NoteRow {
                id: new_id(),
                contact_id: contact_id.to_string(),
                event_id: String::new(),
                body: body.to_string(),
                author_kind: kind.to_string(),
                author_id,
                author_email,
                created_at: now,
                updated_at: now,
            };
            row.event_id = insert_event(
                c,
                org_id,
                contact_id,
                EventKind::Note,
                actor,
                row.event_data(),
                now,
            )
            .await?;
            c.execute(
                &format!(
                    "INSERT INTO contact_notes (org_id, {NOTE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                args![
                    org_id,
                    &row.id,
                    &row.contact_id,
                    &row.event_id,
                    &row.body,
                    &row.author_kind,
                    row.author_id.clone(),
                    row.author_email.clone(),
                    row.created_at,
                    row.updated_at
                ],
            )
            .await?;
            Ok::<_, StoreError>(row.view())
        }
        .await)
    }

    /// A contact's notes, newest first, `limit` after `cursor` (a note id).
    pub async fn notes(
        self,
        contact_id: &ContactId,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Note>, StoreError> {
        if let Some(cur) = cursor {
            if cur.is_empty() || cur.len() > 64 || !cur.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(StoreError::BadCursor);
            }
        }
        self.contact(contact_id).await?;
        let (org_id, contact_id) = (self.org_id(), contact_id.as_str());
        let sql = format!(
            "SELECT {NOTE_COLUMNS} FROM contact_notes \
             WHERE org_id = $1 AND contact_id = $2 AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<NoteRow> = read!(self.store, |c| c
            .fetch_all(&sql, args![org_id, contact_id, cursor, limit + 1])
            .await)?;
        let more = rows.len() as i64 > limit;
        let items: Vec<Note> = rows
            .iter()
            .take(limit as usize)
            .map(NoteRow::view)
            .collect();
        Ok(Page {
            next_cursor: if more {
                items.last().map(|n| n.id.clone())
            } else {
                None
            },
            items,
            total: None,
        })
    }

    /// Rewrites a note's body; its timeline entry shows the new text.
    pub async fn edit_note(
        self,
        contact_id: &ContactId,
        note_id: &str,
        body: &str,
    ) -> Result<Note, StoreError> {
        let (org_id, contact_id) = (self.org_id(), contact_id.as_str());
        transact!(self.store, |c| async {
            let now = now_ms();
            lock_contact(c, org_id, contact_id).await?;
            let mut row = note_row(c, org_id, contact_id, note_id).await?;
            if row.body == body {
                return Ok(row.view());
            }
            row.body = body.to_string();
            // Strictly later, so an edit within the same millisecond still counts as a change.
            row.updated_at = now.max(row.updated_at + 1);
            c.execute(
                "UPDATE contact_notes SET body = $3, updated_at = $4 WHERE org_id = $1 AND id = $2",
                args![org_id, note_id, &row.body, row.updated_at],
            )
            .await?;
            c.execute(
                "UPDATE contact_events SET data = $3 WHERE org_id = $1 AND id = $2",
                args![org_id, &row.event_id, row.event_data().to_string()],
            )
            .await?;
            Ok::<_, StoreError>(row.view())
        }
        .await)
    }

    /// Deletes a note and its timeline entry.
    pub async fn delete_note(
        self,
        contact_id: &ContactId,
        note_id: &str,
    ) -> Result<(), StoreError> {
        let (org_id, contact_id) = (self.org_id(), contact_id.as_str());
        transact!(self.store, |c| async {
            lock_contact(c, org_id, contact_id).await?;
            let row = note_row(c, org_id, contact_id, note_id).await?;
            c.execute(
                "DELETE FROM contact_notes WHERE org_id = $1 AND id = $2",
                args![org_id, note_id],
            )
            .await?;
            c.execute(
                "DELETE FROM contact_events WHERE org_id = $1 AND id = $2",
                args![org_id, &row.event_id],
            )
            .await?;
            Ok::<_, StoreError>(())
        }
        .await)
    }
}
