//! On PostgreSQL a returning visitor's message goes as one autocommit statement when this
//! process saw the visitor write before (`widget::visitor_message_at_once`): one round trip.
//! That statement checks the visitor against what the process last saw and the conversation
//! against the visibility rule; when either does not hold it must write nothing, and the full
//! path must answer as it always did. One test in this file, so the process's count of
//! messages written at once is this test's alone.

use kith_core::identity::Claim;
use kith_core::verify::user_hash;
use kith_core::{ConversationId, VisitorId};
use kith_store::{NewOrg, Store, StoreError};
use kith_testkit::{Backend, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_message_goes_at_once_and_a_refused_one_leaves_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = Store::open(&db.url).await.expect("open");
    let created = store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: "admin@acme.test".into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("org");
    let org = store.org(&created.org_id);
    let site = store
        .website_by_key(&created.website_key)
        .await
        .unwrap()
        .expect("the key");
    let widget = || store.website(&site);
    let at_once = kith_store::at_once_messages;
    let visitor = VisitorId::new("v-once");

    // The first message takes the full path (it creates the contact); the next goes at once.
    let first = widget()
        .visitor_message(&visitor, "hello", None, None)
        .await
        .expect("first message");
    assert_eq!(at_once(), 0);
    let conv = first.message.conversation_id.clone();
    let cid = ConversationId::new(conv.as_str());
    let again = widget()
        .visitor_message(&visitor, "one more thing", Some(&conv), None)
        .await
        .expect("returning message");
    assert_eq!(at_once(), 1, "the returning message went at once");
    assert_eq!(again.contact_id, first.contact_id);
    assert_eq!(again.conversation.message_count, 2);
    let (stored, messages) = org.conversation_with_messages(&cid, 50).await.unwrap();
    assert_eq!(format!("{:?}", again.conversation), format!("{stored:?}"));
    assert_eq!(messages.items.len(), 2);
    let contact = org.contact(&first.contact_id).await.unwrap();
    assert_eq!((contact.message_count, contact.conversation_count), (2, 1));
    assert_eq!(contact.last_seen_at, Some(again.message.created_at));

    // A resolved conversation is reopened by the visitor's message, at once too.
    org.resolve_conversation(&cid).await.expect("resolve");
    let reopened = widget()
        .visitor_message(&visitor, "still there?", Some(&conv), None)
        .await
        .expect("reopening message");
    assert_eq!(at_once(), 2);
    assert_eq!(reopened.conversation.status.as_str(), "open");

    // An idempotency key: stored by the statement at once; the same key again is a replay
    // (the statement fails on the key, the full path finds the first message).
    let keyed = widget()
        .visitor_message(&visitor, "keyed", Some(&conv), Some("key-1"))
        .await
        .expect("keyed message");
    assert_eq!(at_once(), 3);
    let replay = widget()
        .visitor_message(&visitor, "keyed", Some(&conv), Some("key-1"))
        .await
        .expect("replayed message");
    assert!(replay.replayed);
    assert_eq!(replay.message.id, keyed.message.id);
    assert_eq!(at_once(), 3, "a replay is not written at once");

    // A stranger this process saw write (so it has a hint) naming this conversation: the
    // statement at once refuses, the full path answers not found, and nothing stays.
    let stranger = VisitorId::new("v-stranger");
    let own = widget()
        .visitor_message(&stranger, "a conversation of my own", None, None)
        .await
        .expect("the stranger's first message");
    let before = at_once();
    let refused = widget()
        .visitor_message(&stranger, "let me in", Some(&conv), None)
        .await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(at_once(), before);
    let theirs = org.contact(&own.contact_id).await.unwrap();
    assert_eq!((theirs.message_count, theirs.conversation_count), (1, 1));
    let mine = org.contact(&first.contact_id).await.unwrap();
    assert_eq!(mine.message_count, 4);
    let messages = org.messages(&cid, None, 50).await.unwrap();
    assert!(messages.items.iter().all(|m| m.body != "let me in"));
    assert_eq!(messages.items.len(), 4);
    // A conversation that does not exist: not found, nothing stays.
    let missing = widget()
        .visitor_message(
            &stranger,
            "anyone?",
            Some(&ConversationId::new("01nonexistent")),
            None,
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let theirs = org.contact(&own.contact_id).await.unwrap();
    assert_eq!(theirs.message_count, 1);

    // The visitor changes under the hint: a verified identify with a user id another contact
    // holds merges its anonymous contact into the holder (SPEC rule 3). The statement at once
    // finds the visitor is not as the hint says and writes nothing; the full path writes the
    // message on the holder, which now has the conversation.
    let holder = VisitorId::new("v-holder");
    let claim = |user_id: &str| {
        Claim::from_identify(
            &serde_json::json!({
                "user_id": user_id,
                "user_hash": user_hash(&site.identity_secret, user_id),
            }),
            Some(&site.identity_secret),
        )
        .expect("a verified claim")
    };
    widget()
        .identify(&holder, &claim("u-42"))
        .await
        .expect("the holder identifies");
    let held = widget()
        .visitor_message(&holder, "I am u-42", None, None)
        .await
        .expect("the holder's message");
    widget()
        .identify(&visitor, &claim("u-42"))
        .await
        .expect("the visitor identifies as u-42");
    let before = at_once();
    let merged = widget()
        .visitor_message(&visitor, "it is me", Some(&conv), None)
        .await
        .expect("a message after the merge");
    assert_eq!(at_once(), before, "the stale hint did not write");
    assert_eq!(merged.contact_id, held.contact_id);
    let holder_contact = org.contact(&held.contact_id).await.unwrap();
    assert_eq!(
        (
            holder_contact.message_count,
            holder_contact.conversation_count
        ),
        (6, 2),
        "the holder's one and the merged five"
    );
    widget()
        .visitor_message(&visitor, "and more", Some(&conv), None)
        .await
        .expect("a follow-up");
    assert_eq!(
        at_once(),
        before + 1,
        "with a fresh hint it goes at once again"
    );

    // A log-out and log-in as another user id switches the visitor (rule 4): its conversations
    // of the first identity are not its to write to any more. The statement at once writes
    // nothing, the full path answers not found.
    let switcher = VisitorId::new("v-switch");
    widget()
        .identify(&switcher, &claim("u-1"))
        .await
        .expect("identify as u-1");
    let mine = widget()
        .visitor_message(&switcher, "as u-1", None, None)
        .await
        .expect("u-1's message");
    let outcome = widget()
        .identify(&switcher, &claim("u-42"))
        .await
        .expect("identify as u-42");
    assert!(outcome.switched, "{outcome:?}");
    let before = at_once();
    let gone = widget()
        .visitor_message(
            &switcher,
            "where did it go",
            Some(&mine.message.conversation_id),
            None,
        )
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    assert_eq!(at_once(), before);
    let u1 = org.contact(&mine.contact_id).await.unwrap();
    assert_eq!(u1.message_count, 1, "nothing more on u-1");
    store.close().await;
}
