//! The in-memory contact index (what a serving store answers lists from) must give the same
//! pages, order and counts as the SQL reference, after every kind of write: bulk load, admin
//! edits (names, tags, metadata, user ids), first messages on several websites, and merges
//! that delete contacts and move conversations. On PostgreSQL a second serving store (another
//! process) on the same database must answer the same at once: its index follows the first
//! one's writes through the database's change log.

use kith_core::contact::ProfilePatch;
use kith_core::filter::{ListFilter, Sort};
use kith_core::identity::Claim;
use kith_core::timeline::Actor;
use kith_core::{ContactId, OrgId, VisitorId};
use kith_store::{Access, NewOrg, Store};
use kith_testkit::{Backend, TempDir, TestDb};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const SORTS: [&str; 6] = [
    "last_seen_at",
    "-last_seen_at",
    "created_at",
    "-created_at",
    "name",
    "-name",
];

/// Every page of `filter` in `sort` order through one path, and the totals it reported.
async fn walk(
    store: &Store,
    org: &OrgId,
    filter: &ListFilter,
    sort: &Sort,
    limit: i64,
    by_sql: bool,
) -> (Vec<ContactId>, Vec<i64>) {
    let (mut ids, mut totals) = (Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    loop {
        let page = if by_sql {
            store
                .org(org)
                .list_contacts_by_sql(filter, sort, cursor.as_deref(), limit)
                .await
        } else {
            store
                .org(org)
                .list_contacts(filter, sort, cursor.as_deref(), limit)
                .await
        }
        .expect("page");
        ids.extend(page.items.iter().map(|c| c.id.clone()));
        totals.push(page.total.expect("total"));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(ids.len() < 10_000, "paging does not end");
    }
    (ids, totals)
}

fn random_filter(rng: &mut StdRng, texts: &[String], websites: &[String]) -> Value {
    let tags = [
        "vip",
        "beta",
        "churn-risk",
        "newsletter",
        "enterprise",
        "trial",
        "nope",
    ];
    let mut f = serde_json::Map::new();
    if rng.gen_bool(0.3) {
        f.insert(
            "status".into(),
            json!(["lead", "customer"][rng.gen_range(0..2)]),
        );
    }
    if rng.gen_bool(0.5) {
        let mut t = serde_json::Map::new();
        for op in ["all", "any", "none"] {
            if rng.gen_bool(0.4) {
                let n = rng.gen_range(1..3);
                let pick: Vec<&str> = tags.choose_multiple(rng, n).copied().collect();
                t.insert(op.into(), json!(pick));
            }
        }
        f.insert("tags".into(), Value::Object(t));
    }
    if rng.gen_bool(0.5) {
        // A substring of a real contact's text, 1 to 8 characters, sometimes upper-cased.
        let text = texts.choose(rng).expect("texts");
        let chars: Vec<char> = text.chars().filter(|c| *c != '\n').collect();
        if !chars.is_empty() {
            let len = rng.gen_range(1..=8).min(chars.len());
            let start = rng.gen_range(0..=chars.len() - len);
            let mut term: String = chars[start..start + len].iter().collect();
            if rng.gen_bool(0.3) {
                term = term.to_uppercase();
            }
            f.insert("q".into(), json!(term));
        }
    }
    if rng.gen_bool(0.25) {
        let plan = ["free", "pro", "enterprise", "team"][rng.gen_range(0..4)];
        let seats = [3.0, 3.5][rng.gen_range(0..2)];
        let ratio = [0.5, 0.3, 0.30000000000000004][rng.gen_range(0..3)];
        let m = match rng.gen_range(0..8) {
            0 => json!({"plan": {"eq": plan}}),
            1 => json!({"seats": {"eq": rng.gen_range(1..20)}}),
            2 => json!({"beta": {"exists": rng.gen_bool(0.5)}}),
            3 => json!({"flag": {"eq": true}}),
            // Numbers compare by value: the 3.0 stored below equals 3.
            4 => json!({"seats": {"eq": seats}}),
            5 => json!({"ratio": {"eq": ratio}}),
            6 => json!({"we\"ird": {"exists": true}}),
            _ => json!({"seats": {"eq": "3"}}),
        };
        f.insert("metadata".into(), m);
    }
    if rng.gen_bool(0.2) {
        f.insert("message_count".into(), json!({"min": rng.gen_range(0..3)}));
    }
    if rng.gen_bool(0.15) {
        f.insert(
            "conversation_count".into(),
            json!({"max": rng.gen_range(0..2)}),
        );
    }
    if rng.gen_bool(0.2) {
        let days = rng.gen_range(1..60);
        let t = kith_core::Timestamp(kith_store::now_ms() - days * 86_400_000);
        let k = if rng.gen_bool(0.5) { "after" } else { "before" };
        let field = if rng.gen_bool(0.5) {
            "last_seen_at"
        } else {
            "created_at"
        };
        f.insert(field.into(), json!({ k: t.to_rfc3339() }));
    }
    if rng.gen_bool(0.2) {
        f.insert(
            "website_id".into(),
            json!(websites.choose(rng).expect("site")),
        );
    }
    Value::Object(f)
}

async fn compare_all(store: &Store, org: &OrgId, rng: &mut StdRng, rounds: usize, label: &str) {
    let all = store
        .org(org)
        .list_contacts_by_sql(
            &ListFilter::default(),
            &Sort::parse("name").unwrap(),
            None,
            200,
        )
        .await
        .unwrap();
    let texts: Vec<String> = all
        .items
        .iter()
        .map(|c| {
            [&c.name, &c.email, &c.company, &c.phone, &c.user_id]
                .iter()
                .filter_map(|x| x.as_deref())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let websites: Vec<String> = store
        .org(org)
        .websites()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id.into_string())
        .chain(["no-such-site".to_string()])
        .collect();
    let mut nonempty = 0;
    for round in 0..rounds {
        let raw = random_filter(rng, &texts, &websites);
        let filter = ListFilter::parse(&raw).expect("valid filter");
        let sort = Sort::parse(SORTS[round % SORTS.len()]).unwrap();
        let limit = [1, 7, 50][round % 3];
        let by_index = walk(store, org, &filter, &sort, limit, false).await;
        let by_sql = walk(store, org, &filter, &sort, limit, true).await;
        assert_eq!(
            by_index,
            by_sql,
            "{label}: filter {raw} sorted {} (limit {limit})",
            sort.as_str()
        );
        assert_eq!(
            by_index.1[0] as usize,
            by_index.0.len(),
            "{label}: the count equals the contacts paged through for {raw}"
        );
        assert_eq!(
            store.org(org).count_contacts(&filter).await.unwrap() as usize,
            by_index.0.len()
        );
        nonempty += usize::from(!by_index.0.is_empty());
    }
    // The random filters must exercise the index, not just agree on empty results.
    assert!(
        nonempty * 3 >= rounds,
        "{label}: only {nonempty} of {rounds} filters matched anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_answers_like_sql_after_every_kind_of_write_sqlite() {
    every_kind_of_write(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_answers_like_sql_after_every_kind_of_write_postgres() {
    every_kind_of_write(Backend::Postgres).await
}

/// Compares the writing store and, on PostgreSQL, a second serving store that only reads.
async fn compare_everywhere(
    stores: &[&Store],
    org: &OrgId,
    rng: &mut StdRng,
    rounds: usize,
    label: &str,
) {
    // The reading store first, while the writes are newest.
    for (i, store) in stores.iter().enumerate().rev() {
        compare_all(store, org, rng, rounds, &format!("{label}, store {i}")).await;
    }
}

async fn every_kind_of_write(backend: Backend) {
    // Removed on drop, also when the test fails.
    let db = TestDb::new(backend).await;
    let url = db.url.clone();
    let store = Store::open_with(&url, 4, Access::Serve).await.unwrap();
    // SQLite has one serving process; PostgreSQL a second one that follows the first.
    let other = match backend {
        Backend::Postgres => Some(Store::open_with(&url, 2, Access::Serve).await.unwrap()),
        Backend::Sqlite => None,
    };
    let stores: Vec<&Store> = std::iter::once(&store).chain(other.as_ref()).collect();
    let stores = &stores[..];
    for s in stores {
        // Answered by the index from here on, not by SQL as while it builds.
        s.contact_index_ready().await.unwrap();
    }
    let creds = store
        .create_org(&NewOrg {
            name: "Index".into(),
            admin_email: "a@example.com".into(),
            website_name: "Main".into(),
        })
        .await
        .unwrap();
    let org = creds.org_id.clone();
    let second = store
        .org(&org)
        .create_website("Second", kith_core::verify::VerificationMode::Off, &[])
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(7);

    // Bulk load through the ordinary write transaction.
    store.org(&org).seed(400, 11).await.unwrap();
    compare_everywhere(stores, &org, &mut rng, 60, "after seeding").await;

    // Admin edits: names (some removed), tags, metadata, user ids (lead ↔ customer).
    let page = store
        .org(&org)
        .list_contacts(
            &ListFilter::default(),
            &Sort::parse("created_at").unwrap(),
            None,
            200,
        )
        .await
        .unwrap();
    for (i, c) in page.items.iter().enumerate().take(80) {
        let body = match i % 5 {
            0 => json!({"name": null, "tags": ["VIP", "trial"]}),
            1 => {
                json!({"name": format!("Ünïcode Person {i}"), "metadata": {"beta": true, "flag": true, "plan": null}})
            }
            2 => json!({"user_id": format!("edited-{i}"), "tags": []}),
            3 => {
                json!({"user_id": null, "company": "Zeta GmbH", "metadata": {"seats": 3.0, "ratio": 0.30000000000000004}})
            }
            _ => {
                json!({"email": format!("renamed.{i}@example.org"), "tags": ["enterprise", "Churn-Risk"]})
            }
        };
        let patch = ProfilePatch::parse(&body).unwrap();
        store
            .org(&org)
            .patch_contact(&c.id, &patch, &Actor::Api)
            .await
            .unwrap_or_else(|e| panic!("patch {body}: {e}"));
    }
    compare_everywhere(stores, &org, &mut rng, 60, "after admin edits").await;
    // Numbers compare by value: the sixteen contacts given `seats: 3.0` match `eq: 3`; a
    // string "3" matches none of them.
    for (eq, at_least, at_most) in [(json!(3), 16, 1_000), (json!("3"), 0, 0)] {
        let f = ListFilter::parse(&json!({"metadata": {"seats": {"eq": eq}}})).unwrap();
        let n = store.org(&org).count_contacts(&f).await.unwrap();
        assert!((at_least..=at_most).contains(&n), "seats = {eq}: {n}");
    }

    // First messages on the second website create contacts with conversations there; a
    // verified identify (the site checks no hash) with a seeded contact's email merges the
    // visitor's new contact into it: one contact deleted, its conversation moved.
    let emails: Vec<String> = page
        .items
        .iter()
        .skip(100)
        .take(30)
        .filter_map(|c| c.email.clone())
        .collect();
    for (i, email) in emails.iter().enumerate() {
        let visitor = VisitorId::new(format!("v-{i}"));
        store
            .website(&second)
            .visitor_message(&visitor, "hello from the second site", None, None)
            .await
            .unwrap();
        if i % 2 == 0 {
            let claim =
                Claim::from_identify(&json!({"email": email, "name": "Merged Person"}), None)
                    .unwrap();
            store
                .website(&second)
                .identify(&visitor, &claim)
                .await
                .unwrap();
        }
    }
    compare_everywhere(stores, &org, &mut rng, 80, "after messages and merges").await;

    // A reopened store builds its index from the database and answers the same.
    store.close().await;
    drop(store);
    if let Some(other) = other {
        other.close().await;
    }
    let reopened = Store::open_with(&url, 4, Access::Serve).await.unwrap();
    compare_all(&reopened, &org, &mut rng, 40, "after reopening").await;
    reopened.close().await;
}

#[tokio::test]
async fn a_second_process_cannot_take_a_serving_sqlite_database() {
    // Removed on drop, also when the test fails.
    let tmp = TempDir::new("lock");
    let dir = tmp.path().to_path_buf();
    let url = format!("sqlite://{}/k.db", dir.display());
    let serving = Store::open_with(&url, 2, Access::Serve).await.unwrap();
    for access in [Access::Serve, Access::Bulk] {
        let err = match Store::open_with(&url, 2, access).await {
            Ok(_) => panic!("{access:?} opened a database another store serves"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("in use by another kith process"), "{err}");
    }
    // Another name for the same file (a symlinked folder) shares the lock.
    let alias = std::env::temp_dir().join(format!("kith-lock-alias-{}", kith_store::new_id()));
    std::os::unix::fs::symlink(&dir, &alias).unwrap();
    let aliased = format!("sqlite://{}/k.db", alias.display());
    assert!(Store::open_with(&aliased, 2, Access::Serve).await.is_err());
    let _ = std::fs::remove_file(&alias);
    // Short commands that write no contacts may run beside the server.
    let shared = Store::open_with(&url, 1, Access::Shared).await.unwrap();
    shared.close().await;
    serving.close().await;
    drop(serving);
    // Once the server is gone, the database is free again.
    Store::open_with(&url, 2, Access::Bulk)
        .await
        .unwrap()
        .close()
        .await;
}

/// A write whose caller goes away mid-flight (an HTTP client hanging up) must neither leave a
/// committed change out of the index nor leave a pooled connection inside a transaction.
/// Each first message is polled a random number of times, then dropped; after every drop
/// the next write must succeed and the index must count what the database holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_dropped_mid_flight_keep_the_index_and_the_pool_sound() {
    use std::task::Poll;
    // Removed on drop, also when the test fails.
    let tmp = TempDir::new("drop");
    let dir = tmp.path().to_path_buf();
    let url = format!("sqlite://{}/k.db", dir.display());
    let store = Store::open_with(&url, 4, Access::Serve).await.unwrap();
    let creds = store
        .create_org(&NewOrg {
            name: "Drops".into(),
            admin_email: "a@example.com".into(),
            website_name: "Main".into(),
        })
        .await
        .unwrap();
    let org = creds.org_id;
    let site = store.org(&org).websites().await.unwrap().remove(0);
    // The database's own answer, through connections of a second store.
    let truth = Store::open_with(&url, 1, Access::Shared).await.unwrap();
    let (all, by_name) = (ListFilter::default(), Sort::parse("name").unwrap());
    let mut rng = StdRng::seed_from_u64(3);
    let mut dropped = 0;
    for i in 0..400 {
        let visitor = VisitorId::new(format!("v-{i}"));
        let mut write = Box::pin(
            store
                .website(&site)
                .visitor_message(&visitor, "hi", None, None),
        );
        let mut finished = false;
        for _ in 0..rng.gen_range(1..40) {
            if let Poll::Ready(r) = futures::poll!(&mut write) {
                r.unwrap();
                finished = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(rng.gen_range(0..60)));
        }
        drop(write);
        if finished {
            continue;
        }
        dropped += 1;
        store
            .website(&site)
            .visitor_message(&VisitorId::new(format!("after-{i}")), "hi", None, None)
            .await
            .unwrap_or_else(|e| panic!("the write after drop #{i} failed: {e}"));
        let by_index = store.org(&org).count_contacts(&all).await.unwrap();
        let in_db = truth
            .org(&org)
            .list_contacts_by_sql(&all, &by_name, None, 1)
            .await
            .unwrap()
            .total
            .unwrap();
        assert_eq!(by_index, in_db, "after drop #{i}");
    }
    assert!(
        dropped >= 20,
        "only {dropped} writes were dropped mid-flight"
    );
    truth.close().await;
    store.close().await;
}

/// The server answers at once and builds the index behind; contacts written during the build
/// are in the index when it opens to readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_initial_build_are_in_the_index_when_it_opens() {
    use std::time::Duration;
    // Removed on drop, also when the test fails.
    let tmp = TempDir::new("build");
    let dir = tmp.path().to_path_buf();
    let url = format!("sqlite://{}/k.db", dir.display());
    let bulk = Store::open_with(&url, 2, Access::Bulk).await.unwrap();
    let creds = bulk
        .create_org(&NewOrg {
            name: "Build".into(),
            admin_email: "a@example.com".into(),
            website_name: "Main".into(),
        })
        .await
        .unwrap();
    let org = creds.org_id;
    bulk.org(&org).seed(30_000, 5).await.unwrap();
    bulk.close().await;
    drop(bulk);

    let store = Store::open_with(&url, 4, Access::Serve).await.unwrap();
    let not_ready = || async {
        tokio::time::timeout(Duration::ZERO, store.contact_index_ready())
            .await
            .is_err()
    };
    assert!(not_ready().await, "the index is built in the background");
    let site = store.org(&org).websites().await.unwrap().remove(0);
    let by_created = Sort::parse("-created_at").unwrap();
    let newest = store
        .org(&org)
        .list_contacts_by_sql(&ListFilter::default(), &by_created, None, 40)
        .await
        .unwrap();
    for c in &newest.items {
        let patch =
            ProfilePatch::parse(&json!({"tags": ["during-build"], "name": "Zz Built"})).unwrap();
        store
            .org(&org)
            .patch_contact(&c.id, &patch, &Actor::Api)
            .await
            .unwrap();
    }
    for i in 0..20 {
        store
            .website(&site)
            .visitor_message(
                &VisitorId::new(format!("v-{i}")),
                "written during the build",
                None,
                None,
            )
            .await
            .unwrap();
    }
    assert!(
        not_ready().await,
        "the build ended before the writes did; seed more contacts so the test covers them"
    );

    store.contact_index_ready().await.unwrap();
    let tagged = ListFilter::parse(&json!({"tags": {"all": ["during-build"]}})).unwrap();
    assert_eq!(store.org(&org).count_contacts(&tagged).await.unwrap(), 40);
    assert_eq!(
        store
            .org(&org)
            .count_contacts(&ListFilter::default())
            .await
            .unwrap(),
        30_020
    );
    // First pages and totals agree with SQL for the contacts written during the build.
    for raw in [
        json!({}),
        json!({"tags": {"any": ["during-build", "vip"]}}),
        json!({"q": "zz built"}),
        json!({"status": "lead", "message_count": {"min": 1}}),
    ] {
        let f = ListFilter::parse(&raw).unwrap();
        for sort in SORTS {
            let sort = Sort::parse(sort).unwrap();
            let page = |by_sql: bool| {
                let (store, org, f) = (&store, &org, &f);
                async move {
                    let p = if by_sql {
                        store
                            .org(org)
                            .list_contacts_by_sql(f, &sort, None, 100)
                            .await
                    } else {
                        store.org(org).list_contacts(f, &sort, None, 100).await
                    }
                    .unwrap();
                    (
                        p.total,
                        p.items.into_iter().map(|c| c.id).collect::<Vec<_>>(),
                    )
                }
            };
            assert_eq!(
                page(false).await,
                page(true).await,
                "{raw} by {}",
                sort.as_str()
            );
        }
    }
    store.close().await;
}

/// A list read during the index's initial build is answered at once, by SQL, exactly (a write
/// made during the build is in the next answer), and a cursor taken then pages on through the
/// index once it is built, without a gap or a repeat: a restart is no list outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_answered_while_the_index_builds() {
    use std::time::Duration;
    let tmp = TempDir::new("during-build");
    let url = format!("sqlite://{}/k.db", tmp.path().display());
    let bulk = Store::open_with(&url, 2, Access::Bulk).await.unwrap();
    let creds = bulk
        .create_org(&NewOrg {
            name: "Held".into(),
            admin_email: "a@example.com".into(),
            website_name: "Main".into(),
        })
        .await
        .unwrap();
    let org = creds.org_id;
    bulk.org(&org).seed(1_500, 7).await.unwrap();
    bulk.close().await;
    drop(bulk);

    let (store, release) = Store::open_holding_index_build(&url).await.unwrap();
    let building = || async {
        tokio::time::timeout(Duration::ZERO, store.contact_index_ready())
            .await
            .is_err()
    };
    assert!(building().await);
    let o = store.org(&org);
    let bounded = Duration::from_secs(10);
    for raw in [
        json!({}),
        json!({"status": "customer"}),
        json!({"tags": {"any": ["vip", "trial"]}}),
        json!({"q": "an"}),
    ] {
        let f = ListFilter::parse(&raw).unwrap();
        for sort in SORTS {
            let sort = Sort::parse(sort).unwrap();
            let page = tokio::time::timeout(bounded, o.list_contacts(&f, &sort, None, 50))
                .await
                .expect("answered while the index builds")
                .unwrap();
            let by_sql = o.list_contacts_by_sql(&f, &sort, None, 50).await.unwrap();
            let ids = |p: &kith_store::Page<kith_store::Contact>| -> Vec<String> {
                p.items.iter().map(|c| c.id.to_string()).collect()
            };
            assert_eq!(
                (page.total, ids(&page)),
                (by_sql.total, ids(&by_sql)),
                "{raw}"
            );
            assert!(page.total.unwrap() > 0, "{raw} matches someone");
        }
    }
    // Exact at commit while building: a write is in the next count.
    let first = o
        .list_contacts(&ListFilter::default(), &Sort::default(), None, 1)
        .await
        .unwrap()
        .items
        .remove(0);
    let patch = ProfilePatch::parse(&json!({"tags": ["while-building"]})).unwrap();
    o.patch_contact(&first.id, &patch, &Actor::Api)
        .await
        .unwrap();
    let tagged = ListFilter::parse(&json!({"tags": {"all": ["while-building"]}})).unwrap();
    assert_eq!(o.count_contacts(&tagged).await.unwrap(), 1);

    // A cursor from a page answered by SQL goes on through the index.
    let by_name = Sort::parse("name").unwrap();
    let all = ListFilter::default();
    let first_page = o.list_contacts(&all, &by_name, None, 200).await.unwrap();
    assert!(building().await, "the build is held until released");
    drop(release);
    store.contact_index_ready().await.unwrap();
    let mut seen: Vec<String> = first_page.items.iter().map(|c| c.id.to_string()).collect();
    let mut cursor = first_page.next_cursor;
    while let Some(c) = cursor {
        let p = o
            .list_contacts(&all, &by_name, Some(&c), 200)
            .await
            .unwrap();
        seen.extend(p.items.iter().map(|c| c.id.to_string()));
        cursor = p.next_cursor;
    }
    let mut want = Vec::new();
    let mut cursor = None;
    loop {
        let p = o
            .list_contacts_by_sql(&all, &by_name, cursor.as_deref(), 200)
            .await
            .unwrap();
        want.extend(p.items.iter().map(|c| c.id.to_string()));
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 1_500);
    assert_eq!(
        seen, want,
        "no gap or repeat across the switch to the index"
    );
    assert_eq!(o.count_contacts(&tagged).await.unwrap(), 1);
    store.close().await;
}
