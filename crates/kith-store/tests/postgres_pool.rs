//! The PostgreSQL pool hands out connections without a ping when they were used moments ago
//! (a round trip saved per request), and pings one idle for longer: connections the database
//! dropped while idle (a restart, an operator's `pg_terminate_backend`) are replaced, not
//! answered as errors.

use kith_store::{NewOrg, Store};
use kith_testkit::{Backend, TestDb};
use sqlx::Connection;
use std::time::Duration;

fn org(name: &str) -> NewOrg {
    NewOrg {
        name: name.into(),
        admin_email: format!("admin@{}.test", name.to_lowercase()),
        website_name: "Shop".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_dropped_by_the_database_while_idle_are_replaced() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = Store::open(&db.url).await.expect("open");
    let first = store.create_org(&org("Before")).await.expect("org");

    // Every connection to this database but the admin's own goes, as in a restart.
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let dropped: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!dropped.is_empty(), "the store held pooled connections");

    // Idle past the ping threshold (5 s): the pool finds them dead and opens new ones.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let website = store
        .website_by_key(&first.website_key)
        .await
        .expect("a read after the restart")
        .expect("the website");
    assert_eq!(website.org_id, first.org_id);
    let second = store
        .create_org(&org("After"))
        .await
        .expect("a write after the restart");
    assert_ne!(second.org_id, first.org_id);
    store.close().await;
}
