//! Regression tests for what `scripts/schemathesis.sh` found, each as a user would meet it.

#[macro_use]
mod common;

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

both_backends! {
    async fn names_with_control_characters_are_refused_not_a_server_error(app) {
        // A website name holding NUL answered 500 on PostgreSQL (it refuses NUL in text):
        // every required name (website, list) now refuses control characters with a 422.
        for (path, body) in [
            ("/api/v1/websites", json!({"name": "a\u{0}b", "identity_verification_mode": "off"})),
            ("/api/v1/websites", json!({"name": "tab\there"})),
            ("/api/v1/lists", json!({"name": "a\u{0}b", "filter": {}})),
        ] {
            let (s, v) = app.admin(Method::POST, path, Some(body)).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
            assert_eq!(v["error"]["field"], "name", "{v}");
        }
        let (s, sites) = app.get("/api/v1/websites").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(sites["items"].as_array().unwrap().len(), 1, "nothing was created: {sites}");
    }

    async fn a_filter_of_a_hundred_tags_answers_at_once(app) {
        // A filter of 100 tags (the cap) in `tags.all` compiled to one semi-join per tag,
        // which PostgreSQL took seconds to plan for every count: a few such lists made
        // `GET /lists` take tens of seconds on an empty database.
        let tags: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        let (_, full) = app.visitor().await.say("all tags").await;
        let (_, partial) = app.visitor().await.say("all but one").await;
        assert_eq!(app.patch(&full, json!({"tags": tags})).await.0, StatusCode::OK);
        assert_eq!(app.patch(&partial, json!({"tags": tags[..99]})).await.0, StatusCode::OK);

        let started = Instant::now();
        let (s, list) = app.admin(Method::POST, "/api/v1/lists",
            Some(json!({"name": "Everything", "filter": {"tags": {"all": tags}}}))).await;
        assert_eq!((s, list["count"].as_i64()), (StatusCode::CREATED, Some(1)), "{list}");
        let (s, dup) = app.admin(Method::POST, "/api/v1/lists",
            Some(json!({"name": "One tag, a hundred times", "filter": {"tags": {"all": vec!["T0"; 100]}}}))).await;
        assert_eq!((s, dup["count"].as_i64()), (StatusCode::CREATED, Some(2)), "{dup}");
        let (s, lists) = app.get("/api/v1/lists").await;
        assert_eq!(s, StatusCode::OK, "{lists}");
        let query: Vec<String> = tags.iter().map(|t| format!("tag={t}")).collect();
        let (s, page) = app.get(&format!("/api/v1/contacts?{}", query.join("&"))).await;
        assert_eq!((s, page["total"].as_i64()), (StatusCode::OK, Some(1)), "{page}");
        assert_eq!(page["items"][0]["id"], json!(full));
        let (s, page) = app.get(&format!("/api/v1/contacts?list={}", list["id"].as_str().unwrap())).await;
        assert_eq!((s, page["total"].as_i64()), (StatusCode::OK, Some(1)), "{page}");
        // Before the fix these calls took ~20 s on PostgreSQL; now milliseconds.
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
}
