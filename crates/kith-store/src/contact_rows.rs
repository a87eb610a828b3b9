//! The contact row primitives every write path shares: reading a contact for update, writing
//! its profile (with what is derived from it) and tags, creating it, and recording its
//! timeline. Resolution, merges, the admin API and the widget all go through these, so a
//! contact is written one way.

use crate::conn::{args, Arg, Conn, Dialect, Positional};
use crate::dialect::{for_update, next_rid};
use crate::ids::new_id;
use crate::model::{ContactRow, CONTACT_COLUMNS};
use crate::webhooks;
use crate::StoreError;
use kith_core::contact::Changes;
use kith_core::timeline::{Actor, EventKind};
use kith_core::webhook::EventType;
use kith_core::{Profile, Status};
use serde_json::{json, Value};
use std::sync::LazyLock;

/// A contact by `id`, `user_id` or `email_lower`, locked for the rest of the transaction
/// (the rules decide on what it holds).
pub(crate) async fn contact_by<C: Conn>(
    c: &mut C,
    org_id: &str,
    column: &'static str,
    value: &str,
) -> Result<Option<ContactRow>, StoreError> {
    // `column` is one of three fixed names, never user input.
    debug_assert!(matches!(column, "id" | "user_id" | "email_lower"));
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND {column} = $2{}",
        for_update(c.dialect())
    );
    Ok(c.fetch_optional(&sql, args![org_id, value]).await?)
}

/// Writes a timeline entry and enqueues the webhook event it raises (same transaction);
/// answers the entry's id (a note keeps it, to rewrite its entry).
pub(crate) async fn insert_event<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
    kind: EventKind,
    actor: &Actor,
    data: Value,
    now: i64,
) -> Result<String, StoreError> {
    let id = new_id();
    let actor = actor.to_string();
    let hook =
        EventType::for_timeline(kind).filter(|_| webhooks::may_have_endpoints(c.dialect(), org_id));
    let details = hook.map(|_| data.clone());
    c.execute(
        EVENT_SQL,
        args![
            org_id,
            &id,
            contact_id,
            kind.as_str(),
            &actor,
            data.to_string(),
            now
        ],
    )
    .await?;
    if let (Some(ty), Some(details)) = (hook, details) {
        let data = json!({"contact_id": contact_id, "actor": &actor, "details": details});
        webhooks::enqueue_timeline(c, org_id, (&id, ty), contact_id, data, now).await?;
    }
    Ok(id)
}

const EVENT_SQL: &str =
    "INSERT INTO contact_events (org_id, id, contact_id, kind, actor, data, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The statements `insert_event` runs, for a caller that runs them with others
/// (`Conn::execute_many`): the entry, then (if the kind raises one) the webhook enqueue, and
/// which of them that is; the caller passes its touched rows to `webhooks::note_enqueued`.
/// Only for kinds whose event does not carry the contact (that needs a read after the enqueue).
pub(crate) fn event_statements(
    d: Dialect,
    org_id: &str,
    contact_id: &str,
    kind: EventKind,
    actor: &Actor,
    data: Value,
    now: i64,
) -> (Vec<(&'static str, Vec<Arg>)>, Option<usize>) {
    let id = new_id();
    let actor = actor.to_string();
    let mut out = Vec::with_capacity(2);
    let hook = EventType::for_timeline(kind).filter(|_| webhooks::may_have_endpoints(d, org_id));
    if let Some(ty) = hook {
        debug_assert!(!ty.carries_contact(), "use insert_event for {kind:?}");
        let details = json!({"contact_id": contact_id, "actor": &actor, "details": &data});
        out.push(webhooks::enqueue_statement(
            d, org_id, &id, ty, contact_id, details, now,
        ));
    }
    out.insert(
        0,
        (
            EVENT_SQL,
            args![
                org_id,
                &id,
                contact_id,
                kind.as_str(),
                &actor,
                data.to_string(),
                now
            ],
        ),
    );
    let enqueue = (out.len() == 2).then_some(1);
    (out, enqueue)
}

fn text<T: AsRef<str>>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|s| s.as_ref().to_string())
}

/// A profile's stored columns, in the order `profile_args` gives their values: the fields,
/// then `updated_at`, then what is derived (status, sort name, search text), then whether the
/// email is proven. The one list both writes below (and the seed) name.
pub(crate) const PROFILE_COLUMNS: [&str; 13] = [
    "user_id",
    "email",
    "email_lower",
    "name",
    "phone",
    "company",
    "tags",
    "metadata",
    "updated_at",
    "status",
    "name_lower",
    "search_text",
    "email_verified",
];

/// The values of `PROFILE_COLUMNS`, bound as $3 to $15 after the organization and contact id.
pub(crate) fn profile_args(p: &Profile, now: i64) -> Vec<crate::conn::Arg> {
    args![
        text(&p.user_id),
        text(&p.email),
        p.email.as_ref().map(|e| e.key()),
        text(&p.name),
        text(&p.phone),
        text(&p.company),
        serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()),
        p.metadata.to_json().to_string(),
        now,
        p.status().as_str(),
        p.name.as_ref().map(|n| n.as_str().to_lowercase()),
        p.search_text(),
        p.email.is_some() && p.email_verified
    ]
}

/// Writes a contact's profile (and `updated_at`), with everything derived from it: status,
/// sort name, search text and the tag rows. Unique keys are enforced by the database; callers
/// check holders first, so a violation here means a concurrent writer (retried).
pub(crate) async fn write_profile<C: Conn>(
    c: &mut C,
    org_id: &str,
    id: &str,
    p: &Profile,
    now: i64,
) -> Result<(), StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let set: Vec<String> = PROFILE_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, col)| format!("{col} = ${}", i + 3))
            .collect();
        format!(
            "UPDATE contacts SET {} WHERE org_id = $1 AND id = $2",
            set.join(", ")
        )
    });
    c.execute(&SQL, [args![org_id, id], profile_args(p, now)].concat())
        .await?;
    write_tags(c, org_id, id, p).await
}

/// One row per tag (lower-cased) for tag filters.
async fn write_tags<C: Conn>(
    c: &mut C,
    org_id: &str,
    id: &str,
    p: &Profile,
) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM contact_tags WHERE org_id = $1 AND contact_id = $2",
        args![org_id, id],
    )
    .await?;
    insert_tags(c, org_id, id, p).await
}

/// The tag rows of a contact that has none yet, in one statement (a CSV import writes
/// thousands of contacts a second; one statement per tag was a large part of that).
async fn insert_tags<C: Conn>(
    c: &mut C,
    org_id: &str,
    id: &str,
    p: &Profile,
) -> Result<(), StoreError> {
    let tags = p.tags.as_slice();
    if tags.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..tags.len())
        .map(|i| format!("($1, $2, ${})", i + 3))
        .collect();
    let sql = format!(
        "INSERT INTO contact_tags (org_id, contact_id, tag) VALUES {} ON CONFLICT DO NOTHING",
        rows.join(", ")
    );
    let mut a = args![org_id, id];
    a.extend(
        tags.iter()
            .map(|t| crate::conn::Arg::from(t.to_lowercase())),
    );
    c.execute(&sql, a).await?;
    Ok(())
}

/// Inserts a new contact; writes `created` (with its status) to the timeline.
pub(crate) async fn create_contact<C: Conn>(
    c: &mut C,
    org_id: &str,
    p: &Profile,
    actor: &Actor,
    now: i64,
) -> Result<String, StoreError> {
    let id = new_id();
    let values: Vec<String> = (3..3 + PROFILE_COLUMNS.len())
        .map(|i| format!("${i}"))
        .collect();
    // A new contact was last seen and created when it was updated: now.
    let now_param = &values[PROFILE_COLUMNS
        .iter()
        .position(|c| *c == "updated_at")
        .unwrap_or(8)];
    let sql = format!(
        "INSERT INTO contacts (org_id, id, {}, conversation_count, message_count, last_seen_at, \
         created_at, rid) VALUES ($1, $2, {}, 0, 0, {now_param}, {now_param}, {})",
        PROFILE_COLUMNS.join(", "),
        values.join(", "),
        next_rid(c.dialect())
    );
    c.execute(&sql, [args![org_id, &id], profile_args(p, now)].concat())
        .await?;
    insert_tags(c, org_id, &id, p).await?;
    insert_event(
        c,
        org_id,
        &id,
        EventKind::Created,
        actor,
        json!({"status": p.status().as_str()}),
        now,
    )
    .await?;
    Ok(id)
}

/// Rows per multi-row statement of `create_contacts`: 17 arguments a contact keeps a
/// statement well inside SQLite's 32,766 and PostgreSQL's 65,535 bound arguments.
const CREATE_CHUNK: usize = 500;

/// `create_contact` for many new contacts at once (a CSV import's batch), each with the id
/// it was given: one multi-row INSERT per table and chunk instead of three statements per
/// contact, which were most of an import's time. Rows, tags, timeline entries and webhook
/// events are exactly those `create_contact` writes.
pub(crate) async fn create_contacts<C: Conn>(
    c: &mut C,
    org_id: &str,
    new: &[(&str, &Profile)],
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let d = c.dialect();
    // SQLite numbers rids here (one writer at a time); PostgreSQL's sequence numbers each row.
    let mut next_rid = match d {
        Dialect::Sqlite => {
            let (max,): (Option<i64>,) =
                c.fetch_one("SELECT max(rid) FROM contacts", vec![]).await?;
            max.unwrap_or(0) + 1
        }
        Dialect::Postgres => 0,
    };
    for chunk in new.chunks(CREATE_CHUNK) {
        let mut q = Positional::new(d);
        let mut rows = Vec::with_capacity(chunk.len());
        for (id, p) in chunk {
            let mut marks = vec![q.arg(org_id), q.arg(*id)];
            marks.extend(profile_args(p, now).into_iter().map(|a| q.arg(a)));
            marks.extend(["0".into(), "0".into(), q.arg(now), q.arg(now)]);
            marks.push(match d {
                Dialect::Sqlite => {
                    next_rid += 1;
                    q.arg(next_rid - 1)
                }
                Dialect::Postgres => "nextval('contacts_rid_seq')".to_string(),
            });
            rows.push(format!("({})", marks.join(", ")));
        }
        let sql = format!(
            "INSERT INTO contacts (org_id, id, {}, conversation_count, message_count, \
             last_seen_at, created_at, rid) VALUES {}",
            PROFILE_COLUMNS.join(", "),
            rows.join(", ")
        );
        c.execute(&sql, q.args).await?;
    }
    let tags: Vec<(&str, String)> = new
        .iter()
        .flat_map(|(id, p)| {
            p.tags
                .as_slice()
                .iter()
                .map(move |t| (*id, t.to_lowercase()))
        })
        .collect();
    for chunk in tags.chunks(CREATE_CHUNK * 4) {
        let mut q = Positional::new(d);
        let rows: Vec<String> = chunk
            .iter()
            .map(|(id, tag)| format!("({}, {}, {})", q.arg(org_id), q.arg(*id), q.arg(tag)))
            .collect();
        let sql = format!(
            "INSERT INTO contact_tags (org_id, contact_id, tag) VALUES {} ON CONFLICT DO NOTHING",
            rows.join(", ")
        );
        c.execute(&sql, q.args).await?;
    }
    let kind = EventKind::Created;
    let data = |p: &Profile| json!({"status": p.status().as_str()});
    if EventType::for_timeline(kind).is_some() && webhooks::may_have_endpoints(d, org_id) {
        // Each event carries its contact, read after the enqueue: one at a time.
        for (id, p) in new {
            insert_event(c, org_id, id, kind, actor, data(p), now).await?;
        }
        return Ok(());
    }
    let actor = actor.to_string();
    for chunk in new.chunks(CREATE_CHUNK * 2) {
        let mut q = Positional::new(d);
        let rows: Vec<String> = chunk
            .iter()
            .map(|(id, p)| {
                let marks = [
                    q.arg(org_id),
                    q.arg(new_id()),
                    q.arg(*id),
                    q.arg(kind.as_str()),
                    q.arg(&actor),
                    q.arg(data(p).to_string()),
                    q.arg(now),
                ];
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO contact_events (org_id, id, contact_id, kind, actor, data, at) VALUES {}",
            rows.join(", ")
        );
        c.execute(&sql, q.args).await?;
    }
    Ok(())
}

/// Inserts a contact again exactly as `row` held it (undo of a manual merge): same id,
/// profile, stats and times; a new search-index number. Writes no timeline entry.
pub(crate) async fn restore_contact<C: Conn>(
    c: &mut C,
    org_id: &str,
    row: &ContactRow,
) -> Result<(), StoreError> {
    let p = row.profile()?;
    let values: Vec<String> = (3..3 + PROFILE_COLUMNS.len())
        .map(|i| format!("${i}"))
        .collect();
    let n = 3 + PROFILE_COLUMNS.len();
    let sql = format!(
        "INSERT INTO contacts (org_id, id, {}, conversation_count, message_count, last_seen_at, \
         created_at, rid) VALUES ($1, $2, {}, ${}, ${}, ${}, ${}, {})",
        PROFILE_COLUMNS.join(", "),
        values.join(", "),
        n,
        n + 1,
        n + 2,
        n + 3,
        next_rid(c.dialect())
    );
    let stats = args![
        row.conversation_count,
        row.message_count,
        row.last_seen_at,
        row.created_at
    ];
    c.execute(
        &sql,
        [
            args![org_id, &row.id],
            profile_args(&p, row.updated_at),
            stats,
        ]
        .concat(),
    )
    .await?;
    write_tags(c, org_id, &row.id, &p).await
}

/// Records the timeline entries of a profile change: `fields_updated` with each changed
/// field, and `promoted` when the contact became a customer.
pub(crate) async fn record_changes<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
    (before, after): (Status, Status),
    changes: &Changes,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    if !changes.is_empty() {
        insert_event(
            c,
            org_id,
            contact_id,
            EventKind::FieldsUpdated,
            actor,
            json!({"changes": changes.to_json()}),
            now,
        )
        .await?;
    }
    if before == Status::Lead && after == Status::Customer {
        insert_event(
            c,
            org_id,
            contact_id,
            EventKind::Promoted,
            actor,
            json!({"from": "lead", "to": "customer"}),
            now,
        )
        .await?;
    }
    Ok(())
}

/// `last_seen_at` = now (identify, message, escalate).
pub(crate) async fn touch_contact<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE contacts SET last_seen_at = $3 WHERE org_id = $1 AND id = $2",
            args![org_id, contact_id, now],
        )
        .await?;
    expect_one(n)
}

/// How often calls that only show a visitor is still there (`session`, an identify that
/// changes nothing) may move `last_seen_at`.
pub(crate) const LAST_SEEN_INTERVAL_MS: i64 = 60_000;

/// `touch_contact` for calls that happen on every page view: writes only when the stored
/// `last_seen_at` is at least `interval` old, so a repeated call writes nothing.
pub(crate) async fn touch_contact_at_most_every<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
    now: i64,
    interval: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE contacts SET last_seen_at = $3 WHERE org_id = $1 AND id = $2 \
         AND (last_seen_at IS NULL OR last_seen_at <= $4)",
        args![org_id, contact_id, now, now - interval],
    )
    .await?;
    Ok(())
}

/// A write that should touch one row touched none: a concurrent merge removed it. The
/// transaction is run again and re-reads where things went.
pub(crate) fn expect_one(rows: u64) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Raced)
    }
}
