//! A visitor's first message starts its conversation in fewer statements: the conversation is
//! inserted with the message already counted (no update of it follows), the contact's two
//! counters move in one update, and on PostgreSQL all of it is one statement
//! (`conversations::start_with_message`). The answer is built from what was written, so it
//! must equal what a read finds; the counters, the timeline entry and the webhook deliveries
//! must be what the statements one by one wrote.

use kith_core::timeline::EventKind;
use kith_core::webhook::EventType;
use kith_core::{ConversationId, VisitorId};
use kith_store::Store;
use kith_testkit::{Backend, TestDb};

mod common;

async fn a_first_message_writes_what_its_answer_says(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::open(&db.url).await.expect("open");
    let (created, site) = common::acme_with_shop(&store).await;
    let org = store.org(&created.org_id);
    let hook = common::endpoint(
        org,
        &[EventType::ConversationStarted, EventType::MessageCreated],
    )
    .await;
    let visitor = VisitorId::new("v-first");

    let folded = kith_store::folded_messages();
    let first = store
        .website(&site)
        .visitor_message(&visitor, "  hello\n there  ", None, None)
        .await
        .expect("first message");
    assert!(first.conversation_started);
    assert_eq!(
        kith_store::folded_messages(),
        folded + u64::from(backend == Backend::Postgres),
        "on PostgreSQL a first message is one folded statement"
    );
    let conv = ConversationId::new(first.message.conversation_id.as_str());
    let (stored, messages) = org
        .conversation_with_messages(&conv, 50)
        .await
        .expect("the conversation");
    // The answer (what the realtime bus carries) is the conversation as stored.
    assert_eq!(format!("{:?}", first.conversation), format!("{stored:?}"));
    assert_eq!(stored.message_count, 1);
    assert_eq!(stored.status.as_str(), "open");
    assert_eq!(
        stored.last_message.as_ref().map(|m| m.preview.as_str()),
        Some("hello there")
    );
    assert_eq!(stored.website.name, "Shop");
    assert_eq!(messages.items.len(), 1);
    assert_eq!(messages.items[0].body, "  hello\n there  ");
    let contact = org.contact(&first.contact_id).await.expect("contact");
    assert_eq!((contact.message_count, contact.conversation_count), (1, 1));
    assert_eq!(contact.last_seen_at, Some(first.message.created_at));

    // A second conversation of the same visitor counts on the same contact; a returning
    // message counts the message only.
    let second = store
        .website(&site)
        .visitor_message(&visitor, "another topic", None, None)
        .await
        .expect("second conversation");
    assert_eq!(second.contact_id, first.contact_id);
    assert_ne!(
        second.message.conversation_id,
        first.message.conversation_id
    );
    store
        .website(&site)
        .visitor_message(
            &visitor,
            "and more",
            Some(&first.message.conversation_id),
            None,
        )
        .await
        .expect("returning message");
    let contact = org.contact(&first.contact_id).await.expect("contact");
    assert_eq!((contact.message_count, contact.conversation_count), (3, 2));

    let timeline = org
        .timeline(&first.contact_id, None, 50)
        .await
        .expect("timeline");
    let started: Vec<_> = timeline
        .items
        .iter()
        .filter(|e| e.kind == EventKind::ConversationStarted)
        .collect();
    assert_eq!(started.len(), 2, "{:?}", timeline.items);
    assert_eq!(started.last().unwrap().data["website_name"], "Shop");

    let deliveries = org
        .webhook_deliveries(&hook.id, None, 50)
        .await
        .expect("deliveries");
    let count = |ty: &str| {
        deliveries
            .items
            .iter()
            .filter(|d| d.event_type == ty)
            .count()
    };
    assert_eq!(count("conversation.started"), 2, "{:?}", deliveries.items);
    assert_eq!(count("message.created"), 3, "{:?}", deliveries.items);
    store.close().await;
}

/// One test for both databases, one after the other: the count of folded messages is the
/// process's, and a test beside this one could move it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_writes_what_its_answer_says_on_both_databases() {
    a_first_message_writes_what_its_answer_says(Backend::Sqlite).await;
    a_first_message_writes_what_its_answer_says(Backend::Postgres).await;
}
