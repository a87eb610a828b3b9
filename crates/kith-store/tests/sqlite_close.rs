//! Closing a SQLite store commits the writes already under way, refuses later ones, and gives
//! the database up: what was acknowledged is there for the next store to open it.

use kith_core::filter::ListFilter;
use kith_store::{NewOrg, Store};
use kith_testkit::{Backend, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_writes_under_way_and_refuses_later_ones() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = Store::open(&db.url).await.expect("open");
    let org_id = store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: "admin@acme.test".into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("org")
        .org_id;
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
