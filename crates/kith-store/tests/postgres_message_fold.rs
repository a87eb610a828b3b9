//! On PostgreSQL a message outside a batch (an agent's reply; a returning visitor's message
//! its batch declined, `message_batch`) writes in one statement
//! (`conversations::fold_message`): its contact's counters, the message, its `message.created`
//! enqueue and the conversation's update. The folded statement must be the one that runs, and
//! must write what the statements one by one wrote. One test in this file, so the process's
//! count of folded messages is this test's alone.

use kith_core::webhook::EventType;
use kith_core::{ConversationId, VisitorId};
use kith_store::Store;
use kith_testkit::{Backend, TestDb};

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_message_is_one_folded_statement_that_writes_everything() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = Store::open(&db.url).await.expect("open");
    let (created, site) = common::acme_with_shop(&store).await;
    let org = store.org(&created.org_id);
    let hook = common::endpoint(org, &[EventType::MessageCreated]).await;
    let visitor = VisitorId::new("v-fold");

    // A first message starts its conversation: one folded statement too (its own, see
    // tests/first_message.rs).
    let first = store
        .website(&site)
        .visitor_message(&visitor, "hello", None, None)
        .await
        .expect("first message");
    let folded = kith_store::folded_messages();
    let conv = first.message.conversation_id.clone();

    // A returning message into a resolved conversation: written in a batch
    // (tests/postgres_message_batch.rs), not folded, and it reopens the conversation.
    org.resolve_conversation(&ConversationId::new(conv.as_str()))
        .await
        .expect("resolve");
    let again = store
        .website(&site)
        .visitor_message(&visitor, "one more thing", Some(&conv), None)
        .await
        .expect("returning message");
    assert_eq!(
        kith_store::batched_messages().0,
        1,
        "the message was batched"
    );
    assert_eq!(kith_store::folded_messages(), folded);
    assert_eq!(again.conversation.message_count, 2);
    assert_eq!(again.conversation.status.as_str(), "open");
    assert_eq!(
        again
            .conversation
            .last_message
            .as_ref()
            .map(|m| m.preview.as_str()),
        Some("one more thing")
    );
    assert_eq!(again.conversation.website.name, "Shop");
    let contact = org.contact(&again.contact_id).await.expect("contact");
    assert_eq!((contact.message_count, contact.conversation_count), (2, 1));
    assert_eq!(contact.last_seen_at, Some(again.message.created_at));

    // An agent's reply folds too (nothing before its message).
    org.agent_reply(&ConversationId::new(conv.as_str()), "agent-1", "On it")
        .await
        .expect("reply");
    assert_eq!(kith_store::folded_messages(), folded + 1);
    let contact = org.contact(&again.contact_id).await.expect("contact");
    assert_eq!(
        contact.message_count, 2,
        "agent replies are not the contact's messages"
    );

    // Another visitor naming this conversation: its batch declines it, and the folded
    // statement of the full path refuses it: not found, and nothing of its attempt stays
    // (counters, message, delivery).
    let stranger = VisitorId::new("v-stranger");
    let own = store
        .website(&site)
        .visitor_message(&stranger, "a conversation of my own", None, None)
        .await
        .expect("the stranger's own first message");
    let folded_now = kith_store::folded_messages();
    let refused = store
        .website(&site)
        .visitor_message(&stranger, "let me in", Some(&conv), None)
        .await;
    assert!(
        matches!(refused, Err(kith_store::StoreError::NotFound)),
        "{refused:?}"
    );
    assert_eq!(
        kith_store::folded_messages(),
        folded_now + 1,
        "the refusal came from the folded statement"
    );
    let theirs = org
        .contact(&own.contact_id)
        .await
        .expect("the stranger's contact");
    assert_eq!((theirs.message_count, theirs.conversation_count), (1, 1));
    let mine = org.contact(&again.contact_id).await.expect("contact");
    assert_eq!((mine.message_count, mine.conversation_count), (2, 1));
    let messages = org
        .messages(&ConversationId::new(conv.as_str()), None, 50)
        .await
        .expect("messages");
    assert!(
        messages.items.iter().all(|m| m.body != "let me in"),
        "{:?}",
        messages.items
    );

    // Each message enqueued its `message.created` for the endpoint, the folded ones too (the
    // refused one did not; the stranger's first message did).
    let deliveries = org
        .webhook_deliveries(&hook.id, None, 50)
        .await
        .expect("deliveries");
    let created: Vec<_> = deliveries
        .items
        .iter()
        .filter(|d| d.event_type == "message.created")
        .collect();
    assert_eq!(created.len(), 4, "{:?}", deliveries.items);
    store.close().await;
}
