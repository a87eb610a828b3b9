//! Filling the index from the database: all of it at start, and the contacts each write
//! transaction touched just before it commits.

use super::org::IndexedContact;
use super::{Change, ContactIndex};
use crate::conn::{args, Arg, Conn};
use crate::StoreError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Run on every connection of a serving SQLite store: a temporary table and temporary
/// triggers (both private to the connection) that note each contact a transaction inserts,
/// changes, deletes, re-tags, or gives or takes a conversation. `sites` = 1 when the contact's
/// websites may have changed.
pub(crate) const DIRTY_TRACKING_SQL: &str = "
CREATE TEMP TABLE IF NOT EXISTS kith_dirty (
    org_id TEXT NOT NULL, id TEXT NOT NULL, sites INTEGER NOT NULL,
    PRIMARY KEY (org_id, id, sites)
) WITHOUT ROWID;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_contact_insert AFTER INSERT ON main.contacts BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (new.org_id, new.id, 0);
END;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_contact_update AFTER UPDATE ON main.contacts BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (new.org_id, new.id, 0);
END;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_contact_delete AFTER DELETE ON main.contacts BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (old.org_id, old.id, 0);
END;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_tag_insert AFTER INSERT ON main.contact_tags BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (new.org_id, new.contact_id, 0);
END;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_tag_delete AFTER DELETE ON main.contact_tags BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (old.org_id, old.contact_id, 0);
END;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_conversation_insert AFTER INSERT ON main.conversations BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (new.org_id, new.contact_id, 1);
END;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_conversation_move AFTER UPDATE OF contact_id ON main.conversations
WHEN old.contact_id <> new.contact_id BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (old.org_id, old.contact_id, 1);
    INSERT OR IGNORE INTO kith_dirty VALUES (new.org_id, new.contact_id, 1);
END;
CREATE TEMP TRIGGER IF NOT EXISTS kith_dirty_conversation_delete AFTER DELETE ON main.conversations BEGIN
    INSERT OR IGNORE INTO kith_dirty VALUES (old.org_id, old.contact_id, 1);
END;
";

const COLUMNS: &str = "org_id, id, status, name_lower, search_text, tags, metadata, \
                       last_seen_at, created_at, message_count, conversation_count, rid";

#[derive(sqlx::FromRow)]
struct IndexRow {
    org_id: String,
    id: String,
    status: String,
    name_lower: Option<String>,
    search_text: String,
    tags: String,
    metadata: String,
    last_seen_at: Option<i64>,
    created_at: i64,
    message_count: i64,
    conversation_count: i64,
    rid: i64,
}
crate::lite::lite_row!(IndexRow {
    org_id,
    id,
    status,
    name_lower,
    search_text,
    tags,
    metadata,
    last_seen_at,
    created_at,
    message_count,
    conversation_count,
    rid
});

impl IndexRow {
    fn into_contact(self) -> Result<(String, IndexedContact), StoreError> {
        let corrupt = |what: &str, e: serde_json::Error| {
            StoreError::Corrupt(format!("{what} of contact {}: {e}", self.id))
        };
        let tags: Vec<String> = serde_json::from_str(&self.tags).map_err(|e| corrupt("tags", e))?;
        let metadata: serde_json::Map<String, Value> =
            serde_json::from_str(&self.metadata).map_err(|e| corrupt("metadata", e))?;
        Ok((
            self.org_id,
            IndexedContact {
                customer: self.status == kith_core::Status::Customer.as_str(),
                name_lower: self.name_lower,
                search_text: self.search_text,
                tags: tags.iter().map(|t| t.to_lowercase()).collect(),
                metadata: metadata
                    .into_iter()
                    .map(|(k, v)| {
                        let key = kith_core::filter::metadata_eq_key(&v).unwrap_or_default();
                        (k, key)
                    })
                    .collect(),
                last_seen_at: self.last_seen_at,
                created_at: self.created_at,
                message_count: self.message_count,
                conversation_count: self.conversation_count,
                id: self.id,
            },
        ))
    }
}

/// Rows per read while building: bounded memory, few round trips.
const BUILD_CHUNK: i64 = 20_000;

/// Reads every contact and conversation into `index`, then gives back the room its buffers
/// reserved while growing. Reading a chunk overlaps with indexing the previous one on a
/// blocking thread: the two take about as long each.
pub(crate) async fn build<C: Conn>(
    index: &std::sync::Arc<ContactIndex>,
    c: &mut C,
) -> Result<(), StoreError> {
    let mut after_rid = i64::MIN;
    let mut indexing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let rows: Vec<IndexRow> = c
            .fetch_all(
                &format!("SELECT {COLUMNS} FROM contacts WHERE rid > $1 ORDER BY rid LIMIT $2"),
                args![after_rid, BUILD_CHUNK],
            )
            .await?;
        let Some(last) = rows.last() else { break };
        after_rid = last.rid;
        // One batch per organization, in row order.
        let mut batches: Vec<(String, Vec<IndexedContact>)> = Vec::new();
        for row in rows {
            let (org_id, contact) = row.into_contact()?;
            match batches.last_mut() {
                Some((o, batch)) if *o == org_id => batch.push(contact),
                _ => batches.push((org_id, vec![contact])),
            }
        }
        if let Some(previous) = indexing.take() {
            join(previous).await;
        }
        let ix = index.clone();
        indexing = Some(tokio::task::spawn_blocking(move || {
            for (org_id, batch) in batches {
                super::write(&ix.org(&org_id)).upsert_batch(batch);
            }
        }));
    }
    if let Some(last) = indexing.take() {
        join(last).await;
    }

    #[derive(sqlx::FromRow)]
    struct Site {
        org_id: String,
        id: String,
        contact_id: String,
        website_id: String,
    }
    crate::lite::lite_row!(Site {
        org_id,
        id,
        contact_id,
        website_id
    });
    let (mut after_org, mut after_id) = (String::new(), String::new());
    loop {
        let rows: Vec<Site> = c
            .fetch_all(
                "SELECT org_id, id, contact_id, website_id FROM conversations \
                 WHERE (org_id, id) > ($1, $2) ORDER BY org_id, id LIMIT $3",
                args![&after_org, &after_id, BUILD_CHUNK],
            )
            .await?;
        let Some(last) = rows.last() else { break };
        (after_org, after_id) = (last.org_id.clone(), last.id.clone());
        for r in rows {
            super::write(&index.org(&r.org_id)).add_website(&r.contact_id, &r.website_id);
        }
    }
    // The build grew its buffers by doubling; give back what they do not use.
    let ix = index.clone();
    join(tokio::task::spawn_blocking(move || ix.shrink_to_fit())).await;
    Ok(())
}

async fn join(task: tokio::task::JoinHandle<()>) {
    task.await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The contacts the current transaction touched, read as they will be once it commits.
/// Called inside the transaction, right before `COMMIT`, on a connection with
/// `DIRTY_TRACKING_SQL` installed.
pub(crate) async fn collect_changes<C: Conn>(c: &mut C) -> Result<Vec<Change>, StoreError> {
    let dirty: Vec<Dirty> = c
        .fetch_all("SELECT org_id, id, sites FROM kith_dirty", vec![])
        .await?;
    if dirty.is_empty() {
        return Ok(Vec::new());
    }
    c.execute("DELETE FROM kith_dirty", vec![]).await?;
    load_changes(c, dirty).await
}

/// A contact a write touched; `sites` ≠ 0 when its websites may have changed.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Dirty {
    pub org_id: String,
    pub id: String,
    pub sites: i64,
}
crate::lite::lite_row!(Dirty { org_id, id, sites });

/// The touched contacts as the database now holds them: an upsert for each that exists, a
/// removal for each that does not.
pub(crate) async fn load_changes<C: Conn>(
    c: &mut C,
    dirty: Vec<Dirty>,
) -> Result<Vec<Change>, StoreError> {
    // org → (contacts, contacts whose websites to re-read)
    let mut by_org: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for d in dirty {
        let entry = by_org.entry(d.org_id).or_default();
        if d.sites != 0 {
            entry.1.insert(d.id.clone());
        }
        entry.0.insert(d.id);
    }
    let mut changes = Vec::new();
    for (org_id, (ids, site_ids)) in by_org {
        let ids: Vec<String> = ids.into_iter().collect();
        let mut websites: BTreeMap<String, Vec<String>> =
            site_ids.into_iter().map(|id| (id, Vec::new())).collect();
        let wanted: Vec<String> = websites.keys().cloned().collect();
        for chunk in wanted.chunks(400) {
            let (sql, a) = in_list(
                "SELECT DISTINCT contact_id, website_id FROM conversations \
                 WHERE org_id = $1 AND contact_id IN",
                &org_id,
                chunk,
            );
            let rows: Vec<(String, String)> = c.fetch_all(&sql, a).await?;
            for (contact_id, website_id) in rows {
                websites.entry(contact_id).or_default().push(website_id);
            }
        }
        for chunk in ids.chunks(400) {
            let (sql, a) = in_list(
                &format!("SELECT {COLUMNS} FROM contacts WHERE org_id = $1 AND id IN"),
                &org_id,
                chunk,
            );
            let rows: Vec<IndexRow> = c.fetch_all(&sql, a).await?;
            let mut found = BTreeSet::new();
            for row in rows {
                let (_, contact) = row.into_contact()?;
                found.insert(contact.id.clone());
                changes.push(Change::Upsert {
                    websites: websites.remove(&contact.id),
                    org_id: org_id.clone(),
                    contact,
                });
            }
            for id in chunk.iter().filter(|id| !found.contains(*id)) {
                changes.push(Change::Remove {
                    org_id: org_id.clone(),
                    id: id.clone(),
                });
            }
        }
    }
    Ok(changes)
}

/// `{head} ($2, $3, …)` with the organization as `$1`.
fn in_list(head: &str, org_id: &str, ids: &[String]) -> (String, Vec<Arg>) {
    let mut a: Vec<Arg> = vec![org_id.into()];
    let marks: Vec<String> = ids
        .iter()
        .map(|id| {
            a.push(id.into());
            format!("${}", a.len())
        })
        .collect();
    (format!("{head} ({})", marks.join(", ")), a)
}
