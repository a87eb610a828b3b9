//! On PostgreSQL returning visitors' messages are written many per statement, in batches
//! (`message_batch`). The batch must write what the message's own transaction wrote, answer
//! each message as that message left its conversation, fail a refused message alone, replay
//! an idempotency key repeated within it, and never write on a check that no longer holds
//! under its locks. One test in this file, so the process's batch counters are its own.

use futures::future::join_all;
use kith_core::webhook::EventType;
use kith_core::{ConversationId, VisitorId};
use kith_store::{PostedMessage, Store, StoreError};
use kith_testkit::{Backend, TestDb};
use sqlx::{Connection, PgConnection};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod common;

/// Waits (bounded) until `check` holds.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether some session of the test database waits for a row lock.
async fn a_batch_waits_for_a_lock(db: &TestDb) -> bool {
    db.count(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await
        > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_messages_are_written_in_batches_that_keep_every_rule() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = Store::open(&db.url).await.expect("open");
    let (created, site) = common::acme_with_shop(&store).await;
    let org = store.org(&created.org_id);
    let hook = common::endpoint(org, &[EventType::MessageCreated]).await;
    let web = store.website(&site);

    // Thirty visitors, each with a conversation of its own (first messages: not batched).
    let visitors: Vec<VisitorId> = (0..30).map(|i| VisitorId::new(format!("v{i}"))).collect();
    let mut firsts = Vec::new();
    for v in &visitors {
        firsts.push(
            web.visitor_message(v, "hello", None, None)
                .await
                .expect("first message"),
        );
    }
    let (batched, rounds) = kith_store::batched_messages();
    assert_eq!(batched, 0, "first messages are not batched");

    // Four returning messages each, all at once: batched together, every one answered.
    let sends = visitors.iter().zip(&firsts).flat_map(|(v, first)| {
        (0..4).map(move |k| async move {
            let body = format!("{} says {k}", v.as_str());
            web.visitor_message(v, &body, Some(&first.message.conversation_id), None)
                .await
        })
    });
    let answers: Vec<PostedMessage> = join_all(sends)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every returning message is written");
    let (batched_now, rounds_now) = kith_store::batched_messages();
    assert_eq!(batched_now - batched, 120, "each went in a batch");
    // Sent at once (no await before a message queues), so a few batches take them all.
    assert!(
        rounds_now - rounds <= 12,
        "batches took ten messages each at least ({} batches)",
        rounds_now - rounds
    );
    for (v, first) in visitors.iter().zip(&firsts) {
        // Each answer shows its conversation as its own message left it: counts 2 to 5,
        // each once, with its own preview.
        let mine: Vec<&PostedMessage> = answers
            .iter()
            .filter(|a| a.message.conversation_id == first.message.conversation_id)
            .collect();
        let counts: BTreeSet<i64> = mine.iter().map(|a| a.conversation.message_count).collect();
        assert_eq!(counts, (2..=5).collect(), "{}", v.as_str());
        for a in &mine {
            let preview = a.conversation.last_message.as_ref().map(|m| &m.preview);
            assert_eq!(preview, Some(&a.message.body));
            assert_eq!(a.contact_id, first.contact_id);
            assert_eq!(a.starter_visitor_id, *v);
            assert!(!a.conversation_started && !a.replayed);
        }
        let contact = org.contact(&first.contact_id).await.expect("contact");
        assert_eq!((contact.message_count, contact.conversation_count), (5, 1));
        let (conv, stored) = org
            .conversation_with_messages(&first.message.conversation_id, 50)
            .await
            .expect("conversation");
        assert_eq!((conv.message_count, stored.items.len()), (5, 5));
    }
    let deliveries = db
        .count(&format!(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '{}' \
             AND event_type = 'message.created'",
            hook.id
        ))
        .await;
    assert_eq!(
        deliveries, 150,
        "every message enqueued its message.created"
    );

    // One batch with a refused message, a key sent twice and a good message: the batch is
    // held on a visitor's lock while the others queue behind it, so the next one takes them
    // all together.
    let mut holder = PgConnection::connect(&db.url).await.expect("connect");
    let mut held = holder.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM visitors WHERE id = 'v0' FOR UPDATE")
        .execute(&mut *held)
        .await
        .expect("lock v0");
    let (_, rounds) = kith_store::batched_messages();
    let conv = |i: usize| firsts[i].message.conversation_id.clone();
    let spawn = |visitor: &str, body: &str, conv: ConversationId, key: Option<&str>| {
        let (store, site) = (store.clone(), site.clone());
        let (visitor, body, key) = (
            VisitorId::new(visitor),
            body.to_string(),
            key.map(str::to_string),
        );
        tokio::spawn(async move {
            store
                .website(&site)
                .visitor_message(&visitor, &body, Some(&conv), key.as_deref())
                .await
        })
    };
    let blocked = spawn("v0", "held", conv(0), None);
    until("the first batch waits for v0", || {
        a_batch_waits_for_a_lock(&db)
    })
    .await;
    let good = spawn("v1", "fine", conv(1), None);
    let stranger = spawn("v2", "let me in", conv(3), None);
    let keyed = [
        spawn("v4", "once", conv(4), Some("k-1")),
        spawn("v4", "once", conv(4), Some("k-1")),
    ];
    until("the four messages queue", async || {
        kith_store::queued_messages() == 4
    })
    .await;
    held.commit().await.expect("release v0");
    assert_eq!(blocked.await.unwrap().expect("held").message.body, "held");
    assert_eq!(good.await.unwrap().expect("good").message.body, "fine");
    let refused = stranger.await.unwrap();
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    let [a, b] = keyed;
    let (a, b) = (a.await.unwrap().expect("a"), b.await.unwrap().expect("b"));
    assert_eq!(
        a.message.id, b.message.id,
        "the key's repeat answers its message"
    );
    assert!(a.replayed != b.replayed, "one wrote, one replayed");
    let (_, rounds_now) = kith_store::batched_messages();
    assert_eq!(
        rounds_now - rounds,
        2,
        "the held batch, then one with all four"
    );
    // The refused message left nothing: neither its visitor's counters nor the message.
    let theirs = org.contact(&firsts[2].contact_id).await.expect("contact");
    assert_eq!(theirs.message_count, 5);
    let target = org.messages(&conv(3), None, 50).await.expect("messages");
    assert!(target.items.iter().all(|m| m.body != "let me in"));
    let v4 = org.contact(&firsts[4].contact_id).await.expect("contact");
    assert_eq!(v4.message_count, 6, "the key's message counted once");

    // A conversation moved to another contact while the batch waits for its lock: the rule,
    // checked again under the lock, no longer holds, so the batch writes nothing, and each of
    // its messages takes the full path: the moved one is refused, the other one (from v7, to
    // its own conversation) is written there once. The two are queued behind a held visitor
    // again, so one batch takes both.
    let mut mover = PgConnection::connect(&db.url).await.expect("connect");
    let mut moving = mover.begin().await.expect("begin");
    let c5 = conv(5);
    sqlx::query("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(c5.as_str())
        .execute(&mut *moving)
        .await
        .expect("lock the conversation");
    let mut held = holder.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM visitors WHERE id = 'v0' FOR UPDATE")
        .execute(&mut *held)
        .await
        .expect("lock v0");
    let (batched, rounds) = kith_store::batched_messages();
    let folded = kith_store::folded_messages();
    let blocked = spawn("v0", "held again", conv(0), None);
    until("a batch waits for v0", || a_batch_waits_for_a_lock(&db)).await;
    let late = spawn("v5", "moved away", c5.clone(), None);
    let bystander = spawn("v7", "still here", conv(7), None);
    until("the two messages queue", async || {
        kith_store::queued_messages() == 2
    })
    .await;
    held.commit().await.expect("release v0");
    blocked.await.unwrap().expect("held again");
    until("the batch of two waits for the conversation", || {
        a_batch_waits_for_a_lock(&db)
    })
    .await;
    sqlx::query("UPDATE conversations SET contact_id = $1 WHERE id = $2")
        .bind(firsts[6].contact_id.as_str())
        .bind(c5.as_str())
        .execute(&mut *moving)
        .await
        .expect("move the conversation");
    moving.commit().await.expect("commit the move");
    let late = late.await.unwrap();
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
    let bystander = bystander.await.unwrap().expect("the other message");
    let (batched_now, rounds_now) = kith_store::batched_messages();
    assert_eq!(
        (batched_now - batched, rounds_now - rounds),
        (1, 2),
        "v0's batch, then the two's, rolled back"
    );
    assert_eq!(
        kith_store::folded_messages() - folded,
        2,
        "both took the full path"
    );
    let v5 = org.contact(&firsts[5].contact_id).await.expect("contact");
    assert_eq!(
        v5.message_count, 5,
        "the batch's counter update was rolled back"
    );
    let stored = org.messages(&c5, None, 50).await.expect("messages");
    assert!(stored.items.iter().all(|m| m.body != "moved away"));
    let v7 = org.contact(&firsts[7].contact_id).await.expect("contact");
    assert_eq!(v7.message_count, 6, "written once, by the full path");
    let (conv7, stored) = org
        .conversation_with_messages(&conv(7), 50)
        .await
        .expect("conversation");
    assert_eq!(conv7.message_count, 6);
    let copies = stored.items.iter().filter(|m| m.body == "still here");
    assert_eq!(copies.count(), 1);
    assert_eq!(bystander.conversation.message_count, 6);
    store.close().await;
}
