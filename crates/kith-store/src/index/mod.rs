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
//! The index is built in the background when the server starts, so widget traffic is served
//! at once; list reads wait until it is ready. Writes committed meanwhile are noted and their
//! contacts re-read, under the writer lock, when the build ends.
//!
//! PostgreSQL can be shared by several processes that each write: every serving process
//! keeps its own index and follows the others' writes through a change log in the database,
//! catching up before each list read (`follow`).

mod arena;
mod follow;
mod grams;
mod load;
mod org;
mod slots;

pub(crate) use follow::run as follow;
pub use grams::search_texts;
pub(crate) use load::{build, collect_changes, load_changes, Dirty, DIRTY_TRACKING_SQL};
pub use org::IndexMemory;
pub(crate) use org::{OrgIndex, Position, SortValue};

use crate::StoreError;
use org::IndexedContact;
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex, RwLock};

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

impl Change {
    fn dirty(&self) -> Dirty {
        match self {
            Change::Upsert {
                org_id,
                contact,
                websites,
            } => Dirty {
                org_id: org_id.clone(),
                id: contact.id.clone(),
                sites: i64::from(websites.is_some()),
            },
            Change::Remove { org_id, id } => Dirty {
                org_id: org_id.clone(),
                id: id.clone(),
                sites: 0,
            },
        }
    }
}

#[derive(Debug, Clone)]
enum Readiness {
    Building,
    Ready,
    Failed(String),
}

/// Every organization's index. Each organization has its own lock, so a long count in one
/// does not hold writes to another.
pub(crate) struct ContactIndex {
    orgs: RwLock<FxHashMap<String, Arc<RwLock<OrgIndex>>>>,
    /// While the initial build runs: the contacts writes touched, to re-read when it ends.
    pending: Mutex<Option<Vec<Dirty>>>,
    ready: tokio::sync::watch::Sender<Readiness>,
    /// PostgreSQL: where the index stands in the database's history of commits.
    follow: Option<follow::Follow>,
}

impl Default for ContactIndex {
    fn default() -> Self {
        ContactIndex {
            orgs: RwLock::default(),
            pending: Mutex::new(Some(Vec::new())),
            ready: tokio::sync::watch::Sender::new(Readiness::Building),
            follow: None,
        }
    }
}

impl ContactIndex {
    /// Whether the initial build is still running: lists are then answered by SQL instead of
    /// waiting (a million contacts take tens of seconds to load).
    pub fn is_building(&self) -> bool {
        matches!(*self.ready.borrow(), Readiness::Building)
    }

    /// Waits until the initial build is done.
    pub async fn wait_ready(&self) -> Result<(), StoreError> {
        let mut rx = self.ready.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                Readiness::Ready => return Ok(()),
                Readiness::Failed(why) => {
                    return Err(StoreError::Corrupt(format!(
                        "the contact index could not be built: {why}"
                    )))
                }
                Readiness::Building => {}
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Corrupt("the contact index was dropped".into()));
            }
        }
    }

    /// Ends the build: from now on changes apply directly. Answers what was written while
    /// it ran. Call with the writer lock held.
    pub fn take_pending(&self) -> Vec<Dirty> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }

    pub fn set_ready(&self, outcome: Result<(), String>) {
        self.ready.send_replace(match outcome {
            Ok(()) => Readiness::Ready,
            Err(why) => Readiness::Failed(why),
        });
    }

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

    /// Takes committed changes, in commit order. During the initial build they are only
    /// noted: the build may already have read an older state of those contacts.
    pub fn apply(&self, changes: Vec<Change>) {
        if let Some(pending) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            pending.extend(changes.iter().map(Change::dirty));
            return;
        }
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

    /// Contacts held, and the bytes held by part, over all organizations.
    pub fn size(&self) -> (u64, IndexMemory) {
        read(&self.orgs)
            .values()
            .fold((0, IndexMemory::default()), |(n, mut m), o| {
                let o = read(o);
                m.add(&o.memory());
                (n + o.len(), m)
            })
    }

    /// Gives back the room the initial build reserved while growing, organization by
    /// organization (each briefly holds its lock).
    pub fn shrink_to_fit(&self) {
        let orgs: Vec<_> = read(&self.orgs).values().cloned().collect();
        for o in orgs {
            write(&o).shrink_to_fit();
        }
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
