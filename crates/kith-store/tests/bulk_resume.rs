//! A bulk job stopped midway (its runner died) is taken over once its lease lapses and
//! finishes without repeating or skipping a contact, on both databases.

use kith_core::filter::ListFilter;
use kith_core::timeline::Actor;
use kith_store::{BulkAction, BulkRequest, BulkStep, NewOrg, Store};
use kith_testkit::{Backend, TestDb};

async fn resumes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::open(&db.url).await.expect("open");
    let creds = store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: "a@acme.test".into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("org");
    let org = store.org(&creds.org_id);
    org.seed(450, 3).await.expect("seed");
    let tagged = ListFilter::parse(&serde_json::json!({"tags": {"all": ["resumed"]}})).unwrap();
    assert_eq!(org.count_contacts(&tagged).await.unwrap(), 0);
    // The seed writes timelines of its own, some with field changes.
    let updates = "SELECT count(*) FROM contact_events WHERE kind = 'fields_updated'";
    let seeded_updates = db.count(updates).await;
    let (job, _) = org
        .start_bulk(&BulkRequest {
            filter: ListFilter::default(),
            selection: serde_json::json!({}),
            action: BulkAction::AddTags(vec!["resumed".into()]),
            expected_count: 450,
            idempotency_key: None,
            actor: Actor::Api,
        })
        .await
        .expect("start");
    // Runner A does one step, then "dies" holding the lease.
    assert_eq!(
        org.run_bulk_step(&job.id, "a").await.unwrap(),
        BulkStep::More
    );
    assert_eq!(org.bulk_job(&job.id).await.unwrap().done, 200);
    assert_eq!(
        org.run_bulk_step(&job.id, "b").await.unwrap(),
        BulkStep::Held
    );
    assert!(store.orphaned_bulk_jobs().await.unwrap().is_empty());
    // Its lease lapses: the sweep finds the job and runner B finishes it.
    db.execute("UPDATE bulk_jobs SET lease_until = 1").await;
    let orphans = store.orphaned_bulk_jobs().await.unwrap();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].1, job.id);
    org.run_bulk(&job.id, "b").await.unwrap();
    let done = org.bulk_job(&job.id).await.unwrap();
    assert_eq!(
        (done.status.as_str(), done.done, done.changed),
        ("done", 450, 450)
    );
    assert_eq!(org.count_contacts(&tagged).await.unwrap(), 450);
    // One timeline entry per contact, none twice.
    assert_eq!(db.count(updates).await - seeded_updates, 450);
    assert_eq!(db.count("SELECT count(*) FROM bulk_job_items").await, 0);
    // A finished job stays finished.
    assert_eq!(
        org.run_bulk_step(&job.id, "c").await.unwrap(),
        BulkStep::Finished
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_job_resumes_on_sqlite() {
    resumes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_job_resumes_on_postgres() {
    resumes(Backend::Postgres).await;
}
