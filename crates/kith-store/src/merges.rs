//! An admin's manual merge (with its dry run) and its undo (issue 19).
//!
//! The merge asks `kith_core::merge` for the plan and writes it with the same
//! `resolution::absorb_into` the automatic merge uses. Its dry run computes the same plan from
//! the same rows and writes nothing, so the preview is the merge. The merge stores, in its own
//! transaction, a snapshot of what it changed (the `merges` table); undo puts exactly that
//! back, as long as nothing changed since.

use crate::conn::{args, Arg, Conn};
use crate::contact_rows::{contact_by, insert_event, restore_contact, write_profile};
use crate::contacts::missing;
use crate::dialect::for_update;
use crate::ids::{new_id, now_ms};
use crate::model::ContactRow;
use crate::resolution::{absorb_into, Moved};
use crate::{read, transact, Contact, OrgStore, StoreError};
use kith_core::merge::{check_manual_merge, plan_merge, FieldWin, MergePlan, MergeRefusal};
use kith_core::timeline::{Actor, EventKind};
use kith_core::{ContactId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How many of each thing move from the absorbed contact to the survivor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveCounts {
    pub visitors: i64,
    pub conversations: i64,
    pub timeline_entries: i64,
    pub notes: i64,
}

/// A merge as previewed (`merge_id` is `None`) or as done.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    pub merge_id: Option<String>,
    /// The survivor as it is (or, in a dry run, would be) after the merge.
    pub survivor: Contact,
    pub absorbed_id: ContactId,
    pub fields: Vec<FieldWin>,
    pub tags_added: Vec<String>,
    pub metadata_added: Vec<String>,
    pub promoted: bool,
    pub moves: MoveCounts,
}

/// A manual merge as recorded.
#[derive(Debug, Clone)]
pub struct MergeRecord {
    pub id: String,
    pub survivor_id: ContactId,
    pub absorbed_id: ContactId,
    pub actor: String,
    pub merged_at: Timestamp,
    pub undone_at: Option<Timestamp>,
    pub undone_by: Option<String>,
    pub moves: MoveCounts,
}

/// An undone merge: the record, and both contacts as they are again.
#[derive(Debug, Clone)]
pub struct UndoOutcome {
    pub record: MergeRecord,
    pub survivor: Contact,
    pub restored: Contact,
}

/// What a contact holds besides its row, by id: what an undo checks is still as the merge
/// left it. Notes carry their `updated_at`, so an edited note counts as a change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Holdings {
    visitors: Vec<String>,
    conversations: Vec<String>,
    events: Vec<String>,
    notes: Vec<(String, i64)>,
}

/// What the `merges` table keeps of one merge, to undo it.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    survivor_before: ContactRow,
    survivor_after: ContactRow,
    absorbed: ContactRow,
    moved: Moved,
    /// The survivor's holdings right after the merge.
    after: Holdings,
}

#[derive(sqlx::FromRow)]
struct MergeRow {
    id: String,
    survivor_id: String,
    absorbed_id: String,
    actor: String,
    merged_at: i64,
    snapshot: String,
    undone_at: Option<i64>,
    undone_by: Option<String>,
}
crate::lite::lite_row!(MergeRow {
    id,
    survivor_id,
    absorbed_id,
    actor,
    merged_at,
    snapshot,
    undone_at,
    undone_by
});

const MERGE_COLUMNS: &str =
    "id, survivor_id, absorbed_id, actor, merged_at, snapshot, undone_at, undone_by";

impl MergeRow {
    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        serde_json::from_str(&self.snapshot)
            .map_err(|e| StoreError::Corrupt(format!("snapshot of merge {}: {e}", self.id)))
    }

    fn record(&self) -> Result<MergeRecord, StoreError> {
        let moved = self.snapshot()?.moved;
        Ok(MergeRecord {
            id: self.id.clone(),
            survivor_id: ContactId::new(self.survivor_id.clone()),
            absorbed_id: ContactId::new(self.absorbed_id.clone()),
            actor: self.actor.clone(),
            merged_at: Timestamp(self.merged_at),
            undone_at: self.undone_at.map(Timestamp),
            undone_by: self.undone_by.clone(),
            moves: counts_of(&moved),
        })
    }
}

fn counts_of(m: &Moved) -> MoveCounts {
    MoveCounts {
        visitors: m.visitors.len() as i64,
        conversations: m.conversations.len() as i64,
        timeline_entries: m.events.len() as i64,
        notes: m.notes.len() as i64,
    }
}

/// The row a contact would have after the merge: how a dry run shows the survivor. Written
/// the way `write_profile` stores a profile, so it reads back the same.
fn planned_row(survivor: &ContactRow, plan: &MergePlan, now: i64) -> ContactRow {
    let p = &plan.profile;
    let text = |v: Option<&str>| v.map(str::to_string);
    ContactRow {
        id: survivor.id.clone(),
        user_id: text(p.user_id.as_ref().map(|t| t.as_str())),
        email: text(p.email.as_ref().map(|e| e.as_str())),
        name: text(p.name.as_ref().map(|t| t.as_str())),
        phone: text(p.phone.as_ref().map(|t| t.as_str())),
        company: text(p.company.as_ref().map(|t| t.as_str())),
        tags: serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()),
        metadata: p.metadata.to_json().to_string(),
        conversation_count: plan.stats.conversation_count,
        message_count: plan.stats.message_count,
        last_seen_at: plan.stats.last_seen_at,
        created_at: plan.stats.created_at,
        updated_at: now,
        email_verified: p.email.is_some() && p.email_verified,
    }
}

/// Both contacts, locked, and the plan; or why they cannot be merged.
async fn prepare<C: Conn>(
    c: &mut C,
    org_id: &str,
    survivor_id: &str,
    other_id: &str,
) -> Result<(ContactRow, ContactRow, MergePlan), StoreError> {
    if survivor_id == other_id {
        return Err(StoreError::MergeRefused(MergeRefusal::SameContact));
    }
    let Some(survivor) = contact_by(c, org_id, "id", survivor_id).await? else {
        return Err(missing(c, org_id, survivor_id).await?);
    };
    let Some(other) = contact_by(c, org_id, "id", other_id).await? else {
        return Err(missing(c, org_id, other_id).await?);
    };
    let (sp, op) = (survivor.profile()?, other.profile()?);
    check_manual_merge(survivor_id, &sp, other_id, &op).map_err(StoreError::MergeRefused)?;
    let plan = plan_merge(&sp, &survivor.stats(), &op, &other.stats());
    Ok((survivor, other, plan))
}

async fn ids_of<C: Conn>(
    c: &mut C,
    table: &str,
    org_id: &str,
    contact_id: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = format!("SELECT id FROM {table} WHERE org_id = $1 AND contact_id = $2 ORDER BY id");
    let rows: Vec<(String,)> = c.fetch_all(&sql, args![org_id, contact_id]).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

async fn holdings<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
) -> Result<Holdings, StoreError> {
    Ok(Holdings {
        visitors: ids_of(c, "visitors", org_id, contact_id).await?,
        conversations: ids_of(c, "conversations", org_id, contact_id).await?,
        events: ids_of(c, "contact_events", org_id, contact_id).await?,
        notes: c
            .fetch_all(
                "SELECT id, updated_at FROM contact_notes WHERE org_id = $1 AND contact_id = $2 \
                 ORDER BY id",
                args![org_id, contact_id],
            )
            .await?,
    })
}

/// `{head} AND {key} IN (ids)`, with `fixed` bound as $1, $2, …, in chunks small enough for
/// any database's parameter limit.
async fn update_in<C: Conn>(
    c: &mut C,
    head: &str,
    fixed: Vec<Arg>,
    key: &str,
    ids: &[String],
) -> Result<u64, StoreError> {
    let mut touched = 0;
    for chunk in ids.chunks(400) {
        let mut a = fixed.clone();
        let marks: Vec<String> = chunk
            .iter()
            .map(|id| {
                a.push(id.into());
                format!("${}", a.len())
            })
            .collect();
        let sql = format!("{head} AND {key} IN ({})", marks.join(", "));
        touched += c.execute(&sql, a).await?;
    }
    Ok(touched)
}

impl OrgStore<'_> {
    /// An admin's merge of `other` into `survivor` (SPEC rule 3, the survivor chosen). A dry
    /// run answers what the merge would do and writes nothing.
    pub async fn merge_contacts(
        self,
        survivor: &ContactId,
        other: &ContactId,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<MergeOutcome, StoreError> {
        let (org_id, survivor_id, other_id) = (self.org_id(), survivor.as_str(), other.as_str());
        if dry_run {
            return read!(self.store, |c| async {
                let now = now_ms();
                let (s, o, plan) = prepare(c, org_id, survivor_id, other_id).await?;
                let moves = MoveCounts {
                    visitors: ids_of(c, "visitors", org_id, other_id).await?.len() as i64,
                    conversations: ids_of(c, "conversations", org_id, other_id).await?.len() as i64,
                    timeline_entries: ids_of(c, "contact_events", org_id, other_id).await?.len()
                        as i64,
                    notes: ids_of(c, "contact_notes", org_id, other_id).await?.len() as i64,
                };
                Ok::<_, StoreError>(MergeOutcome {
                    merge_id: None,
                    survivor: planned_row(&s, &plan, now).view()?,
                    absorbed_id: ContactId::new(o.id),
                    fields: plan.fields,
                    tags_added: plan.tags_added,
                    metadata_added: plan.metadata_added,
                    promoted: plan.promoted,
                    moves,
                })
            }
            .await);
        }
        transact!(self.store, |c| async {
            let now = now_ms();
            let (s, o, plan) = prepare(c, org_id, survivor_id, other_id).await?;
            let merge_id = new_id();
            let moved = absorb_into(c, org_id, &o, survivor_id, &plan, now).await?;
            insert_event(
                c,
                org_id,
                survivor_id,
                EventKind::Merged,
                actor,
                json!({"absorbed_contact_id": other_id, "by": "admin", "merge_id": merge_id,
                       "absorbed_name": o.name, "absorbed_email": o.email}),
                now,
            )
            .await?;
            if plan.promoted {
                insert_event(
                    c,
                    org_id,
                    survivor_id,
                    EventKind::Promoted,
                    actor,
                    json!({"from": "lead", "to": "customer"}),
                    now,
                )
                .await?;
            }
            let after_row = contact_by(c, org_id, "id", survivor_id)
                .await?
                .ok_or(StoreError::Raced)?;
            let snapshot = Snapshot {
                survivor_before: s,
                survivor_after: after_row.clone(),
                absorbed: o,
                moved: moved.clone(),
                after: holdings(c, org_id, survivor_id).await?,
            };
            let snapshot =
                serde_json::to_string(&snapshot).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            c.execute(
                "INSERT INTO merges (org_id, id, survivor_id, absorbed_id, actor, merged_at, \
                 snapshot) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![
                    org_id,
                    &merge_id,
                    survivor_id,
                    other_id,
                    actor.to_string(),
                    now,
                    snapshot
                ],
            )
            .await?;
            Ok::<_, StoreError>(MergeOutcome {
                merge_id: Some(merge_id),
                survivor: after_row.view()?,
                absorbed_id: ContactId::new(other_id.to_string()),
                fields: plan.fields,
                tags_added: plan.tags_added,
                metadata_added: plan.metadata_added,
                promoted: plan.promoted,
                moves: counts_of(&moved),
            })
        }
        .await)
    }

    /// One manual merge's record.
    pub async fn merge_record(self, merge_id: &str) -> Result<MergeRecord, StoreError> {
        let org_id = self.org_id();
        let sql = format!("SELECT {MERGE_COLUMNS} FROM merges WHERE org_id = $1 AND id = $2");
        let row: Option<MergeRow> = read!(self.store, |c| c
            .fetch_optional(&sql, args![org_id, merge_id])
            .await)?;
        row.ok_or(StoreError::NotFound)?.record()
    }

    /// Undoes a manual merge: both contacts exactly as they were before it (rows, tags,
    /// stats, times, visitors, conversations, timeline entries, notes), plus a `merged` and a
    /// `merge_undone` entry at the head of each timeline. Refused with `MergeChanged` naming
    /// what changed when either contact changed since the merge, and `AlreadyUndone` once done.
    pub async fn undo_merge(
        self,
        merge_id: &str,
        actor: &Actor,
    ) -> Result<UndoOutcome, StoreError> {
        let org_id = self.org_id();
        let select = format!(
            "SELECT {MERGE_COLUMNS} FROM merges WHERE org_id = $1 AND id = $2{}",
            for_update(self.store.dialect())
        );
        transact!(self.store, |c| async {
            let now = now_ms();
            let row: MergeRow = c
                .fetch_optional(&select, args![org_id, merge_id])
                .await?
                .ok_or(StoreError::NotFound)?;
            if row.undone_at.is_some() {
                return Err(StoreError::AlreadyUndone);
            }
            let snap = row.snapshot()?;
            let (survivor_id, absorbed_id) = (row.survivor_id.as_str(), row.absorbed_id.as_str());
            let changed = what_changed(c, org_id, &row, &snap).await?;
            if !changed.is_empty() {
                return Err(StoreError::MergeChanged { changed });
            }

            // The survivor first: it gives back an email or user id it took from the other.
            let before = &snap.survivor_before;
            write_profile(
                c,
                org_id,
                survivor_id,
                &before.profile()?,
                before.updated_at,
            )
            .await?;
            c.execute(
                "UPDATE contacts SET conversation_count = $3, message_count = $4, \
                 last_seen_at = $5, created_at = $6 WHERE org_id = $1 AND id = $2",
                args![
                    org_id,
                    survivor_id,
                    before.conversation_count,
                    before.message_count,
                    before.last_seen_at,
                    before.created_at
                ],
            )
            .await?;
            c.execute(
                "DELETE FROM contact_merges WHERE org_id = $1 AND absorbed_id = $2",
                args![org_id, absorbed_id],
            )
            .await?;
            restore_contact(c, org_id, &snap.absorbed).await?;
            for (table, ids) in [
                ("visitors", &snap.moved.visitors),
                ("conversations", &snap.moved.conversations),
                ("contact_events", &snap.moved.events),
                ("contact_notes", &snap.moved.notes),
            ] {
                let head = format!(
                    "UPDATE {table} SET contact_id = $2 WHERE org_id = $1 AND contact_id = $3"
                );
                update_in(c, &head, args![org_id, absorbed_id, survivor_id], "id", ids).await?;
            }
            update_in(
                c,
                "UPDATE contact_merges SET merged_into = $2 WHERE org_id = $1",
                args![org_id, absorbed_id],
                "absorbed_id",
                &snap.moved.merge_records,
            )
            .await?;

            // Both timelines show the merge and its undo. The restored contact's `merged`
            // entry is dated when the merge happened.
            let merge_actor = crate::model::parse_actor(&row.actor).unwrap_or(Actor::System);
            insert_event(
                c,
                org_id,
                absorbed_id,
                EventKind::Merged,
                &merge_actor,
                json!({"merged_into": survivor_id, "by": "admin", "merge_id": merge_id,
                       "survivor_name": before.name, "survivor_email": before.email}),
                row.merged_at,
            )
            .await?;
            for (on, other) in [(survivor_id, absorbed_id), (absorbed_id, survivor_id)] {
                insert_event(
                    c,
                    org_id,
                    on,
                    EventKind::MergeUndone,
                    actor,
                    json!({"merge_id": merge_id, "survivor_id": survivor_id,
                           "absorbed_contact_id": absorbed_id, "other_contact_id": other}),
                    now,
                )
                .await?;
            }
            c.execute(
                "UPDATE merges SET undone_at = $3, undone_by = $4 WHERE org_id = $1 AND id = $2",
                args![org_id, merge_id, now, actor.to_string()],
            )
            .await?;
            let mut record = row.record()?;
            record.undone_at = Some(Timestamp(now));
            record.undone_by = Some(actor.to_string());
            let survivor = contact_by(c, org_id, "id", survivor_id)
                .await?
                .ok_or(StoreError::Raced)?
                .view()?;
            let restored = contact_by(c, org_id, "id", absorbed_id)
                .await?
                .ok_or(StoreError::Raced)?
                .view()?;
            Ok::<_, StoreError>(UndoOutcome {
                record,
                survivor,
                restored,
            })
        }
        .await)
    }
}

/// What changed since the merge, as `survivor.fields`, `survivor.tags`, `survivor.stats`,
/// `survivor.visitors`, `survivor.conversations`, `survivor.notes`, `survivor.timeline`,
/// `survivor.gone` (merged away or deleted), `absorbed.email` / `absorbed.user_id` (another
/// contact holds it now). Empty: the undo may go ahead.
async fn what_changed<C: Conn>(
    c: &mut C,
    org_id: &str,
    row: &MergeRow,
    snap: &Snapshot,
) -> Result<Vec<String>, StoreError> {
    let mut changed = Vec::new();
    let Some(now) = contact_by(c, org_id, "id", &row.survivor_id).await? else {
        return Ok(vec!["survivor.gone".into()]);
    };
    let then = &snap.survivor_after;
    let fields_differ = (
        &now.user_id,
        &now.email,
        &now.name,
        &now.phone,
        &now.company,
        &now.metadata,
        now.email_verified,
    ) != (
        &then.user_id,
        &then.email,
        &then.name,
        &then.phone,
        &then.company,
        &then.metadata,
        then.email_verified,
    );
    let tags_differ = now.tags != then.tags;
    if fields_differ || (now.updated_at != then.updated_at && !tags_differ) {
        changed.push("survivor.fields".into());
    }
    if tags_differ {
        changed.push("survivor.tags".into());
    }
    if (
        now.conversation_count,
        now.message_count,
        now.last_seen_at,
        now.created_at,
    ) != (
        then.conversation_count,
        then.message_count,
        then.last_seen_at,
        then.created_at,
    ) {
        changed.push("survivor.stats".into());
    }
    let h = holdings(c, org_id, &row.survivor_id).await?;
    let after = &snap.after;
    for (name, differs) in [
        ("survivor.visitors", h.visitors != after.visitors),
        (
            "survivor.conversations",
            h.conversations != after.conversations,
        ),
        ("survivor.notes", h.notes != after.notes),
    ] {
        if differs {
            changed.push(name.into());
        }
    }
    // New timeline entries follow from the changes above (an edit, a conversation, a note);
    // named on their own only when nothing else explains them.
    if changed.is_empty() && h.events != after.events {
        changed.push("survivor.timeline".into());
    }
    let absorbed = &snap.absorbed;
    if let Some(email) = &absorbed.email {
        let key = kith_core::Email::from_stored(email.clone()).key();
        if let Some(holder) = contact_by(c, org_id, "email_lower", &key).await? {
            if holder.id != row.survivor_id {
                changed.push("absorbed.email".into());
            }
        }
    }
    if let Some(user_id) = &absorbed.user_id {
        if let Some(holder) = contact_by(c, org_id, "user_id", user_id).await? {
            if holder.id != row.survivor_id {
                changed.push("absorbed.user_id".into());
            }
        }
    }
    Ok(changed)
}
