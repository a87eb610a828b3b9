//! Everything that must differ between SQLite and PostgreSQL, side by side. Query code calls
//! these and stays the same for both.

use crate::conn::Dialect;

/// Row lock for a read inside a write transaction. PostgreSQL runs writes at READ COMMITTED
/// and locks the rows a decision depends on; SQLite's `BEGIN IMMEDIATE` already holds the
/// whole database, and it has no `FOR UPDATE`.
pub(crate) fn for_update(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    }
}
