//! Synthetic data for demos and benchmarks (`kith seed`): realistic contacts (names, emails,
//! companies, phones, tags from a small vocabulary, metadata, skewed last-seen times) with
//! conversations and messages, written in large batches so a million contacts take well
//! under a minute on SQLite.
//!
//! Two threads share the work: a generator (a blocking task) draws the data and encodes each
//! batch for the database, while the writer inserts the previous batch. SQLite gets
//! fixed-size multi-row INSERTs with anonymous `?` parameters; PostgreSQL gets one
//! `INSERT … SELECT FROM unnest(arrays)` per table and batch.
//!
//! Where the time goes and what was tried: docs/benchmarks.md, "Seeding".

use crate::conn::{Arg, Conn, Dialect};
use crate::dialect::{after_bulk_rid, next_rid};
use crate::ids::{new_id, now_ms};
use crate::{transact, Store, StoreError};
use kith_core::{Email, Metadata, Phone, Profile, Tags, Text};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::{PgConnection, SqliteConnection};
use std::future::Future;

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Hedy",
    "Tim",
    "Radia",
    "Guido",
    "Zoë",
    "José",
    "Ångström",
    "Mary",
    "Edsger",
    "Donald",
    "Sophie",
    "Yukihiro",
    "Anders",
    "Bjarne",
    "Niklaus",
    "Karen",
    "Annie",
    "Claude",
    "Jean",
    "Lena",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Lamarr",
    "Berners-Lee",
    "Perlman",
    "van Rossum",
    "Müller",
    "García",
    "Nakamura",
    "Hejlsberg",
    "Stroustrup",
    "Wirth",
    "Spärck Jones",
    "Easley",
    "Shannon",
    "Sammet",
    "Johnson",
    "Wilson",
    "Brown",
    "Martin",
    "Anderson",
    "Smith",
];
const COMPANIES: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Pied Piper",
    "Aperture",
    "Black Mesa",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example",
    "corp.example",
    "inbox.example",
];
/// Tags and the share of contacts carrying each.
const TAGS: &[(&str, f64)] = &[
    ("enterprise", 0.10),
    ("trial", 0.25),
    ("churned", 0.05),
    ("vip", 0.02),
    ("newsletter", 0.40),
    ("beta", 0.08),
    ("partner", 0.01),
    ("support-priority", 0.15),
];
const PLANS: &[&str] = &["free", "starter", "pro", "enterprise"];
const MESSAGES: &[&str] = &[
    "Hi, I have a question about my invoice",
    "How do I reset my password?",
    "Can I upgrade my plan?",
    "The export button does nothing",
    "Thanks, that fixed it!",
    "Do you offer discounts for non-profits?",
];

pub struct SeedReport {
    pub contacts: u64,
    pub conversations: u64,
    pub messages: u64,
}

/// Contacts per SQLite transaction (one batch each): large enough that commits and their WAL
/// checkpoints are few, small enough that a server beside the seed gets the write lock every
/// second or two.
const SQLITE_BATCH_CONTACTS: u64 = 50_000;
/// SQLite's page cache while a batch is written, in KiB.
const SQLITE_SEED_CACHE_KIB: i64 = 256 * 1024;
/// Contacts per PostgreSQL transaction (one batch each). Small: every contact row updates one
/// of a few counter rows (the `contact_counts` trigger), and within one transaction each
/// update must walk past the versions the earlier ones left, so the cost per contact grows
/// with the transaction.
const PG_BATCH_CONTACTS: u64 = 1_000;

/// Values per SQLite INSERT. With anonymous `?` parameters binding is linear (sqlx asks SQLite
/// for each parameter's name, which costs a scan of the named ones), so statements can be
/// large; every full statement has the same text and is prepared once per connection.
const SQLITE_VALUES_PER_STATEMENT: usize = 8_000;

/// Each SQLite table's columns and the value every row gives them: `?` is bound per row;
/// the rest is the same for all rows and written into the statement once (the organization and
/// website are a third of all values otherwise).
const SQLITE_CONTACTS: &[(&str, &str)] = &[
    ("org_id", ORG),
    ("id", "?"),
    ("user_id", "?"),
    ("email", "?"),
    ("email_lower", "?"),
    ("name", "?"),
    ("phone", "?"),
    ("company", "?"),
    ("tags", "?"),
    ("metadata", "?"),
    ("conversation_count", "?"),
    ("message_count", "?"),
    ("last_seen_at", "?"),
    ("created_at", "?"),
    ("updated_at", "?"),
    ("status", "?"),
    ("name_lower", "?"),
    ("search_text", "?"),
    ("rid", "?"),
];
const SQLITE_TAGS: &[(&str, &str)] = &[("org_id", ORG), ("contact_id", "?"), ("tag", "?")];
const SQLITE_VISITORS: &[(&str, &str)] = &[
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
const SQLITE_CONVERSATIONS: &[(&str, &str)] = &[
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
const SQLITE_MESSAGES: &[(&str, &str)] = &[
    ("org_id", ORG),
    ("id", "?"),
    ("conversation_id", "?"),
    ("author", "'visitor'"),
    ("author_id", "NULL"),
    ("body", "?"),
    ("created_at", "?"),
];
/// Stand-ins for the organization's and website's ids in the tables above.
const ORG: &str = "{org}";
const WEBSITE: &str = "{website}";

/// One generated contact with every column derived as the normal write path derives it.
struct Contact {
    id: String,
    user_id: Option<String>,
    email: Option<String>,
    email_lower: Option<String>,
    name: Option<String>,
    name_lower: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    /// JSON array, as stored in `contacts.tags`.
    tags: String,
    /// The `contact_tags` rows: each tag lower-cased.
    tag_keys: Vec<String>,
    metadata: String,
    status: &'static str,
    search_text: String,
    last_seen_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    conversation: Option<Conversation>,
}

/// A contact's one conversation, started by the visitor whose first message created the
/// contact (so the visitor's link is proven, as `resolve_and_apply` records it).
struct Conversation {
    id: String,
    visitor_id: String,
    /// The visitor identified with a verified user id: the customers.
    verified: bool,
    status: &'static str,
    body: &'static str,
    message_ids: Vec<String>,
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// Draws contacts in a fixed order from one seeded generator, so a seed gives the same data.
struct Generator {
    rng: StdRng,
    now: i64,
    /// Makes emails and user ids unique: continues after the contacts already there.
    next_index: u64,
}

impl Generator {
    fn contact(&mut self) -> Result<Contact, StoreError> {
        const DAY: i64 = 86_400_000;
        let rng = &mut self.rng;
        let idx = self.next_index;
        self.next_index += 1;
        let first = pick(rng, FIRST);
        let last = pick(rng, LAST);
        let customer = rng.gen_bool(0.4);
        let mut p = Profile {
            name: Text::parse("name", &format!("{first} {last}"))?,
            email: Email::parse(
                "email",
                &format!(
                    "{}.{}.{idx}@{}",
                    first.to_lowercase().replace(['ë', 'é', 'Å', 'å', 'ö'], "o"),
                    last.to_lowercase().replace([' ', 'ü', 'í', 'ä'], ""),
                    pick(rng, DOMAINS)
                ),
            )?,
            company: rng
                .gen_bool(0.7)
                .then(|| Text::from_stored(pick(rng, COMPANIES).to_string())),
            phone: if rng.gen_bool(0.3) {
                Phone::parse(
                    "phone",
                    &format!("+1415{:07}", rng.gen_range(0..10_000_000)),
                )?
            } else {
                None
            },
            user_id: customer.then(|| Text::from_stored(format!("usr_{idx}"))),
            ..Profile::default()
        };
        let mut tags = Tags::default();
        for (t, share) in TAGS {
            if rng.gen_bool(*share) {
                tags.insert(t);
            }
        }
        p.tags = tags;
        p.metadata = Metadata::from_stored(
            json!({"plan": pick(rng, PLANS), "seats": rng.gen_range(1..200), "source": if rng.gen_bool(0.5) {"ads"} else {"organic"}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        // Skewed activity: most contacts were seen recently, a long tail long ago, and a few
        // (imported) never.
        let age_days = (-(1.0 - rng.gen::<f64>()).ln() * 20.0).min(720.0);
        let last_seen = self.now - (age_days * DAY as f64) as i64;
        let created = last_seen - rng.gen_range(0..90) * DAY;
        let never_seen = rng.gen_bool(0.02);
        let id = new_id();
        let conversation = if !never_seen && rng.gen_bool(0.6) {
            let messages = rng.gen_range(1..4i64);
            Some(Conversation {
                visitor_id: new_id(),
                id: new_id(),
                verified: customer,
                body: pick(rng, MESSAGES),
                status: pick(rng, &["open", "open", "resolved", "escalated"]),
                message_ids: (0..messages).map(|_| new_id()).collect(),
            })
        } else {
            None
        };
        let text = |t: &Option<Text>| t.as_ref().map(|t| t.as_str().to_string());
        Ok(Contact {
            id,
            user_id: text(&p.user_id),
            email: p.email.as_ref().map(|e| e.as_str().to_string()),
            email_lower: p.email.as_ref().map(|e| e.key()),
            name_lower: p.name.as_ref().map(|t| t.as_str().to_lowercase()),
            name: text(&p.name),
            phone: p.phone.as_ref().map(|t| t.as_str().to_string()),
            company: text(&p.company),
            tags: serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()),
            tag_keys: p.tags.as_slice().iter().map(|t| t.to_lowercase()).collect(),
            metadata: p.metadata.to_json().to_string(),
            status: p.status().as_str(),
            search_text: p.search_text(),
            last_seen_at: (!never_seen).then_some(last_seen),
            created_at: created,
            updated_at: last_seen,
            conversation,
        })
    }
}

/// A batch of contacts encoded for the database it goes to, with what it adds.
struct Batch {
    contacts: u64,
    conversations: u64,
    messages: u64,
    rows: Encoded,
}

enum Encoded {
    Sqlite(SqliteRows),
    Postgres(Box<PgColumns>),
}

/// Per table, every row's bound values (the `?` of `SQLITE_*`) in column order. `rid` holds
/// the contact's position in the batch until the writer knows where numbering continues.
#[derive(Default)]
struct SqliteRows {
    contacts: Vec<Arg>,
    tags: Vec<Arg>,
    visitors: Vec<Arg>,
    conversations: Vec<Arg>,
    messages: Vec<Arg>,
}

impl SqliteRows {
    fn push(&mut self, c: Contact) {
        let text = |v: String| Arg::Text(Some(v));
        let int = |v: i64| Arg::Int(Some(v));
        let position = (self.contacts.len() / bound(SQLITE_CONTACTS)) as i64 + 1;
        for tag in c.tag_keys {
            self.tags.extend([text(c.id.clone()), text(tag)]);
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
        self.contacts.extend([
            text(c.id),
            Arg::Text(c.user_id),
            Arg::Text(c.email),
            Arg::Text(c.email_lower),
            Arg::Text(c.name),
            Arg::Text(c.phone),
            Arg::Text(c.company),
            text(c.tags),
            text(c.metadata),
            int(conversations),
            int(messages),
            Arg::Int(c.last_seen_at),
            int(c.created_at),
            int(c.updated_at),
            text(c.status.into()),
            Arg::Text(c.name_lower),
            text(c.search_text),
            int(position),
        ]);
    }
}

/// Per table, one array per column (the org and website are bound once per statement).
#[derive(Default)]
struct PgColumns {
    id: Vec<String>,
    user_id: Vec<Option<String>>,
    email: Vec<Option<String>>,
    email_lower: Vec<Option<String>>,
    name: Vec<Option<String>>,
    phone: Vec<Option<String>>,
    company: Vec<Option<String>>,
    tags: Vec<String>,
    metadata: Vec<String>,
    conversation_count: Vec<i64>,
    message_count: Vec<i64>,
    last_seen_at: Vec<Option<i64>>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
    status: Vec<&'static str>,
    name_lower: Vec<Option<String>>,
    search_text: Vec<String>,
    tag_contact: Vec<String>,
    tag: Vec<String>,
    visitor_id: Vec<String>,
    visitor_contact: Vec<String>,
    visitor_verified: Vec<bool>,
    visitor_created: Vec<i64>,
    visitor_seen: Vec<i64>,
    conversation_id: Vec<String>,
    conversation_contact: Vec<String>,
    conversation_visitor: Vec<String>,
    conversation_status: Vec<&'static str>,
    conversation_messages: Vec<i64>,
    conversation_preview: Vec<&'static str>,
    conversation_created: Vec<i64>,
    conversation_updated: Vec<i64>,
    conversation_verified: Vec<bool>,
    message_id: Vec<String>,
    message_conversation: Vec<String>,
    message_body: Vec<&'static str>,
    message_at: Vec<i64>,
}

impl PgColumns {
    fn push(&mut self, c: Contact) {
        for tag in c.tag_keys {
            self.tag_contact.push(c.id.clone());
            self.tag.push(tag);
        }
        let (conversations, messages) = match c.conversation {
            Some(cv) => {
                let count = cv.message_ids.len() as i64;
                self.visitor_id.push(cv.visitor_id.clone());
                self.visitor_contact.push(c.id.clone());
                self.visitor_verified.push(cv.verified);
                self.visitor_created.push(c.created_at);
                self.visitor_seen.push(c.updated_at);
                for m in cv.message_ids {
                    self.message_id.push(m);
                    self.message_conversation.push(cv.id.clone());
                    self.message_body.push(cv.body);
                    self.message_at.push(c.updated_at);
                }
                self.conversation_id.push(cv.id);
                self.conversation_contact.push(c.id.clone());
                self.conversation_visitor.push(cv.visitor_id);
                self.conversation_status.push(cv.status);
                self.conversation_messages.push(count);
                self.conversation_preview.push(cv.body);
                self.conversation_created.push(c.created_at);
                self.conversation_updated.push(c.updated_at);
                self.conversation_verified.push(cv.verified);
                (1, count)
            }
            None => (0, 0),
        };
        self.id.push(c.id);
        self.user_id.push(c.user_id);
        self.email.push(c.email);
        self.email_lower.push(c.email_lower);
        self.name.push(c.name);
        self.phone.push(c.phone);
        self.company.push(c.company);
        self.tags.push(c.tags);
        self.metadata.push(c.metadata);
        self.conversation_count.push(conversations);
        self.message_count.push(messages);
        self.last_seen_at.push(c.last_seen_at);
        self.created_at.push(c.created_at);
        self.updated_at.push(c.updated_at);
        self.status.push(c.status);
        self.name_lower.push(c.name_lower);
        self.search_text.push(c.search_text);
    }
}

impl Generator {
    fn batch(&mut self, n: u64, dialect: Dialect) -> Result<Batch, StoreError> {
        let mut batch = Batch {
            contacts: n,
            conversations: 0,
            messages: 0,
            rows: match dialect {
                Dialect::Sqlite => Encoded::Sqlite(SqliteRows::default()),
                Dialect::Postgres => Encoded::Postgres(Box::default()),
            },
        };
        for _ in 0..n {
            let c = self.contact()?;
            if let Some(cv) = &c.conversation {
                batch.conversations += 1;
                batch.messages += cv.message_ids.len() as u64;
            }
            match &mut batch.rows {
                Encoded::Sqlite(rows) => rows.push(c),
                Encoded::Postgres(cols) => cols.push(c),
            }
        }
        Ok(batch)
    }
}

/// How many values a row of `table` binds.
fn bound(table: &[(&str, &str)]) -> usize {
    table.iter().filter(|(_, v)| *v == "?").count()
}

/// A text as an SQL string literal.
fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Inserts `values` (whole rows of `table`'s bound values, in order) into `name`: statements
/// of the same size, then one for the rest.
async fn sqlite_insert(
    c: &mut SqliteConnection,
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

/// How a batch is written on each database, inside the transaction `transact!` opened.
trait WriteBatch: Conn {
    /// Writes the batch in `pending`. Run again after a lost race, it must still find it.
    fn write_batch(
        &mut self,
        ids: (&str, &str),
        pending: &mut Option<Encoded>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl WriteBatch for SqliteConnection {
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

async fn sqlite_write(
    c: &mut SqliteConnection,
    ids: (&str, &str),
    mut rows: SqliteRows,
) -> Result<(), StoreError> {
    // One writer at a time on SQLite: numbering continues after the largest rid.
    let (max_rid,): (Option<i64>,) = c.fetch_one("SELECT max(rid) FROM contacts", vec![]).await?;
    let base = max_rid.unwrap_or(0);
    let width = bound(SQLITE_CONTACTS);
    for rid in rows.contacts.iter_mut().skip(width - 1).step_by(width) {
        if let Arg::Int(Some(position)) = rid {
            *position += base;
        }
    }
    // Parents before children: the foreign keys are checked as rows arrive.
    sqlite_insert(c, "contacts", SQLITE_CONTACTS, ids, rows.contacts).await?;
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
    // What the dialect does after explicit numbers (nothing on SQLite).
    if let Some(sql) = after_bulk_rid(c.dialect()) {
        c.execute(sql, vec![]).await?;
    }
    Ok(())
}

fn wrong_encoding() -> StoreError {
    StoreError::Seed {
        reason: "a batch was encoded for the other database",
        source: None,
    }
}

impl WriteBatch for PgConnection {
    async fn write_batch(
        &mut self,
        (org_id, website_id): (&str, &str),
        pending: &mut Option<Encoded>,
    ) -> Result<(), StoreError> {
        // Borrowed, not taken: PostgreSQL may abort the transaction for a deadlock with a
        // concurrent writer on the contact counters, and the batch is then written again.
        let Some(Encoded::Postgres(b)) = pending.as_ref() else {
            return Err(wrong_encoding());
        };
        // A seed can be run again, so losing its last transactions in a crash costs nothing;
        // not waiting for each commit's WAL flush saves a disk round trip per batch. (It never
        // risks corruption, and ends with the transaction.)
        self.execute("SET LOCAL synchronous_commit = off", vec![])
            .await?;
        // PostgreSQL only: whole columns bound as arrays, one statement per table. Search-index
        // numbers come from the sequence as in `create_contact`; unnest yields the rows in
        // array order, so they increase with the ids.
        let contacts = format!(
            "INSERT INTO contacts (org_id, id, user_id, email, email_lower, name, phone, company, \
             tags, metadata, conversation_count, message_count, last_seen_at, created_at, \
             updated_at, status, name_lower, search_text, rid) \
             SELECT $1, *, {} FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[], \
             $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::text[], $17::text[], \
             $18::text[])",
            next_rid(Dialect::Postgres)
        );
        sqlx::query(&contacts)
            .bind(org_id)
            .bind(&b.id)
            .bind(&b.user_id)
            .bind(&b.email)
            .bind(&b.email_lower)
            .bind(&b.name)
            .bind(&b.phone)
            .bind(&b.company)
            .bind(&b.tags)
            .bind(&b.metadata)
            .bind(&b.conversation_count)
            .bind(&b.message_count)
            .bind(&b.last_seen_at)
            .bind(&b.created_at)
            .bind(&b.updated_at)
            .bind(&b.status)
            .bind(&b.name_lower)
            .bind(&b.search_text)
            .execute(&mut *self)
            .await?;
        sqlx::query(
            "INSERT INTO contact_tags (org_id, contact_id, tag) \
             SELECT $1, * FROM unnest($2::text[], $3::text[])",
        )
        .bind(org_id)
        .bind(&b.tag_contact)
        .bind(&b.tag)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO visitors (org_id, id, website_id, contact_id, verified, pending_claim, \
             created_at, last_seen_at, link_proven) \
             SELECT $1, u.id, $2, u.contact_id, u.verified, NULL, u.created_at, u.seen, TRUE \
             FROM unnest($3::text[], $4::text[], $5::bool[], $6::int8[], $7::int8[]) \
             AS u(id, contact_id, verified, created_at, seen)",
        )
        .bind(org_id)
        .bind(website_id)
        .bind(&b.visitor_id)
        .bind(&b.visitor_contact)
        .bind(&b.visitor_verified)
        .bind(&b.visitor_created)
        .bind(&b.visitor_seen)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO conversations (org_id, id, website_id, contact_id, visitor_id, status, \
             message_count, last_message_preview, last_message_at, created_at, updated_at, \
             verified_start) \
             SELECT $1, u.id, $2, u.contact_id, u.visitor_id, u.status, u.messages, u.preview, \
             u.updated_at, u.created_at, u.updated_at, u.verified \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], \
             $8::text[], $9::int8[], $10::int8[], $11::bool[]) \
             AS u(id, contact_id, visitor_id, status, messages, preview, created_at, \
             updated_at, verified)",
        )
        .bind(org_id)
        .bind(website_id)
        .bind(&b.conversation_id)
        .bind(&b.conversation_contact)
        .bind(&b.conversation_visitor)
        .bind(&b.conversation_status)
        .bind(&b.conversation_messages)
        .bind(&b.conversation_preview)
        .bind(&b.conversation_created)
        .bind(&b.conversation_updated)
        .bind(&b.conversation_verified)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO messages (org_id, id, conversation_id, author, author_id, body, \
             created_at) \
             SELECT $1, u.id, u.conversation_id, 'visitor', NULL, u.body, u.created_at \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[]) \
             AS u(id, conversation_id, body, created_at)",
        )
        .bind(org_id)
        .bind(&b.message_id)
        .bind(&b.message_conversation)
        .bind(&b.message_body)
        .bind(&b.message_at)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Adds `count` synthetic contacts to `org_id` (deterministic for a given `seed`), with
    /// conversations on the organization's first website.
    pub async fn seed(
        &self,
        org_id: &str,
        count: u64,
        seed: u64,
    ) -> Result<SeedReport, StoreError> {
        let websites = self.websites(org_id).await?;
        let website_id = websites.first().ok_or(StoreError::NotFound)?.id.clone();
        // Unique values (emails, user ids) continue after the contacts already there.
        let offset = self.count_contacts(org_id, &Default::default()).await? as u64;
        let dialect = self.dialect();

        // Generation runs beside the writes: the next batch is drawn and encoded while the
        // database takes the current one. Two batches in flight bound the memory.
        let (sender, mut batches) = tokio::sync::mpsc::channel(2);
        let generator = tokio::task::spawn_blocking(move || {
            let mut g = Generator {
                rng: StdRng::seed_from_u64(seed),
                now: now_ms(),
                next_index: offset,
            };
            let size = match dialect {
                Dialect::Sqlite => SQLITE_BATCH_CONTACTS,
                Dialect::Postgres => PG_BATCH_CONTACTS,
            };
            let mut done = 0;
            while done < count {
                let n = size.min(count - done);
                let batch = g.batch(n, dialect);
                let failed = batch.is_err();
                // A closed channel: the writer stopped on an error it reports.
                if sender.blocking_send(batch).is_err() || failed {
                    break;
                }
                done += n;
            }
        });

        let mut report = SeedReport {
            contacts: 0,
            conversations: 0,
            messages: 0,
        };
        while let Some(batch) = batches.recv().await {
            let batch = batch?;
            let mut pending = Some(batch.rows);
            transact!(self, |c| c
                .write_batch((org_id, &website_id), &mut pending)
                .await)?;
            if dialect == Dialect::Postgres && report.contacts == 0 {
                // PostgreSQL keeps the plan of each foreign-key check for the session. Made on
                // nearly empty tables it is a scan, then run for every later row (a seed of
                // 500-contact batches crawled). New statistics invalidate it; the next plan
                // is an index lookup.
                crate::read!(self, |c| c
                    .execute(
                        "ANALYZE contacts, contact_tags, visitors, conversations, messages",
                        vec![]
                    )
                    .await)?;
            }
            report.contacts += batch.contacts;
            report.conversations += batch.conversations;
            report.messages += batch.messages;
        }
        match generator.await {
            Ok(()) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(StoreError::Seed {
                    reason: "its generator stopped",
                    source: Some(Box::new(e)),
                })
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use crate::conn::{args, Conn};
    use crate::{read, NewOrg, Store};

    async fn new_org(store: &Store) -> String {
        let new = NewOrg {
            name: "Seeded".into(),
            admin_email: "admin@example.com".into(),
            website_name: "site".into(),
        };
        store.create_org(&new).await.unwrap().org_id
    }

    /// (rid, id, email, name, tags, metadata, search text) of an organization's contacts.
    type Contacts = Vec<(i64, String, String, String, String, String, String)>;

    async fn contacts(store: &Store, org: &str) -> Contacts {
        read!(store, |c| c
            .fetch_all(
                "SELECT rid, id, email, name, tags, metadata, search_text FROM contacts \
                 WHERE org_id = $1 ORDER BY rid",
                args![org],
            )
            .await)
        .unwrap()
    }

    async fn count(store: &Store, sql: &str, org: &str) -> i64 {
        let (n,): (i64,) = read!(store, |c| c.fetch_one(sql, args![org]).await).unwrap();
        n
    }

    /// Two seeds into one organization, one more into another: every row as the normal write
    /// path leaves it, and the same seed gives the same people.
    async fn seeds_add_consistent_rows(url: &str) {
        let store = Store::open(url).await.unwrap();
        let (a, b) = (new_org(&store).await, new_org(&store).await);
        let first = store.seed(&a, 2_500, 7).await.unwrap();
        assert_eq!(first.contacts, 2_500);
        store.seed(&a, 1_200, 7).await.unwrap();
        store.seed(&b, 2_500, 7).await.unwrap();

        let rows = contacts(&store, &a).await;
        assert_eq!(rows.len(), 3_700);
        let emails: std::collections::HashSet<_> = rows.iter().map(|r| &r.2).collect();
        assert_eq!(
            emails.len(),
            rows.len(),
            "emails continue after a second seed"
        );
        assert!(
            rows.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "rids unique and increasing with the ids"
        );
        for status in ["lead", "customer"] {
            let kept: (Option<i64>,) = read!(&store, |c| c
                .fetch_one(
                    "SELECT CAST(sum(n) AS BIGINT) FROM contact_counts \
                     WHERE org_id = $1 AND status = $2",
                    args![&a, status],
                )
                .await)
            .unwrap();
            let real: (i64,) = read!(&store, |c| c
                .fetch_one(
                    "SELECT count(*) FROM contacts WHERE org_id = $1 AND status = $2",
                    args![&a, status],
                )
                .await)
            .unwrap();
            assert_eq!(kept.0.unwrap_or(0), real.0, "{status} count");
        }
        let tag_rows: Vec<(String, String)> = read!(&store, |c| c
            .fetch_all(
                "SELECT contact_id, tag FROM contact_tags WHERE org_id = $1",
                args![&a],
            )
            .await)
        .unwrap();
        let mut from_rows: Vec<(String, String)> = tag_rows;
        let mut from_json: Vec<(String, String)> = rows
            .iter()
            .flat_map(|r| {
                let tags: Vec<String> = serde_json::from_str(&r.4).unwrap();
                tags.into_iter().map(|t| (r.1.clone(), t.to_lowercase()))
            })
            .collect();
        from_rows.sort();
        from_json.sort();
        assert_eq!(from_rows, from_json);

        let sum_conversations = "SELECT CAST(sum(conversation_count) AS BIGINT) \
                                 FROM contacts WHERE org_id = $1";
        let conversations = "SELECT count(*) FROM conversations WHERE org_id = $1";
        assert_eq!(
            count(&store, sum_conversations, &a).await,
            count(&store, conversations, &a).await
        );
        let sum_messages = "SELECT CAST(sum(message_count) AS BIGINT) \
                            FROM contacts WHERE org_id = $1";
        let messages = "SELECT count(*) FROM messages WHERE org_id = $1";
        assert_eq!(
            count(&store, sum_messages, &a).await,
            count(&store, messages, &a).await
        );
        let visitors = "SELECT count(*) FROM visitors WHERE org_id = $1 AND link_proven";
        assert_eq!(
            count(&store, visitors, &a).await,
            count(&store, conversations, &a).await
        );

        let same = |r: &(i64, String, String, String, String, String, String)| {
            (
                r.2.clone(),
                r.3.clone(),
                r.4.clone(),
                r.5.clone(),
                r.6.clone(),
            )
        };
        let other = contacts(&store, &b).await;
        assert_eq!(
            rows[..2_500].iter().map(same).collect::<Vec<_>>(),
            other.iter().map(same).collect::<Vec<_>>(),
            "the same seed gives the same contacts"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn seed_sqlite() {
        let dir = std::env::temp_dir().join(format!("kith-seed-{}", crate::new_id()));
        let url = format!("sqlite://{}/k.db", dir.display());
        seeds_add_consistent_rows(&url).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn seed_postgres() {
        use sqlx::Connection;
        let admin = std::env::var("KITH_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("kith_seed_{}", &crate::new_id()[16..]);
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        seeds_add_consistent_rows(&url).await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    }
}
