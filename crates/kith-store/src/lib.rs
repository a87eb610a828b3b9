//! Kith's persistence: one store, one query path, SQLite (embedded default) or PostgreSQL.
//!
//! Every operation takes the organization id first; handlers get it from the credential,
//! never from a request body. Writes run in one transaction each (see `transact!`), reads on a
//! pooled connection. The domain crate decides (identity resolution, merges, validation); this
//! crate gathers the facts it needs and applies its answers.

pub(crate) mod backend;
pub(crate) mod conn;
mod contact_rows;
mod contacts;
mod conversations;
mod cursor;
mod dialect;
mod ids;
mod index;
mod lists;
mod model;
mod orgs;
mod query;
mod realtime;
mod resolution;
mod seed;
mod widget;

pub use backend::{redact as redact_url, Access, Store, DEFAULT_DATABASE_URL};
pub use contacts::Page;
pub use conversations::{AuthorKind, PostedMessage};
pub use ids::{new_id, now_ms};
pub use lists::ContactList;
pub use model::*;
pub use orgs::{Credentials, NewOrg};
pub use realtime::MessageListener;
pub use seed::SeedReport;
pub use widget::{IdentifyOutcome, Visitor};

/// Internals exposed for the fuzz targets in `fuzz/` only; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::index::search_texts;
}

use kith_core::ValidationError;

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
    #[error("built-in lists cannot be changed or deleted")]
    Builtin,
    #[error("the cursor is not one this server handed out")]
    BadCursor,
    #[error("{0}")]
    Config(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
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
            StoreError::Database(
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
