//! Webhooks: endpoints per organization, and the durable outbox their deliveries wait in.
//!
//! Events are enqueued inside the transaction of the change that raises them, at the two
//! choke points every path goes through: the timeline insert (`contact_rows::insert_event`)
//! and the message insert (`conversations::append_message_after`). Enqueueing is one
//! `INSERT … SELECT … FROM webhook_endpoints` per event, so an organization without endpoints
//! pays one cheap statement. The deliverer (in the server) claims due rows with a lease,
//! sends them and records each attempt here. Design and guarantees: docs/webhooks.md.

use crate::conn::{args, Arg, Conn, Dialect};
use crate::contact_rows::contact_by;
use crate::cursor;
use crate::dialect::{endpoints_known_in_process, fold_into_cte, next_delivery_seq, skip_locked};
use crate::ids::{new_id, now_ms, random_hex};
use crate::{read, transact, OrgStore, Page, Store, StoreError};
use kith_core::webhook::{events_column, events_from_column, EventType};
use kith_core::Timestamp;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use tokio::sync::Notify;

/// Deliveries enqueued by this process (counted when the statement inserted rows, before the
/// commit); `transact!` wakes the deliverer after a commit when it moved.
static ENQUEUED: AtomicU64 = AtomicU64::new(0);
static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

pub(crate) fn note_enqueued(rows: u64) {
    if rows > 0 {
        ENQUEUED.fetch_add(rows, Ordering::SeqCst);
    }
}

/// What `transact!` reads before a body runs.
pub(crate) fn enqueued_count() -> u64 {
    ENQUEUED.load(Ordering::SeqCst)
}

/// After a commit: wakes the deliverer if anything was enqueued since `before` (perhaps by a
/// concurrent transaction; an early wake costs one empty claim).
pub(crate) fn wake_if_enqueued_since(before: u64) {
    if ENQUEUED.load(Ordering::SeqCst) != before {
        WAKE.notify_one();
    }
}

/// The deliverer waits on this (and polls, for rows other processes enqueued).
pub fn webhook_wakeups() -> &'static Notify {
    &WAKE
}

/// Organizations that have (or had, since this process opened the database) a webhook
/// endpoint, where `dialect::endpoints_known_in_process` says the process sees every change:
/// one SQLite database is served by one process, and endpoints change only through it. Other
/// organizations' writes then skip the enqueue statement, which costs SQLite far more than the
/// row it would not insert (an INSERT opens a cursor on every index of the outbox). Never
/// shrinks (removing an organization could race with an endpoint being added): an
/// organization that deleted its endpoints pays the statement until the next start.
static ORGS_WITH_ENDPOINTS: LazyLock<std::sync::RwLock<std::collections::HashSet<String>>> =
    LazyLock::new(Default::default);

/// Whether a write of `org_id` must run the enqueue statement.
pub(crate) fn may_have_endpoints(d: Dialect, org_id: &str) -> bool {
    !endpoints_known_in_process(d)
        || ORGS_WITH_ENDPOINTS
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(org_id)
}

fn remember_org(org_id: &str) {
    ORGS_WITH_ENDPOINTS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(org_id.to_string());
}

/// At open: the organizations that have endpoints (see `ORGS_WITH_ENDPOINTS`).
pub(crate) async fn load_orgs_with_endpoints(store: &Store) -> Result<(), StoreError> {
    if !endpoints_known_in_process(store.dialect()) {
        return Ok(());
    }
    let rows: Vec<(String,)> = read!(store, |c| c
        .fetch_all("SELECT DISTINCT org_id FROM webhook_endpoints", vec![])
        .await)?;
    for (org_id,) in rows {
        remember_org(&org_id);
    }
    Ok(())
}

fn enqueue_sql(d: Dialect) -> &'static str {
    static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
        [Dialect::Sqlite, Dialect::Postgres].map(|d| {
            format!(
                "INSERT INTO webhook_deliveries (org_id, endpoint_id, seq, id, event_id, \
                 event_type, contact_id, payload, status, attempts, next_attempt_at, created_at) \
                 SELECT e.org_id, e.id, {}, $2 || '_' || e.id, $2, $3, $4, $5, 'pending', 0, $6, $6 \
                 FROM webhook_endpoints e \
                 WHERE e.org_id = $1 AND e.enabled AND e.events LIKE $7",
                next_delivery_seq(d)
            )
        })
    });
    match d {
        Dialect::Sqlite => &SQL[0],
        Dialect::Postgres => &SQL[1],
    }
}

/// [`enqueue_sql`] for many events at once (PostgreSQL, `message_batch`): one delivery per
/// row of `rows` and enabled endpoint of its organization subscribed to `ty`, numbered in the
/// rows' order (`n`), then by endpoint. `rows` is a CTE with the columns `org_id`, `event_id`,
/// `contact_id`, `payload` and `n`; `gate` a condition the caller runs first (its lock of the
/// contacts: the numbers follow commit order per contact, as in [`next_delivery_seq`]).
pub(crate) fn enqueue_rows_sql(ty: EventType, rows: &str, gate: &str, now: &str) -> String {
    format!(
        "INSERT INTO webhook_deliveries (org_id, endpoint_id, seq, id, event_id, \
         event_type, contact_id, payload, status, attempts, next_attempt_at, created_at) \
         SELECT org_id, endpoint_id, {seq}, event_id || '_' || endpoint_id, event_id, '{ty}', \
         contact_id, payload, 'pending', 0, {now}, {now} \
         FROM (SELECT e.org_id, e.id AS endpoint_id, r.event_id, r.contact_id, r.payload \
         FROM {rows} r JOIN webhook_endpoints e ON e.org_id = r.org_id AND e.enabled \
         AND e.events LIKE '%,{ty},%' WHERE {gate} ORDER BY r.n, e.id) AS d",
        seq = next_delivery_seq(Dialect::Postgres),
        ty = ty.as_str(),
    )
}

/// An event's body: `{id, type, created_at, organization_id, data}`.
pub(crate) fn payload(
    org_id: &str,
    event_id: &str,
    ty: EventType,
    now: i64,
    data: Value,
) -> String {
    json!({
        "id": event_id,
        "type": ty.as_str(),
        "created_at": Timestamp(now),
        "organization_id": org_id,
        "data": data,
    })
    .to_string()
}

/// The statement that enqueues `ty` (with its complete `data`) for every enabled endpoint of
/// the organization subscribed to it, for a caller that runs it with others.
pub(crate) fn enqueue_statement(
    d: Dialect,
    org_id: &str,
    event_id: &str,
    ty: EventType,
    contact_id: &str,
    data: Value,
    now: i64,
) -> (&'static str, Vec<Arg>) {
    (
        enqueue_sql(d),
        args![
            org_id,
            event_id,
            ty.as_str(),
            contact_id,
            payload(org_id, event_id, ty, now, data),
            now,
            format!("%,{},%", ty.as_str())
        ],
    )
}

/// A message's insert and its `message.created` enqueue, and which of the statements
/// answers the deliveries written (none when the organization has no endpoints). Where each
/// statement is a round trip (PostgreSQL) and `nest` is set, the two are one statement, the
/// insert as a data-modifying CTE of the enqueue, so a message costs no extra round trip for
/// webhooks; otherwise two (SQLite runs them in process, `lite.rs`; a caller that folds them
/// into a statement of its own, `conversations::fold_message`, asks for two). The enqueue
/// reads nothing the insert writes, so either way they may share one snapshot.
pub(crate) fn message_statements(
    d: Dialect,
    nest: bool,
    org_id: &str,
    (id, conversation_id, author, author_id, body): (&str, &str, &str, Option<&str>, &str),
    contact_id: &str,
    data: Value,
    now: i64,
) -> (Vec<(&'static str, Vec<Arg>)>, Option<usize>) {
    const INSERT: &str = "INSERT INTO messages (org_id, id, conversation_id, author, author_id, \
         body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let insert = || {
        (
            INSERT,
            args![org_id, id, conversation_id, author, author_id, body, now],
        )
    };
    if !may_have_endpoints(d, org_id) {
        return (vec![insert()], None);
    }
    let (enqueue, mut enqueue_args) = enqueue_statement(
        d,
        org_id,
        id,
        EventType::MessageCreated,
        contact_id,
        data,
        now,
    );
    if nest && fold_into_cte(d) {
        // The enqueue binds $1 org, $2 event id (the message's), $6 now; the insert's own
        // values follow as $8 to $11.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH inserted_message AS (INSERT INTO messages (org_id, id, conversation_id, \
                 author, author_id, body, created_at) VALUES ($1, $2, $8, $9, $10, $11, $6)) {}",
                enqueue_sql(Dialect::Postgres)
            )
        });
        enqueue_args.extend(args![conversation_id, author, author_id, body]);
        (vec![(SQL.as_str(), enqueue_args)], Some(0))
    } else {
        (vec![insert(), (enqueue, enqueue_args)], Some(1))
    }
}

/// Enqueues `ty` with its complete `data` (e.g. `contact.deleted`, whose contact is gone):
/// answers how many deliveries were written (one per subscribed endpoint).
// Contact deletion (bulk delete / erase) calls this in its transaction; until it lands only
// the tests do.
#[allow(dead_code)]
pub(crate) async fn enqueue<C: Conn>(
    c: &mut C,
    org_id: &str,
    ty: EventType,
    contact_id: &str,
    data: Value,
    now: i64,
) -> Result<u64, StoreError> {
    if !may_have_endpoints(c.dialect(), org_id) {
        return Ok(0);
    }
    let event_id = new_id();
    let (sql, args) = enqueue_statement(c.dialect(), org_id, &event_id, ty, contact_id, data, now);
    let n = c.execute(sql, args).await?;
    note_enqueued(n);
    Ok(n)
}

/// Enqueues the event a timeline entry raises (`event_id` = the entry's id). Contact events
/// carry the contact as it is now: it is read only when some endpoint subscribed.
pub(crate) async fn enqueue_timeline<C: Conn>(
    c: &mut C,
    org_id: &str,
    (event_id, ty): (&str, EventType),
    contact_id: &str,
    mut data: Value,
    now: i64,
) -> Result<(), StoreError> {
    if ty.carries_contact() {
        data["contact"] = Value::Null;
    }
    let (sql, a) = enqueue_statement(
        c.dialect(),
        org_id,
        event_id,
        ty,
        contact_id,
        data.clone(),
        now,
    );
    let n = c.execute(sql, a).await?;
    if n > 0 && ty.carries_contact() {
        if let Some(row) = contact_by(c, org_id, "id", contact_id).await? {
            data["contact"] = contact_json(&row.view()?);
            c.execute(
                "UPDATE webhook_deliveries SET payload = $3 WHERE org_id = $1 AND event_id = $2",
                args![org_id, event_id, payload(org_id, event_id, ty, now, data)],
            )
            .await?;
        }
    }
    note_enqueued(n);
    Ok(())
}

/// The contact as the admin API shows it (`GET /api/v1/contacts/{id}`).
pub(crate) fn contact_json(c: &crate::Contact) -> Value {
    json!({
        "id": c.id.as_str(),
        "status": c.status.as_str(),
        "user_id": c.user_id,
        "email": c.email,
        "name": c.name,
        "phone": c.phone,
        "company": c.company,
        "tags": c.tags,
        "metadata": c.metadata,
        "conversation_count": c.conversation_count,
        "message_count": c.message_count,
        "last_seen_at": c.last_seen_at,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

/// A merge: the absorbed contact's pending deliveries continue in the survivor's order (they
/// are older than the merge, so they still go first).
pub(crate) async fn move_pending<C: Conn>(
    c: &mut C,
    org_id: &str,
    absorbed_id: &str,
    holder_id: &str,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE webhook_deliveries SET contact_id = $3 \
         WHERE org_id = $1 AND contact_id = $2 AND status = 'pending'",
        args![org_id, absorbed_id, holder_id],
    )
    .await?;
    Ok(())
}

/// An endpoint as the API shows it (the secret included: admins configure receivers with it).
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub events: Vec<EventType>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    url: String,
    secret: String,
    events: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}
crate::lite::lite_row!(EndpointRow {
    id,
    url,
    secret,
    events,
    enabled,
    created_at,
    updated_at
});

impl EndpointRow {
    fn view(self) -> WebhookEndpoint {
        WebhookEndpoint {
            events: events_from_column(&self.events),
            id: self.id,
            url: self.url,
            secret: self.secret,
            enabled: self.enabled,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        }
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, secret, events, enabled, created_at, updated_at";

/// One attempt to deliver.
#[derive(Debug, Clone)]
pub struct WebhookAttempt {
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery of one event to one endpoint, with its attempts.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub contact_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub payload: Value,
    pub attempt_log: Vec<WebhookAttempt>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    seq: i64,
    id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    contact_id: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<i64>,
    created_at: i64,
}
crate::lite::lite_row!(DeliveryRow {
    seq,
    id,
    endpoint_id,
    event_id,
    event_type,
    contact_id,
    payload,
    status,
    attempts,
    next_attempt_at,
    last_status_code,
    last_error,
    delivered_at,
    created_at
});

const DELIVERY_COLUMNS: &str = "seq, id, endpoint_id, event_id, event_type, contact_id, payload, \
     status, attempts, next_attempt_at, last_status_code, last_error, delivered_at, created_at";

impl DeliveryRow {
    fn view(self, attempt_log: Vec<WebhookAttempt>) -> Result<WebhookDelivery, StoreError> {
        Ok(WebhookDelivery {
            payload: serde_json::from_str(&self.payload).map_err(|e| {
                StoreError::Corrupt(format!("payload of delivery {}: {e}", self.id))
            })?,
            next_attempt_at: (self.status == "pending").then_some(Timestamp(self.next_attempt_at)),
            id: self.id,
            endpoint_id: self.endpoint_id,
            event_id: self.event_id,
            event_type: self.event_type,
            contact_id: self.contact_id,
            status: self.status,
            attempts: self.attempts,
            last_status_code: self.last_status_code,
            last_error: self.last_error,
            delivered_at: self.delivered_at.map(Timestamp),
            created_at: Timestamp(self.created_at),
            attempt_log,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: String,
    attempt: i64,
    at: i64,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}
crate::lite::lite_row!(AttemptRow {
    delivery_id,
    attempt,
    at,
    status_code,
    error,
    duration_ms
});

/// A delivery a deliverer claimed: what to send where, and the lease that proves the claim.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub org_id: String,
    pub id: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub payload: String,
    /// Attempts before this one.
    pub attempts: i64,
    pub lease_until: i64,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    org_id: String,
    id: String,
    endpoint_id: String,
    payload: String,
    attempts: i64,
}
crate::lite::lite_row!(ClaimRow {
    org_id,
    id,
    endpoint_id,
    payload,
    attempts
});

/// How an attempt ended and what happens next.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// 2xx: delivered.
    pub delivered: bool,
    /// Not delivered: when to try again, or `None` to give up (`failed`).
    pub retry_at: Option<i64>,
}

/// The order of delivery-log pages: newest first.
const DELIVERIES_ORDER: &str = "-seq";

fn secret() -> String {
    format!("whsec_{}", random_hex(24))
}

impl OrgStore<'_> {
    pub async fn webhooks(self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let org_id = self.org_id();
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY id"
        );
        let rows: Vec<EndpointRow> = read!(self.store, |c| c.fetch_all(&sql, args![org_id]).await)?;
        Ok(rows.into_iter().map(EndpointRow::view).collect())
    }

    pub async fn webhook(self, id: &str) -> Result<WebhookEndpoint, StoreError> {
        let org_id = self.org_id();
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 AND id = $2"
        );
        let row: Option<EndpointRow> = read!(self.store, |c| c
            .fetch_optional(&sql, args![org_id, id])
            .await)?;
        row.map(EndpointRow::view).ok_or(StoreError::NotFound)
    }

    /// A new endpoint with a new secret. `url` and `events` are parsed by the caller
    /// (`kith_core::webhook::parse_url`, `parse_events`).
    pub async fn create_webhook(
        self,
        url: &str,
        events: &[EventType],
        enabled: bool,
    ) -> Result<WebhookEndpoint, StoreError> {
        let org_id = self.org_id();
        let (id, secret, now) = (new_id(), secret(), now_ms());
        let column = events_column(events);
        // Before the endpoint can commit, so no write after it skips the enqueue.
        remember_org(org_id);
        transact!(self.store, |c| c
            .execute(
                "INSERT INTO webhook_endpoints (org_id, id, url, secret, events, enabled, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                args![org_id, &id, url, &secret, &column, enabled, now],
            )
            .await)?;
        self.webhook(&id).await
    }

    /// Changes what is given; `rotate_secret` makes a new secret (the old one stops signing
    /// at once).
    pub async fn update_webhook(
        self,
        id: &str,
        url: Option<&str>,
        events: Option<&[EventType]>,
        enabled: Option<bool>,
        rotate_secret: bool,
    ) -> Result<WebhookEndpoint, StoreError> {
        let org_id = self.org_id();
        let column = events.map(events_column);
        let new_secret = rotate_secret.then(secret);
        let n = transact!(self.store, |c| c
            .execute(
                "UPDATE webhook_endpoints SET url = coalesce($3, url), \
                 events = coalesce($4, events), \
                 enabled = CASE $5 WHEN 1 THEN TRUE WHEN 0 THEN FALSE ELSE enabled END, \
                 secret = coalesce($6, secret), updated_at = $7 \
                 WHERE org_id = $1 AND id = $2",
                vec![
                    Arg::from(org_id),
                    Arg::from(id),
                    Arg::from(url),
                    Arg::from(column.clone()),
                    // Optional booleans bind as 1, 0 or NULL (one parameter type on both).
                    Arg::Int(enabled.map(i64::from)),
                    Arg::from(new_secret.clone()),
                    Arg::from(now_ms()),
                ],
            )
            .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.webhook(id).await
    }

    /// Deletes an endpoint with its deliveries and their log.
    pub async fn delete_webhook(self, id: &str) -> Result<(), StoreError> {
        let org_id = self.org_id();
        let n = transact!(self.store, |c| async {
            c.execute(
                "DELETE FROM webhook_attempts WHERE org_id = $1 AND delivery_id IN \
                 (SELECT id FROM webhook_deliveries WHERE org_id = $1 AND endpoint_id = $2)",
                args![org_id, id],
            )
            .await?;
            c.execute(
                "DELETE FROM webhook_deliveries WHERE org_id = $1 AND endpoint_id = $2",
                args![org_id, id],
            )
            .await?;
            c.execute(
                "DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2",
                args![org_id, id],
            )
            .await
        }
        .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// An endpoint's delivery log, newest first, `limit` after `cursor`.
    pub async fn webhook_deliveries(
        self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<WebhookDelivery>, StoreError> {
        let after = cursor
            .map(|raw| cursor::decode_int(raw, DELIVERIES_ORDER))
            .transpose()?;
        self.webhook(endpoint_id).await?;
        let org_id = self.org_id();
        let (rows, attempts) = read!(self.store, |c| async {
            let rows: Vec<DeliveryRow> = match &after {
                Some((seq, _)) => {
                    let sql = format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                         WHERE org_id = $1 AND endpoint_id = $2 AND seq < $3 \
                         ORDER BY seq DESC LIMIT $4"
                    );
                    c.fetch_all(&sql, args![org_id, endpoint_id, *seq, limit + 1])
                        .await?
                }
                None => {
                    let sql = format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                         WHERE org_id = $1 AND endpoint_id = $2 ORDER BY seq DESC LIMIT $3"
                    );
                    c.fetch_all(&sql, args![org_id, endpoint_id, limit + 1])
                        .await?
                }
            };
            let attempts = attempts_of(c, org_id, rows.iter().map(|r| r.id.as_str())).await?;
            Ok::<_, StoreError>((rows, attempts))
        }
        .await)?;
        let more = rows.len() as i64 > limit;
        let mut items = Vec::new();
        let mut last_seq = None;
        let mut attempts = attempts;
        for row in rows.into_iter().take(limit as usize) {
            last_seq = Some((row.seq, row.id.clone()));
            let log = attempts.remove(&row.id).unwrap_or_default();
            items.push(row.view(log)?);
        }
        Ok(Page {
            next_cursor: match last_seq {
                Some((seq, id)) if more => Some(cursor::encode(
                    DELIVERIES_ORDER,
                    Some(Value::from(seq)),
                    &id,
                )),
                _ => None,
            },
            items,
            total: None,
        })
    }

    /// Sends a delivery again now (a failed one gets one more attempt; a delivered one is
    /// sent again with the same `Kith-Webhook-Id`).
    pub async fn retry_webhook_delivery(
        self,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> Result<WebhookDelivery, StoreError> {
        let org_id = self.org_id();
        let n = transact!(self.store, |c| c
            .execute(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $4, \
                 lease_until = NULL WHERE org_id = $1 AND endpoint_id = $2 AND id = $3 \
                 AND status <> 'pending'",
                args![org_id, endpoint_id, delivery_id, now_ms()],
            )
            .await)?;
        if n > 0 {
            note_enqueued(n);
            WAKE.notify_one();
        }
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE org_id = $1 AND endpoint_id = $2 AND id = $3"
        );
        let (row, mut attempts) = read!(self.store, |c| async {
            let row: Option<DeliveryRow> = c
                .fetch_optional(&sql, args![org_id, endpoint_id, delivery_id])
                .await?;
            let attempts = attempts_of(c, org_id, [delivery_id]).await?;
            Ok::<_, StoreError>((row, attempts))
        }
        .await)?;
        let row = row.ok_or(StoreError::NotFound)?;
        let log = attempts.remove(&row.id).unwrap_or_default();
        row.view(log)
    }
}

/// The attempts of the given deliveries, by delivery, in order.
async fn attempts_of<'a, C: Conn>(
    c: &mut C,
    org_id: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<std::collections::HashMap<String, Vec<WebhookAttempt>>, StoreError> {
    let mut a = args![org_id];
    let mut marks = Vec::new();
    for id in ids {
        a.push(Arg::from(id));
        marks.push(format!("${}", a.len()));
    }
    let mut out: std::collections::HashMap<String, Vec<WebhookAttempt>> = Default::default();
    if marks.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM webhook_attempts \
         WHERE org_id = $1 AND delivery_id IN ({}) ORDER BY delivery_id, attempt",
        marks.join(", ")
    );
    let rows: Vec<AttemptRow> = c.fetch_all(&sql, a).await?;
    for r in rows {
        out.entry(r.delivery_id).or_default().push(WebhookAttempt {
            attempt: r.attempt,
            at: r.at,
            status_code: r.status_code,
            error: r.error,
            duration_ms: r.duration_ms,
        });
    }
    Ok(out)
}

/// A pending delivery `d` may go out: its endpoint is enabled, and no earlier delivery of
/// the same endpoint and contact is still pending (each contact's events in order).
const CLAIMABLE: &str = "EXISTS (SELECT 1 FROM webhook_endpoints e \
     WHERE e.org_id = d.org_id AND e.id = d.endpoint_id AND e.enabled) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
     WHERE p.org_id = d.org_id AND p.endpoint_id = d.endpoint_id \
     AND p.contact_id = d.contact_id AND p.seq < d.seq AND p.status = 'pending')";

impl Store {
    /// Claims up to `limit` due deliveries for `lease_ms`: pending, due, not claimed by a
    /// live lease, their endpoint enabled, and no earlier delivery of the same endpoint and
    /// contact still pending (so each contact's events go out in order, one at a time).
    /// Across processes, the lease (and on PostgreSQL `SKIP LOCKED`) keeps two deliverers
    /// from sending one delivery at once; a crashed process's leases expire.
    pub async fn claim_webhook_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let lease = now + lease_ms;
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_until = $2 \
             WHERE (org_id, id) IN ( \
               SELECT d.org_id, d.id FROM webhook_deliveries d \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                 AND (d.lease_until IS NULL OR d.lease_until < $1) \
                 AND {CLAIMABLE} \
               ORDER BY d.next_attempt_at, d.seq LIMIT $3{}) \
             AND status = 'pending' AND (lease_until IS NULL OR lease_until < $1) \
             RETURNING org_id, id, endpoint_id, payload, attempts",
            skip_locked(self.dialect())
        );
        let (rows, endpoints) = transact!(self, |c| async {
            let rows: Vec<ClaimRow> = c.fetch_all(&sql, args![now, lease, limit]).await?;
            let mut endpoints: std::collections::HashMap<(String, String), (String, String)> =
                Default::default();
            for r in &rows {
                let key = (r.org_id.clone(), r.endpoint_id.clone());
                if endpoints.contains_key(&key) {
                    continue;
                }
                let e: Option<(String, String)> = c
                    .fetch_optional(
                        "SELECT url, secret FROM webhook_endpoints WHERE org_id = $1 AND id = $2",
                        args![&r.org_id, &r.endpoint_id],
                    )
                    .await?;
                if let Some(e) = e {
                    endpoints.insert(key, e);
                }
            }
            Ok::<_, StoreError>((rows, endpoints))
        }
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let (url, secret) = endpoints
                    .get(&(r.org_id.clone(), r.endpoint_id.clone()))?
                    .clone();
                Some(ClaimedDelivery {
                    org_id: r.org_id,
                    id: r.id,
                    endpoint_id: r.endpoint_id,
                    url,
                    secret,
                    payload: r.payload,
                    attempts: r.attempts,
                    lease_until: lease,
                })
            })
            .collect())
    }

    /// Records an attempt of a claimed delivery and what follows from it. Answers false when
    /// the claim had expired and another deliverer took the delivery over (nothing written).
    pub async fn record_webhook_attempt(
        &self,
        d: &ClaimedDelivery,
        result: &AttemptResult,
        now: i64,
    ) -> Result<bool, StoreError> {
        let attempt = d.attempts + 1;
        let (status, next) = match (result.delivered, result.retry_at) {
            (true, _) => ("delivered", now),
            (false, Some(at)) => ("pending", at),
            (false, None) => ("failed", now),
        };
        let code = result.status_code.map(i64::from);
        let error = result.error.clone();
        transact!(self, |c| async {
            let n = c
                .execute(
                    "UPDATE webhook_deliveries SET status = $4, attempts = $5, \
                     next_attempt_at = $6, lease_until = NULL, last_status_code = $7, \
                     last_error = $8, delivered_at = $9 \
                     WHERE org_id = $1 AND id = $2 AND lease_until = $3",
                    args![
                        &d.org_id,
                        &d.id,
                        d.lease_until,
                        status,
                        attempt,
                        next,
                        code,
                        error.clone(),
                        result.delivered.then_some(now)
                    ],
                )
                .await?;
            if n == 0 {
                return Ok::<_, StoreError>(false);
            }
            // A manual retry of a delivery whose attempts were pruned could meet its own
            // number again: the newer attempt replaces it.
            c.execute(
                "DELETE FROM webhook_attempts WHERE org_id = $1 AND delivery_id = $2 \
                 AND attempt = $3",
                args![&d.org_id, &d.id, attempt],
            )
            .await?;
            c.execute(
                "INSERT INTO webhook_attempts (org_id, delivery_id, attempt, at, status_code, \
                 error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![
                    &d.org_id,
                    &d.id,
                    attempt,
                    now,
                    code,
                    error.clone(),
                    result.duration_ms
                ],
            )
            .await?;
            Ok(true)
        }
        .await)
    }

    /// When the next delivery can be claimed (for the deliverer's sleep): the earliest due
    /// time, or claim expiry, of the pending deliveries that are first in their contact's
    /// order at an enabled endpoint. A read, so an idle deliverer writes nothing.
    pub async fn next_webhook_due(&self) -> Result<Option<i64>, StoreError> {
        let sql = format!(
            "SELECT min(CASE WHEN d.lease_until > d.next_attempt_at THEN d.lease_until \
             ELSE d.next_attempt_at END) FROM webhook_deliveries d \
             WHERE d.status = 'pending' AND {CLAIMABLE}"
        );
        let row: Option<(Option<i64>,)> = read!(self, |c| c.fetch_optional(&sql, vec![]).await)?;
        Ok(row.and_then(|r| r.0))
    }

    /// Deletes deliveries delivered before `before` (and their attempts): answers how many.
    pub async fn prune_webhook_deliveries(&self, before: i64) -> Result<u64, StoreError> {
        transact!(self, |c| {
            async {
            c.execute(
                "DELETE FROM webhook_attempts WHERE (org_id, delivery_id) IN \
                 (SELECT org_id, id FROM webhook_deliveries \
                  WHERE status = 'delivered' AND next_attempt_at < $1)",
                args![before],
            )
            .await?;
            c.execute(
                "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND next_attempt_at < $1",
                args![before],
            )
            .await
        }
        .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact_rows::create_contact;
    use crate::NewOrg;
    use kith_core::timeline::Actor;
    use kith_core::Profile;
    use kith_testkit::{Backend, TestDb};

    async fn deliveries(store: &Store) -> i64 {
        let row: (i64,) = read!(store, |c| c
            .fetch_one("SELECT count(*) FROM webhook_deliveries", vec![])
            .await)
        .unwrap();
        row.0
    }

    /// The outbox row is part of the change's transaction: a change rolled back leaves no
    /// event, a committed one exactly one per subscribed endpoint; an organization without
    /// endpoints enqueues nothing.
    async fn outbox_commits_and_rolls_back_with_the_change(backend: Backend) {
        let db = TestDb::new(backend).await;
        let store = Store::open_with(&db.url, 4, crate::Access::Serve)
            .await
            .unwrap();
        let creds = store
            .create_org(&NewOrg {
                name: "Acme".into(),
                admin_email: "a@acme.test".into(),
                website_name: "Shop".into(),
            })
            .await
            .unwrap();
        let org = creds.org_id.clone();
        let org_id = org.as_str();
        let record = |fail: bool| {
            let store = store.clone();
            let org_id = org_id.to_string();
            async move {
                transact!(&store, |c| async {
                    create_contact(c, &org_id, &Profile::default(), &Actor::Api, now_ms()).await?;
                    if fail {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                }
                .await)
            }
        };
        record(false).await.unwrap();
        assert_eq!(deliveries(&store).await, 0, "no endpoint, nothing enqueued");
        let hooks = store.org(&org);
        hooks
            .create_webhook("http://127.0.0.1:9/a", &[EventType::ContactCreated], true)
            .await
            .unwrap();
        hooks
            .create_webhook("http://127.0.0.1:9/b", &[EventType::MessageCreated], true)
            .await
            .unwrap();
        assert!(record(true).await.is_err());
        assert_eq!(deliveries(&store).await, 0, "rolled back with the change");
        record(false).await.unwrap();
        assert_eq!(
            deliveries(&store).await,
            1,
            "one subscribed endpoint, one delivery"
        );
        // `contact.deleted`, as contact deletion raises it: only to subscribers.
        let oid = org_id.to_string();
        let n = transact!(&store, |c| enqueue(
            c,
            &oid,
            EventType::ContactDeleted,
            "gone",
            json!({"contact_id": "gone"}),
            now_ms()
        )
        .await)
        .unwrap();
        assert_eq!(n, 0, "nobody subscribed to contact.deleted");
        hooks
            .create_webhook("http://127.0.0.1:9/c", &[EventType::ContactDeleted], true)
            .await
            .unwrap();
        let n = transact!(&store, |c| enqueue(
            c,
            &oid,
            EventType::ContactDeleted,
            "gone",
            json!({"contact_id": "gone"}),
            now_ms()
        )
        .await)
        .unwrap();
        assert_eq!(n, 1);
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outbox_is_transactional_sqlite() {
        outbox_commits_and_rolls_back_with_the_change(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outbox_is_transactional_postgres() {
        outbox_commits_and_rolls_back_with_the_change(Backend::Postgres).await;
    }
}
