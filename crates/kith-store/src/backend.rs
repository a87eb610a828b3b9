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
    /// Lists, counts and search for a serving store (see `index`); `None` otherwise.
    pub(crate) index: Option<Arc<crate::index::ContactIndex>>,
    /// The initial build of `index`, running in the background (on PostgreSQL, then
    /// following the database for the store's life).
    index_build: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held until `close` (or the store is dropped): one process owns a SQLite database it
    /// indexes or bulk-loads.
    lock: std::sync::Mutex<Option<std::fs::File>>,
    /// SQLite has one writer at a time. Queueing writers here, in order, is cheaper than
    /// letting them poll SQLite's busy handler; `BEGIN IMMEDIATE` still guards correctness
    /// against other processes (a CLI command beside the server).
    pub(crate) sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// SQLite: the open batch writes join (group commit, see `batch`).
    pub(crate) group: crate::batch::GroupCommit,
    /// A SQLite file: read connections for `read_point!` (see `lite::PointReaders`).
    pub(crate) point_readers: Option<crate::lite::PointReaders>,
    pub(crate) url_redacted: String,
    /// PostgreSQL: sends this process's realtime announcements, several per NOTIFY round
    /// (started on first use; see `realtime::Announcer`).
    pub(crate) announcer: std::sync::OnceLock<crate::realtime::Announcer>,
    /// PostgreSQL: writes returning visitors' messages many per statement (started on first
    /// use; see `message_batch`).
    pub(crate) message_batcher: std::sync::OnceLock<crate::message_batch::MessageBatcher>,
}

/// The store: both databases behind one API. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// How many times a transaction that lost a race (serialization failure, unique or foreign
/// key violation caused by a concurrent writer, busy database) is run again.
pub(crate) const MAX_ATTEMPTS: u32 = 12;

/// What a process does with the database, which decides what it holds on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The server: keeps the contact index in memory; owns a SQLite database alone.
    Serve,
    /// A bulk load (`kith seed`): owns a SQLite database alone, without the index.
    Bulk,
    /// A short command beside a running server that writes no contacts (`kith org create`).
    Shared,
}

/// The default database: an embedded SQLite file under `./kith-data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kith-data/kith.db";
/// Pooled connections when none are configured (`kith serve --db-connections`).
pub const DEFAULT_POOL_SIZE: u32 = 16;
/// SQLite has one writer; more readers than this only contend for the CPU.
const SQLITE_MAX_CONNECTIONS: u32 = 16;

impl Store {
    /// Whether lists, counts and bulk selections are answered by the contact index: it
    /// exists (SQLite in a serving process) and its initial build is over. While it builds
    /// they are answered by SQL (slower, as exact), so a restart is no list outage. A failed
    /// build counts as over: its reads fail, naming why.
    pub(crate) fn lists_from_index(&self) -> bool {
        self.inner.index.as_ref().is_some_and(|i| {
            let building = i.is_building() || i.is_stale();
            if building {
                metrics::counter!("kith_lists_by_sql_while_index_builds_total").increment(1);
            }
            !building
        })
    }

    /// Opens `url` (`sqlite://relative.db`, `sqlite:///abs/path.db`, `postgres://…`) and
    /// applies pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, DEFAULT_POOL_SIZE, Access::Serve).await
    }

    /// Opens `url` with at most `max_connections` pooled connections; `access` decides what
    /// the process holds on SQLite (the lock file, the contact index).
    pub async fn open_with(
        url: &str,
        max_connections: u32,
        access: Access,
    ) -> Result<Store, StoreError> {
        Self::open_gated(url, max_connections, access, None).await
    }

    /// `open` whose contact index build starts only when the answered sender is used or
    /// dropped: for tests of what a store answers while its index builds.
    #[doc(hidden)]
    pub async fn open_holding_index_build(
        url: &str,
    ) -> Result<(Store, tokio::sync::oneshot::Sender<()>), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let store = Self::open_gated(url, DEFAULT_POOL_SIZE, Access::Serve, Some(rx)).await?;
        Ok((store, tx))
    }

    async fn open_gated(
        url: &str,
        max_connections: u32,
        access: Access,
        gate: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> Result<Store, StoreError> {
        let (backend, index, lock, group, point_readers) = if url.starts_with("sqlite:") {
            let (backend, index, lock, target) = open_sqlite(url, max_connections, access).await?;
            let readers =
                (!target.in_memory).then(|| crate::lite::PointReaders::new(target.path.clone()));
            (
                backend,
                index,
                lock,
                crate::batch::GroupCommit::new(target),
                readers,
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let index = (access == Access::Serve)
                .then(|| Arc::new(crate::index::ContactIndex::following()));
            let backend = open_postgres(url, max_connections).await?;
            (
                backend,
                index,
                None,
                crate::batch::GroupCommit::default(),
                None,
            )
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL {:?}: use sqlite://file.db, sqlite:///abs/path.db or postgres://user@host/db",
                redact(url)
            )));
        };
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                index,
                index_build: std::sync::Mutex::new(None),
                lock: std::sync::Mutex::new(lock),
                sqlite_writer: Arc::new(tokio::sync::Mutex::new(())),
                group,
                point_readers,
                url_redacted: redact(url),
                announcer: std::sync::OnceLock::new(),
                message_batcher: std::sync::OnceLock::new(),
            }),
        };
        crate::webhooks::load_orgs_with_endpoints(&store).await?;
        if store.inner.index.is_some() {
            let inner = store.inner.clone();
            let task = tokio::spawn(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                build_index(inner).await
            });
            *store
                .inner
                .index_build
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(store)
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

    /// Passes of the WAL checkpointer beside the writer after which the WAL had frames
    /// copied back (SQLite on a file; `None` otherwise). For tests and benchmarks.
    #[doc(hidden)]
    pub fn wal_checkpoint_passes(&self) -> Option<u64> {
        self.inner.group.checkpointer.as_ref().map(|c| c.passes())
    }

    /// Contacts held by the in-memory contact index and the bytes it holds, by part; `None`
    /// when this store answers lists with SQL (not serving).
    pub fn contact_index_size(&self) -> Option<(u64, crate::index::IndexMemory)> {
        self.inner.index.as_ref().map(|i| i.size())
    }

    /// Waits until the contact index (if this store keeps one) is built.
    pub async fn contact_index_ready(&self) -> Result<(), StoreError> {
        match &self.inner.index {
            Some(index) => index.wait_ready().await,
            None => Ok(()),
        }
    }

    /// Readiness: one round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::read!(self, |c| crate::conn::Conn::execute(c, "SELECT 1", vec![])
            .await)?;
        Ok(())
    }

    /// Writes a consistent copy of a SQLite database to `out`, a file that must not exist yet,
    /// while other processes (a running `kith serve`) keep reading and writing. The copy is
    /// written beside `out` under a temporary name, synced, checked with `PRAGMA quick_check`
    /// and only then linked to `out`, so `out` is never a partial copy. Answers its size in
    /// bytes. PostgreSQL has no such statement: `pg_dump` is the tool (see `kith backup`).
    pub async fn backup_sqlite(&self, out: &std::path::Path) -> Result<u64, StoreError> {
        let Some(statement) = crate::dialect::backup_into(self.dialect()) else {
            return Err(StoreError::Config(
                "this database is not SQLite: back up PostgreSQL with pg_dump".into(),
            ));
        };
        let config = |what: String| StoreError::Config(what);
        if out.exists() {
            return Err(config(format!(
                "{} already exists; name a new file",
                out.display()
            )));
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let name = out.file_name().unwrap_or_default().to_string_lossy();
        let partial = dir.join(format!(".{name}.partial-{}", crate::new_id()));
        let partial_text = partial
            .to_str()
            .ok_or_else(|| config(format!("{} is not valid UTF-8", partial.display())))?
            .to_string();
        let written = async {
            crate::read!(self, |c| crate::conn::Conn::execute(
                c,
                statement,
                crate::conn::args![&partial_text]
            )
            .await)?;
            // SQLite does not sync the file VACUUM INTO wrote.
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|source| StoreError::Io {
                    action: "sync",
                    path: partial.clone(),
                    source,
                })?;
            check_sqlite_file(&partial).await?;
            // A hard link never replaces a file that appeared meanwhile, unlike a rename.
            std::fs::hard_link(&partial, out).map_err(|source| StoreError::Io {
                action: "create",
                path: out.to_path_buf(),
                source,
            })?;
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok::<_, StoreError>(std::fs::metadata(out).map(|m| m.len()).unwrap_or(0))
        }
        .await;
        let _ = std::fs::remove_file(&partial);
        written
    }

    /// Stops the index's background work, closes the pool and gives up the database.
    pub async fn close(&self) {
        let build = self
            .inner
            .index_build
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = build {
            task.abort();
            let _ = task.await;
        }
        crate::batch::close(&self.inner).await;
        if let Some(readers) = &self.inner.point_readers {
            readers.close();
        }
        match &self.inner.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
        // Given up now, not when the last task holding the store ends (a group commit's
        // flush lets its writers go before it returns), so another process, or a store
        // opened next, can take the database at once.
        drop(
            self.inner
                .lock
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }
}

/// A SQLite database, what this process holds of it, and its migrations applied: the pool,
/// the (empty, still to be built) contact index when serving, the lock file when this
/// process owns the database, and where the write connection (`lite.rs`) opens.
async fn open_sqlite(
    url: &str,
    max_connections: u32,
    access: Access,
) -> Result<
    (
        Backend,
        Option<Arc<crate::index::ContactIndex>>,
        Option<std::fs::File>,
        crate::lite::LiteTarget,
    ),
    StoreError,
> {
    crate::lite::configure_process();
    let mut index = None;
    let mut lock = None;
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
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                action: "create the database folder",
                path: parent.to_path_buf(),
                source,
            })?;
        }
    }
    // An in-memory database lives in this process alone: nothing to lock.
    let in_memory = url.contains(":memory:") || url.contains("mode=memory") || {
        let f = opts.get_filename().to_string_lossy();
        f.is_empty() || f.starts_with("file:sqlx-in-memory")
    };
    let mut served_elsewhere = false;
    if !in_memory {
        match (lock_database(opts.get_filename())?, access) {
            (Some(file), Access::Serve | Access::Bulk) => lock = Some(file),
            (None, Access::Serve | Access::Bulk) => {
                return Err(StoreError::InUse {
                    path: opts.get_filename().to_path_buf(),
                })
            }
            // A short command: the lock only tells whether a server is running.
            (Some(_), Access::Shared) => {}
            (None, Access::Shared) => served_elsewhere = true,
        }
    }
    // Migrate on a connection of its own (the serving pool's connections install
    // triggers on the migrated tables as they open), kept open until the serving pool
    // is up so that an in-memory database survives.
    let migrating = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts.clone())
        .await?;
    let migrator = sqlx::migrate!("./migrations/sqlite");
    if served_elsewhere {
        // Changing the schema under a running server could drop the triggers that
        // keep its contact index exact: leave migrations to the server.
        let latest = migrator.iter().map(|m| m.version).max();
        let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
            .fetch_one(&migrating)
            .await
            .unwrap_or(None);
        if applied != latest {
            return Err(StoreError::Config(
                "the database is in use by a kith server of another version; stop \
                 it, then run this command again (it will apply the migrations)"
                    .into(),
            ));
        }
    } else {
        migrator.run(&migrating).await?;
    }
    let indexed = access == Access::Serve;
    let target = crate::lite::LiteTarget {
        path: opts.get_filename().to_path_buf(),
        in_memory,
        indexed,
    };
    let mut pool_options =
        SqlitePoolOptions::new().max_connections(max_connections.clamp(1, SQLITE_MAX_CONNECTIONS));
    if indexed {
        pool_options = pool_options.after_connect(install_dirty_tracking);
    }
    let pool = pool_options.connect_with(opts).await?;
    migrating.close().await;
    if indexed {
        index = Some(Arc::new(crate::index::ContactIndex::default()));
    }
    Ok((Backend::Sqlite(pool), index, lock, target))
}

/// A pooled PostgreSQL connection idle this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// A PostgreSQL pool with its migrations applied.
async fn open_postgres(url: &str, max_connections: u32) -> Result<Backend, StoreError> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out (a round trip each, three per posted
        // message: the website lookup, the transaction, the NOTIFY). A connection used within
        // the last few seconds is known to be alive; one idle for longer is pinged, so one
        // dropped by a database restart is still replaced rather than failing a request.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(Backend::Postgres(pool))
}

/// `PRAGMA quick_check` on a SQLite file, opened read-only on a connection of its own.
async fn check_sqlite_file(path: &std::path::Path) -> Result<(), StoreError> {
    use sqlx::ConnectOptions;
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_all(&mut conn)
        .await?;
    let _ = sqlx::Connection::close(conn).await;
    if verdict != ["ok"] {
        return Err(StoreError::Corrupt(format!(
            "the copy failed its check: {}",
            verdict.join("; ")
        )));
    }
    Ok(())
}

/// Builds the contact index from the database while the server already serves, then —
/// holding the writer lock, so nothing commits meanwhile — re-reads the contacts written
/// during the build and opens the index to readers.
async fn build_index(inner: Arc<Inner>) {
    let Some(index) = &inner.index else { return };
    let pool = match &inner.backend {
        Backend::Sqlite(pool) => pool,
        Backend::Postgres(pool) => {
            return crate::index::follow(index.clone(), pool.clone(), report_build).await;
        }
    };
    let started = std::time::Instant::now();
    let outcome = async {
        let mut conn = pool.acquire().await?;
        crate::index::build(index, &mut *conn).await?;
        let _writer = inner.sqlite_writer.lock().await;
        let written = crate::index::load_changes(&mut *conn, index.take_pending()).await?;
        index.apply(written);
        drop(_writer);
        // Reading every contact filled this connection's page cache (up to 64 MiB, see
        // `cache_size`); it goes back to the pool, so let that memory go too.
        crate::conn::Conn::execute(&mut *conn, "PRAGMA shrink_memory", vec![]).await?;
        Ok::<_, StoreError>(())
    }
    .await;
    report_build(index, started.elapsed(), &outcome);
    index.set_ready(outcome.map_err(|e| e.to_string()));
}

/// Logs a build of the contact index and records its size and time.
fn report_build(
    index: &crate::index::ContactIndex,
    took: Duration,
    outcome: &Result<(), StoreError>,
) {
    match outcome {
        Ok(()) => {
            let (contacts, memory) = index.size();
            let bytes = memory.total();
            metrics::histogram!("kith_index_build_seconds").record(took.as_secs_f64());
            metrics::gauge!("kith_index_contacts").set(contacts as f64);
            metrics::gauge!("kith_index_bytes").set(bytes as f64);
            tracing::info!(
                contacts,
                approx_mib = bytes >> 20,
                ms = took.as_millis() as u64,
                "contact index built; lists are ready"
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "the contact index could not be built; lists will fail")
        }
    }
}

fn install_dirty_tracking<'c>(
    conn: &'c mut sqlx::SqliteConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>> {
    use sqlx::Executor;
    // Every statement of the text runs (SQLite executes a multi-statement string in order).
    Box::pin(async move {
        conn.execute(crate::index::DIRTY_TRACKING_SQL).await?;
        Ok(())
    })
}

/// Takes the lock file beside a SQLite database, so a second serving or bulk-loading process
/// fails at once with a clear message instead of leaving the first one's index stale.
/// `None` when another process holds it. The lock file is named after the database's real
/// path (symlinks resolved), so two names for one file share one lock.
fn lock_database(db: &std::path::Path) -> Result<Option<std::fs::File>, StoreError> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let real = std::fs::canonicalize(dir)
        .map(|d| d.join(db.file_name().unwrap_or_default()))
        .map_err(|source| StoreError::Io {
            action: "resolve",
            path: dir.to_path_buf(),
            source,
        })?;
    let real = std::fs::canonicalize(&real).unwrap_or(real);
    let path = std::path::PathBuf::from(format!("{}.lock", real.display()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::LockFile {
            action: "create",
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::LockFile {
            action: "take",
            path,
            source,
        }),
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
// Crate-local (no `#[macro_export]`): only this crate runs transactions.
macro_rules! transact {
    ($store:expr, |$c:ident| $body:expr) => {{
        let store: &$crate::Store = $store;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            // Wakes the webhook deliverer after a commit that enqueued deliveries.
            let hooks_before = $crate::webhooks::enqueued_count();
            let result: Result<_, $crate::StoreError> = match &store.inner.backend {
                $crate::backend::Backend::Sqlite(_) => {
                    // Group commit: the body runs in its own savepoint inside the open batch
                    // transaction, and the write returns after that batch's COMMIT (and the
                    // contact index took its changes). A failing body fails alone.
                    async {
                        let mut member = $crate::batch::Member::join(&store.inner).await?;
                        let out = {
                            let $c: &mut $crate::lite::Lite = member.conn();
                            $body
                        };
                        match out {
                            Ok(v) => {
                                member.finish(true).await?;
                                Ok(v)
                            }
                            Err(e) => {
                                let _ = member.finish(false).await;
                                Err($crate::StoreError::from(e))
                            }
                        }
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
            if result.is_ok() {
                $crate::webhooks::wake_if_enqueued_since(hooks_before);
            }
            match result {
                Err(e) if e.is_retryable() && attempt < $crate::backend::MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "transaction lost a race, running it again");
                    ::metrics::counter!("kith_store_transaction_retries_total").increment(1);
                    $crate::backend::backoff(attempt).await;
                }
                other => break other,
            }
        }
    }};
}

pub(crate) use transact;

/// Runs `$body` on a pooled connection without a transaction: for reads.
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
pub(crate) use read;

/// `read!` for a read of a few rows by key on a hot path: on a SQLite file it runs on the
/// calling thread (`lite::PointReaders`), elsewhere as `read!`. Never for scans.
macro_rules! read_point {
    ($store:expr, |$c:ident| $body:expr) => {{
        let store: &$crate::Store = $store;
        match store.inner.point_readers.as_ref() {
            Some(readers) => {
                async {
                    let mut reader = readers.checkout()?;
                    let $c: &mut $crate::lite::Lite = &mut reader;
                    Ok::<_, $crate::StoreError>($body?)
                }
                .await
            }
            None => $crate::read!(store, |$c| $body),
        }
    }};
}
pub(crate) use read_point;
