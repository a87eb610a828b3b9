//! `Idempotency-Key` on a visitor's message (SPEC, widget API): the widget retries a message
//! whose answer it never got, and the person on the other side must see it once. On SQLite
//! and PostgreSQL.

#[macro_use]
mod common;

use common::{send, Visitor};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn post_with_key(v: &Visitor, body: Value, key: &str) -> (StatusCode, Value) {
    let req = v
        .site
        .http
        .request(
            Method::POST,
            format!("{}/api/widget/v1/messages", v.site.base),
        )
        .header("X-Kith-Website", &v.site.key)
        .header("X-Kith-Visitor", &v.token)
        .header("Idempotency-Key", key)
        .json(&body);
    send(req).await
}

/// Every message of the visitor's conversation, oldest first, as bodies.
async fn bodies(v: &Visitor, conversation: &str) -> Vec<String> {
    let (s, page) = v
        .call(
            Method::GET,
            &format!("/conversations/{conversation}/messages?limit=200"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    async fn a_retried_message_answers_the_first_and_is_stored_once(app) {
        let v = app.visitor().await;
        let (s, first) = post_with_key(&v, json!({"body": "hello"}), "k-1").await;
        assert_eq!(s, StatusCode::CREATED, "{first}");
        // The answer was lost; the widget sends the same message with the same key again.
        let (s, again) = post_with_key(&v, json!({"body": "hello"}), "k-1").await;
        assert_eq!(s, StatusCode::CREATED, "{again}");
        assert_eq!(again, first, "the retry answers the first message");

        let conversation = first["conversation_id"].as_str().unwrap();
        assert_eq!(bodies(&v, conversation).await, ["hello"]);
        let contact = app.contact(first["contact_id"].as_str().unwrap()).await;
        assert_eq!(contact["message_count"], 1, "{contact}");
        assert_eq!(contact["conversation_count"], 1, "{contact}");

        // A new key is a new message, in the same conversation when the body names it.
        let (s, next) = post_with_key(
            &v,
            json!({"body": "second", "conversation_id": conversation}),
            "k-2",
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{next}");
        assert_ne!(next["message_id"], first["message_id"]);
        assert_eq!(bodies(&v, conversation).await, ["hello", "second"]);
        // Messages without a key are never deduplicated.
        assert_eq!(v.say_in(conversation, "second").await.0, StatusCode::CREATED);
        assert_eq!(bodies(&v, conversation).await, ["hello", "second", "second"]);
    }

    async fn concurrent_retries_with_one_key_write_one_message(app) {
        let v = app.visitor().await;
        let (_, first) = post_with_key(&v, json!({"body": "start"}), "start").await;
        let conversation = first["conversation_id"].as_str().unwrap().to_string();
        let tries = (0..8).map(|_| {
            post_with_key(
                &v,
                json!({"body": "only once", "conversation_id": conversation}),
                "same-key",
            )
        });
        let answers = futures::future::join_all(tries).await;
        let ids: std::collections::BTreeSet<String> = answers
            .iter()
            .map(|(s, body)| {
                assert_eq!(*s, StatusCode::CREATED, "{body}");
                body["message_id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(ids.len(), 1, "every retry answers the same message: {ids:?}");
        assert_eq!(bodies(&v, &conversation).await, ["start", "only once"]);
    }

    async fn keys_belong_to_one_visitor(app) {
        let (a, b) = (app.visitor().await, app.visitor().await);
        let (_, from_a) = post_with_key(&a, json!({"body": "from a"}), "shared").await;
        let (s, from_b) = post_with_key(&b, json!({"body": "from b"}), "shared").await;
        assert_eq!(s, StatusCode::CREATED, "{from_b}");
        assert_ne!(from_b["message_id"], from_a["message_id"]);
        assert_ne!(from_b["conversation_id"], from_a["conversation_id"]);
        let conversation = from_b["conversation_id"].as_str().unwrap();
        assert_eq!(bodies(&b, conversation).await, ["from b"]);
    }

    async fn a_bad_key_is_refused_and_writes_nothing(app) {
        let v = app.visitor().await;
        for key in ["x".repeat(65), "two words".to_string(), String::new()] {
            let (s, body) = post_with_key(&v, json!({"body": "hi"}), &key).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{key:?}: {body}");
            assert_eq!(body["error"]["code"], "invalid", "{body}");
            assert_eq!(body["error"]["field"], "Idempotency-Key", "{body}");
        }
        assert!(v.conversation_ids().await.is_empty());
    }
}

/// One number from the test database, read behind the API's back.
async fn scalar(app: &common::TestApp, sql: &str) -> i64 {
    use sqlx::Connection;
    match app.backend {
        common::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(app.db_url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        common::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(app.db_url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

both_backends! {
    // Apps call identify on every page of a logged-in session (issue 17): the same identify
    // again changes nothing and writes nothing (last_seen_at moves at most once a minute).
    async fn an_identify_repeated_on_every_page_writes_nothing(app) {
        let v = app.visitor().await;
        v.say("hi").await;
        let ada = v.identify_verified("u-ada", json!({"name": "Ada"})).await;
        let contact = ada["contact_id"].as_str().unwrap().to_string();
        let state = || async {
            (
                scalar(app, "SELECT max(last_seen_at) FROM visitors").await,
                scalar(app, "SELECT max(last_seen_at) FROM contacts").await,
                scalar(app, "SELECT max(updated_at) FROM contacts").await,
                scalar(app, "SELECT count(*) FROM contact_events").await,
            )
        };
        let before = state().await;
        // A few milliseconds pass, so any write would leave a later time behind.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        for _ in 0..3 {
            let again = v.identify_verified("u-ada", json!({"name": "Ada"})).await;
            assert_eq!(again["contact_id"], contact.as_str());
        }
        assert_eq!(state().await, before, "nothing was written");
        // A real change still writes.
        v.identify_verified("u-ada", json!({"name": "Ada L."})).await;
        assert_eq!(app.contact(&contact).await["name"], "Ada L.");
    }
}
