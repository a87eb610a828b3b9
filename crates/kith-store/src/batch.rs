//! Group commit on SQLite: many write transactions share one database transaction.
//!
//! SQLite has one writer, and a transaction costs far more than its statements: `BEGIN
//! IMMEDIATE`, reading back the contacts it touched for the contact index, `COMMIT` (and its
//! WAL work), each a round trip to sqlx's worker thread, plus two task spawns. So a write
//! (`transact!`) does not open a transaction of its own: it joins the *open batch*, a
//! transaction shared by the writes that arrive while it is open, and runs its body there
//! inside a `SAVEPOINT`. A body that fails rolls back to its savepoint and fails alone; the
//! others go on. The write returns only after the batch's `COMMIT` (so an answer still means
//! committed) and after the contact index took the batch's changes (so lists are exact at
//! commit, as before).
//!
//! Bodies run one at a time, each in its own request's task, on the batch's connection,
//! handed from one to the next by a fair (FIFO) mutex; nothing is copied into a writer task.
//! That connection is the store's write connection, [`Lite`]: a body's statements run on its
//! own thread, with no hop to a connection thread (see `lite.rs` for why that matters here).
//! `BEGIN IMMEDIATE` and the commit run on a blocking thread: they may wait for another
//! process or checkpoint the WAL.
//! The batch commits when the body just run sees nobody else waiting (no wait is ever added
//! to form a batch: batches are exactly the writes that queued behind a running one), or when
//! it holds `MAX_MEMBERS` writes or is `MAX_AGE` old, which bounds the latency the batch adds.
//! The commit runs in a task of its own (`flush`), so a request dropped at any point cannot
//! leave the batch open: a body dropped half-way leaves its savepoint marked, and the next
//! one to take the connection (a body or the flush) rolls it back first.

use crate::backend::Inner;
use crate::checkpoint::Checkpointer;
use crate::lite::{Lite, LiteTarget};
use crate::StoreError;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

/// Writes per batch at most: the savepoints are cheap, but each member waits for all.
const MAX_MEMBERS: usize = 256;
/// A batch older than this commits after the body that noticed: bounds the added latency.
const MAX_AGE: Duration = Duration::from_millis(8);

/// How a batch ended, as its members learn it.
#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// The commit failed: `retry` when the failure is one a new attempt may not meet.
    Failed {
        retry: bool,
        why: String,
    },
}

/// The write connection and the batch open on it. While `batch` is `Some`, `lite` is too, and
/// inside that batch's transaction.
#[derive(Default)]
struct Writer {
    /// Opened on first use; `None` again when it was lost (a dropped `BEGIN`, a batch that
    /// could not be cleaned), which closes it and rolls back whatever it held.
    lite: Option<Lite>,
    batch: Option<OpenBatch>,
}

/// The connection of an open batch (a field apart, so the batch can be borrowed beside it).
fn held(lite: &mut Option<Lite>) -> &mut Lite {
    lite.as_mut()
        .expect("an open batch holds the write connection")
}

struct OpenBatch {
    writer: OwnedMutexGuard<()>,
    members: usize,
    opened: Instant,
    done: watch::Sender<Option<Outcome>>,
    savepoint: Savepoint,
}

/// The batch's savepoint, between bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoint {
    None,
    /// Opened empty by the previous body's release, in the same call, for the next one: a
    /// body that joins takes it over without a statement of its own.
    Spare,
    /// A body is inside it. Seen by anyone taking the connection, that body was dropped
    /// half-way (its request went away): roll it back before anything else.
    Held,
}

/// The group-commit state of one SQLite store.
#[derive(Default)]
pub(crate) struct GroupCommit {
    open: Arc<Mutex<Writer>>,
    /// Writes waiting for the connection: the one that just ran commits only when none wait.
    waiting: Arc<AtomicUsize>,
    /// Where the write connection opens (`None` on PostgreSQL).
    target: Option<LiteTarget>,
    /// Set by `close`: writes fail from then on, as on a closed pool.
    closed: AtomicBool,
    /// Checkpoints the WAL beside the writer (a database file; not in memory).
    pub(crate) checkpointer: Option<Checkpointer>,
}

impl GroupCommit {
    pub(crate) fn new(target: LiteTarget) -> Self {
        GroupCommit {
            checkpointer: (!target.in_memory).then(|| Checkpointer::start(target.path.clone())),
            target: Some(target),
            ..Default::default()
        }
    }
}

/// Closes the write connection (`Store::close`; nothing to do on PostgreSQL, which never opens
/// a batch): later writes fail; the open batch, if any, commits first (after the bodies
/// already holding or queued for the connection), so its writers hear and nothing is left
/// open when the database is given up.
pub(crate) async fn close(inner: &Arc<Inner>) {
    inner.group.closed.store(true, Ordering::SeqCst);
    flush(inner.clone()).await;
    inner.group.open.lock().await.lite = None;
    if let Some(c) = &inner.group.checkpointer {
        c.stop().await;
    }
}

/// Counts a write as waiting until it holds the connection; if it is dropped while waiting
/// (its request went away), a flush is queued so the batch it was counted in still commits.
struct Waiting {
    inner: Arc<Inner>,
    acquired: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.inner.group.waiting.fetch_sub(1, Ordering::SeqCst);
        if !self.acquired {
            tokio::spawn(flush(self.inner.clone()));
        }
    }
}

/// One write's place in the open batch: holds the connection while its body runs.
pub(crate) struct Member {
    inner: Arc<Inner>,
    /// When this write got the connection (its body's time is measured from here).
    acquired: Instant,
    guard: Option<OwnedMutexGuard<Writer>>,
    done: watch::Receiver<Option<Outcome>>,
}

const SAVEPOINT: &str = "SAVEPOINT kith_w";
const RELEASE: &str = "RELEASE kith_w";
const ROLLBACK_TO: &str = "ROLLBACK TO kith_w; RELEASE kith_w";
/// The end of one body and the start of the next one's savepoint, in one call.
const RELEASE_NEXT: &str = "RELEASE kith_w; SAVEPOINT kith_w";
const ROLLBACK_TO_NEXT: &str = "ROLLBACK TO kith_w; RELEASE kith_w; SAVEPOINT kith_w";

/// Rolls back a savepoint a dropped body left open. If that fails the batch cannot be
/// trusted: it is rolled back whole and its members told to run again.
fn clean(w: &mut Writer) {
    let Some(b) = w.batch.as_mut() else { return };
    if b.savepoint != Savepoint::Held {
        return;
    }
    match held(&mut w.lite).batch(ROLLBACK_TO) {
        Ok(()) => b.savepoint = Savepoint::None,
        Err(e) => {
            let b = w.batch.take().expect("checked above");
            let _ = b.done.send(Some(Outcome::Failed {
                retry: true,
                why: e.to_string(),
            }));
            // Closing the connection rolls the transaction back; then the writer lock goes.
            w.lite = None;
            drop(b.writer);
        }
    }
}

/// `BEGIN IMMEDIATE` on the write connection (opened first if need be), on a blocking thread:
/// it may wait for another process's write lock. If the caller is dropped meanwhile, the
/// connection is dropped with the answer, which rolls back what it began.
async fn begin(w: &mut Writer, target: &LiteTarget) -> Result<(), StoreError> {
    // A connection left inside a transaction (a rollback that failed) is not reused.
    let lite = w.lite.take().filter(Lite::is_autocommit);
    let target = target.clone();
    let (lite, began) = tokio::task::spawn_blocking(move || {
        let mut lite = match lite {
            Some(l) => l,
            None => match Lite::open(&target) {
                Ok(l) => l,
                Err(e) => return (None, Err(e)),
            },
        };
        let began = lite.batch("BEGIN IMMEDIATE");
        (Some(lite), began)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    w.lite = lite;
    Ok(began?)
}

impl Member {
    /// Joins the open batch (opening one when there is none) and starts this write's
    /// savepoint. Holds the connection until `finish`.
    pub(crate) async fn join(inner: &Arc<Inner>) -> Result<Member, StoreError> {
        inner.group.waiting.fetch_add(1, Ordering::SeqCst);
        let queued = Instant::now();
        let mut waiting = Waiting {
            inner: inner.clone(),
            acquired: false,
        };
        let mut guard = inner.group.open.clone().lock_owned().await;
        waiting.acquired = true;
        drop(waiting);
        if inner.group.closed.load(Ordering::SeqCst) {
            return Err(sqlx::Error::PoolClosed.into());
        }
        clean(&mut guard);
        if guard.batch.is_none() {
            let target = inner
                .group
                .target
                .as_ref()
                .expect("a SQLite store knows its write connection");
            let writer = inner.sqlite_writer.clone().lock_owned().await;
            begin(&mut guard, target).await?;
            guard.batch = Some(OpenBatch {
                writer,
                members: 0,
                opened: Instant::now(),
                done: watch::Sender::new(None),
                savepoint: Savepoint::None,
            });
        }
        let w = &mut *guard;
        let b = w.batch.as_mut().expect("opened above");
        if b.savepoint == Savepoint::None {
            if let Err(e) = held(&mut w.lite).batch(SAVEPOINT) {
                drop(guard);
                // The batch may hold earlier writes waiting for a commit.
                tokio::spawn(flush(inner.clone()));
                return Err(e.into());
            }
        }
        b.savepoint = Savepoint::Held;
        b.members += 1;
        let done = b.done.subscribe();
        let acquired = Instant::now();
        metrics::histogram!("kith_store_write_queue_seconds")
            .record((acquired - queued).as_secs_f64());
        Ok(Member {
            inner: inner.clone(),
            acquired,
            guard: Some(guard),
            done,
        })
    }

    /// The batch's connection, inside this write's savepoint.
    pub(crate) fn conn(&mut self) -> &mut Lite {
        let w = self
            .guard
            .as_mut()
            .expect("a member holds the open batch until it finishes");
        held(&mut w.lite)
    }

    /// Ends this write's part: keeps its work (`ok`) or rolls back to its savepoint, hands the
    /// connection on, and — when it kept its work — waits for the batch's commit.
    pub(crate) async fn finish(mut self, ok: bool) -> Result<(), StoreError> {
        let mut guard = self.guard.take().expect("finish runs once");
        let finishing = Instant::now();
        metrics::histogram!("kith_store_write_body_seconds")
            .record((finishing - self.acquired).as_secs_f64());
        let w = &mut *guard;
        let b = w.batch.as_mut().expect("a member holds the open batch");
        let commit_now = self.inner.group.waiting.load(Ordering::SeqCst) == 0
            || b.members >= MAX_MEMBERS
            || b.opened.elapsed() >= MAX_AGE;
        let sql = match (ok, commit_now) {
            (true, true) => RELEASE,
            (true, false) => RELEASE_NEXT,
            (false, true) => ROLLBACK_TO,
            (false, false) => ROLLBACK_TO_NEXT,
        };
        let ended = held(&mut w.lite).batch(sql);
        if ended.is_ok() {
            b.savepoint = if commit_now {
                Savepoint::None
            } else {
                Savepoint::Spare
            };
        }
        drop(guard);
        if commit_now {
            // In a task: it runs to the end even if this request is dropped meanwhile.
            tokio::spawn(flush(self.inner.clone()));
        }
        ended?;
        if !ok {
            return Ok(());
        }
        loop {
            if let Some(outcome) = self.done.borrow_and_update().clone() {
                metrics::histogram!("kith_store_write_commit_wait_seconds")
                    .record(finishing.elapsed().as_secs_f64());
                return match outcome {
                    Outcome::Committed => Ok(()),
                    Outcome::Failed { retry: true, .. } => Err(StoreError::Raced),
                    Outcome::Failed { retry: false, why } => {
                        Err(StoreError::Corrupt(format!("the commit failed: {why}")))
                    }
                };
            }
            if self.done.changed().await.is_err() {
                // The batch went away without a word (its transaction was dropped): rolled
                // back, so nothing of this write is stored; run it again.
                return Err(StoreError::Raced);
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // Dropped with the connection (its request went away mid-body): its savepoint stays
        // marked held, so the next holder rolls it back, and a flush makes sure the batch ends.
        if self.guard.take().is_some() {
            tokio::spawn(flush(self.inner.clone()));
        }
    }
}

/// Commits the open batch, if any: the contacts it touched are read back, `COMMIT`, the
/// contact index takes the changes, the writer lock goes, and then its members hear.
pub(crate) async fn flush(inner: Arc<Inner>) {
    let mut guard = inner.group.open.clone().lock_owned().await;
    clean(&mut guard);
    let Some(b) = guard.batch.take() else { return };
    let OpenBatch {
        writer,
        members,
        done,
        opened,
        ..
    } = b;
    // Where a batch's time goes: its bodies (open until here), then its commit.
    metrics::histogram!("kith_store_group_commit_open_seconds")
        .record(opened.elapsed().as_secs_f64());
    let committing = Instant::now();
    let mut lite = guard
        .lite
        .take()
        .expect("an open batch holds the write connection");
    let indexed = inner.index.is_some();
    // This task holds the connection throughout; the commit can checkpoint the WAL, so it
    // runs where blocking is allowed. The read-back's futures never wait (`lite.rs`).
    let (lite, outcome) = tokio::task::spawn_blocking(move || {
        let outcome = futures::executor::block_on(async {
            let changes = if indexed {
                crate::index::collect_changes(&mut lite).await?
            } else {
                Vec::new()
            };
            lite.batch("COMMIT")?;
            Ok::<_, StoreError>(changes)
        });
        if outcome.is_err() && !lite.is_autocommit() {
            // Leaves nothing of the batch behind; its members run again or fail.
            let _ = lite.batch("ROLLBACK");
        }
        // Still inside the transaction: closing the connection rolls it back.
        (lite.is_autocommit().then_some(lite), outcome)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    guard.lite = lite;
    let outcome = outcome.map(|changes| {
        if let Some(index) = &inner.index {
            index.apply(changes);
        }
        if let Some(c) = &inner.group.checkpointer {
            c.poke();
        }
    });
    drop(writer);
    metrics::histogram!("kith_store_group_commit_size").record(members as f64);
    metrics::histogram!("kith_store_group_commit_seconds")
        .record(committing.elapsed().as_secs_f64());
    let _ = done.send(Some(match outcome {
        Ok(()) => Outcome::Committed,
        Err(e) => Outcome::Failed {
            retry: e.is_retryable(),
            why: e.to_string(),
        },
    }));
    drop(guard);
}
