//! Group commit (issue 18): on SQLite many concurrent writes share one transaction, each in a
//! savepoint of its own. What a user must not notice: a request that fails inside a batch
//! fails alone (its partial writes undone, the others committed), every 201 is stored, stats
//! stay exact, and lists see each write at once. On SQLite and PostgreSQL (which keeps one
//! transaction per write; the behaviour is the same).

#[macro_use]
mod common;

use common::Visitor;
use kith_core::filter::ListFilter;
use reqwest::{Method, StatusCode};
use serde_json::json;

const WRITERS: usize = 24;
const ROUNDS: usize = 6;

/// The `_sum` and `_count` of a summary on /metrics (0 when absent).
fn summary(text: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{suffix} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (value("_sum"), value("_count"))
}

both_backends! {
    async fn a_failing_request_inside_a_batch_fails_alone(app) {
        // Writers with a conversation each, and strangers who will try to write into them.
        let mut writers: Vec<(Visitor, String, String)> = Vec::new();
        for i in 0..WRITERS {
            let v = app.visitor().await;
            let (conv, contact) = v.say(&format!("hello from {i}")).await;
            writers.push((v, conv, contact));
        }
        let before_metrics = kith_server::metrics::render();
        // Rounds of concurrent requests: every writer writes into its own conversation, and
        // a new visitor (no stored row yet) and a known writer each try another's (404,
        // after their transaction already wrote: the stranger's visitor row, for one).
        let mut tasks = Vec::new();
        for round in 0..ROUNDS {
            for (i, (v, conv, _)) in writers.iter().enumerate() {
                let (v, conv) = (v.clone(), conv.clone());
                tasks.push(tokio::spawn(async move {
                    let (s, body) = v.say_in(&conv, &format!("round {round} from {i}")).await;
                    (true, s, body)
                }));
            }
            let target = writers[round % WRITERS].1.clone();
            let stranger = app.visitor().await;
            let known = writers[(round + 1) % WRITERS].0.clone();
            for v in [stranger, known] {
                let target = target.clone();
                tasks.push(tokio::spawn(async move {
                    let (s, body) = v.say_in(&target, "not mine").await;
                    (false, s, body)
                }));
            }
        }
        let mut ok = 0;
        for t in tasks {
            let (valid, status, body) = t.await.unwrap();
            if valid {
                assert_eq!(status, StatusCode::CREATED, "{body}");
                ok += 1;
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
                assert_eq!(body["error"]["code"], "not_found", "{body}");
            }
        }
        assert_eq!(ok, WRITERS * ROUNDS);

        // Every acknowledged message is there, once, and the stats count exactly them.
        for (v, conv, contact) in &writers {
            let (s, page) = v
                .call(Method::GET, &format!("/conversations/{conv}/messages?limit=200"), None)
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            let bodies: Vec<&str> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["body"].as_str().unwrap())
                .collect();
            assert_eq!(bodies.len(), 1 + ROUNDS, "{bodies:?}");
            assert!(!bodies.contains(&"not mine"), "{bodies:?}");
            let c = app.contact(contact).await;
            assert_eq!(c["message_count"], 1 + ROUNDS as i64, "{c}");
            assert_eq!(c["conversation_count"], 1, "{c}");
        }
        // The strangers' failed requests left no visitor rows behind (rolled back to their
        // savepoint), and no contact.
        let org = app.store.org(&app.creds.org_id);
        assert_eq!(org.visitor_count().await.unwrap(), WRITERS as i64);
        assert_eq!(org.count_contacts(&ListFilter::default()).await.unwrap(), WRITERS as i64);
        let totals = org.ingest_totals().await.unwrap();
        assert_eq!(totals.visitor_messages, (WRITERS * (1 + ROUNDS)) as i64);
        assert_eq!(totals.contact_message_sum, totals.visitor_messages);
        assert_eq!(totals.contact_conversation_sum, totals.conversations);
        // The lists (SQLite: the contact index, fed at each batch's commit) agree.
        let (s, page) = app.admin(Method::GET, "/api/v1/contacts?limit=1", None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["total"], WRITERS as i64, "{page}");
        app.assert_builtin_counts().await;

        if app.store.backend_name() == "sqlite" {
            // The writes above were concurrent: some batch held more than one of them.
            let after = kith_server::metrics::render();
            let (sum0, count0) = summary(&before_metrics, "kith_store_group_commit_size");
            let (sum1, count1) = summary(&after, "kith_store_group_commit_size");
            assert!(count1 > count0, "no batch was committed");
            assert!(
                sum1 - sum0 > count1 - count0,
                "every batch held one write: {sum1}-{sum0} writes in {count1}-{count0} batches"
            );
            // Each batch also says how long it was open and how long its commit took (other
            // tests' batches may be between two of the three records: a little slack).
            for part in ["kith_store_group_commit_open_seconds", "kith_store_group_commit_seconds"] {
                let (seconds, batches) = summary(&after, part);
                assert!((batches - count1).abs() <= 2.0, "{part}: {batches} batches, {count1} sized");
                assert!(seconds > 0.0, "{part}: {seconds} s");
            }
            // And each write says where its time went: waiting for the connection, its body,
            // then its batch's commit (other tests' writes count too: at least the rounds'
            // acknowledged ones).
            let writes = (WRITERS * ROUNDS) as f64;
            for part in [
                "kith_store_write_queue_seconds",
                "kith_store_write_body_seconds",
                "kith_store_write_commit_wait_seconds",
            ] {
                let (s0, n0) = summary(&before_metrics, part);
                let (s1, n1) = summary(&after, part);
                assert!(n1 - n0 >= writes, "{part}: {n1}-{n0} writes, {writes} made here");
                assert!(s1 > s0, "{part}: no time recorded");
            }
        }
    }

    async fn identity_rules_hold_amid_concurrent_first_messages(app) {
        // A verified user id held by one contact; many visitors write while one of them
        // claims an email held by a contact with another user id (stays where it is: the
        // email is not moved), all at once.
        let a = app.visitor().await;
        a.identify_verified("user-a", json!({"email": "a@x.test"})).await;
        let (_, contact_a) = a.say("I am A").await;
        let mut tasks = Vec::new();
        for i in 0..WRITERS {
            let v = app.visitor().await;
            tasks.push(tokio::spawn(async move {
                let (s, body) = v
                    .call(Method::POST, "/messages", Some(json!({"body": format!("m{i}")})))
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{body}");
                body["contact_id"].as_str().unwrap().to_string()
            }));
        }
        let b = app.visitor().await;
        b.identify_verified("user-b", json!({})).await;
        let (_, contact_b) = b.say("I am B").await;
        let claim = tokio::spawn(async move { b.identify(json!({"email": "a@x.test"})).await });
        let (s, v) = claim.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["contact_id"], contact_b.as_str(), "{v}");
        let mut contacts = std::collections::HashSet::new();
        for t in tasks {
            assert!(contacts.insert(t.await.unwrap()), "two visitors share a contact");
        }
        assert_eq!(app.contact(&contact_a).await["email"], "a@x.test");
        let org = app.store.org(&app.creds.org_id);
        assert_eq!(
            org.count_contacts(&ListFilter::default()).await.unwrap(),
            WRITERS as i64 + 2
        );
        let totals = org.ingest_totals().await.unwrap();
        assert_eq!(totals.duplicate_emails, 0);
        assert_eq!(totals.contact_message_sum, totals.visitor_messages);
        app.assert_builtin_counts().await;
    }
}
