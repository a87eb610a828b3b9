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

/// The search-index number of a new contact. SQLite inserts run one at a time under the write
/// lock, so the next number is simply one past the largest; PostgreSQL has a sequence.
pub(crate) fn next_rid(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "(SELECT coalesce(max(rid), 0) + 1 FROM contacts)",
        Dialect::Postgres => "nextval('contacts_rid_seq')",
    }
}

/// The order number of a new webhook delivery, for `INSERT … SELECT … FROM webhook_endpoints e`.
/// SQLite writes one transaction at a time, so one past the endpoint's largest is commit
/// order. PostgreSQL takes a sequence: every enqueue runs after its transaction locked the
/// contact's row, so for one contact the numbers follow commit order too.
pub(crate) fn next_delivery_seq(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "(SELECT coalesce(max(s.seq), 0) + 1 FROM webhook_deliveries s \
             WHERE s.org_id = e.org_id AND s.endpoint_id = e.id)"
        }
        Dialect::Postgres => "nextval('webhook_deliveries_seq')",
    }
}

/// Whether a write and the statement that depends on it are sent as one, the write as a
/// data-modifying CTE (`WITH w AS (INSERT …) INSERT …`). PostgreSQL: each statement is a
/// round trip, and it takes such CTEs. SQLite: writes run in process (`lite.rs`), no round
/// trips to save, and it has no data-modifying CTEs.
pub(crate) fn fold_into_cte(d: Dialect) -> bool {
    match d {
        Dialect::Sqlite => false,
        Dialect::Postgres => true,
    }
}

/// Whether this process sees every change of the webhook endpoints, so it may remember which
/// organizations have any (`webhooks::may_have_endpoints`). SQLite: one process serves a
/// database (the lock file) and endpoints change only through its API. PostgreSQL: several
/// processes share the database.
pub(crate) fn endpoints_known_in_process(d: Dialect) -> bool {
    match d {
        Dialect::Sqlite => true,
        Dialect::Postgres => false,
    }
}

/// The tail of a claim's row selection: PostgreSQL skips rows another deliverer is claiming
/// right now instead of waiting for it; SQLite has one writer and no such clause.
pub(crate) fn skip_locked(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
    }
}

/// After rows were inserted with explicit search-index numbers, the statement (if any) that
/// moves the number generator past them.
pub(crate) fn after_bulk_rid(d: Dialect) -> Option<&'static str> {
    match d {
        Dialect::Sqlite => None,
        Dialect::Postgres => {
            Some("SELECT setval('contacts_rid_seq', (SELECT coalesce(max(rid), 1) FROM contacts))")
        }
    }
}

/// The same condition as `search_condition`, deliberately without any index: the full-scan
/// baseline `kith bench lists` compares against.
pub(crate) fn scan_search_condition(d: Dialect, term: &str, q: &mut crate::query::Sql) -> String {
    let t = q.arg(term.to_string());
    match d {
        Dialect::Sqlite => format!("c.search_text LIKE '%' || {t} || '%'"),
        Dialect::Postgres => format!("strpos(c.search_text, {t}) > 0"),
    }
}

/// A condition: the contact's searchable text contains `term` (already lower-cased), for
/// `c.search_text`. Serving stores answer searches from the in-memory index (`index`); this
/// answers while it builds and for short commands. SQLite: a plain substring test, the
/// reference the index is tested against. PostgreSQL: LIKE with the term escaped, which the
/// pg_trgm GIN index answers for three or more characters; shorter terms scan with `strpos`.
pub(crate) fn search_condition(d: Dialect, term: &str, q: &mut crate::query::Sql) -> String {
    match d {
        Dialect::Sqlite => {
            let t = q.arg(term.to_string());
            format!("instr(c.search_text, {t}) > 0")
        }
        Dialect::Postgres if term.chars().count() < 3 => {
            // No trigram in the term: the GIN index would read all of itself. A plain scan
            // is several times faster.
            let t = q.arg(term.to_string());
            format!("strpos(c.search_text, {t}) > 0")
        }
        Dialect::Postgres => {
            let escaped = term
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = q.arg(format!("%{escaped}%"));
            format!("c.search_text LIKE {pattern}")
        }
    }
}

/// A condition on one metadata key of `c.metadata` (JSON text).
pub(crate) fn metadata_condition(
    d: Dialect,
    cond: &kith_core::filter::MetaCond,
    q: &mut crate::query::Sql,
) -> String {
    use kith_core::filter::MetaCond;
    use serde_json::Value;
    match d {
        // `json_each` rather than a JSON path: a path cannot name every key (SQLite does not
        // unescape `\"` inside `$."…"`).
        Dialect::Sqlite => {
            match cond {
                MetaCond::Exists(key, present) => {
                    let k = q.arg(key.clone());
                    let not = if *present { "" } else { "NOT " };
                    format!("{not}EXISTS (SELECT 1 FROM json_each(c.metadata) j WHERE j.key = {k})")
                }
                MetaCond::Eq(key, value) => {
                    let k = q.arg(key.clone());
                    let test = match value {
                        Value::Bool(b) => format!("j.type = '{b}'"),
                        Value::String(s) => {
                            let v = q.arg(s.clone());
                            format!("j.type = 'text' AND j.atom = {v}")
                        }
                        Value::Number(n) => {
                            // Numbers compare by value: 3 = 3.0.
                            let v = match n.as_i64() {
                                Some(i) => q.arg(i),
                                None => q.arg(n.as_f64().unwrap_or(f64::NAN)),
                            };
                            format!("j.type IN ('integer', 'real') AND j.atom = {v}")
                        }
                        _ => "FALSE".to_string(),
                    };
                    format!("EXISTS (SELECT 1 FROM json_each(c.metadata) j WHERE j.key = {k} AND {test})")
                }
            }
        }
        Dialect::Postgres => match cond {
            MetaCond::Exists(key, present) => {
                let k = q.arg(key.clone());
                let not = if *present { "" } else { "NOT " };
                format!("{not}jsonb_exists(c.metadata::jsonb, {k})")
            }
            MetaCond::Eq(key, value) => {
                let k = q.arg(key.clone());
                let v = q.arg(value.to_string());
                format!("(c.metadata::jsonb -> {k}) = CAST({v} AS jsonb)")
            }
        },
    }
}

/// The statement that writes a consistent copy of the whole database into the new file named
/// by `$1`, or `None` where the database's own tool does it better (PostgreSQL: `pg_dump`).
/// SQLite: `VACUUM INTO` reads one snapshot in one read transaction, so writers on other
/// connections (a serving process) go on meanwhile and nothing they commit later is included.
pub(crate) fn backup_into(d: Dialect) -> Option<&'static str> {
    match d {
        Dialect::Sqlite => Some("VACUUM INTO $1"),
        Dialect::Postgres => None,
    }
}
