//! On PostgreSQL every committed message is announced to all serving processes with NOTIFY.
//! A process sends the announcements that queue while one NOTIFY runs together in the next
//! (`realtime::Announcer`): every one must still reach the listeners, in the order each
//! caller made them, and a caller hears only after its round committed. One test in this
//! file, so the process's count of rounds is this test's alone.

use kith_core::{OrgId, VisitorId};
use kith_store::{Announcement, Store};
use kith_testkit::{Backend, TestDb};
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_announcements_share_rounds_and_all_arrive_in_order() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = Store::open(&db.url).await.expect("open");
    // A second store stands for another serving process: it listens.
    let other = Store::open(&db.url).await.expect("open again");
    let mut listener = other
        .listen_messages()
        .await
        .expect("listen")
        .expect("PostgreSQL listens");

    const CALLERS: usize = 32;
    const EACH: usize = 20;
    let rounds = kith_store::announce_rounds();
    let org = OrgId::new("org-announce");
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let (store, org) = (store.clone(), org.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                let announced = store
                    .announce_message(&org, &format!("m-{caller}-{n}"))
                    .await
                    .expect("announce");
                assert!(announced, "PostgreSQL announces across processes");
            }
        }));
    }
    // A visitor switch rides the same rounds, on its own channel.
    store
        .announce_visitor_switch(&org, &VisitorId::new("v-switch"), None)
        .await
        .expect("switch");
    for t in tasks {
        t.await.expect("caller");
    }
    let ran = kith_store::announce_rounds() - rounds;
    assert!(ran > 0, "no round ran");
    assert!(
        ran < (CALLERS * EACH) as u64,
        "{ran} rounds for {} announcements: none shared a round",
        CALLERS * EACH
    );

    // Every announcement arrives once, and each caller's in the order it made them.
    let mut next: HashMap<usize, usize> = HashMap::new();
    let mut switched = false;
    let total = CALLERS * EACH;
    let mut seen = 0;
    while seen < total || !switched {
        let a = tokio::time::timeout(Duration::from_secs(10), listener.next())
            .await
            .expect("every announcement within 10 s")
            .expect("listen");
        match a {
            Announcement::Message(o, id) => {
                assert_eq!(o, org);
                let (caller, n) = id
                    .strip_prefix("m-")
                    .and_then(|r| r.split_once('-'))
                    .expect("an id of this test");
                let (caller, n): (usize, usize) = (caller.parse().unwrap(), n.parse().unwrap());
                let expected = next.entry(caller).or_default();
                assert_eq!(n, *expected, "caller {caller}'s announcements out of order");
                *expected += 1;
                seen += 1;
            }
            Announcement::VisitorSwitched(o, v, now_for) => {
                assert_eq!((o, v.as_str(), now_for), (org.clone(), "v-switch", None));
                assert!(!switched, "the switch arrived twice");
                switched = true;
            }
        }
    }
    assert!(next.values().all(|&n| n == EACH), "{next:?}");
}
