//! WAL checkpoints beside the SQLite writer.
//!
//! A commit that leaves the WAL at `wal_autocheckpoint` pages or more checkpoints it before
//! `COMMIT` returns: it copies every page written since the last checkpoint back into the
//! database file and syncs both files, on the writer's path, while the next batch waits. A
//! profile of message ingest put those checkpoints at 11 % of the server's CPU, with the
//! machine a third idle: the write path is serial, so its length bounds the rate.
//!
//! So a thread of its own, with a connection of its own, runs `PRAGMA wal_checkpoint(PASSIVE)`
//! after commits (at most one pass per `PAUSE`): PASSIVE never waits for the writer or
//! readers, and copies what was committed when it began. The writer keeps its own automatic
//! checkpoint, which now finds most pages copied and only copies the rest: that one matters
//! still, as only a checkpoint that reaches the WAL's end lets the next write transaction
//! start the WAL over (a checkpointer beside a busy writer never reaches it), so the WAL stays
//! bounded as before. Both are PASSIVE: when one holds the checkpoint lock, the other skips.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The least time between two passes: a pass syncs both files, so one per commit would
/// add hundreds of syncs a second for a few pages each.
const PAUSE: Duration = Duration::from_millis(5);
/// After a failure (the file gone or unreadable): the writer's own checkpoints go on, and
/// this thread tries again this much later, warning once until a pass succeeds.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The checkpointing thread of one SQLite database file.
pub(crate) struct Checkpointer {
    wake: Mutex<Option<SyncSender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Passes of this thread after which the WAL had frames copied back.
    passes: Arc<AtomicU64>,
}

impl Checkpointer {
    pub(crate) fn start(path: PathBuf) -> Checkpointer {
        // One pending wake-up at most: commits while a pass runs ask for one more pass.
        let (wake, asked) = sync_channel(1);
        let passes = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name("kith-checkpoint".into())
            .spawn({
                let passes = passes.clone();
                move || run(&path, &asked, &passes)
            })
            .ok();
        Checkpointer {
            wake: Mutex::new(Some(wake)),
            thread: Mutex::new(thread),
            passes,
        }
    }

    /// Asks for a pass after a commit; never waits.
    pub(crate) fn poke(&self) {
        if let Some(wake) = &*self.wake.lock().unwrap_or_else(|e| e.into_inner()) {
            // Full: a pass is already asked for. Disconnected: the thread is gone (it could
            // not be spawned); the writer's own checkpoints go on.
            let _ = wake.try_send(());
        }
    }

    /// Passes so far after which the WAL had frames copied back.
    pub(crate) fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// Ends the thread and closes its connection (`Store::close`).
    pub(crate) async fn stop(&self) {
        self.wake.lock().unwrap_or_else(|e| e.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn run(path: &std::path::Path, asked: &Receiver<()>, passes: &AtomicU64) {
    let mut conn = None;
    let mut warned = false;
    while asked.recv().is_ok() {
        if conn.is_none() {
            conn = open(path)
                .map_err(|e| {
                    if !std::mem::replace(&mut warned, true) {
                        tracing::warn!(error = %e, "WAL checkpointer could not open the database; the writer's own checkpoints go on");
                    }
                })
                .ok();
        }
        // (busy, frames in the WAL, frames copied back): -1s when the file is not in WAL mode.
        let pass = conn.as_ref().map(|c| {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
        });
        match pass {
            Some(Ok((_, _, done))) => {
                warned = false;
                if done > 0 {
                    passes.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("kith_store_wal_checkpoint_passes_total").increment(1);
                }
                std::thread::sleep(PAUSE);
            }
            Some(Err(e)) => {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer's own checkpoints go on");
                }
                conn = None;
                std::thread::sleep(AFTER_FAILURE);
            }
            None => std::thread::sleep(AFTER_FAILURE),
        }
    }
}

fn open(path: &std::path::Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    use rusqlite::OpenFlags;
    let c = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The writer's durability setting: a checkpoint syncs the WAL before it copies, and the
    // database file after.
    c.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 0;")?;
    // A PASSIVE checkpoint never waits; reading the schema first may, briefly.
    c.busy_timeout(Duration::from_secs(1))?;
    Ok(c)
}
