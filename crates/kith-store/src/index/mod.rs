//! The contact index: what lists, counts and free-text search read on SQLite.
//!
//! SQLite is embedded, one process owns the file (see `backend::Access`), and every write goes
//! through `transact!`. So the serving process can hold each organization's contacts as
//! bitmaps and columns in memory and keep them exact: temporary triggers on the writing
//! connection record which contacts a transaction touched, the transaction reads those rows
//! back before it commits, and the index takes them right after the commit, still under the
//! writer lock and before the write returns. A contact is therefore listed and searchable the
//! moment its write commits, and every list answers with an exact count from bitmap
//! cardinalities instead of visiting rows.
//!
//! PostgreSQL can be shared by several processes, so it answers lists with its own indexes.

mod grams;
mod load;
mod org;

pub(crate) use load::{build, collect_changes, DIRTY_TRACKING_SQL};
pub(crate) use org::{OrgIndex, Position, SortValue};

use org::IndexedContact;
use rustc_hash::FxHashMap;
use std::sync::{Arc, RwLock};

/// A committed change to one contact, as the index takes it.
#[derive(Debug)]
pub(crate) enum Change {
    /// The contact as it now is; `websites` when its conversations moved or began.
    Upsert {
        org_id: String,
        contact: IndexedContact,
        websites: Option<Vec<String>>,
    },
    /// The contact no longer exists (absorbed by a merge).
    Remove { org_id: String, id: String },
}

/// Every organization's index. Each organization has its own lock, so a long count in one
/// does not hold writes to another.
#[derive(Default)]
pub(crate) struct ContactIndex {
    orgs: RwLock<FxHashMap<String, Arc<RwLock<OrgIndex>>>>,
}

impl ContactIndex {
    /// The organization's index (empty for an organization without contacts yet).
    pub fn org(&self, org_id: &str) -> Arc<RwLock<OrgIndex>> {
        if let Some(o) = read(&self.orgs).get(org_id) {
            return o.clone();
        }
        write(&self.orgs)
            .entry(org_id.to_string())
            .or_default()
            .clone()
    }

    /// Takes committed changes, in commit order.
    pub fn apply(&self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Upsert {
                    org_id,
                    contact,
                    websites,
                } => {
                    let org = self.org(&org_id);
                    let mut o = write(&org);
                    let id = contact.id.clone();
                    o.upsert(contact);
                    if let Some(w) = websites {
                        o.set_websites(&id, &w);
                    }
                }
                Change::Remove { org_id, id } => write(&self.org(&org_id)).remove(&id),
            }
        }
    }

    /// Contacts held, and approximate heap bytes, over all organizations.
    pub fn size(&self) -> (u64, u64) {
        read(&self.orgs).values().fold((0, 0), |(n, b), o| {
            let o = read(o);
            (n + o.len(), b + o.approx_bytes())
        })
    }
}

/// A poisoned lock means a panic while the index was being changed: the index may then be
/// missing that one change, which the next write of the contact repairs. Serving on beats
/// failing every list.
pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
