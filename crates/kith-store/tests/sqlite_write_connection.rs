//! The SQLite write connection (`lite.rs`) beside sqlx's pool: an in-memory database is one
//! database for both, and closing a store commits the writes under way, refuses later ones
//! and gives the database up. The point readers (`lite::PointReaders`) read what was
//! committed last, by this process or a command beside it.

use kith_core::filter::ListFilter;
use kith_core::{OrgId, VisitorId, WebsiteId};
use kith_store::{Access, Credentials, NewOrg, Store};
use kith_testkit::{Backend, TestDb};

async fn new_org(store: &Store) -> Credentials {
    store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: "admin@acme.test".into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("org")
}

/// Every contact of the organization, counted as a list answers it.
async fn contacts(store: &Store, org_id: &OrgId) -> i64 {
    store
        .org(org_id)
        .count_contacts(&ListFilter::default())
        .await
        .expect("count")
}

/// `sqlite::memory:` writes go through the write connection and the pool reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_share_one_in_memory_database() {
    let store = Store::open("sqlite::memory:").await.expect("open");
    let org_id = new_org(&store).await.org_id;
    store.org(&org_id).seed(120, 7).await.expect("seed");
    store.contact_index_ready().await.expect("index");
    assert_eq!(contacts(&store, &org_id).await, 120);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_writes_under_way_and_refuses_later_ones() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = Store::open(&db.url).await.expect("open");
    let org_id = new_org(&store).await.org_id;
    // Writes in flight while the store closes: each answers committed or an error.
    let writes: Vec<_> = (0..24u64)
        .map(|i| {
            let (store, org_id) = (store.clone(), org_id.clone());
            tokio::spawn(async move { store.org(&org_id).seed(5, i).await.is_ok() })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    store.close().await;
    let mut acknowledged = 0;
    for w in writes {
        if w.await.expect("no panic") {
            acknowledged += 5;
        }
    }
    assert!(
        store.org(&org_id).seed(5, 99).await.is_err(),
        "a write after close must fail"
    );
    // The database was given up: another store opens it and finds every acknowledged write.
    let again = Store::open(&db.url).await.expect("reopen after close");
    again.contact_index_ready().await.expect("index");
    assert_eq!(contacts(&again, &org_id).await, acknowledged);
    again.close().await;
}

/// The widget's website lookup runs on a point reader of the serving store: a secret rotated
/// by `kith website rotate-secret` (a short command on the same file) and a name changed by
/// the server itself are what the very next lookup answers; a returning visitor's page view
/// reads its row the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_reads_answer_what_was_committed_last_by_any_process() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = Store::open(&db.url).await.expect("open");
    let created = new_org(&store).await;
    let key = created.website_key.clone();
    let site = store.website_by_key(&key).await.unwrap().expect("the key");
    assert_eq!(site.identity_secret, created.identity_secret);
    // A visitor writes (its row is stored), then comes back: its session reads that row.
    let visitor = VisitorId::new("v-point-read");
    store
        .website(&site)
        .visitor_message(&visitor, "hello", None, None)
        .await
        .expect("message");
    store
        .website(&site)
        .visitor_session(&visitor)
        .await
        .expect("session");

    // Another process rotates the secret (as the CLI does, beside the server).
    let beside = Store::open_with(&db.url, 1, Access::Shared)
        .await
        .expect("open beside");
    let rotated = beside
        .org(&created.org_id)
        .rotate_identity_secret(&WebsiteId::new(site.id.as_str()), "cli")
        .await
        .expect("rotate");
    beside.close().await;
    assert_ne!(rotated.identity_secret, created.identity_secret);
    let seen = store.website_by_key(&key).await.unwrap().expect("the key");
    assert_eq!(seen.identity_secret, rotated.identity_secret);
    assert_eq!(
        seen.previous_identity_secret.as_deref(),
        Some(created.identity_secret.as_str())
    );

    // The server renames it: the next lookup has the new name.
    store
        .org(&created.org_id)
        .update_website(
            &WebsiteId::new(site.id.as_str()),
            Some("Store"),
            None,
            None,
            "admin",
        )
        .await
        .expect("rename");
    let seen = store.website_by_key(&key).await.unwrap().expect("the key");
    assert_eq!(seen.name, "Store");
    assert!(store
        .website_by_key("wk_nobody_0000")
        .await
        .unwrap()
        .is_none());
    // A closed store reads nothing more, as its closed pool would answer.
    store.close().await;
    assert!(store.website_by_key(&key).await.is_err());
}

/// Commits are checkpointed beside the writer (`checkpoint.rs`): a few messages, far fewer
/// pages than the writer's own automatic checkpoint waits for, reach the database file itself
/// shortly after they commit (a copy of the file without its WAL holds them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_reach_the_database_file_without_waiting_for_the_writer() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = Store::open(&db.url).await.expect("open");
    let created = new_org(&store).await;
    let site = store
        .website_by_key(&created.website_key)
        .await
        .unwrap()
        .expect("the key");
    for i in 0..5 {
        store
            .website(&site)
            .visitor_message(
                &VisitorId::new(format!("v-{i}")),
                &format!("hello {i}"),
                None,
                None,
            )
            .await
            .expect("message");
    }
    let file = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://"));
    let copy = file.with_file_name("copy.db");
    let in_file = || -> Option<i64> {
        std::fs::copy(&file, &copy).ok()?;
        let c = rusqlite::Connection::open(&copy).ok()?;
        c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .ok()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while in_file() != Some(5) {
        assert!(
            std::time::Instant::now() < deadline,
            "the messages are still only in the WAL (checkpoint passes: {:?})",
            store.wal_checkpoint_passes()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(store.wal_checkpoint_passes().unwrap_or(0) > 0);
    store.close().await;
}
