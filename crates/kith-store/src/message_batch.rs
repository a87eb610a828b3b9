//! Returning visitors' messages on PostgreSQL, many per statement (issue 18, goal 2).
//!
//! On PostgreSQL a message costs per statement far more than per row: executor start, the
//! statement triggers that note contact changes, foreign-key checks, the commit
//! (`docs/benchmarks.md`). So a returning visitor's message (to a conversation it names, the
//! commonest write) does not run a transaction of its own: it queues for this process's
//! batcher, which writes every message queued in one transaction of two statements (the
//! visitors locked and read, then one statement that checks each message and writes them
//! all) and answers each after the `COMMIT`. No wait is added to form a batch: one starts as
//! soon as the last one ended, with what queued meanwhile (as the announcer's rounds,
//! `realtime.rs`).
//!
//! The batch writes what the full path (`widget::visitor_message`) would write, and
//! *declines* what it does not decide alone: a visitor not stored, without a contact yet or
//! of another website; a conversation the visitor may not write to, or that does not exist;
//! an idempotency key already used, or repeated within the batch. Nothing of a declined
//! message is written; it takes the full path, which answers it (not found, a replay, a new
//! contact). A check PostgreSQL makes under its locks that does not come out as read (a
//! conversation a merge moved meanwhile), or any error, rolls the whole batch back and every
//! message of it takes the full path: no write rests on a read made without a lock.
//!
//! Locks are taken in the full path's order (visitor, contact, conversation), each kind
//! sorted by key, so two batches (two processes) do not wait for each other in a cycle.

use crate::conversations::{message_data, posted, PostedMessage, Visibility};
use crate::ids::{new_id, now_ms};
use crate::model::ConversationRow;
use crate::widget::{visibility_on, Visitor, IDEMPOTENCY_WINDOW_MS, VISITOR_COLUMNS};
use crate::{webhooks, StoreError};
use kith_core::contact::preview;
use kith_core::conversation::AuthorKind;
use kith_core::webhook::EventType;
use sqlx::{FromRow, PgPool, Row};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use tokio::sync::{mpsc, oneshot};

/// Messages per batch at most: each waits for all of its batch.
const BATCH: usize = 128;

/// A returning visitor's message, as the widget call gives it.
pub(crate) struct Job {
    pub org_id: String,
    pub website_id: String,
    pub visitor_id: String,
    pub conversation_id: String,
    pub body: String,
    pub key: Option<String>,
}

/// What became of a message in its batch: written, or declined (`None`: nothing of it was
/// written, the full path must run it).
type Answer = oneshot::Sender<Result<Option<PostedMessage>, StoreError>>;

/// This process's batcher of returning messages (started on first use).
pub(crate) struct MessageBatcher {
    tx: mpsc::UnboundedSender<(Job, Answer)>,
}

impl MessageBatcher {
    pub(crate) fn start(pool: PgPool) -> MessageBatcher {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Job, Answer)>();
        // Ends when the store (which holds the only sender) is dropped.
        tokio::spawn(async move {
            let mut round = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut round, BATCH).await > 0 {
                QUEUED.fetch_sub(round.len() as u64, Ordering::SeqCst);
                let (jobs, answers): (Vec<Job>, Vec<Answer>) = round.drain(..).unzip();
                ROUNDS.fetch_add(1, Ordering::Relaxed);
                let outcome = write(&pool, &jobs).await;
                metrics::histogram!("kith_store_message_batch_size").record(jobs.len() as f64);
                match outcome {
                    Ok(written) => {
                        for (answer, w) in answers.into_iter().zip(written) {
                            let _ = answer.send(w.transpose());
                        }
                    }
                    Err(Failure::RolledBack(why)) => {
                        tracing::debug!(%why, "a message batch was rolled back; its messages take the full path");
                        metrics::counter!("kith_store_message_batches_rolled_back_total")
                            .increment(1);
                        for answer in answers {
                            let _ = answer.send(Ok(None));
                        }
                    }
                    Err(Failure::Unknown(e)) => {
                        // Answered as the database being unavailable (503): whether the
                        // messages are stored is not known, and a client that retries with
                        // its idempotency key gets the one that was.
                        let why = format!("the commit of a message batch failed: {e}");
                        tracing::warn!(%why);
                        for answer in answers {
                            let e = std::io::Error::other(why.clone());
                            let _ = answer.send(Err(StoreError::Database(sqlx::Error::Io(e))));
                        }
                    }
                }
            }
        });
        MessageBatcher { tx }
    }

    /// Writes `job` in the next batch, or declines it (`None`).
    pub(crate) async fn submit(&self, job: Job) -> Result<Option<PostedMessage>, StoreError> {
        let (answer, heard) = oneshot::channel();
        QUEUED.fetch_add(1, Ordering::SeqCst);
        if self.tx.send((job, answer)).is_err() {
            QUEUED.fetch_sub(1, Ordering::SeqCst);
            // The batcher's task is gone (its runtime shut down while the store lives on).
            return Ok(None);
        }
        match heard.await {
            Ok(outcome) => outcome,
            // The task went away with this message mid-batch: whether it was written is not
            // known, so it must not be written again.
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolClosed)),
        }
    }
}

/// How a batch failed.
enum Failure {
    /// Nothing of it is stored.
    RolledBack(String),
    /// The commit's answer was lost: it may or may not be stored.
    Unknown(sqlx::Error),
}

fn rolled_back(e: impl std::fmt::Display) -> Failure {
    Failure::RolledBack(e.to_string())
}

/// Messages written in batches by this process (tests: proof the batch is the path taken).
static BATCHED: AtomicU64 = AtomicU64::new(0);

/// Messages waiting for a batch to take them.
static QUEUED: AtomicU64 = AtomicU64::new(0);

/// How many messages wait for their batch in this process (tests: to know a batch will
/// take them together).
#[doc(hidden)]
pub fn queued_messages() -> u64 {
    QUEUED.load(Ordering::SeqCst)
}

/// Batches this process ran (their transactions begun, whatever came of them).
static ROUNDS: AtomicU64 = AtomicU64::new(0);

/// How many returning messages this process wrote in batches, and how many batches it ran
/// (PostgreSQL; tests).
#[doc(hidden)]
pub fn batched_messages() -> (u64, u64) {
    (
        BATCHED.load(Ordering::Relaxed),
        ROUNDS.load(Ordering::Relaxed),
    )
}

/// The visitors of a batch, locked in key order, as the full path reads them.
static LOCK_VISITORS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT org_id, {VISITOR_COLUMNS} FROM visitors \
         WHERE (org_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[])) \
         ORDER BY org_id, id FOR UPDATE"
    )
});

/// The batch's writes, one statement. `i` is the candidates, one row per message (its
/// visitor's [`Visibility`] in `website_id`, `contact_id`, `visitor_id`, `verified`); `ok`
/// those that may go (the rule over the conversation as read; no key used in the window).
/// A write that must follow another gates on it (a one-time filter on its count): the
/// contacts are locked before the conversations and before the enqueue takes its numbers,
/// and expired keys are deleted before the new ones go in (one may replace another). The
/// conversations are locked (`lcv`, which answers each row as it is once locked, the latest
/// version) and the rule checked again over them for every message (`moved`): if one does
/// not hold any more, no conversation is updated, the counts do not match, and the caller
/// rolls back. (Not a subquery over the batch's rows in the update's own `WHERE`: PostgreSQL
/// re-checks a row changed meanwhile against its own conditions but not against other
/// relations scanned anew, and that let a moved conversation through, as
/// `tests/postgres_message_batch.rs` found.) The one row (more with several conversations) answers the count of each
/// write, `ok` (the candidates' numbers, from 1) and the conversations as left.
static WRITE: LazyLock<String> = LazyLock::new(|| {
    let window = IDEMPOTENCY_WINDOW_MS;
    let may_read = Visibility::rule(
        "cv.",
        ["i.website_id", "i.contact_id", "i.visitor_id", "i.verified"],
    );
    let may_still = Visibility::rule(
        "cv.",
        ["o.website_id", "o.contact_id", "o.visitor_id", "o.verified"],
    );
    let enqueue = webhooks::enqueue_rows_sql(
        EventType::MessageCreated,
        "ok",
        "(SELECT count(*) FROM uc) >= 0",
        "$12",
    );
    format!(
        "WITH i AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
         $5::bool[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[]) \
         WITH ORDINALITY AS i(org_id, website_id, visitor_id, contact_id, verified, \
         conversation_id, event_id, body, preview, key, payload, n)), \
         ok AS (SELECT i.* FROM i JOIN conversations cv \
         ON cv.org_id = i.org_id AND cv.id = i.conversation_id WHERE {may_read} \
         AND (i.key IS NULL OR NOT EXISTS (SELECT 1 FROM idempotency_keys k \
         WHERE k.org_id = i.org_id AND k.visitor_id = i.visitor_id AND k.key = i.key \
         AND k.created_at > $12 - {window}))), \
         uv AS (UPDATE visitors SET last_seen_at = $12 \
         FROM (SELECT DISTINCT org_id, visitor_id FROM ok) AS t \
         WHERE visitors.org_id = t.org_id AND visitors.id = t.visitor_id RETURNING 1), \
         lc AS (SELECT 1 FROM contacts WHERE (org_id, id) IN (SELECT org_id, contact_id FROM ok) \
         ORDER BY org_id, id FOR UPDATE), \
         uc AS (UPDATE contacts SET message_count = message_count + t.k, last_seen_at = $12 \
         FROM (SELECT org_id, contact_id, count(*) AS k FROM ok GROUP BY org_id, contact_id) AS t \
         WHERE contacts.org_id = t.org_id AND contacts.id = t.contact_id \
         AND (SELECT count(*) FROM lc) >= 0 RETURNING 1), \
         m AS (INSERT INTO messages (org_id, id, conversation_id, author, author_id, body, \
         created_at) SELECT org_id, event_id, conversation_id, 'visitor', NULL, body, $12 \
         FROM ok ORDER BY n RETURNING 1), \
         wh AS ({enqueue} RETURNING 1), \
         kd AS (DELETE FROM idempotency_keys USING \
         (SELECT DISTINCT org_id, visitor_id FROM ok WHERE key IS NOT NULL) AS t \
         WHERE idempotency_keys.org_id = t.org_id AND idempotency_keys.visitor_id = t.visitor_id \
         AND idempotency_keys.created_at <= $12 - {window} RETURNING 1), \
         ki AS (INSERT INTO idempotency_keys (org_id, visitor_id, key, message_id, created_at) \
         SELECT org_id, visitor_id, key, event_id, $12 FROM ok WHERE key IS NOT NULL \
         AND (SELECT count(*) FROM kd) >= 0 RETURNING 1), \
         lcv AS (SELECT org_id, id, website_id, contact_id, visitor_id, verified_start \
         FROM conversations WHERE (org_id, id) IN (SELECT org_id, conversation_id FROM ok) \
         AND (SELECT count(*) FROM uc) >= 0 ORDER BY org_id, id FOR UPDATE), \
         moved AS (SELECT 1 FROM ok AS o JOIN lcv AS cv \
         ON cv.org_id = o.org_id AND cv.id = o.conversation_id WHERE NOT ({may_still})), \
         ucv AS (UPDATE conversations SET message_count = message_count + t.k, \
         last_message_preview = t.preview, last_message_at = $12, updated_at = $12, \
         status = CASE WHEN status = 'resolved' THEN 'open' ELSE status END \
         FROM (SELECT DISTINCT ON (org_id, conversation_id) org_id, conversation_id, preview, \
         count(*) OVER (PARTITION BY org_id, conversation_id) AS k FROM ok \
         ORDER BY org_id, conversation_id, n DESC) AS t \
         WHERE conversations.org_id = t.org_id AND conversations.id = t.conversation_id \
         AND NOT EXISTS (SELECT 1 FROM moved) {returning}, conversations.org_id AS conversation_org) \
         SELECT a.*, u.* FROM (SELECT (SELECT array_agg(n ORDER BY n) FROM ok) AS ok, \
         (SELECT count(*) FROM uv) AS uv, (SELECT count(*) FROM uc) AS uc, \
         (SELECT count(*) FROM m) AS m, (SELECT count(*) FROM wh) AS wh, \
         (SELECT count(*) FROM kd) AS kd, (SELECT count(*) FROM ki) AS ki) AS a \
         LEFT JOIN ucv AS u ON TRUE",
        returning = crate::model::CONVERSATION_RETURNING,
    )
});

/// A message that may go in the batch, with what its visitor's row said.
struct Candidate<'a> {
    job: &'a Job,
    may: Visibility,
    message_id: String,
}

/// Writes what it can of `jobs` in one transaction: for each, its posted message, `None`
/// (declined, nothing of it written), or an error for a message stored whose answer could
/// not be built (never a decline: it must not be written again).
async fn write(
    pool: &PgPool,
    jobs: &[Job],
) -> Result<Vec<Option<Result<PostedMessage, StoreError>>>, Failure> {
    let now = now_ms();
    let mut tx = pool.begin().await.map_err(rolled_back)?;
    // One batch holds every returning message of the process: a lock held long elsewhere (a
    // bulk delete's transaction, say) must not stall them all. Past this the batch rolls back
    // and its messages wait in transactions of their own, one request each.
    sqlx::query("SET LOCAL lock_timeout = '1s'")
        .execute(&mut *tx)
        .await
        .map_err(rolled_back)?;
    let (orgs, ids): (Vec<&str>, Vec<&str>) = jobs
        .iter()
        .map(|j| (j.org_id.as_str(), j.visitor_id.as_str()))
        .unzip();
    let rows = sqlx::query(&LOCK_VISITORS)
        .bind(orgs)
        .bind(ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(rolled_back)?;
    let mut visitors = HashMap::with_capacity(rows.len());
    for row in &rows {
        let org: String = row.try_get("org_id").map_err(rolled_back)?;
        let v = Visitor::from_row(row).map_err(rolled_back)?;
        visitors.insert((org, v.id.clone()), v);
    }
    // Which jobs may go: the rest are declined before any write.
    let mut keys = HashSet::new();
    let mut candidates = Vec::with_capacity(jobs.len());
    let mut place = vec![None; jobs.len()];
    for (n, job) in jobs.iter().enumerate() {
        let Some(v) = visitors.get(&(job.org_id.clone(), job.visitor_id.clone())) else {
            continue;
        };
        if v.website_id != job.website_id || v.contact_id.is_none() {
            continue;
        }
        if let Some(key) = &job.key {
            // A repeat within the batch replays the first, after it committed.
            if !keys.insert((&job.org_id, &job.visitor_id, key)) {
                continue;
            }
        }
        place[n] = Some(candidates.len());
        candidates.push(Candidate {
            job,
            may: visibility_on(&job.website_id, v),
            message_id: new_id(),
        });
    }
    if candidates.is_empty() {
        return Ok(jobs.iter().map(|_| None).collect());
    }
    let column = |f: &dyn Fn(&Candidate) -> String| candidates.iter().map(f).collect::<Vec<_>>();
    let contact = |c: &Candidate| c.may.contact_id.clone().unwrap_or_default();
    let payloads = column(&|c| {
        let data = message_data(
            (&c.message_id, &c.job.conversation_id, &contact(c)),
            AuthorKind::Visitor,
            &c.job.body,
            now,
        );
        webhooks::payload(
            &c.job.org_id,
            &c.message_id,
            EventType::MessageCreated,
            now,
            data,
        )
    });
    let rows = sqlx::query(&WRITE)
        .bind(column(&|c| c.job.org_id.clone()))
        .bind(column(&|c| c.may.website_id.clone()))
        .bind(column(&|c| c.may.visitor_id.clone()))
        .bind(column(&contact))
        .bind(
            candidates
                .iter()
                .map(|c| c.may.verified_for_contact)
                .collect::<Vec<_>>(),
        )
        .bind(column(&|c| c.job.conversation_id.clone()))
        .bind(column(&|c| c.message_id.clone()))
        .bind(column(&|c| c.job.body.clone()))
        .bind(column(&|c| preview(&c.job.body)))
        .bind(
            candidates
                .iter()
                .map(|c| c.job.key.clone())
                .collect::<Vec<_>>(),
        )
        .bind(payloads)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(rolled_back)?;
    let first = rows
        .first()
        .ok_or_else(|| rolled_back("the batch statement answered no row"))?;
    let count = |name: &str| first.try_get::<i64, _>(name).map_err(rolled_back);
    let ok: Vec<usize> = first
        .try_get::<Option<Vec<i64>>, _>("ok")
        .map_err(rolled_back)?
        .unwrap_or_default()
        .into_iter()
        .map(|n| n as usize - 1)
        .collect();
    let mut conversations = HashMap::new();
    for row in &rows {
        if let Some(org) = row
            .try_get::<Option<String>, _>("conversation_org")
            .map_err(rolled_back)?
        {
            let conv = ConversationRow::from_row(row).map_err(rolled_back)?;
            conversations.insert((org, conv.id.clone()), conv);
        }
    }
    // Every write touched what the messages that went ask of it, or none stays.
    let went = || ok.iter().map(|&i| &candidates[i]);
    let distinct =
        |f: &dyn Fn(&Candidate) -> (String, String)| went().map(f).collect::<HashSet<_>>().len();
    let expected = [
        (
            "uv",
            distinct(&|c| (c.job.org_id.clone(), c.job.visitor_id.clone())),
        ),
        ("uc", distinct(&|c| (c.job.org_id.clone(), contact(c)))),
        ("m", ok.len()),
        ("ki", went().filter(|c| c.job.key.is_some()).count()),
    ];
    for (name, want) in expected {
        let got = count(name)?;
        if got != want as i64 {
            return Err(rolled_back(format!(
                "{name} touched {got} rows, not {want}"
            )));
        }
    }
    let want = distinct(&|c| (c.job.org_id.clone(), c.job.conversation_id.clone()));
    if conversations.len() != want {
        return Err(rolled_back(format!(
            "{} conversations updated, not {want} (one changed meanwhile)",
            conversations.len()
        )));
    }
    let enqueued = count("wh")? as u64;
    match tx.commit().await {
        Ok(()) => {}
        // PostgreSQL answered: the transaction is over, rolled back.
        Err(e @ sqlx::Error::Database(_)) => return Err(rolled_back(e)),
        Err(e) => return Err(Failure::Unknown(e)),
    }
    let before = webhooks::enqueued_count();
    webhooks::note_enqueued(enqueued);
    webhooks::wake_if_enqueued_since(before);
    BATCHED.fetch_add(ok.len() as u64, Ordering::Relaxed);
    // Each message's answer shows its conversation as that message left it: the later
    // messages of the batch to it are not counted yet.
    let mut later: HashMap<(&str, &str), i64> = HashMap::new();
    let mut answers: Vec<Option<Result<PostedMessage, StoreError>>> =
        candidates.iter().map(|_| None).collect();
    for &i in ok.iter().rev() {
        let c = &candidates[i];
        let key = (c.job.org_id.as_str(), c.job.conversation_id.as_str());
        let after = later.entry(key).or_insert(0);
        let answer = match conversations.get(&(key.0.to_string(), key.1.to_string())) {
            Some(conv) => {
                let mut conv = conv.clone();
                conv.message_count -= *after;
                conv.last_message_preview = Some(preview(&c.job.body));
                let message = (
                    c.message_id.clone(),
                    AuthorKind::Visitor,
                    c.job.body.as_str(),
                    now,
                );
                posted(message, conv, false)
            }
            // Counted above, so not reached; stored either way, so an error, not a decline.
            None => Err(StoreError::Corrupt(format!(
                "conversation {} of a batched message was not answered",
                key.1
            ))),
        };
        *after += 1;
        answers[i] = Some(answer);
    }
    Ok(place
        .into_iter()
        .map(|p| p.and_then(|i| answers[i].take()))
        .collect())
}
