//! The HTTP API beyond the identity rules: validation and error shapes, conversations,
//! timelines, listings, realtime, limits and operations endpoints.

#[macro_use]
mod common;

use common::{send, Backend, TestApp};
use futures::StreamExt;
use kith_server::{Config, Limits};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

both_backends! {
    async fn invalid_values_answer_422_naming_the_field(app) {
        let v = app.visitor().await;
        let long = "x".repeat(256);
        let nested = json!({"metadata": {"deep": {"a": 1}}});
        let many_keys: serde_json::Map<String, Value> = (0..101).map(|i| (format!("k{i}"), json!(i))).collect();
        let cases = [
            (json!({"phone": "12"}), "phone"),
            (json!({"email": "not-an-email"}), "email"),
            (json!({"name": long}), "name"),
            (json!({"company": 5}), "company"),
            (nested, "metadata.deep"),
            (json!({"metadata": many_keys}), "metadata"),
            (json!({"metadata": {"k": "v".repeat(1001)}}), "metadata.k"),
            (json!({"name": "nul\u{0000}byte"}), "name"),
            (json!({"metadata": {"a\u{0000}": 1}}), "metadata.a\u{0000}"),
        ];
        for (body, field) in cases {
            let (s, err) = v.identify(body.clone()).await;
            assert_error(s, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
            assert_eq!(err["error"]["field"], field, "{body}");
        }
        for (body, field) in [
            (json!({"body": ""}), "body"),
            (json!({"body": "   "}), "body"),
            (json!({"body": "x".repeat(10_001)}), "body"),
            (json!({}), "body"),
            (json!({"body": 3}), "body"),
            (json!({"body": "hi", "conversation_id": 7}), "conversation_id"),
            (json!({"body": "nul \u{0000} byte"}), "body"),
        ] {
            let (s, err) = v.call(Method::POST, "/messages", Some(body)).await;
            assert_error(s, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
            assert_eq!(err["error"]["field"], field);
        }
        let (_, id) = v.say("hi").await;
        let tags: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
        for (body, field) in [
            (json!({"tags": tags}), "tags"),
            (json!({"tags": ["x".repeat(65)]}), "tags"),
            (json!({"tags": "vip"}), "tags"),
            (json!({"phone": "+0123"}), "phone"),
            (json!({"email": "a@b"}), "email"),
            (json!({"metadata": [1, 2]}), "metadata"),
        ] {
            let (s, err) = app.patch(&id, body).await;
            assert_error(s, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
            assert_eq!(err["error"]["field"], field);
        }
        assert_eq!(app.contact(&id).await["tags"], json!([]));
        // Metadata keys are capped per contact, not only per request.
        let half: serde_json::Map<String, Value> = (0..60).map(|i| (format!("a{i}"), json!(i))).collect();
        let other: serde_json::Map<String, Value> = (0..60).map(|i| (format!("b{i}"), json!(i))).collect();
        assert_eq!(app.patch(&id, json!({"metadata": half})).await.0, StatusCode::OK);
        let (s, err) = app.patch(&id, json!({"metadata": other.clone()})).await;
        assert_error(s, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(err["error"]["field"], "metadata");
        v.identify(json!({"metadata": other})).await;
        assert_eq!(app.contact(&id).await["metadata"].as_object().unwrap().len(), 100);
        // Multi-line message bodies are fine.
        // A conversation that does not exist is not found, and nothing of the message stays.
        let count = app.contact(&id).await["message_count"].clone();
        for missing in ["", "01nonexistent"] {
            assert_eq!(v.say_in(missing, "x").await.0, StatusCode::NOT_FOUND, "{missing:?}");
        }
        assert_eq!(app.contact(&id).await["message_count"], count);
        let (s, _) = v.call(Method::POST, "/messages", Some(json!({"body": "line 1\nline 2\ttabbed"}))).await;
        assert_eq!(s, StatusCode::CREATED);
    }

    async fn malformed_and_oversized_bodies_are_clear_errors(app) {
        let v = app.visitor().await;
        for raw in ["{", "[1,2]", "\"text\"", "{\"body\": }"] {
            let (s, err) = send(
                app.http.post(format!("{}/api/widget/v1/messages", app.base))
                    .header("X-Kith-Website", &v.site.key)
                    .header("X-Kith-Visitor", &v.token)
                    .header("content-type", "application/json")
                    .body(raw),
            ).await;
            assert_error(s, &err, StatusCode::BAD_REQUEST, "bad_request");
        }
        let big = json!({"body": "x".repeat(1024 * 1024 + 10)});
        let (s, err) = v.call(Method::POST, "/messages", Some(big)).await;
        assert_error(s, &err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        let (s, err) = app.get("/api/v1/contacts?limit=0").await;
        assert_error(s, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(err["error"]["field"], "limit");
        let (s, err) = app.get("/api/v1/contacts?cursor=zz").await;
        assert_error(s, &err, StatusCode::BAD_REQUEST, "bad_request");
        let (s, err) = app.get("/api/v1/nothing-here").await;
        assert_error(s, &err, StatusCode::NOT_FOUND, "not_found");
        let (s, err) = app.admin(Method::DELETE, "/api/v1/contacts", None).await;
        assert_error(s, &err, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }

    async fn credentials_are_required_and_scoped_to_their_organization(app) {
        let (s, err) = send(app.http.get(format!("{}/api/v1/contacts", app.base))).await;
        assert_error(s, &err, StatusCode::UNAUTHORIZED, "unauthorized");
        let (s, err) = app.admin_as("kt_nope_nope", Method::GET, "/api/v1/contacts", None).await;
        assert_error(s, &err, StatusCode::UNAUTHORIZED, "unauthorized");
        let (s, err) = send(app.http.post(format!("{}/api/widget/v1/session", app.base)).json(&json!({}))).await;
        assert_error(s, &err, StatusCode::UNAUTHORIZED, "website_required");
        let (s, err) = send(app.http.post(format!("{}/api/widget/v1/session", app.base)).header("X-Kith-Website", "wk_x_y").json(&json!({}))).await;
        assert_error(s, &err, StatusCode::UNAUTHORIZED, "unknown_website");
        let v = app.visitor().await;
        let forged = common::Visitor { token: format!("{}0", v.token), ..v.clone() };
        let (s, err) = forged.say_in("x", "hi").await;
        assert_error(s, &err, StatusCode::UNAUTHORIZED, "visitor_required");

        // Another organization sees none of this one's data.
        let (conv, id) = v.say("secret").await;
        let other = app.store.create_org(&kith_store::NewOrg {
            name: "Other".into(), admin_email: "o@other.test".into(), website_name: "Other".into(),
        }).await.unwrap();
        for path in [
            format!("/api/v1/contacts/{id}"),
            format!("/api/v1/contacts/{id}/timeline"),
            format!("/api/v1/contacts/{id}/conversations"),
            format!("/api/v1/conversations/{conv}"),
            format!("/api/v1/conversations/{conv}/messages"),
        ] {
            let (s, err) = app.admin_as(&other.api_token, Method::GET, &path, None).await;
            assert_error(s, &err, StatusCode::NOT_FOUND, "not_found");
        }
        let (s, _) = app.admin_as(&other.api_token, Method::PATCH, &format!("/api/v1/contacts/{id}"), Some(json!({"name": "x"}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.admin_as(&other.api_token, Method::POST, &format!("/api/v1/conversations/{conv}/messages"), Some(json!({"body": "x"}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, list) = app.admin_as(&other.api_token, Method::GET, "/api/v1/contacts", None).await;
        assert_eq!(list["total"], 0);
        // A visitor token of one website is worthless on another.
        let other_site = common::Site { key: other.website_key.clone(), secret: other.identity_secret.clone(), ..v.site.clone() };
        let moved = common::Visitor { site: other_site, token: v.token.clone() };
        let (s, _) = moved.call(Method::GET, "/conversations", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    async fn admin_edits_replace_tags_merge_metadata_and_record_changes(app) {
        let v = app.visitor().await;
        v.identify(json!({"metadata": {"plan": "free", "seats": 2}})).await;
        let (_, id) = v.say("hi").await;
        let (s, c) = app.patch(&id, json!({
            "name": "  Grace Hopper ", "phone": "+1 415 555 0100", "company": "Navy",
            "tags": [" Enterprise", "trial", "ENTERPRISE"], "metadata": {"plan": "pro", "seats": null, "beta": true},
            "id": "ignored", "status": "customer", "message_count": 99, "created_at": "1970-01-01T00:00:00Z",
        })).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["id"], id);
        assert_eq!(c["name"], "Grace Hopper");
        assert_eq!(c["phone"], "+14155550100");
        assert_eq!(c["tags"], json!(["Enterprise", "trial"]));
        assert_eq!(c["metadata"], json!({"plan": "pro", "beta": true}));
        assert_eq!(c["status"], "lead");
        assert_eq!(c["message_count"], 1);
        let (_, tl) = app.get(&format!("/api/v1/contacts/{id}/timeline")).await;
        let e = &tl["items"][0];
        assert_eq!(e["kind"], "fields_updated");
        assert_eq!(e["actor"], "api");
        assert_eq!(e["data"]["changes"]["name"], json!({"old": null, "new": "Grace Hopper"}));
        assert_eq!(e["data"]["changes"]["metadata"]["old"], json!({"plan": "free", "seats": 2}));
        // Clearing a field; an edit that changes nothing writes nothing.
        let (_, c) = app.patch(&id, json!({"company": null})).await;
        assert_eq!(c["company"], Value::Null);
        let before = app.timeline_kinds(&id).await.len();
        let (s, _) = app.patch(&id, json!({"name": "Grace Hopper"})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.timeline_kinds(&id).await.len(), before);
        let (s, err) = app.patch("01nonexistent", json!({"name": "x"})).await;
        assert_error(s, &err, StatusCode::NOT_FOUND, "not_found");
    }

    async fn conversations_escalate_resolve_reopen_and_agent_replies(app) {
        let v = app.visitor().await;
        let (conv, id) = v.say("I need help").await;
        for _ in 0..2 {
            let (s, c) = v.call(Method::POST, &format!("/conversations/{conv}/escalate"), None).await;
            assert_eq!(s, StatusCode::OK, "{c}");
            assert_eq!(c["status"], "escalated");
        }
        let kinds = app.timeline_kinds(&id).await;
        assert_eq!(kinds.iter().filter(|k| *k == "escalated").count(), 1, "escalating twice records once");

        let (s, m) = app.admin(Method::POST, &format!("/api/v1/conversations/{conv}/messages"), Some(json!({"body": "On it!"}))).await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        assert_eq!(m["author"], "agent");
        let (s, c) = app.admin(Method::POST, &format!("/api/v1/conversations/{conv}/resolve"), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(c["status"], "resolved");
        assert_eq!(v.say_in(&conv, "one more thing").await.0, StatusCode::CREATED);
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}")).await;
        assert_eq!(c["status"], "open", "a visitor message reopens");
        assert_eq!(c["message_count"], 3);
        assert_eq!(c["last_message"]["preview"], "one more thing");
        let bodies: Vec<_> = c["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_string()).collect();
        assert_eq!(bodies, ["I need help", "On it!", "one more thing"]);
        let (_, msgs) = v.call(Method::GET, &format!("/conversations/{conv}/messages"), None).await;
        assert_eq!(msgs["items"][1]["author"], "agent");
        let (s, c) = app.admin(Method::POST, &format!("/api/v1/conversations/{conv}/escalate"), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(c["status"], "escalated");
        assert_eq!(app.contact(&id).await["message_count"], 2, "agent replies are not the contact's messages");

        // An admin reopens a resolved conversation; reopening an open one changes nothing.
        let (s, c) = app.admin(Method::POST, &format!("/api/v1/conversations/{conv}/resolve"), None).await;
        assert_eq!((s, c["status"].as_str()), (StatusCode::OK, Some("resolved")));
        for _ in 0..2 {
            let (s, c) = app.admin(Method::POST, &format!("/api/v1/conversations/{conv}/reopen"), None).await;
            assert_eq!(s, StatusCode::OK, "{c}");
            assert_eq!(c["status"], "open");
        }
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}")).await;
        assert_eq!(c["status"], "open");
        let (s, err) = app.admin(Method::POST, "/api/v1/conversations/01nonexistent/reopen", None).await;
        assert_error(s, &err, StatusCode::NOT_FOUND, "not_found");
    }

    async fn contact_conversations_span_every_website_of_the_organization(app) {
        let blog = app.unverified_site().await;
        let shop_visitor = app.visitor().await;
        shop_visitor.identify_verified("u-1", json!({})).await;
        let (shop_conv, id) = shop_visitor.say("from the shop").await;
        let blog_visitor = blog.visitor().await;
        blog_visitor.identify(json!({"user_id": "u-1"})).await;
        let (blog_conv, same) = blog_visitor.say("from the blog").await;
        assert_eq!(same, id);
        let (_, convs) = app.get(&format!("/api/v1/contacts/{id}/conversations")).await;
        let items = convs["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["id"], blog_conv, "newest first");
        assert_eq!(items[0]["website"]["name"], "Blog");
        assert_eq!(items[1]["id"], shop_conv);
        assert_eq!(items[1]["website"]["name"], "Acme shop");
        assert_eq!(items[1]["message_count"], 1);
        assert_eq!(items[1]["last_message"]["preview"], "from the shop");
        assert!(items[1]["last_message"]["at"].as_str().unwrap().ends_with('Z'));
        // The widget shows each website its own conversations only.
        assert_eq!(blog_visitor.conversation_ids().await, vec![blog_conv]);
        assert_eq!(shop_visitor.conversation_ids().await, vec![shop_conv]);
    }

    async fn session_writes_nothing_until_a_visitor_identifies_or_writes(app) {
        let v = app.visitor().await;
        for _ in 0..20 {
            let (s, out) = send(app.http.post(format!("{}/api/widget/v1/session", app.base))
                .header("X-Kith-Website", &v.site.key).header("X-Kith-Visitor", &v.token).json(&json!({}))).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(out["visitor_token"], v.token, "a valid token is kept");
            app.visitor().await;
        }
        assert_eq!(app.store.org(&app.creds.org_id).visitor_count().await.unwrap(), 0);
        let (_, conv) = v.call(Method::GET, "/conversations", None).await;
        assert_eq!(conv["items"], json!([]));
        assert_eq!(app.store.org(&app.creds.org_id).visitor_count().await.unwrap(), 0);
        v.identify(json!({"name": "Ann"})).await;
        assert_eq!(app.store.org(&app.creds.org_id).visitor_count().await.unwrap(), 1);
        let (_, id) = v.say("hi").await;
        let seen = app.contact(&id).await["last_seen_at"].clone();
        // A session within the minute does not write last_seen_at again.
        send(app.http.post(format!("{}/api/widget/v1/session", app.base))
            .header("X-Kith-Website", &v.site.key).header("X-Kith-Visitor", &v.token).json(&json!({}))).await;
        assert_eq!(app.contact(&id).await["last_seen_at"], seen);
    }

    async fn contact_listing_pages_without_gaps_or_repeats_and_counts_exactly(app) {
        let mut ids = vec![];
        for i in 0..7 {
            let v = app.visitor().await;
            ids.push(v.say(&format!("m{i}")).await.1);
        }
        let (_, first) = app.get("/api/v1/contacts?limit=3").await;
        assert_eq!(first["total"], 7);
        assert_eq!(first["items"].as_array().unwrap().len(), 3);
        // Newest seen first.
        assert_eq!(first["items"][0]["id"], ids[6]);
        // A contact arriving mid-way does not shift later pages.
        app.visitor().await.say("late").await;
        let mut seen: Vec<String> = first["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().into()).collect();
        let mut cursor = first["next_cursor"].as_str().unwrap().to_string();
        loop {
            let (s, page) = app.get(&format!("/api/v1/contacts?limit=3&cursor={cursor}")).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(page["total"], 8);
            seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() { Some(c) => cursor = c.into(), None => break }
        }
        let mut want = ids.clone();
        want.reverse();
        assert_eq!(seen, want);
    }

    async fn timeline_pages_newest_first(app) {
        let v = app.visitor().await;
        let (_, id) = v.say("hi").await;
        for i in 0..5 {
            app.patch(&id, json!({"name": format!("Name {i}")})).await;
        }
        let mut all = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor { Some(c) => format!("/api/v1/contacts/{id}/timeline?limit=2&cursor={c}"), None => format!("/api/v1/contacts/{id}/timeline?limit=2") };
            let (s, page) = app.get(&path).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            assert!(page["items"].as_array().unwrap().len() <= 2);
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() { Some(c) => cursor = Some(c.into()), None => break }
        }
        assert_eq!(all.len(), 7);
        assert_eq!(all[0]["data"]["changes"]["name"]["new"], "Name 4");
        assert_eq!(all[6]["kind"], "created");
        let times: Vec<&str> = all.iter().map(|e| e["at"].as_str().unwrap()).collect();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(times, sorted);
        let (s, _) = app.get(&format!("/api/v1/contacts/{id}/timeline?cursor=%27;drop")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    async fn event_stream_delivers_replies_to_the_visitor_and_nothing_foreign(app) {
        let v = app.visitor().await;
        let (conv, _) = v.say("hello").await;
        let other = app.visitor().await;
        let (other_conv, _) = other.say("someone else").await;
        let resp = app.http.get(format!("{}/api/widget/v1/events?website_key={}&visitor_token={}", app.base, v.site.key, v.token))
            .send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        // Wait for the ready event so the subscription exists before replying.
        tokio::time::timeout(Duration::from_secs(10), async {
            while !buf.contains("event: ready") {
                buf.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
            }
        }).await.expect("ready event");
        app.admin(Method::POST, &format!("/api/v1/conversations/{other_conv}/messages"), Some(json!({"body": "not for you"}))).await;
        app.admin(Method::POST, &format!("/api/v1/conversations/{conv}/messages"), Some(json!({"body": "Hi from support"}))).await;
        tokio::time::timeout(Duration::from_secs(10), async {
            while !buf.contains("Hi from support") {
                buf.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
            }
        }).await.expect("message event");
        assert!(buf.contains("event: message"));
        assert!(!buf.contains("not for you"), "{buf}");
    }
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (s, doc) = send(app.http.get(format!("{}/api/openapi.json", app.base))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/widget/v1/session", "post"),
        ("/api/widget/v1/identify", "post"),
        ("/api/widget/v1/messages", "post"),
        ("/api/widget/v1/conversations", "get"),
        ("/api/widget/v1/conversations/{id}/messages", "get"),
        ("/api/widget/v1/conversations/{id}/escalate", "post"),
        ("/api/widget/v1/events", "get"),
        ("/api/v1/contacts", "get"),
        ("/api/v1/contacts/{id}", "get"),
        ("/api/v1/contacts/{id}", "patch"),
        ("/api/v1/contacts/{id}/timeline", "get"),
        ("/api/v1/contacts/{id}/conversations", "get"),
        ("/api/v1/conversations/{id}", "get"),
        ("/api/v1/conversations/{id}/messages", "get"),
        ("/api/v1/conversations/{id}/messages", "post"),
        ("/api/v1/conversations/{id}/escalate", "post"),
        ("/api/v1/conversations/{id}/resolve", "post"),
        ("/api/v1/conversations/{id}/reopen", "post"),
        ("/api/v1/websites", "get"),
        ("/api/v1/websites", "post"),
        ("/api/v1/websites/{id}", "patch"),
        ("/api/v1/websites/{id}/rotate-secret", "post"),
        ("/api/v1/websites/{id}/retire-previous-secret", "post"),
        ("/api/v1/audit", "get"),
        ("/api/v1/events", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert!(doc["components"]["schemas"]["Contact"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn operations_endpoints() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (s, h) = send(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, r) = send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!(
        (s, r["database"].as_str()),
        (StatusCode::OK, Some("sqlite"))
    );
    app.visitor().await.say("count me").await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("# TYPE kith_messages_total counter"));
    let line = text
        .lines()
        .find(|l| l.starts_with("kith_messages_total{author=\"visitor\"}"))
        .unwrap();
    assert!(line.split(' ').nth(1).unwrap().parse::<u64>().unwrap() >= 1);
    // Readiness follows the database.
    app.store.close().await;
    let (s, r) = send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    let (s, _) = send(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let config = Config {
        limits: Limits {
            sessions_per_ip_per_minute: 2,
            visitor_per_second: 1,
            ..Limits::default()
        },
        ..Config::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let v = app.visitor().await;
    app.visitor().await;
    let resp = app
        .http
        .post(format!("{}/api/widget/v1/session", app.base))
        .header("X-Kith-Website", &app.creds.website_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some());
    // A returning visitor's session is not a new session.
    let (s, _) = send(
        app.http
            .post(format!("{}/api/widget/v1/session", app.base))
            .header("X-Kith-Website", &app.creds.website_key)
            .header("X-Kith-Visitor", &v.token)
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Bursts of three per visitor (that session call was one of them), then 429.
    let mut statuses = vec![];
    for _ in 0..5 {
        statuses.push(v.call(Method::GET, "/conversations", None).await.0);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    app.stop().await;
}

#[tokio::test]
async fn widget_calls_are_limited_to_the_websites_allowed_origins() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (s, w) = app
        .admin(
            Method::POST,
            "/api/v1/websites",
            Some(json!({"name": "Shop", "allowed_origins": ["https://shop.example/"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    assert_eq!(w["allowed_origins"], json!(["https://shop.example"]));
    let key = w["website_key"].as_str().unwrap();
    let session = |origin: &'static str| {
        app.http
            .post(format!("{}/api/widget/v1/session", app.base))
            .header("X-Kith-Website", key)
            .header("Origin", origin)
            .json(&json!({}))
    };
    let resp = session("https://shop.example").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = session("https://evil.example").send().await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "a refused origin is not told it may read the answer"
    );
    let (s, err) = send(session("https://evil.example")).await;
    assert_error(s, &err, StatusCode::FORBIDDEN, "origin_not_allowed");
    // Preflights that name the website (as the widget does, in the query) get its answer.
    let preflight = |origin: &'static str| {
        app.http
            .request(
                Method::OPTIONS,
                format!("{}/api/widget/v1/messages?website_key={key}", app.base),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-kith-website",
            )
            .send()
    };
    let ok = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(
        evil.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        evil.headers()
    );
    // Preflight.
    let resp = app
        .http
        .request(
            Method::OPTIONS,
            format!("{}/api/widget/v1/messages", app.base),
        )
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,x-kith-website,x-kith-visitor",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let allowed = resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("x-kith-visitor"), "{allowed}");
    let (s, err) = app
        .admin(
            Method::POST,
            "/api/v1/websites",
            Some(json!({"name": "Bad", "allowed_origins": ["shop.example"]})),
        )
        .await;
    assert_error(s, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    app.stop().await;
}
