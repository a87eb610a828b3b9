//! Regression tests for the holes a security review found by reading the code (issue 14),
//! each through the real HTTP API on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    // Hole 1: an unverified email that merges the visitor's own contact into the email's holder
    // must not carry another visitor's proof (verified on the absorbed contact) into the holder.
    async fn hole1_proof_does_not_travel_with_an_unproven_merge(app) {
        // The victim: a verified customer with a conversation.
        let victim = app.visitor().await;
        let email_hash = app.user_hash("victim@corp.test");
        let (s, _) = victim
            .identify(json!({"email": "victim@corp.test", "user_hash": email_hash}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (secret_conv, victim_contact) = victim.say("my invoice number is 4711").await;

        // x writes (creates A); an agent asks for an email in the chat and types the one the
        // attacker gives (an admin-set email counts as proven).
        let x = app.visitor().await;
        let (_, contact_a) = x.say("hello").await;
        assert_eq!(app.patch(&contact_a, json!({"email": "att@evil.test"})).await.0, StatusCode::OK);
        // y proves att@evil.test (the attacker controls that address): verified on A.
        let y = app.visitor().await;
        let hash = app.user_hash("att@evil.test");
        let (s, out) = y.identify(json!({"email": "att@evil.test", "user_hash": hash})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(out["contact_id"], contact_a.as_str());
        let (y_conv, _) = y.say("planted").await;
        // x claims the victim's email without proof: A merges into the victim's contact.
        let (s, out) = x.identify(json!({"email": "victim@corp.test"})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(out["contact_id"], victim_contact.as_str());
        let (s, merged) = app.get(&format!("/api/v1/contacts/{contact_a}")).await;
        assert_eq!((s, merged["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("merged")));

        // y sees only what it started; never the victim's conversation.
        let (s, list) = y.call(Method::GET, "/conversations", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(ids(&list), std::slice::from_ref(&y_conv));
        let (s, _) = y
            .call(Method::GET, &format!("/conversations/{secret_conv}/messages"), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = y.say_in(&secret_conv, "I can post here").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = y
            .call(Method::POST, &format!("/conversations/{secret_conv}/escalate"), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // A further verified identify from y does not overwrite the victim's profile.
        let (s, _) = y
            .identify(json!({"email": "att@evil.test", "user_hash": hash, "name": "Mallory"}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let victim_now = app.contact(&victim_contact).await;
        assert_eq!(victim_now["email"], "victim@corp.test");
        assert_ne!(victim_now["name"], "Mallory");

        // The victim's verified history does not gain the planted conversation.
        let (s, list) = victim.call(Method::GET, "/conversations", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(ids(&list), [secret_conv]);
        assert!(!ids(&list).contains(&y_conv));
    }

    // Hole 2: the identity remembered before the first message obeys the contact limits.
    async fn hole2_remembered_identity_is_capped(app) {
        let v = app.visitor().await;
        let batch = |from: usize| -> Value {
            let m: serde_json::Map<String, Value> =
                (from..from + 50).map(|i| (format!("k{i}"), json!(i))).collect();
            json!({"metadata": m})
        };
        assert_eq!(v.identify(batch(0)).await.0, StatusCode::OK);
        assert_eq!(v.identify(batch(50)).await.0, StatusCode::OK);
        // Keys already remembered do not count twice.
        assert_eq!(v.identify(batch(25)).await.0, StatusCode::OK);
        let (s, e) = v.identify(batch(100)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], "metadata");
        let (_, contact) = v.say("hi").await;
        assert_eq!(app.contact(&contact).await["metadata"].as_object().unwrap().len(), 100);
    }

    // Hole 3: lower-casing can lengthen text; a saved list must store only what it can read
    // back, and one unreadable stored filter must not take the other lists down.
    async fn hole3_saved_filters_read_back_and_never_break_other_lists(app) {
        let long_tag = "İ".repeat(64); // 64 characters; 128 once lower-cased
        let (s, e) = app
            .admin(Method::POST, "/api/v1/lists",
                   Some(json!({"name": "dotted", "filter": {"tags": {"all": [long_tag]}}})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], "filter.tags.all");
        let (s, e) = app
            .admin(Method::POST, "/api/v1/lists",
                   Some(json!({"name": "dotted q", "filter": {"q": "İ".repeat(200)}})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (s, e) = app.get(&format!("/api/v1/contacts?tag={}", "İ".repeat(40))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

        // A list whose stored filter no longer parses (e.g. written by an older version).
        let (s, good) = app
            .admin(Method::POST, "/api/v1/lists",
                   Some(json!({"name": "good", "filter": {"status": "lead"}})))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, bad) = app
            .admin(Method::POST, "/api/v1/lists",
                   Some(json!({"name": "soon broken", "filter": {}})))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let bad_id = bad["id"].as_str().unwrap();
        let broken = json!({"tags": {"all": ["i̇".repeat(64)]}}).to_string();
        app.sql(&format!(
            "UPDATE contact_lists SET filter = '{broken}' WHERE id = '{bad_id}'"
        ))
        .await;

        let (s, all) = app.get("/api/v1/lists").await;
        assert_eq!(s, StatusCode::OK, "{all}");
        let items = all["items"].as_array().unwrap();
        assert_eq!(items.len(), 5);
        let shown = items.iter().find(|l| l["id"] == bad_id).unwrap();
        assert_eq!(shown["count"], 0);
        assert!(shown["error"].as_str().unwrap().contains("replace it"), "{shown}");
        assert_eq!(app.get(&format!("/api/v1/lists/{}", good["id"].as_str().unwrap())).await.0, StatusCode::OK);
        let (s, e) = app.get(&format!("/api/v1/contacts?list={bad_id}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], "list");
        // Replacing the filter mends it.
        let (s, fixed) = app
            .admin(Method::PATCH, &format!("/api/v1/lists/{bad_id}"), Some(json!({"filter": {"status": "customer"}})))
            .await;
        assert_eq!(s, StatusCode::OK, "{fixed}");
        assert!(fixed.get("error").is_none());
    }

    // Hole 4: every input is refused as soon as it passes a limit.
    async fn hole4_tag_and_filter_arrays_are_capped(app) {
        let v = app.visitor().await;
        let (_, contact) = v.say("hi").await;
        // 100,000 distinct tags in one PATCH: refused at the 101st, promptly.
        let many: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
        let (s, e) = app.patch(&contact, json!({"tags": many})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], "tags");
        // Many spellings of one tag are one tag.
        let same: Vec<&str> = (0..50_000).map(|i| if i % 2 == 0 { "vip" } else { "VIP" }).collect();
        let (s, c) = app.patch(&contact, json!({"tags": same})).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["tags"], json!(["vip"]));
        // Filter tag arrays: at most 100 each (PostgreSQL allows 65,535 bind parameters).
        let tags: Vec<String> = (0..70_000).map(|i| format!("t{i}")).collect();
        for op in ["all", "any", "none"] {
            let (s, e) = app
                .admin(Method::POST, "/api/v1/lists",
                       Some(json!({"name": "huge", "filter": {"tags": {op: tags}}})))
                .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{op}: {e}");
            assert_eq!(e["error"]["field"], format!("filter.tags.{op}"));
        }
        let (s, lists) = app.get("/api/v1/lists").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(lists["items"].as_array().unwrap().len(), 3);
        // NUL in a search or tag filter is refused, not passed to the database.
        let (s, e) = app.get("/api/v1/contacts?q=a%00b").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (s, e) = app.get("/api/v1/contacts?tag=a%00b").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    }

    // Hole 8: an unverified claim adds no metadata keys to a contact the visitor does not own,
    // and a verified write is refused (422), never silently dropped, when the quota is full.
    async fn hole8_unverified_claims_cannot_fill_a_victims_metadata(app) {
        let victim = app.visitor().await;
        victim.identify_verified("u-victim", json!({"email": "victim@corp.test"})).await;
        let (_, victim_contact) = victim.say("hello").await;

        let junk: serde_json::Map<String, Value> =
            (0..100).map(|i| (format!("junk{i}"), json!("x"))).collect();
        let attacker = app.visitor().await;
        let (s, out) = attacker
            .identify(json!({"email": "victim@corp.test", "metadata": junk, "company": "Evil"}))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(out["contact_id"], victim_contact.as_str());
        attacker.say("hi").await;
        let c = app.contact(&victim_contact).await;
        assert_eq!(c["metadata"], json!({}), "junk keys reached the victim");
        // Absent fields are still filled (SPEC rule 6: unverified claims fill absent fields).
        assert_eq!(c["company"], "Evil");

        // The app's own verified metadata lands.
        let out = victim.identify_verified("u-victim", json!({"metadata": {"plan": "pro"}})).await;
        assert_eq!(out["contact_id"], victim_contact.as_str());
        assert_eq!(app.contact(&victim_contact).await["metadata"], json!({"plan": "pro"}));

        // Filled to the limit by the admin, a verified identify adding a key is refused, not cut.
        let full: serde_json::Map<String, Value> =
            (0..99).map(|i| (format!("a{i}"), json!(i))).collect();
        assert_eq!(app.patch(&victim_contact, json!({"metadata": full})).await.0, StatusCode::OK);
        let (s, e) = victim
            .identify(json!({"user_id": "u-victim", "user_hash": app.user_hash("u-victim"),
                             "metadata": {"seats": 5}}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], "metadata");
        let c = app.contact(&victim_contact).await;
        assert_eq!(c["metadata"].as_object().unwrap().len(), 100);
        assert!(c["metadata"].get("seats").is_none());
    }
}
