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

/// A row type readable from both databases (what `#[derive(sqlx::FromRow)]` gives).
pub(crate) trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

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
