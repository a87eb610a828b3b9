//! The contact index on PostgreSQL: one copy in every serving process, kept exact across
//! processes by the change log (`contact_changes`, migration 0014).
//!
//! Every transaction that touches a contact, its tags or its conversations leaves rows there,
//! stamped with its transaction id. A process remembers the snapshot its index is exact at.
//! Catching up takes a new snapshot and, in the same statement, reads the rows of every
//! transaction visible in the new snapshot but not in the old one (those in progress at the
//! old one, or begun after it), then re-reads those contacts and applies them. A list read
//! catches up before it answers, so whatever committed before the read was asked, through any
//! process, is in its answer: exact at commit, with no lock or counter shared by writers.
//!
//! Concurrent reads share one catch-up; a background loop catches up every second so reads
//! find little to do. Rows are pruned once they are `KEEP` old; a process that could not
//! catch up for `STALE` (< `KEEP`) may have missed pruned rows, so it rebuilds its index,
//! answering lists by SQL meanwhile.

use super::{ContactIndex, Dirty};
use crate::StoreError;
use sqlx::{PgConnection, PgPool};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the background loop catches up between list reads.
const POLL: Duration = Duration::from_secs(1);
/// How long change-log rows are kept after their transaction ended.
const KEEP: Duration = Duration::from_secs(15 * 60);
/// An index that could not catch up for this long is rebuilt (rows it needs may be pruned).
const STALE: Duration = Duration::from_secs(10 * 60);
/// How often the loop records a snapshot for pruning and prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Where a following index stands.
pub(crate) struct Follow {
    /// The lock makes one catch-up at a time.
    state: tokio::sync::Mutex<Following>,
    /// When the index last caught up, in ms after `born` (read without the lock).
    fresh_ms: AtomicU64,
    born: Instant,
    /// `STALE` in ms; tests shorten it.
    stale_ms: AtomicU64,
}

impl Default for Follow {
    fn default() -> Self {
        Follow {
            state: tokio::sync::Mutex::new(Following::default()),
            fresh_ms: AtomicU64::new(0),
            born: Instant::now(),
            stale_ms: AtomicU64::new(STALE.as_millis() as u64),
        }
    }
}

#[derive(Default)]
struct Following {
    /// The snapshot the index is exact at and when it was taken; `None` while it is built.
    at: Option<(Snapshot, Instant)>,
    /// The connection catch-ups run on (opened on first use, dropped after an error): its
    /// own, so a list read under heavy writing does not queue for a pooled connection, and
    /// with sequential scans, parallel workers and JIT off. The log's ranges are small, but
    /// the planner cannot know that before the log's first ANALYZE: after a bulk load it
    /// guessed a third of the table and scanned it (60 ms a read), or started two workers
    /// to read an empty range (5 ms).
    conn: Option<PgConnection>,
}

async fn connect(pool: &PgPool) -> Result<PgConnection, StoreError> {
    use sqlx::ConnectOptions;
    let options = (*pool.connect_options()).clone().options([
        ("enable_seqscan", "off"),
        ("max_parallel_workers_per_gather", "0"),
        ("jit", "off"),
    ]);
    Ok(options.connect().await?)
}

impl Follow {
    fn mark_fresh(&self, taken: Instant) {
        let ms = taken.saturating_duration_since(self.born).as_millis() as u64;
        self.fresh_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn stale(&self) -> bool {
        let fresh = self.born + Duration::from_millis(self.fresh_ms.load(Ordering::Relaxed));
        fresh.elapsed() > Duration::from_millis(self.stale_ms.load(Ordering::Relaxed))
    }
}

/// What a PostgreSQL snapshot tells about transactions (`pg_current_snapshot()`, whose text
/// is `xmin:xmax:xip,xip,…`): every transaction id below `xmax` has ended, but those in
/// `xip`; none from `xmax` on has. Transaction ids as `bigint`, as the log stores them (see
/// migration 0014: the planner estimates ranges of `bigint`, not of `xid8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    xmin: i64,
    xmax: i64,
    xip: Vec<i64>,
}

impl std::str::FromStr for Snapshot {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::Corrupt(format!("unreadable snapshot {text:?}"));
        let mut parts = text.split(':');
        let number = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok()).ok_or_else(bad);
        let xmin = number(parts.next())?;
        let xmax = number(parts.next())?;
        let xip = match parts.next() {
            Some("") | None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|x| x.parse::<i64>().map_err(|_| bad()))
                .collect::<Result<_, _>>()?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Snapshot { xmin, xmax, xip })
    }
}

/// The snapshot a statement run now sees.
async fn snapshot(c: &mut PgConnection) -> Result<Snapshot, StoreError> {
    let (s,): (String,) = sqlx::query_as("SELECT pg_current_snapshot()::text")
        .fetch_one(c)
        .await?;
    s.parse()
}

/// A new snapshot and the contacts of every transaction it sees that the old one (`$1` its
/// `xmax`, `$2` its `xip`) did not, in one statement, so the rows read are exactly those the
/// new snapshot sees. Such a transaction was in progress at the old snapshot or began after
/// it: two index lookups, so a long transaction elsewhere does not widen the scan.
const CHANGES_SINCE: &str = "
WITH changed AS (
    SELECT org_id, contact_id, sites FROM contact_changes WHERE xid >= $1
    UNION ALL
    SELECT org_id, contact_id, sites FROM contact_changes WHERE xid = ANY($2)
)
SELECT pg_current_snapshot()::text AS snapshot, d.org_id, d.id, d.sites
FROM (SELECT 1) AS one LEFT JOIN (
    SELECT org_id, contact_id AS id, max(sites::int)::int8 AS sites
    FROM changed GROUP BY org_id, contact_id
) d ON TRUE";

#[derive(sqlx::FromRow)]
struct ChangedRow {
    snapshot: String,
    org_id: Option<String>,
    id: Option<String>,
    sites: Option<i64>,
}
crate::lite::lite_row!(ChangedRow {
    snapshot,
    org_id,
    id,
    sites
});

impl ContactIndex {
    /// An index for a PostgreSQL serving process (see the module doc).
    pub(crate) fn following() -> ContactIndex {
        ContactIndex {
            follow: Some(Follow::default()),
            ..ContactIndex::default()
        }
    }

    /// Whether this index is too far behind to answer (it is about to be rebuilt).
    pub(crate) fn is_stale(&self) -> bool {
        self.follow.as_ref().is_some_and(|f| f.stale())
    }

    /// Brings a following index up to date with everything committed before this call, by
    /// any process; a no-op for SQLite's index, which its own writes keep exact.
    pub(crate) async fn catch_up(&self, pool: &PgPool) -> Result<(), StoreError> {
        let Some(follow) = &self.follow else {
            return Ok(());
        };
        let asked = Instant::now();
        let mut state = follow.state.lock().await;
        let Following { at, conn } = &mut *state;
        let Some((since, taken)) = at.as_ref() else {
            return Err(StoreError::IndexBehind);
        };
        // A catch-up that began after this call was made already covers it.
        if *taken > asked {
            return Ok(());
        }
        if follow.stale() {
            return Err(StoreError::IndexBehind);
        }
        let taken = Instant::now();
        let c = match conn {
            Some(c) => c,
            None => conn.insert(connect(pool).await?),
        };
        let read = self.changes_since(c, since).await;
        let snapshot = match read {
            Ok(s) => s,
            Err(e) => {
                // It may be broken; the next catch-up opens another.
                *conn = None;
                return Err(e);
            }
        };
        *at = Some((snapshot, taken));
        follow.mark_fresh(taken);
        Ok(())
    }

    /// Applies the changes committed after `since` (see `CHANGES_SINCE`); answers the
    /// snapshot the index is now exact at.
    async fn changes_since(
        &self,
        conn: &mut PgConnection,
        since: &Snapshot,
    ) -> Result<Snapshot, StoreError> {
        let rows: Vec<ChangedRow> = sqlx::query_as(CHANGES_SINCE)
            .bind(since.xmax)
            .bind(&since.xip)
            .fetch_all(&mut *conn)
            .await?;
        let snapshot: Snapshot = match rows.first() {
            Some(r) => r.snapshot.parse()?,
            None => return Err(StoreError::Corrupt("no snapshot read".into())),
        };
        let dirty: Vec<Dirty> = rows
            .into_iter()
            .filter_map(|r| {
                Some(Dirty {
                    org_id: r.org_id?,
                    id: r.id?,
                    sites: r.sites.unwrap_or(0),
                })
            })
            .collect();
        if !dirty.is_empty() {
            metrics::counter!("kith_index_followed_contacts_total").increment(dirty.len() as u64);
            // Read after the snapshot: as new or newer than it, which the next catch-up
            // applies again if a later change is still to come.
            let changes = super::load_changes(&mut *conn, dirty).await?;
            self.apply(changes);
        }
        Ok(snapshot)
    }

    /// Starts following at `snapshot` (taken at `taken`, before the build read anything).
    async fn follow_from(&self, snapshot: Snapshot, taken: Instant) {
        if let Some(f) = &self.follow {
            f.state.lock().await.at = Some((snapshot, taken));
            f.mark_fresh(taken);
        }
    }

    /// Drops everything for a rebuild: lists go to SQL until it is ready again.
    async fn reset(&self) {
        if let Some(f) = &self.follow {
            f.state.lock().await.at = None;
        }
        self.ready.send_replace(super::Readiness::Building);
        super::write(&self.orgs).clear();
    }
}

/// Builds a following index, then keeps it caught up and prunes the change log, for the life
/// of the store; rebuilds when it fell `STALE` behind. `built` reports each build's outcome.
pub(crate) async fn run(
    index: Arc<ContactIndex>,
    pool: PgPool,
    built: impl Fn(&ContactIndex, Duration, &Result<(), StoreError>),
) {
    // Writes are applied directly: a build needs no list of them, it catches up instead.
    index.take_pending();
    let mut horizons: VecDeque<(Instant, Snapshot)> = VecDeque::new();
    let mut pruned_at = Instant::now();
    loop {
        let started = Instant::now();
        let outcome = build(&index, &pool).await;
        built(&index, started.elapsed(), &outcome);
        match outcome {
            Ok(()) => index.set_ready(Ok(())),
            // Built too slowly to catch up: at once again (lists stay on SQL).
            Err(StoreError::IndexBehind) => {
                index.reset().await;
                continue;
            }
            Err(e) => {
                // A failed build fails its reads, naming why; try again later.
                index.set_ready(Err(e.to_string()));
                tokio::time::sleep(POLL * 30).await;
                index.reset().await;
                continue;
            }
        }
        loop {
            tokio::time::sleep(POLL).await;
            match index.catch_up(&pool).await {
                Ok(()) => {}
                Err(StoreError::IndexBehind) => break,
                Err(e) => {
                    metrics::counter!("kith_index_follow_errors_total").increment(1);
                    tracing::warn!(error = %e, "the contact index could not catch up; retrying");
                    if index.is_stale() {
                        break;
                    }
                }
            }
            if pruned_at.elapsed() >= PRUNE_EVERY {
                pruned_at = Instant::now();
                if let Err(e) = prune(&pool, &mut horizons).await {
                    tracing::warn!(error = %e, "the contact change log could not be pruned");
                }
            }
        }
        tracing::warn!("the contact index fell behind the database; rebuilding it");
        metrics::counter!("kith_index_rebuilds_total").increment(1);
        index.reset().await;
    }
}

/// Reads every contact into the index, then catches up with what committed meanwhile.
async fn build(index: &Arc<ContactIndex>, pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let taken = Instant::now();
    let since = snapshot(&mut conn).await?;
    super::build(index, &mut *conn).await?;
    drop(conn);
    index.follow_from(since, taken).await;
    index.catch_up(pool).await?;
    Ok(())
}

/// Records a snapshot now, and deletes the rows of transactions that had ended when the
/// oldest recorded snapshot still at least `KEEP` old was taken.
async fn prune(
    pool: &PgPool,
    horizons: &mut VecDeque<(Instant, Snapshot)>,
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    horizons.push_back((Instant::now(), snapshot(&mut conn).await?));
    let mut horizon = None;
    while horizons.front().is_some_and(|(t, _)| t.elapsed() >= KEEP) {
        horizon = horizons.pop_front().map(|(_, s)| s);
    }
    if let Some(h) = horizon {
        prune_before(&mut conn, &h).await?;
    }
    Ok(())
}

/// Deletes the change-log rows of transactions that had ended when `horizon` was taken
/// (those below its `xmin`).
async fn prune_before(c: &mut PgConnection, horizon: &Snapshot) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM contact_changes WHERE xid < $1")
        .bind(horizon.xmin)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewOrg, Store};
    use kith_core::filter::{ListFilter, Sort};
    use kith_testkit::{Backend, TestDb};

    #[test]
    fn snapshots_are_read_from_their_text() {
        let s: Snapshot = "10:20:12,15".parse().unwrap();
        assert_eq!((s.xmin, s.xmax, s.xip), (10, 20, vec![12, 15]));
        let s: Snapshot = "748:748:".parse().unwrap();
        assert_eq!((s.xmin, s.xmax, s.xip), (748, 748, vec![]));
        for bad in ["", "1", "1:x:", "1:2:3,a", "1:2:3:4"] {
            assert!(bad.parse::<Snapshot>().is_err(), "{bad:?}");
        }
    }

    async fn serving(db: &TestDb) -> Store {
        let store = Store::open_with(&db.url, 4, crate::Access::Serve)
            .await
            .unwrap();
        store.contact_index_ready().await.unwrap();
        store
    }

    async fn new_org(store: &Store, name: &str) -> kith_core::OrgId {
        store
            .create_org(&NewOrg {
                name: name.into(),
                admin_email: format!("a@{}.test", name.to_lowercase()),
                website_name: "Shop".into(),
            })
            .await
            .unwrap()
            .org_id
    }

    async fn names(store: &Store, org: &kith_core::OrgId) -> Vec<Option<String>> {
        let page = store
            .org(org)
            .list_contacts(
                &ListFilter::default(),
                &Sort::parse("created_at").unwrap(),
                None,
                100,
            )
            .await
            .unwrap();
        page.items.into_iter().map(|c| c.name).collect()
    }

    async fn log_rows(store: &Store) -> i64 {
        let pool = store.pg_pool().unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM contact_changes")
            .fetch_one(pool)
            .await
            .unwrap();
        n
    }

    /// Pruning deletes the rows of transactions that ended before the horizon and nothing a
    /// later catch-up needs: a reader that followed before the prune stays exact after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_keeps_what_readers_still_need() {
        let db = TestDb::new(Backend::Postgres).await;
        let (writer, reader) = (serving(&db).await, serving(&db).await);
        let org = new_org(&writer, "Prune").await;
        writer.org(&org).seed(30, 3).await.unwrap();
        assert_eq!(names(&reader, &org).await.len(), 30);
        assert!(
            log_rows(&writer).await >= 30,
            "the seed's contacts are logged"
        );

        let pool = writer.pg_pool().unwrap();
        let mut conn = pool.acquire().await.unwrap();
        // Transaction ids are the cluster's: a transaction still open in another database
        // (another test) holds a snapshot's xmin back, and pruning with it. Take the horizon
        // once every logged transaction is below it.
        let (newest,): (i64,) = sqlx::query_as("SELECT max(xid) FROM contact_changes")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let horizon = loop {
            let h = snapshot(&mut conn).await.unwrap();
            if h.xmin > newest {
                break h;
            }
            assert!(
                Instant::now() < deadline,
                "a transaction stayed open: {h:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Written after the horizon was taken: kept.
        writer.org(&org).seed(5, 4).await.unwrap();
        let kept = log_rows(&writer).await;
        let pruned = prune_before(&mut conn, &horizon).await.unwrap();
        assert!(pruned >= 30, "pruned {pruned}");
        assert_eq!(log_rows(&writer).await, kept - pruned as i64);
        assert!(log_rows(&writer).await >= 5);

        assert_eq!(names(&reader, &org).await.len(), 35);
        assert_eq!(names(&reader, &org).await, names(&writer, &org).await);
    }

    /// A transaction still open during a catch-up is in the old snapshot's list of those in
    /// progress: when it commits, the next catch-up finds it although newer ones ended first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_open_across_a_catch_up_is_seen_when_it_commits() {
        use sqlx::Connection;
        let db = TestDb::new(Backend::Postgres).await;
        let store = serving(&db).await;
        let org = new_org(&store, "Open").await;
        store.org(&org).seed(10, 8).await.unwrap();
        // A change the index sees and the seed cannot touch: a new line of searchable text.
        // (Not the status: that updates contact_counts, whose rows the seed's inserts may
        // need, and the seed would wait for the open transaction.)
        let late = ListFilter::parse(&serde_json::json!({"q": "zelda-late"})).unwrap();
        let pool = store.pg_pool().unwrap().clone();
        let (id,): (String,) =
            sqlx::query_as("SELECT id FROM contacts WHERE org_id = $1 ORDER BY id LIMIT 1")
                .bind(org.as_str())
                .fetch_one(&pool)
                .await
                .unwrap();

        let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut open = other.begin().await.unwrap();
        sqlx::query(
            "UPDATE contacts SET search_text = search_text || E'\\nzelda-late' \
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(&id)
        .execute(&mut *open)
        .await
        .unwrap();
        // Later transactions commit and are caught up with while that one is open.
        store.org(&org).seed(4, 9).await.unwrap();
        assert_eq!(names(&store, &org).await.len(), 14);
        assert_eq!(store.org(&org).count_contacts(&late).await.unwrap(), 0);
        open.commit().await.unwrap();
        assert!(store.lists_from_index());
        assert_eq!(
            store.org(&org).count_contacts(&late).await.unwrap(),
            1,
            "the change committed last, by a transaction older than the others, is in the index"
        );
        store.close().await;
    }

    /// An index that could not follow for too long stops answering (lists go to SQL), is
    /// rebuilt from the database, and answers from the index again, exact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_that_fell_behind_is_rebuilt() {
        let db = TestDb::new(Backend::Postgres).await;
        let store = serving(&db).await;
        let org = new_org(&store, "Behind").await;
        store.org(&org).seed(20, 5).await.unwrap();
        let index = store.inner.index.clone().unwrap();
        let follow = index.follow.as_ref().unwrap();
        assert!(store.lists_from_index());

        follow.stale_ms.store(0, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(index.is_stale());
        // Stale: answered by SQL, still exact.
        assert!(!store.lists_from_index());
        assert_eq!(names(&store, &org).await.len(), 20);
        // The loop notices within a poll and rebuilds.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !index.is_building() {
            assert!(Instant::now() < deadline, "no rebuild began");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        follow
            .stale_ms
            .store(STALE.as_millis() as u64, Ordering::Relaxed);
        store.contact_index_ready().await.unwrap();
        store.org(&org).seed(3, 6).await.unwrap();
        assert!(store.lists_from_index());
        assert_eq!(names(&store, &org).await.len(), 23);
        store.close().await;
    }
}
