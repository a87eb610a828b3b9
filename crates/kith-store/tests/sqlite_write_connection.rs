//! The SQLite write connection (`lite.rs`) beside sqlx's pool: an in-memory database is one
//! database for both, and closing a store commits the writes under way, refuses later ones
//! and gives the database up.

use kith_core::filter::ListFilter;
use kith_core::OrgId;
use kith_store::{NewOrg, Store};
use kith_testkit::{Backend, TestDb};

async fn new_org(store: &Store) -> OrgId {
    store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: "admin@acme.test".into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("org")
        .org_id
}

/// `sqlite::memory:` writes go through the write connection and the pool reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_share_one_in_memory_database() {
    let store = Store::open("sqlite::memory:").await.expect("open");
    let org_id = new_org(&store).await;
    store.org(&org_id).seed(120, 7).await.expect("seed");
    store.contact_index_ready().await.expect("index");
    assert_eq!(
        store
            .org(&org_id)
            .count_contacts(&ListFilter::default())
            .await
            .unwrap(),
        120
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_writes_under_way_and_refuses_later_ones() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = Store::open(&db.url).await.expect("open");
    let org_id = new_org(&store).await;
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
    assert_eq!(
        again
            .org(&org_id)
            .count_contacts(&ListFilter::default())
            .await
            .unwrap(),
        acknowledged
    );
    again.close().await;
}
