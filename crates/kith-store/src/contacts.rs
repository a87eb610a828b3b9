//! Reading and editing contacts from the admin side: one contact, an admin's edit, the
//! timeline, and the contact listing.

use crate::conn::{args, Conn};
use crate::contact_rows::{contact_by, record_changes, write_profile};
use crate::ids::now_ms;
use crate::model::{ContactRow, EventRow, TimelineEvent, CONTACT_COLUMNS};
use crate::{read, transact, Contact, OrgStore, StoreError};
use kith_core::contact::ProfilePatch;
use kith_core::timeline::Actor;
use kith_core::ContactId;

/// One tag added or removed ([`OrgStore::edit_tag`]).
#[derive(Debug, Clone, Copy)]
pub enum TagEdit<'a> {
    Add(&'a str),
    Remove(&'a str),
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: Option<i64>,
    pub next_cursor: Option<String>,
}

/// Why a contact id does not resolve: gone by merge, or never here.
pub(crate) async fn missing<C: Conn>(
    c: &mut C,
    org_id: &str,
    id: &str,
) -> Result<StoreError, StoreError> {
    let merged: Option<(String,)> = c
        .fetch_optional(
            "SELECT merged_into FROM contact_merges WHERE org_id = $1 AND absorbed_id = $2",
            args![org_id, id],
        )
        .await?;
    Ok(match merged {
        Some((into,)) => StoreError::Merged { merged_into: into },
        None => StoreError::NotFound,
    })
}

/// The end of an admin's edit, inside its transaction: writes the profile and its timeline
/// entry when something changed, and answers the contact as it now is.
async fn save_edit<C: Conn>(
    c: &mut C,
    (org_id, id): (&str, &str),
    profile: &kith_core::contact::Profile,
    before: kith_core::contact::Status,
    changes: &kith_core::contact::Changes,
    actor: &Actor,
    now: i64,
) -> Result<Contact, StoreError> {
    if !changes.is_empty() {
        write_profile(c, org_id, id, profile, now).await?;
        record_changes(
            c,
            org_id,
            id,
            (before, profile.status()),
            changes,
            actor,
            now,
        )
        .await?;
    }
    contact_by(c, org_id, "id", id)
        .await?
        .ok_or(StoreError::Raced)?
        .view()
}

impl OrgStore<'_> {
    /// One contact; a merged id answers `Merged` with where it went.
    pub async fn contact(self, id: &ContactId) -> Result<Contact, StoreError> {
        let (org_id, id) = (self.org_id(), id.as_str());
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
        read!(self.store, |c| async {
            match c
                .fetch_optional::<ContactRow>(&sql, args![org_id, id])
                .await?
            {
                Some(row) => row.view(),
                None => Err(missing(c, org_id, id).await?),
            }
        }
        .await)
    }

    /// An admin's edit. Never merges: an email or user id held by another contact answers
    /// `Conflict` naming the holder, and nothing changes.
    pub async fn patch_contact(
        self,
        id: &ContactId,
        patch: &ProfilePatch,
        actor: &Actor,
    ) -> Result<Contact, StoreError> {
        let (org_id, id) = (self.org_id(), id.as_str());
        transact!(self.store, |c| async {
            let now = now_ms();
            let Some(row) = contact_by(c, org_id, "id", id).await? else {
                return Err(missing(c, org_id, id).await?);
            };
            if let Some(Some(u)) = &patch.user_id {
                if let Some(h) = contact_by(c, org_id, "user_id", u.as_str()).await? {
                    if h.id != id {
                        return Err(StoreError::Conflict {
                            field: "user_id".into(),
                            contact_id: h.id,
                        });
                    }
                }
            }
            if let Some(Some(e)) = &patch.email {
                if let Some(h) = contact_by(c, org_id, "email_lower", &e.key()).await? {
                    if h.id != id {
                        return Err(StoreError::Conflict {
                            field: "email".into(),
                            contact_id: h.id,
                        });
                    }
                }
            }
            let mut profile = row.profile()?;
            let before = profile.status();
            let changes = profile.apply_patch(patch);
            if profile.metadata.len() > kith_core::limits::METADATA_MAX_KEYS {
                return Err(kith_core::ValidationError::new(
                    "metadata",
                    format!(
                        "a contact has at most {} metadata keys",
                        kith_core::limits::METADATA_MAX_KEYS
                    ),
                )
                .into());
            }
            save_edit(c, (org_id, id), &profile, before, &changes, actor, now).await
        }
        .await)
    }

    /// Adds one tag to a contact, or removes one (compared ignoring case), under the
    /// transaction that reads the contact's current set: two admins tagging the same contact
    /// at once both keep their tag (a handler that read the set and then wrote it whole could
    /// lose one). The new set goes through the domain's own parsing and diff, as an edit of
    /// `tags` does, and the change is recorded in the timeline.
    pub async fn edit_tag(
        self,
        id: &ContactId,
        edit: TagEdit<'_>,
        actor: &Actor,
    ) -> Result<Contact, StoreError> {
        let (org_id, id) = (self.org_id(), id.as_str());
        transact!(self.store, |c| async {
            let now = now_ms();
            let Some(row) = contact_by(c, org_id, "id", id).await? else {
                return Err(missing(c, org_id, id).await?);
            };
            let mut profile = row.profile()?;
            let before = profile.status();
            let patch = match edit {
                TagEdit::Add(t) => profile.retag(&[t.to_string()], &[])?,
                TagEdit::Remove(t) => profile.retag(&[], &[t.to_string()])?,
            };
            let changes = profile.apply_patch(&patch);
            save_edit(c, (org_id, id), &profile, before, &changes, actor, now).await
        }
        .await)
    }

    /// Up to `n` of the organization's contact ids, chosen at random (`kith bench contact`;
    /// one scan of the organization).
    #[doc(hidden)]
    pub async fn sample_contact_ids(self, n: i64) -> Result<Vec<ContactId>, StoreError> {
        let org_id = self.org_id();
        let rows: Vec<(String,)> = read!(self.store, |c| c
            .fetch_all(
                "SELECT id FROM contacts WHERE org_id = $1 ORDER BY random() LIMIT $2",
                args![org_id, n],
            )
            .await)?;
        Ok(rows.into_iter().map(|(id,)| ContactId::new(id)).collect())
    }

    /// A contact's timeline, newest first, `limit` entries after `cursor`.
    pub async fn timeline(
        self,
        contact_id: &ContactId,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<TimelineEvent>, StoreError> {
        if let Some(cur) = cursor {
            if cur.is_empty() || cur.len() > 64 || !cur.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(StoreError::BadCursor);
            }
        }
        self.contact(contact_id).await?;
        let (org_id, contact_id) = (self.org_id(), contact_id.as_str());
        let rows: Vec<EventRow> = read!(self.store, |c| c
            .fetch_all(
                "SELECT id, kind, actor, data, at FROM contact_events \
                 WHERE org_id = $1 AND contact_id = $2 AND ($3 IS NULL OR id < $3) \
                 ORDER BY id DESC LIMIT $4",
                args![org_id, contact_id, cursor, limit + 1],
            )
            .await)?;
        let more = rows.len() as i64 > limit;
        let items: Vec<TimelineEvent> = rows
            .iter()
            .take(limit as usize)
            .map(EventRow::view)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            next_cursor: if more {
                items.last().map(|e| e.id.clone())
            } else {
                None
            },
            items,
            total: None,
        })
    }
}
