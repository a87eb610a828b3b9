//! Opening a database, applying migrations, and running transactions with retry on either
//! backend. `Backend` is matched only here and in `dialect.rs`.

use crate::conn::Dialect;
use crate::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    /// SQLite has one writer at a time. Queueing writers here, in order, is cheaper than
    /// letting them poll SQLite's busy handler; `BEGIN IMMEDIATE` still guards correctness
    /// against other processes (a CLI command beside the server).
    pub(crate) sqlite_writer: tokio::sync::Mutex<()>,
    pub(crate) url_redacted: String,
}

/// The store: both databases behind one API. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// How many times a transaction that lost a race (serialization failure, unique or foreign
/// key violation caused by a concurrent writer, busy database) is run again.
pub(crate) const MAX_ATTEMPTS: u32 = 12;

/// The default database: an embedded SQLite file under `./kith-data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kith-data/kith.db";

impl Store {
    /// Opens `url` (`sqlite://relative.db`, `sqlite:///abs/path.db`, `postgres://…`) and
    /// applies pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, 16).await
    }

    pub async fn open_with(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid SQLite URL {url:?}: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a crash may lose the last commits but never corrupts.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("temp_store", "memory")
                // Lists and search read large parts of big tables: a 64 MiB page cache per
                // connection and the file memory-mapped (shared by all connections) keep
                // them off the read() path.
                .pragma("cache_size", "-65536")
                .pragma("mmap_size", "8589934592");
            if let Some(parent) = opts.get_filename().parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Config(format!(
                            "cannot create the database folder {}: {e}",
                            parent.display()
                        ))
                    })?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.clamp(1, 16))
                .connect_with(opts)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL {:?}: use sqlite://file.db, sqlite:///abs/path.db or postgres://user@host/db",
                redact(url)
            )));
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                sqlite_writer: tokio::sync::Mutex::new(()),
                url_redacted: redact(url),
            }),
        })
    }

    /// The URL without its password, for logs.
    pub fn url_redacted(&self) -> &str {
        &self.inner.url_redacted
    }

    pub fn backend_name(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match &self.inner.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The PostgreSQL pool, for LISTEN/NOTIFY; `None` on SQLite.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.inner.backend {
            Backend::Postgres(p) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    /// Readiness: one round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::read!(self, |c| crate::conn::Conn::execute(c, "SELECT 1", vec![])
            .await)?;
        Ok(())
    }

    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }
}

/// `url` without its password, for logs and error messages.
pub fn redact(url: &str) -> String {
    // postgres://user:secret@host/db → postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.split_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// A short random pause before running a transaction again, so racing writers spread out.
pub(crate) async fn backoff(attempt: u32) {
    use rand::Rng;
    let cap_ms = (2u64 << attempt.min(6)).min(100);
    let ms = rand::thread_rng().gen_range(1..=cap_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Runs `$body` (an expression of type `Result<T, StoreError>` that uses `$c: &mut impl
/// Conn`) inside one write transaction, committing on `Ok`, rolling back on `Err`, and running
/// it again when it lost a race with another writer. SQLite: `BEGIN IMMEDIATE` (take the write
/// lock up front, so a read-then-write transaction cannot fail to upgrade). PostgreSQL: READ
/// COMMITTED with the rows a decision depends on locked (`dialect::for_update`) and unique keys
/// catching concurrent creations, so the identity rules hold across any number of processes
/// without serialization failures piling up on a busy contact.
#[macro_export]
#[doc(hidden)]
macro_rules! transact {
    ($store:expr, |$c:ident| $body:expr) => {{
        let store: &$crate::Store = $store;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result: Result<_, $crate::StoreError> = match &store.inner.backend {
                $crate::backend::Backend::Sqlite(pool) => {
                    let _writer = store.inner.sqlite_writer.lock().await;
                    async {
                        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                        let out = {
                            let $c: &mut sqlx::SqliteConnection = &mut *tx;
                            $body
                        }?;
                        tx.commit().await?;
                        Ok(out)
                    }
                    .await
                }
                $crate::backend::Backend::Postgres(pool) => {
                    async {
                        let mut tx = pool.begin().await?;
                        let out = {
                            let $c: &mut sqlx::PgConnection = &mut *tx;
                            $body
                        }?;
                        tx.commit().await?;
                        Ok(out)
                    }
                    .await
                }
            };
            match result {
                Err(e) if e.is_retryable() && attempt < $crate::backend::MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "transaction lost a race, running it again");
                    $crate::backend::backoff(attempt).await;
                }
                other => break other,
            }
        }
    }};
}

/// Runs `$body` on a pooled connection without a transaction: for reads.
#[macro_export]
#[doc(hidden)]
macro_rules! read {
    ($store:expr, |$c:ident| $body:expr) => {{
        let store: &$crate::Store = $store;
        let result: Result<_, $crate::StoreError> = match &store.inner.backend {
            $crate::backend::Backend::Sqlite(pool) => {
                async {
                    let mut conn = pool.acquire().await?;
                    let $c: &mut sqlx::SqliteConnection = &mut *conn;
                    Ok($body?)
                }
                .await
            }
            $crate::backend::Backend::Postgres(pool) => {
                async {
                    let mut conn = pool.acquire().await?;
                    let $c: &mut sqlx::PgConnection = &mut *conn;
                    Ok($body?)
                }
                .await
            }
        };
        result
    }};
}
