//! SQLite writes without a thread hop per statement.
//!
//! sqlx runs each SQLite connection on a worker thread of its own and sends it every
//! statement: two context switches per statement, and the calling task woken from another
//! thread. A write body is ~5–10 statements, run one body at a time (SQLite has one writer),
//! so those hand-offs were most of a write's time in the serial section (issue 18,
//! `docs/benchmarks.md`). The write batch (`batch.rs`) therefore holds [`Lite`], a plain
//! SQLite connection (rusqlite, linking the same `libsqlite3-sys` as sqlx) that a body's task
//! drives directly: each statement runs on the calling thread, prepared once and cached.
//!
//! [`Lite`] implements [`Conn`] like sqlx's two connection types, so every query helper keeps
//! one body for all three. Its futures never wait: a statement runs to its end when polled.
//! That is only right where a statement cannot block for long: inside a `BEGIN IMMEDIATE`
//! transaction (this process holds the write lock; WAL readers never block a writer). `BEGIN`
//! and `COMMIT`, which can wait for another process or run a checkpoint, go to a blocking
//! thread (`batch.rs`).
//!
//! Rows are decoded by [`FromLite`]: `lite_row!` next to each row struct, and tuples of
//! columns by position. Errors become `sqlx::Error`s with the same codes and kinds as sqlx's
//! own, so retries and constraint handling see no difference.

use crate::conn::{Arg, Conn, Dialect, Row};
use rusqlite::types::ValueRef;
use rusqlite::{ffi, CachedStatement, Connection, OpenFlags};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where the write connection opens: the pool's database file (or its shared in-memory
/// database).
#[derive(Debug, Clone)]
pub(crate) struct LiteTarget {
    pub path: PathBuf,
    pub in_memory: bool,
    /// Install the contact index's change tracking (a serving store).
    pub indexed: bool,
}

/// The write connection.
pub(crate) struct Lite {
    conn: Connection,
    /// Statement strings holding several statements, cut where SQLite's parser ends each.
    splits: HashMap<Box<str>, Vec<(usize, usize)>>,
}

impl Lite {
    /// Opens the write connection with the pool's settings (`backend::open_sqlite`).
    pub(crate) fn open(target: &LiteTarget) -> Result<Lite, sqlx::Error> {
        // NO_MUTEX: one task at a time uses it (behind the batch's mutex), whatever thread.
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if target.in_memory {
            // sqlx opens `sqlite::memory:` as a named in-memory database with a shared cache.
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        // Every statement of every write body stays prepared, and the index read-back's
        // `IN (…)` lists (one text per length, up to 400) do not push them out. The pool's
        // pragmas (`open_sqlite`); WAL is the file's, set by the pool.
        let lite = Lite::connect(
            &target.path,
            flags,
            1024,
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
             PRAGMA mmap_size = 8589934592;",
        )?;
        if target.indexed {
            lite.conn
                .execute_batch(crate::index::DIRTY_TRACKING_SQL)
                .map_err(error)?;
        }
        Ok(lite)
    }

    /// Opens a read connection for point reads ([`PointReaders`]): read-only, with SQLite's
    /// default page cache (it reads a few rows per call) and no memory map (each connection's
    /// map is a mapping of its own, whose touched pages count again in the resident size).
    fn open_reader(path: &std::path::Path) -> Result<Lite, sqlx::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Lite::connect(
            path,
            flags,
            64,
            "PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 0;",
        )
    }

    /// A connection with `statements` kept prepared, the pool's busy timeout, and `pragmas`.
    fn connect(
        path: &std::path::Path,
        flags: OpenFlags,
        statements: usize,
        pragmas: &str,
    ) -> Result<Lite, sqlx::Error> {
        let conn = Connection::open_with_flags(path, flags).map_err(error)?;
        conn.set_prepared_statement_cache_capacity(statements);
        conn.busy_timeout(Duration::from_secs(10)).map_err(error)?;
        conn.execute_batch(pragmas).map_err(error)?;
        Ok(Lite {
            conn,
            splits: HashMap::new(),
        })
    }

    /// Runs statements that take no arguments and answer nothing (transaction control).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        self.run(sql, &[], |_| Ok(true)).map(|_| ())
    }

    /// Whether no transaction is open.
    pub(crate) fn is_autocommit(&self) -> bool {
        self.conn.is_autocommit()
    }

    /// Runs every statement of `sql` with `args` (each takes the `$n` it names), handing each
    /// row to `on_row`; answers the rows the statements changed, summed (as sqlx does).
    fn run(
        &mut self,
        sql: &str,
        args: &[Arg],
        mut on_row: impl FnMut(&rusqlite::Row<'_>) -> Result<bool, sqlx::Error>,
    ) -> Result<u64, sqlx::Error> {
        if !sql.trim_end().trim_end_matches(';').contains(';') {
            return self.run_one(sql, args, &mut on_row);
        }
        // Several statements: SQLite's own cut, cached (the same few strings come back).
        let cut = match self.splits.get(sql) {
            Some(cut) => cut.clone(),
            None => {
                let cut = split(sql)?;
                self.splits.insert(sql.into(), cut.clone());
                cut
            }
        };
        let mut changed = 0;
        for (from, to) in cut {
            changed += self.run_one(&sql[from..to], args, &mut on_row)?;
        }
        Ok(changed)
    }

    /// Runs one statement (see `run`).
    fn run_one(
        &mut self,
        sql: &str,
        args: &[Arg],
        on_row: &mut impl FnMut(&rusqlite::Row<'_>) -> Result<bool, sqlx::Error>,
    ) -> Result<u64, sqlx::Error> {
        let sql = sql.trim();
        if sql.is_empty() {
            return Ok(0);
        }
        let mut stmt = self.conn.prepare_cached(sql).map_err(error)?;
        bind(&mut stmt, args)?;
        let readonly = stmt.readonly();
        let mut step = || {
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(error)? {
                if !on_row(row)? {
                    break;
                }
            }
            Ok::<_, sqlx::Error>(())
        };
        if args.len() >= BULK_ARGS && multi_threaded() {
            // A bulk insert (a seed's or an import's batch) runs long: let the worker's
            // other tasks move to another thread meanwhile.
            tokio::task::block_in_place(step)?;
        } else {
            step()?;
        }
        drop(stmt);
        Ok(if readonly { 0 } else { self.conn.changes() })
    }

    fn rows<T: Row>(
        &mut self,
        sql: &str,
        args: &[Arg],
        limit: usize,
    ) -> Result<Vec<T>, sqlx::Error> {
        let mut out = Vec::new();
        self.run(sql, args, |row| {
            out.push(T::from_lite(row)?);
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }
}

/// Read connections for the point reads every widget call makes (the website of its key, a
/// returning visitor's row), run on the calling thread like the write connection's
/// statements: through sqlx's pool each was a hop to the connection's thread and back,
/// 12 % of the server's CPU under ingest (issue 18). Only reads of a few rows by key go
/// here (`read_point!`): a statement runs to its end on the runtime's worker, which WAL
/// makes safe (a reader never waits for the writer) but a long scan would stall the worker.
/// File databases only: an in-memory one is shared-cache, where a reader can wait on a
/// writer's table lock, so it keeps sqlx's pool.
pub(crate) struct PointReaders {
    path: PathBuf,
    /// `None` once the store closed: later reads fail as the closed pool's do.
    idle: std::sync::Mutex<Option<Vec<Lite>>>,
}

/// Idle read connections kept; more are opened while more calls read at once.
const IDLE_READERS: usize = 8;

impl PointReaders {
    pub(crate) fn new(path: PathBuf) -> PointReaders {
        PointReaders {
            path,
            idle: std::sync::Mutex::new(Some(Vec::new())),
        }
    }

    /// An idle connection, or a new one; it goes back when the answered guard drops.
    pub(crate) fn checkout(&self) -> Result<PointReader<'_>, sqlx::Error> {
        let idle = match self.idle.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(idle) => idle.pop(),
            None => return Err(sqlx::Error::PoolClosed),
        };
        let lite = match idle {
            Some(lite) => lite,
            None => Lite::open_reader(&self.path)?,
        };
        Ok(PointReader {
            owner: self,
            lite: Some(lite),
        })
    }

    /// Closes the idle connections and refuses later reads (`Store::close`).
    pub(crate) fn close(&self) {
        drop(self.idle.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// A read connection out of [`PointReaders`].
pub(crate) struct PointReader<'a> {
    owner: &'a PointReaders,
    lite: Option<Lite>,
}

impl std::ops::Deref for PointReader<'_> {
    type Target = Lite;
    fn deref(&self) -> &Lite {
        self.lite.as_ref().expect("held until drop")
    }
}

impl std::ops::DerefMut for PointReader<'_> {
    fn deref_mut(&mut self) -> &mut Lite {
        self.lite.as_mut().expect("held until drop")
    }
}

impl Drop for PointReader<'_> {
    fn drop(&mut self) {
        let Some(lite) = self.lite.take() else { return };
        // A body that began a transaction and failed before its end must not put back a
        // connection holding a snapshot (it would keep checkpoints from the WAL's end).
        if !lite.is_autocommit() {
            return;
        }
        let mut idle = self.owner.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(idle) = idle.as_mut().filter(|idle| idle.len() < IDLE_READERS) {
            idle.push(lite);
        }
    }
}

/// Statements binding this many arguments are bulk writes, long enough to step off the
/// runtime's worker for.
const BULK_ARGS: usize = 256;

/// Whether this thread runs tasks of a multi-threaded runtime (where `block_in_place` may
/// hand its other tasks to another worker).
fn multi_threaded() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Cuts a string of several statements where each ends: at a `;` after which SQLite's
/// parser finds the text so far complete (`sqlite3_complete`, which knows quotes, comments and
/// trigger bodies, and needs no schema: later statements may use tables earlier ones create).
fn split(sql: &str) -> Result<Vec<(usize, usize)>, sqlx::Error> {
    let mut cut = Vec::new();
    let mut from = 0;
    for (at, _) in sql.match_indices(';') {
        let text = std::ffi::CString::new(&sql[from..=at])
            .map_err(|_| sqlx::Error::Protocol("a statement holds a NUL byte".into()))?;
        // SAFETY: a NUL-terminated string that lives through the call; no handle involved.
        if unsafe { ffi::sqlite3_complete(text.as_ptr()) } != 0 {
            cut.push((from, at + 1));
            from = at + 1;
        }
    }
    if !sql[from..].trim().is_empty() {
        cut.push((from, sql.len()));
    }
    Ok(cut)
}

/// Binds `args` to the statement's parameters: `$n` (or `?n`) takes the n-th argument,
/// anonymous `?` the next one, as sqlx does.
fn bind(stmt: &mut CachedStatement<'_>, args: &[Arg]) -> Result<(), sqlx::Error> {
    let mut anonymous = 0;
    for i in 1..=stmt.parameter_count() {
        let k = match stmt.parameter_name(i) {
            Some(name) => name
                .get(1..)
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!("parameter {name} is not numbered"))
                })?,
            None => {
                anonymous += 1;
                anonymous - 1
            }
        };
        let arg = args.get(k).ok_or_else(|| {
            sqlx::Error::Protocol(format!(
                "statement names argument {} of {}",
                k + 1,
                args.len()
            ))
        })?;
        match arg {
            Arg::Text(v) => stmt.raw_bind_parameter(i, v),
            Arg::Int(v) => stmt.raw_bind_parameter(i, v),
            Arg::Real(v) => stmt.raw_bind_parameter(i, v),
            Arg::Bool(v) => stmt.raw_bind_parameter(i, v),
        }
        .map_err(error)?;
    }
    Ok(())
}

/// Process-wide SQLite settings, made once, before SQLite initializes (`sqlite3_config` is
/// refused after that). Memory statistics are turned off: with them on, every allocation and
/// free inside SQLite takes one global mutex to count itself, and a profile of message ingest
/// showed those locks at ~6 % of the server's CPU. Kith reads none of those statistics and
/// sets no heap limit (the two things that need them); SQLite's own documentation recommends
/// them off where they are not used (`SQLITE_DEFAULT_MEMSTATUS=0`).
pub(crate) fn configure_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `SQLITE_CONFIG_MEMSTATUS` takes one int; the call only sets a flag, and
        // answers SQLITE_MISUSE (changing nothing) when SQLite is already initialized. It is
        // not thread-safe against another thread's first use of SQLite: in Kith every use
        // goes through a store opened here first; where something else raced it (a test's
        // own connection), the worst is a skewed memory statistic, which nothing reads.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialized before Kith configured it; memory statistics stay on"
            );
        }
    });
}

/// A row read from [`Lite`].
pub(crate) trait FromLite: Sized {
    fn from_lite(row: &rusqlite::Row<'_>) -> Result<Self, sqlx::Error>;
}

/// A column value as Kith stores them: text, integers, reals, booleans (0/1), NULL.
pub(crate) trait LiteCol: Sized {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String>;
}

impl LiteCol for i64 {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Integer(i) => Ok(i),
            other => Err(format!(
                "expected an integer, found {:?}",
                other.data_type()
            )),
        }
    }
}

impl LiteCol for bool {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl LiteCol for f64 {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {:?}", other.data_type())),
        }
    }
}

impl LiteCol for String {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(str::to_string)
                .map_err(|e| e.to_string()),
            other => Err(format!("expected text, found {:?}", other.data_type())),
        }
    }
}

impl<T: LiteCol> LiteCol for Option<T> {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// The column `index` (a name or a position) of `row`.
pub(crate) fn col<T: LiteCol, I: rusqlite::RowIndex + std::fmt::Display + Copy>(
    row: &rusqlite::Row<'_>,
    index: I,
) -> Result<T, sqlx::Error> {
    let value = row.get_ref(index).map_err(|e| match e {
        rusqlite::Error::InvalidColumnName(_) | rusqlite::Error::InvalidColumnIndex(_) => {
            sqlx::Error::ColumnNotFound(index.to_string())
        }
        other => error(other),
    })?;
    T::from_value(value).map_err(|e| sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: e.into(),
    })
}

macro_rules! lite_tuples {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: LiteCol),+> FromLite for ($($t,)+) {
            fn from_lite(row: &rusqlite::Row<'_>) -> Result<Self, sqlx::Error> {
                Ok(($(col::<$t, usize>(row, $i)?,)+))
            }
        }
    )*};
}
lite_tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

/// `FromLite` for a row struct, each field read from the column of its name (what
/// `#[derive(sqlx::FromRow)]` does for sqlx's connections): `lite_row!(Type { a, b, c });`
macro_rules! lite_row {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl $crate::lite::FromLite for $t {
            fn from_lite(row: &rusqlite::Row<'_>) -> Result<Self, sqlx::Error> {
                Ok(Self { $($f: $crate::lite::col(row, stringify!($f))?),* })
            }
        }
    };
}
pub(crate) use lite_row;

/// A SQLite error as sqlx reports it: the extended code as `code()`, constraint kinds.
#[derive(Debug)]
struct LiteError {
    code: i32,
    message: String,
}

impl std::fmt::Display for LiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for LiteError {}

impl sqlx::error::DatabaseError for LiteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// A rusqlite error as the `sqlx::Error` sqlx would have given for it.
pub(crate) fn error(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(f, message) => sqlx::Error::Database(Box::new(LiteError {
            code: f.extended_code,
            message: message.unwrap_or_else(|| f.to_string()),
        })),
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

impl Conn for Lite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn fetch_all<T: Row>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.rows(sql, &args, usize::MAX)
    }

    async fn fetch_optional<T: Row>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.rows(sql, &args, 1)?.into_iter().next())
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
        self.run(sql, &args, |_| Ok(true))
    }

    async fn fetch_chunks<T: Row>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        chunk: usize,
        tx: &tokio::sync::mpsc::Sender<Result<Vec<T>, crate::StoreError>>,
    ) -> Result<(), sqlx::Error> {
        // Read whole, then sent: a statement cannot stay open across an await here (the
        // connection is not `Sync`). Write bodies read small results; exports read on the pool.
        let mut rows = self.rows::<T>(sql, &args, usize::MAX)?;
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(chunk.max(1)));
            if tx
                .send(Ok(std::mem::replace(&mut rows, rest)))
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::args;

    fn memory() -> Lite {
        Lite {
            conn: Connection::open_in_memory().unwrap(),
            splits: HashMap::new(),
        }
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn arguments_bind_by_the_number_they_name_and_rows_decode_by_name() {
        let mut c = memory();
        block(c.execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL, x REAL, flag INTEGER)",
            vec![],
        ))
        .unwrap();
        // $2 comes first in the text: it must still take the second argument.
        let changed = block(c.execute(
            "INSERT INTO t (n, id, x, flag) VALUES ($2, $1, $3, $4)",
            args!["a", 7i64, 1.5f64, true],
        ))
        .unwrap();
        assert_eq!(changed, 1);
        let (id, n, x, flag): (String, i64, f64, bool) =
            block(c.fetch_one("SELECT id, n, x, flag FROM t WHERE id = $1", args!["a"])).unwrap();
        assert_eq!((id.as_str(), n, x, flag), ("a", 7, 1.5, true));
        let none: Option<(i64,)> =
            block(c.fetch_optional("SELECT n FROM t WHERE id = $1", args!["b"])).unwrap();
        assert!(none.is_none());
        let missing: Option<(Option<i64>,)> =
            block(c.fetch_optional("SELECT max(n) FROM t WHERE id = 'b'", vec![])).unwrap();
        assert_eq!(missing, Some((None,)));
    }

    #[test]
    fn a_string_of_statements_runs_every_one() {
        let mut c = memory();
        let changed = block(c.execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT); \
             INSERT INTO t VALUES ($1, 'a;b'); INSERT INTO t VALUES ($2, $1);",
            args!["x", "y"],
        ))
        .unwrap();
        assert_eq!(changed, 2, "both inserts count");
        let rows: Vec<(String, String)> =
            block(c.fetch_all("SELECT id, v FROM t ORDER BY id", vec![])).unwrap();
        assert_eq!(rows, [("x".into(), "a;b".into()), ("y".into(), "x".into())]);
    }

    #[test]
    fn constraint_errors_carry_sqlx_kinds_and_codes() {
        let mut c = memory();
        block(c.execute("CREATE TABLE t (id TEXT PRIMARY KEY)", vec![])).unwrap();
        block(c.execute("INSERT INTO t VALUES ($1)", args!["a"])).unwrap();
        let err = block(c.execute("INSERT INTO t VALUES ($1)", args!["a"])).unwrap_err();
        let sqlx::Error::Database(db) = &err else {
            panic!("not a database error: {err}")
        };
        assert_eq!(db.kind(), sqlx::error::ErrorKind::UniqueViolation);
        assert_eq!(db.code().as_deref(), Some("1555"));
        assert!(crate::StoreError::from(err).is_retryable());
    }

    #[test]
    fn a_bulk_statement_runs_on_a_worker_and_on_a_blocking_thread() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let insert = |c: &mut Lite| {
            let marks = vec!["(?)"; BULK_ARGS + 1].join(",");
            let args: Vec<Arg> = (0..=BULK_ARGS as i64).map(Arg::from).collect();
            block(c.execute(&format!("INSERT INTO t VALUES {marks}"), args)).unwrap()
        };
        rt.block_on(async {
            let worker = tokio::spawn(async move {
                let mut c = memory();
                block(c.execute("CREATE TABLE t (n INTEGER)", vec![])).unwrap();
                insert(&mut c);
                c
            });
            let mut c = worker.await.unwrap();
            let c = tokio::task::spawn_blocking(move || {
                insert(&mut c);
                c
            })
            .await
            .unwrap();
            let (n,): (i64,) = c
                .conn
                .query_row("SELECT count(*) FROM t", [], |r| Ok((r.get(0)?,)))
                .unwrap();
            assert_eq!(n, 2 * (BULK_ARGS as i64 + 1));
        });
    }

    #[test]
    fn a_column_of_another_type_is_a_decode_error_not_a_panic() {
        let mut c = memory();
        let err = block(c.fetch_one::<(i64,)>("SELECT 'text'", vec![])).unwrap_err();
        assert!(matches!(err, sqlx::Error::ColumnDecode { .. }), "{err}");
    }
}
