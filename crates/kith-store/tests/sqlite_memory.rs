//! An in-memory SQLite database (`sqlite::memory:`) serves writes and reads alike: the write
//! connection (`lite.rs`) opens the same shared in-memory database as sqlx's pool, so what a
//! write commits is what the next read finds.

use kith_core::filter::ListFilter;
use kith_store::{NewOrg, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_share_one_in_memory_database() {
    let store = Store::open("sqlite::memory:").await.expect("open");
    let creds = store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: "a@acme.test".into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("org");
    let org = store.org(&creds.org_id);
    org.seed(120, 7).await.expect("seed");
    store.contact_index_ready().await.expect("index");
    assert_eq!(
        org.count_contacts(&ListFilter::default()).await.unwrap(),
        120
    );
    store.close().await;
}
