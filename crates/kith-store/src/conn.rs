//! The one query path for both databases.
//!
//! Queries are written once, as SQL in the subset SQLite and PostgreSQL share (`$n`
//! placeholders, `RETURNING`, `ON CONFLICT`), against the [`Conn`] trait. The trait is
//! implemented for both sqlx connection types by one macro, so there is a single body per
//! primitive and no per-backend branches in the query code. What truly differs lives in
//! `dialect.rs`.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, PgConnection, SqliteConnection};
use std::future::Future;

/// A bound parameter. The handful of types Kith stores, so one `bind` loop serves every query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Real(f64),
    Bool(bool),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_string))
    }
}
// Typed ids bind as the text they are.
macro_rules! id_args {
    ($($id:ty),*) => {$(
        impl From<&$id> for Arg {
            fn from(v: &$id) -> Self {
                Arg::Text(Some(v.as_str().to_string()))
            }
        }
    )*};
}
id_args!(
    kith_core::OrgId,
    kith_core::ContactId,
    kith_core::ConversationId,
    kith_core::ListId,
    kith_core::WebsiteId,
    kith_core::VisitorId
);

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// `args![a, b, c]` → `Vec<Arg>`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::conn::Arg::from($v)),*] };
}
pub(crate) use args;

/// A row type readable from both databases and the SQLite write connection:
/// `#[derive(sqlx::FromRow)]` and `lite_row!` (tuples of columns are both already).
pub(crate) trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + crate::lite::FromLite + Send + Unpin
{
}
impl<T> Row for T where
    T: for<'r> FromRow<'r, SqliteRow>
        + for<'r> FromRow<'r, PgRow>
        + crate::lite::FromLite
        + Send
        + Unpin
{
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection (inside a transaction, usually) of either database.
pub(crate) trait Conn: Send {
    fn dialect(&self) -> Dialect;

    fn fetch_all<T: Row>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Vec<T>, sqlx::Error>> + Send;

    fn fetch_optional<T: Row>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Option<T>, sqlx::Error>> + Send;

    /// Runs a statement and answers how many rows it touched.
    fn execute(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Runs several statements in order and answers the rows each touched: one by one (on
    /// SQLite writes run in process, `lite.rs`; PostgreSQL takes one statement per message).
    fn execute_many(
        &mut self,
        statements: Vec<(&str, Vec<Arg>)>,
    ) -> impl Future<Output = Result<Vec<u64>, sqlx::Error>> + Send {
        async move {
            let mut touched = Vec::with_capacity(statements.len());
            for (sql, args) in statements {
                touched.push(self.execute(sql, args).await?);
            }
            Ok(touched)
        }
    }

    /// Runs one query and sends its rows to `tx` in chunks of `chunk` as they come, so a
    /// result of any size passes through bounded memory (the channel's bound is the
    /// backpressure). Stops early, without error, when the receiver is gone.
    fn fetch_chunks<T: Row>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        chunk: usize,
        tx: &tokio::sync::mpsc::Sender<Result<Vec<T>, crate::StoreError>>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    fn fetch_one<T: Row>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<T, sqlx::Error>> + Send {
        async move {
            self.fetch_optional(sql, args)
                .await?
                .ok_or(sqlx::Error::RowNotFound)
        }
    }
}

/// Arguments of a statement with many of them (multi-row INSERTs), each marked where it is
/// used, in order: `$n` on PostgreSQL, an anonymous `?` on SQLite. SQLite keeps numbered
/// parameters (`$n`, `?n`) in a list that sqlx scans once per parameter when it binds, so a
/// statement of P numbered parameters costs P² (70 % of an import's CPU at 7,500); anonymous
/// ones are not listed. Each mark stands for one argument: a value used twice is pushed twice.
pub(crate) struct Positional {
    d: Dialect,
    pub args: Vec<Arg>,
}

impl Positional {
    pub fn new(d: Dialect) -> Self {
        Positional {
            d,
            args: Vec::new(),
        }
    }

    /// Appends `a` and answers its mark.
    pub fn arg(&mut self, a: impl Into<Arg>) -> String {
        self.args.push(a.into());
        match self.d {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${}", self.args.len()),
        }
    }
}

/// `sql` with each `$n` placeholder renumbered `$(n + by)`: a statement written alone, placed
/// after `by` arguments of another (PostgreSQL; Kith's statements hold no `$` in literals).
pub(crate) fn shift_params(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Binds every argument of `args` to the query `q`, in order.
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::Real(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}

macro_rules! impl_conn {
    ($conn:ty, $db:ty, $dialect:expr) => {
        impl Conn for $conn {
            fn dialect(&self) -> Dialect {
                $dialect
            }

            async fn fetch_all<T: Row>(
                &mut self,
                sql: &str,
                args: Vec<Arg>,
            ) -> Result<Vec<T>, sqlx::Error> {
                bind_all!(sqlx::query_as::<$db, T>(sql), args)
                    .fetch_all(&mut *self)
                    .await
            }

            async fn fetch_optional<T: Row>(
                &mut self,
                sql: &str,
                args: Vec<Arg>,
            ) -> Result<Option<T>, sqlx::Error> {
                bind_all!(sqlx::query_as::<$db, T>(sql), args)
                    .fetch_optional(&mut *self)
                    .await
            }

            async fn fetch_chunks<T: Row>(
                &mut self,
                sql: &str,
                args: Vec<Arg>,
                chunk: usize,
                tx: &tokio::sync::mpsc::Sender<Result<Vec<T>, crate::StoreError>>,
            ) -> Result<(), sqlx::Error> {
                use futures::TryStreamExt;
                let mut rows = bind_all!(sqlx::query_as::<$db, T>(sql), args).fetch(&mut *self);
                let mut buf = Vec::with_capacity(chunk);
                while let Some(row) = rows.try_next().await? {
                    buf.push(row);
                    if buf.len() == chunk {
                        let full = std::mem::replace(&mut buf, Vec::with_capacity(chunk));
                        if tx.send(Ok(full)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                if !buf.is_empty() {
                    let _ = tx.send(Ok(buf)).await;
                }
                Ok(())
            }

            async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
                Ok(bind_all!(sqlx::query::<$db>(sql), args)
                    .execute(&mut *self)
                    .await?
                    .rows_affected())
            }
        }
    };
}

impl_conn!(SqliteConnection, sqlx::Sqlite, Dialect::Sqlite);
impl_conn!(PgConnection, sqlx::Postgres, Dialect::Postgres);

#[cfg(test)]
mod tests {
    use super::shift_params;

    #[test]
    fn shift_params_renumbers_every_placeholder_and_nothing_else() {
        assert_eq!(
            shift_params(
                "UPDATE t SET a = $3, b = $10 WHERE org_id = $1 AND id = $2",
                5
            ),
            "UPDATE t SET a = $8, b = $15 WHERE org_id = $6 AND id = $7"
        );
        assert_eq!(shift_params("SELECT 1", 4), "SELECT 1");
        // A `$` not followed by a number stays as it is.
        assert_eq!(shift_params("SELECT '$' || $1", 2), "SELECT '$' || $3");
    }
}
