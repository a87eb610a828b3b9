//! Writing a seed batch on SQLite: fixed-size multi-row INSERTs with anonymous `?`
//! parameters, prepared once per connection.

use super::generate::Contact;
use super::{wrong_encoding, Encoded, WriteBatch};
use crate::conn::{Arg, Conn};
use crate::contact_rows::PROFILE_COLUMNS;
use crate::dialect::after_bulk_rid;
use crate::lite::Lite;
use crate::StoreError;
use std::sync::LazyLock;

/// SQLite's page cache while a batch is written, in KiB.
pub(super) const SQLITE_SEED_CACHE_KIB: i64 = 256 * 1024;

/// Values per SQLite INSERT. With anonymous `?` parameters binding is linear (sqlx asks SQLite
/// for each parameter's name, which costs a scan of the named ones), so statements can be
/// large; every full statement has the same text and is prepared once per connection.
pub(super) const SQLITE_VALUES_PER_STATEMENT: usize = 8_000;

/// Each SQLite table's columns and the value every row gives them: `?` is bound per row;
/// the rest is the same for all rows and written into the statement once (the organization and
/// website are a third of all values otherwise).
/// The contacts' columns: the profile's (`PROFILE_COLUMNS`, bound from `profile_args`), then
/// the stats, then `rid` last (the writer numbers it).
pub(super) static SQLITE_CONTACTS: LazyLock<Vec<(&str, &str)>> = LazyLock::new(|| {
    let mut columns = vec![("org_id", ORG), ("id", "?")];
    columns.extend(PROFILE_COLUMNS.iter().map(|c| (*c, "?")));
    columns.extend([
        ("conversation_count", "?"),
        ("message_count", "?"),
        ("last_seen_at", "?"),
        ("created_at", "?"),
        ("rid", "?"),
    ]);
    columns
});
pub(super) const SQLITE_TAGS: &[(&str, &str)] =
    &[("org_id", ORG), ("contact_id", "?"), ("tag", "?")];
pub(super) const SQLITE_VISITORS: &[(&str, &str)] = &[
    ("org_id", ORG),
    ("id", "?"),
    ("website_id", WEBSITE),
    ("contact_id", "?"),
    ("verified", "?"),
    ("pending_claim", "NULL"),
    ("created_at", "?"),
    ("last_seen_at", "?"),
    ("link_proven", "TRUE"),
];
pub(super) const SQLITE_CONVERSATIONS: &[(&str, &str)] = &[
    ("org_id", ORG),
    ("id", "?"),
    ("website_id", WEBSITE),
    ("contact_id", "?"),
    ("visitor_id", "?"),
    ("status", "?"),
    ("message_count", "?"),
    ("last_message_preview", "?"),
    ("last_message_at", "?"),
    ("created_at", "?"),
    ("updated_at", "?"),
    ("verified_start", "?"),
];
pub(super) const SQLITE_MESSAGES: &[(&str, &str)] = &[
    ("org_id", ORG),
    ("id", "?"),
    ("conversation_id", "?"),
    ("author", "'visitor'"),
    ("author_id", "NULL"),
    ("body", "?"),
    ("created_at", "?"),
];
pub(super) const SQLITE_EVENTS: &[(&str, &str)] = &[
    ("org_id", ORG),
    ("id", "?"),
    ("contact_id", "?"),
    ("kind", "?"),
    ("actor", "?"),
    ("data", "?"),
    ("at", "?"),
];
/// Stand-ins for the organization's and website's ids in the tables above.
pub(super) const ORG: &str = "{org}";
pub(super) const WEBSITE: &str = "{website}";

/// Per table, every row's bound values (the `?` of `SQLITE_*`) in column order. `rid` holds
/// the contact's position in the batch until the writer knows where numbering continues.
#[derive(Default)]
pub(super) struct SqliteRows {
    pub(super) contacts: Vec<Arg>,
    pub(super) tags: Vec<Arg>,
    pub(super) visitors: Vec<Arg>,
    pub(super) conversations: Vec<Arg>,
    pub(super) messages: Vec<Arg>,
    pub(super) events: Vec<Arg>,
}

impl SqliteRows {
    pub(super) fn push(&mut self, c: Contact) {
        let text = |v: String| Arg::Text(Some(v));
        let int = |v: i64| Arg::Int(Some(v));
        let position = (self.contacts.len() / bound(&SQLITE_CONTACTS)) as i64 + 1;
        for tag in c.tag_keys {
            self.tags.extend([text(c.id.clone()), text(tag)]);
        }
        for e in c.events {
            self.events.extend([
                text(e.id),
                text(c.id.clone()),
                text(e.kind.into()),
                text(e.actor.into()),
                text(e.data),
                int(e.at),
            ]);
        }
        let (conversations, messages) = match c.conversation {
            Some(cv) => {
                let count = cv.message_ids.len() as i64;
                self.visitors.extend([
                    text(cv.visitor_id.clone()),
                    text(c.id.clone()),
                    Arg::Bool(cv.verified),
                    int(c.created_at),
                    int(c.updated_at),
                ]);
                for m in cv.message_ids {
                    self.messages.extend([
                        text(m),
                        text(cv.id.clone()),
                        text(cv.body.into()),
                        int(c.updated_at),
                    ]);
                }
                self.conversations.extend([
                    text(cv.id),
                    text(c.id.clone()),
                    text(cv.visitor_id),
                    text(cv.status.into()),
                    int(count),
                    text(cv.body.into()),
                    int(c.updated_at),
                    int(c.created_at),
                    int(c.updated_at),
                    Arg::Bool(cv.verified),
                ]);
                (1, count)
            }
            None => (0, 0),
        };
        self.contacts.push(text(c.id));
        self.contacts.extend(c.profile);
        self.contacts.extend([
            int(conversations),
            int(messages),
            Arg::Int(c.last_seen_at),
            int(c.created_at),
            int(position),
        ]);
    }
}

/// How many values a row of `table` binds.
pub(super) fn bound(table: &[(&str, &str)]) -> usize {
    table.iter().filter(|(_, v)| *v == "?").count()
}

/// A text as an SQL string literal.
pub(super) fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Inserts `values` (whole rows of `table`'s bound values, in order) into `name`: statements
/// of the same size, then one for the rest.
pub(super) async fn sqlite_insert(
    c: &mut Lite,
    name: &str,
    table: &[(&str, &str)],
    (org_id, website_id): (&str, &str),
    values: Vec<Arg>,
) -> Result<(), StoreError> {
    let columns: Vec<&str> = table.iter().map(|(column, _)| *column).collect();
    let row: Vec<String> = table
        .iter()
        .map(|(_, v)| match *v {
            ORG => sql_text(org_id),
            WEBSITE => sql_text(website_id),
            v => v.to_string(),
        })
        .collect();
    let row = format!("({})", row.join(","));
    let insert = |rows: usize| {
        format!(
            "INSERT INTO {name} ({}) VALUES {}",
            columns.join(", "),
            vec![row.as_str(); rows].join(",")
        )
    };
    let width = bound(table);
    let rows_per_statement = (SQLITE_VALUES_PER_STATEMENT / width).max(1);
    let full = insert(rows_per_statement);
    let mut rows_left = values.len() / width;
    let mut values = values.into_iter();
    while rows_left > 0 {
        let rows = rows_left.min(rows_per_statement);
        let args: Vec<Arg> = values.by_ref().take(rows * width).collect();
        if rows == rows_per_statement {
            c.execute(&full, args).await?;
        } else {
            c.execute(&insert(rows), args).await?;
        }
        rows_left -= rows;
    }
    Ok(())
}

impl WriteBatch for Lite {
    async fn write_batch(
        &mut self,
        ids: (&str, &str),
        pending: &mut Option<Encoded>,
    ) -> Result<(), StoreError> {
        // The values move into the statements (no copies), so the batch can be written once.
        // A second attempt could not succeed anyway: this transaction holds the write lock, so
        // what failed was the data itself (a unique key taken), which would fail again.
        let rows = match pending.take() {
            Some(Encoded::Sqlite(rows)) => rows,
            Some(Encoded::Postgres(_)) => return Err(wrong_encoding()),
            None => {
                return Err(StoreError::Seed {
                    reason: "a batch failed to be written",
                    source: None,
                })
            }
        };
        // A batch dirties more pages than the pool's page cache holds; with room for all of
        // them SQLite writes each once, at COMMIT, instead of spilling and re-reading (about 5%
        // of a seed). Only memory: the pool's size is back before the connection is.
        let (cache,): (i64,) = self.fetch_one("PRAGMA cache_size", vec![]).await?;
        self.execute(
            &format!("PRAGMA cache_size = -{SQLITE_SEED_CACHE_KIB}"),
            vec![],
        )
        .await?;
        let written = sqlite_write(self, ids, rows).await;
        self.execute(&format!("PRAGMA cache_size = {cache}"), vec![])
            .await?;
        written.map_err(|e| {
            if e.is_retryable() {
                StoreError::Seed {
                    reason: "a batch could not be written",
                    source: Some(Box::new(e)),
                }
            } else {
                e
            }
        })
    }
}

pub(super) async fn sqlite_write(
    c: &mut Lite,
    ids: (&str, &str),
    mut rows: SqliteRows,
) -> Result<(), StoreError> {
    // One writer at a time on SQLite: numbering continues after the largest rid.
    let (max_rid,): (Option<i64>,) = c.fetch_one("SELECT max(rid) FROM contacts", vec![]).await?;
    let base = max_rid.unwrap_or(0);
    let width = bound(&SQLITE_CONTACTS);
    for rid in rows.contacts.iter_mut().skip(width - 1).step_by(width) {
        if let Arg::Int(Some(position)) = rid {
            *position += base;
        }
    }
    // Parents before children: the foreign keys are checked as rows arrive.
    sqlite_insert(c, "contacts", &SQLITE_CONTACTS, ids, rows.contacts).await?;
    sqlite_insert(c, "contact_tags", SQLITE_TAGS, ids, rows.tags).await?;
    sqlite_insert(c, "visitors", SQLITE_VISITORS, ids, rows.visitors).await?;
    sqlite_insert(
        c,
        "conversations",
        SQLITE_CONVERSATIONS,
        ids,
        rows.conversations,
    )
    .await?;
    sqlite_insert(c, "messages", SQLITE_MESSAGES, ids, rows.messages).await?;
    sqlite_insert(c, "contact_events", SQLITE_EVENTS, ids, rows.events).await?;
    // What the dialect does after explicit numbers (nothing on SQLite).
    if let Some(sql) = after_bulk_rid(c.dialect()) {
        c.execute(sql, vec![]).await?;
    }
    Ok(())
}
