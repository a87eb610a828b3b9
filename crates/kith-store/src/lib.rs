//! Kith's persistence: one store, one query path, SQLite (embedded default) or PostgreSQL.
//!
//! Every tenant operation goes through `store.org(&org_id)` (or, for the widget,
//! `store.website(&website)`), which puts the organization into every query; handlers get
//! the id from the credential, never from a request body. Writes run in one transaction each (see `transact!`), reads on a
//! pooled connection. The domain crate decides (identity resolution, merges, validation); this
//! crate gathers the facts it needs and applies its answers.

mod admins;
mod audit;
pub(crate) mod backend;
mod batch;
mod bulk;
mod checkpoint;
pub(crate) mod conn;
mod contact_rows;
mod contacts;
mod conversations;
mod cursor;
mod dialect;
mod export;
mod ids;
mod import;
mod index;
mod lists;
pub(crate) mod lite;
mod merges;
mod message_batch;
mod model;
mod notes;
mod orgs;
mod query;
mod realtime;
mod removal;
mod resolution;
mod scope;
mod seed;
pub(crate) mod webhooks;
mod widget;

pub use admins::{
    new_secret, AdminError, AdminSession, NewSession, SessionPolicy, VerifiedAdmin,
    PASSWORD_MIN_CHARS,
};
pub use audit::IngestTotals;
pub(crate) use backend::{read, read_point, transact};
pub use backend::{redact as redact_url, Access, Store, DEFAULT_DATABASE_URL, DEFAULT_POOL_SIZE};
pub use bulk::{BulkAction, BulkJob, BulkRequest, Step as BulkStep};
pub use contacts::{Page, TagEdit};
#[doc(hidden)]
pub use conversations::folded_messages;
pub use conversations::PostedMessage;
pub use export::{export_header, export_rows, EXPORT_PAGE};
pub use ids::{new_id, now_ms};
pub use import::{ImportError, ImportOptions, ImportProgress, ImportSummary, BATCH_ROWS};
pub use index::IndexMemory;
pub use lists::ContactList;
pub use merges::{MergeOutcome, MergeRecord, MoveCounts, UndoOutcome};
pub use message_batch::{batched_messages, queued_messages};
pub use model::*;
pub use notes::{Note, NoteAuthor};
pub use orgs::{Credentials, NewOrg};
pub use realtime::{announce_rounds, Announcement, MessageListener};
pub use removal::{ContactExport, Deleted, VisitorRecord};
pub use scope::{OrgStore, WebsiteStore};
pub use seed::SeedReport;
pub use webhooks::{
    webhook_wakeups, AttemptResult, ClaimedDelivery, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint,
};
pub use widget::{IdentifyOutcome, Visitor};

/// Internals exposed for the fuzz targets in `fuzz/` only; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::index::search_texts;
}

use kith_core::ValidationError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("this contact was merged into {merged_into}")]
    Merged { merged_into: String },
    #[error("{field} is already held by contact {contact_id}")]
    Conflict { field: String, contact_id: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// An admin's merge that may not happen: the same contact twice, or two user ids.
    #[error("these contacts cannot be merged: {0:?}")]
    MergeRefused(kith_core::merge::MergeRefusal),
    /// An undo refused because a contact changed since the merge; names what changed.
    #[error("the contacts changed since the merge: {}", changed.join(", "))]
    MergeChanged { changed: Vec<String> },
    #[error("this merge was already undone")]
    AlreadyUndone,
    #[error("built-in lists cannot be changed or deleted")]
    Builtin,
    #[error("the cursor is not one this server handed out")]
    BadCursor,
    /// A bulk action confirmed for `expected` contacts, when `current` match now.
    #[error("{current} contacts match now, not the {expected} confirmed; preview again")]
    CountChanged { expected: i64, current: i64 },
    /// A setting or argument the store cannot work with: a database URL, a backup target.
    #[error("{0}")]
    Config(String),
    /// A SQLite database that another kith process serves or seeds: one process owns it.
    #[error(
        "the database {} is in use by another kith process (serve or seed); stop it first, or \
         use PostgreSQL to run several servers on one database",
        path.display()
    )]
    InUse { path: PathBuf },
    /// The lock file beside a SQLite database could not be created or locked.
    #[error("cannot {action} the lock file {}", path.display())]
    LockFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or folder the store needs (the database's folder, a backup) could not be used.
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Hashing a new admin password failed. (`password_hash::Error` implements
    /// `std::error::Error` only with argon2's `std` feature, so the cause is in the message.)
    #[error("password hashing failed: {0}")]
    PasswordHash(argon2::password_hash::Error),
    /// The blocking task hashing a password did not finish (the runtime shut down).
    #[error("password hashing task failed")]
    PasswordHashTask(#[source] tokio::task::JoinError),
    /// A seed could not go on. Never retried: what failed would fail again.
    #[error("seeding stopped: {reason}")]
    Seed {
        reason: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// PostgreSQL: this process's contact index fell too far behind the database (it could not
    /// read the change log for minutes) and is being rebuilt; lists are answered by SQL
    /// meanwhile, so asking again succeeds.
    #[error("the contact index is being rebuilt")]
    IndexBehind,
    /// A row this transaction relied on was changed by a concurrent writer (retried).
    #[error("a concurrent change got in the way; try again")]
    Raced,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The database could not be reached or had no free connection: answer 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::IndexBehind
                | StoreError::Database(
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
                )
        )
    }

    /// A transaction that failed this way lost a race with a concurrent writer: running it
    /// again re-reads what the other one committed.
    pub(crate) fn is_retryable(&self) -> bool {
        if matches!(self, StoreError::Raced) {
            return true;
        }
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        use sqlx::error::ErrorKind;
        if matches!(
            db.kind(),
            ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation
        ) {
            return true;
        }
        match db.code().as_deref() {
            // PostgreSQL: serialization failure, deadlock.
            Some("40001") | Some("40P01") => true,
            // SQLite: BUSY (and its extended codes), LOCKED.
            Some(code) => matches!(code, "5" | "6" | "261" | "517" | "262"),
            None => false,
        }
    }
}
