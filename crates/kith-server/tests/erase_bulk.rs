//! Deleting and erasing contacts, exporting one contact's data, and bulk actions over a list
//! (issue 19), on both databases.

#[macro_use]
mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Ids of every contact the API lists for `query` (walks every page).
async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=200&{query}&cursor={c}"),
            None => format!("/api/v1/contacts?limit=200&{query}"),
        };
        let (s, v) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        out.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    out.sort();
    out
}

async fn total(app: &TestApp, query: &str) -> i64 {
    let (s, v) = app.get(&format!("/api/v1/contacts?limit=1&{query}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["total"].as_i64().unwrap()
}

/// Waits (bounded) until a bulk job is done, answering it.
async fn finished(app: &TestApp, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, job) = app.get(&format!("/api/v1/bulk-actions/{job_id}")).await;
        assert_eq!(s, StatusCode::OK, "{job}");
        if job["status"] == "done" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "bulk job not done in 120 s: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn bulk(app: &TestApp, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = app
        .http
        .post(format!("{}/api/v1/bulk-actions", app.base))
        .bearer_auth(&app.creds.api_token)
        .json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    common::send(req).await
}

both_backends! {
    async fn an_erased_contact_is_gone_from_every_answer_count_and_search(app) {
        // A webhook endpoint that never answers: its deliveries stay in the log.
        let (s, hook) = app
            .admin(Method::POST, "/api/v1/webhooks", Some(json!({"url": "http://127.0.0.1:9/hook",
                "events": ["contact.created", "contact.updated", "contact.deleted", "message.created"]})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{hook}");
        let hook_id = hook["id"].as_str().unwrap().to_string();
        let v = app.visitor().await;
        let (conv, id) = v.say("my secret plan is zanzibar").await;
        v.identify(json!({"email": "ghost@erase.test", "name": "Gus Ghost"})).await;
        let (s, _) = app.patch(&id, json!({"tags": ["gone-soon"], "phone": "+14155550100"})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app
            .admin(Method::POST, &format!("/api/v1/conversations/{conv}/messages"), Some(json!({"body": "agent reply"})))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        // A note on it, and a contact merged into it by an admin.
        let (s, note) = app
            .admin(Method::POST, &format!("/api/v1/contacts/{id}/notes"), Some(json!({"body": "called about zanzibar"})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{note}");
        let twin = app.visitor().await;
        let (_, twin_id) = twin.say("me again, zanzibar").await;
        let (s, merge) = app
            .admin(Method::POST, &format!("/api/v1/contacts/{id}/merge"), Some(json!({"other_id": twin_id})))
            .await;
        assert_eq!(s, StatusCode::OK, "{merge}");
        // Someone who stays.
        let other = app.visitor().await;
        let (_, keep) = other.say("hello").await;
        assert_eq!(total(app, "q=ghost").await, 1);

        let (s, d) = app.admin(Method::DELETE, &format!("/api/v1/contacts/{id}?erase=true"), None).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(d["erased"], true);
        assert_eq!(d["conversations"], 2);
        assert_eq!(d["messages"], 3);

        for path in [
            format!("/api/v1/contacts/{id}"),
            format!("/api/v1/contacts/{id}/timeline"),
            format!("/api/v1/contacts/{id}/conversations"),
            format!("/api/v1/contacts/{id}/export"),
            format!("/api/v1/conversations/{conv}"),
            format!("/api/v1/conversations/{conv}/messages"),
        ] {
            let (s, body) = app.get(&path).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
            assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
        }
        assert_eq!(ids(app, "").await, vec![keep.clone()]);
        for q in ["ghost", "zanzibar", "gone-soon", "14155550100", "Gus"] {
            assert_eq!(total(app, &format!("q={q}")).await, 0, "search {q}");
        }
        assert_eq!(total(app, "tag=gone-soon").await, 0);
        app.assert_builtin_counts().await;
        // Nothing of the person is left in the database, only the tombstone.
        assert_eq!(app.sql_count("SELECT count(*) FROM messages WHERE body LIKE '%zanzibar%'").await, 0);
        assert_eq!(app.sql_count(&format!("SELECT count(*) FROM contact_events WHERE contact_id = '{id}'")).await, 0);
        assert_eq!(app.sql_count(&format!("SELECT count(*) FROM visitors WHERE contact_id = '{id}'")).await, 0);
        assert_eq!(app.sql_count("SELECT count(*) FROM contact_tags WHERE tag = 'gone-soon'").await, 0);
        // The erasure is announced, by id only; what was queued about the person is gone.
        let (s, log) = app.get(&format!("/api/v1/webhooks/{hook_id}/deliveries?limit=200")).await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let about: Vec<&Value> = log["items"].as_array().unwrap().iter()
            .filter(|d| d["contact_id"] == id.as_str()).collect();
        assert_eq!(about.len(), 1, "{log}");
        assert_eq!(about[0]["event_type"], "contact.deleted");
        assert_eq!(about[0]["payload"]["data"]["erased"], true, "{log}");
        let text = about[0].to_string();
        assert!(!text.contains("ghost") && !text.contains("zanzibar"), "{text}");
        assert_eq!(app.sql_count("SELECT count(*) FROM contact_notes").await, 0);
        assert_eq!(app.sql_count("SELECT count(*) FROM merges").await, 0);
        let merge_id = merge["merge_id"].as_str().unwrap();
        let (s, body) = app.admin(Method::POST, &format!("/api/v1/merges/{merge_id}/undo"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        let (s, body) = app.get(&format!("/api/v1/contacts/{twin_id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found", "the merged-in id leads nowhere: {body}");
        let (s, audit) = app.get("/api/v1/audit").await;
        assert_eq!(s, StatusCode::OK, "{audit}");
        let tomb = audit["items"].as_array().unwrap().iter()
            .find(|e| e["subject"] == format!("contact:{id}"))
            .unwrap_or_else(|| panic!("no tombstone: {audit}"));
        assert_eq!(tomb["action"], "contact.erased");
        let text = tomb.to_string();
        for personal in ["ghost", "Gus", "zanzibar", "4155550100"] {
            assert!(!text.contains(personal), "tombstone holds {personal}: {text}");
        }
        // The same browser writing again is a new, empty contact (never the erased one).
        let (_, again) = v.say("back again").await;
        assert_ne!(again, id);
        let fresh = app.contact(&again).await;
        assert_eq!(fresh["email"], Value::Null);
        assert_eq!(fresh["conversation_count"], 1);
        app.assert_builtin_counts().await;
    }

    async fn delete_answers_404_for_unknown_and_merged_ids_and_422_for_a_bad_flag(app) {
        let (s, body) = app.admin(Method::DELETE, "/api/v1/contacts/nope", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        let v = app.visitor().await;
        let (_, id) = v.say("hi").await;
        let (s, body) = app.admin(Method::DELETE, &format!("/api/v1/contacts/{id}?erase=maybe"), None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], "erase");
        app.contact(&id).await;
        // A merged id names where it went and deletes nothing.
        let w = app.visitor().await;
        w.identify_verified("u-merge", json!({"email": "m@erase.test"})).await;
        w.say("hello").await;
        v.identify(json!({"email": "m@erase.test"})).await;
        let (s, body) = app.admin(Method::DELETE, &format!("/api/v1/contacts/{id}"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "merged", "{body}");
        // Deleting the survivor takes the merged-in history with it; a plain delete is
        // recorded as such.
        let survivor = body["error"]["merged_into"].as_str().unwrap().to_string();
        let (s, d) = app.admin(Method::DELETE, &format!("/api/v1/contacts/{survivor}"), None).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(d["erased"], false);
        assert_eq!(d["conversations"], 2);
        let (s, body) = app.get(&format!("/api/v1/contacts/{id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found", "{body}");
        app.assert_builtin_counts().await;
    }

    async fn export_holds_everything_about_one_contact(app) {
        let v = app.visitor().await;
        let (c1, id) = v.say("first question").await;
        let (c2, _) = v.say("second question").await;
        v.identify_verified("u-export", json!({"email": "ex@port.test", "name": "Ex Port"})).await;
        let (s, _) = app.patch(&id, json!({"tags": ["vip"], "metadata": {"plan": "pro"}})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, note) = app
            .admin(Method::POST, &format!("/api/v1/contacts/{id}/notes"), Some(json!({"body": "prefers email"})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{note}");
        let (s, _) = app
            .admin(Method::POST, &format!("/api/v1/conversations/{c1}/messages"), Some(json!({"body": "we're on it"})))
            .await;
        assert_eq!(s, StatusCode::CREATED);

        let resp = app.raw_get(&format!("/api/v1/contacts/{id}/export"))
            .bearer_auth(&app.creds.api_token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        let export: Value = resp.json().await.unwrap();
        assert_eq!(export["format"], 1);
        assert_eq!(export["contact"], app.contact(&id).await);
        let mut timeline: Vec<Value> = {
            let (_, t) = app.get(&format!("/api/v1/contacts/{id}/timeline?limit=200")).await;
            t["items"].as_array().unwrap().clone()
        };
        timeline.reverse();
        assert_eq!(export["timeline"], Value::Array(timeline));
        let convs = export["conversations"].as_array().unwrap();
        let mut conv_ids: Vec<&str> = convs.iter().map(|c| c["id"].as_str().unwrap()).collect();
        conv_ids.sort();
        let mut want = vec![c1.as_str(), c2.as_str()];
        want.sort();
        assert_eq!(conv_ids, want);
        let first = convs.iter().find(|c| c["id"] == c1.as_str()).unwrap();
        let bodies: Vec<&str> = first["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, vec!["first question", "we're on it"]);
        assert_eq!(first["website"]["name"], "Acme shop");
        assert_eq!(export["visitors"].as_array().unwrap().len(), 1);
        assert_eq!(export["notes"].as_array().unwrap().len(), 1, "{export}");
        assert_eq!(export["notes"][0]["body"], "prefers email");
        assert_eq!(export["visitors"][0]["verified"], true);
        // A contact merged in is named.
        let w = app.visitor().await;
        w.say("anonymous hello").await;
        let (_, w_before) = w.identify(json!({"email": "ex@port.test"})).await;
        let absorbed = w_before["contact_id"].as_str().map(str::to_string);
        let (_, export) = app.get(&format!("/api/v1/contacts/{id}/export")).await;
        assert_eq!(absorbed.as_deref(), Some(id.as_str()), "the email led to the holder");
        assert_eq!(export["merged_ids"].as_array().unwrap().len(), 1, "{export}");
        assert_eq!(export["conversations"].as_array().unwrap().len(), 3);
    }

    async fn bulk_tag_over_a_ten_thousand_contact_list_tags_exactly_those(app) {
        // Three contacts outside the list, then 10,000 in it.
        let mut outside = vec![];
        for _ in 0..3 {
            let v = app.visitor().await;
            let (_, id) = v.say("hi").await;
            let (s, _) = app.patch(&id, json!({"tags": ["staff"]})).await;
            assert_eq!(s, StatusCode::OK);
            outside.push(id);
        }
        app.store.org(&app.creds.org_id).seed(10_000, 7).await.unwrap();
        let (s, list) = app
            .admin(Method::POST, "/api/v1/lists", Some(json!({"name": "Not staff", "filter": {"tags": {"none": ["staff"]}}})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{list}");
        let list_id = list["id"].as_str().unwrap().to_string();
        let members = ids(app, &format!("list={list_id}")).await;
        assert_eq!(members.len(), 10_000);
        let already = total(app, "tag=wave").await;

        let body = json!({"list": list_id, "action": "add_tags", "tags": ["Wave"]});
        let (s, p) = app.admin(Method::POST, "/api/v1/bulk-actions/preview", Some(body.clone())).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["count"], 10_000);
        // The confirmed count must still hold.
        let mut wrong = body.clone();
        wrong["expected_count"] = json!(9_999);
        let (s, e) = bulk(app, None, wrong).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert_eq!(e["error"]["code"], "count_changed");
        let mut start = body.clone();
        start["expected_count"] = json!(10_000);
        let (s, job) = bulk(app, Some("wave-1"), start.clone()).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        assert_eq!(job["total"], 10_000);
        let job_id = job["id"].as_str().unwrap().to_string();
        // A retry with the same key answers the same job and starts nothing.
        let (s, again) = bulk(app, Some("wave-1"), start.clone()).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!(again["id"], job_id.as_str());
        let done = finished(app, &job_id).await;
        assert_eq!(done["done"], 10_000, "{done}");
        assert_eq!(done["changed"].as_i64().unwrap(), 10_000 - already, "{done}");

        // Exactly the list's contacts carry the tag now.
        assert_eq!(ids(app, "tag=wave").await, members);
        for id in &outside {
            let c = app.contact(id).await;
            assert_eq!(c["tags"], json!(["staff"]), "{c}");
        }
        // One timeline entry per contact, naming the change.
        let sample = &members[members.len() / 2];
        let (_, t) = app.get(&format!("/api/v1/contacts/{sample}/timeline?limit=5")).await;
        let entry = &t["items"][0];
        assert_eq!(entry["kind"], "fields_updated", "{t}");
        assert_eq!(entry["actor"], "api");
        // Running it again changes nothing and writes nothing.
        let (s, job2) = bulk(app, Some("wave-2"), start).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job2}");
        let done2 = finished(app, job2["id"].as_str().unwrap()).await;
        assert_eq!(done2["changed"], 0, "{done2}");
        let (_, t2) = app.get(&format!("/api/v1/contacts/{sample}/timeline?limit=5")).await;
        assert_eq!(t2["items"][0]["id"], entry["id"]);

        // Remove it again from every contact that has it, then delete the staff.
        let (_, p) = app.admin(Method::POST, "/api/v1/bulk-actions/preview",
            Some(json!({"filter": {"tags": {"all": ["wave"]}}, "action": "remove_tags", "tags": ["WAVE"]}))).await;
        assert_eq!(p["count"], 10_000);
        let (s, job3) = bulk(app, None, json!({"filter": {"tags": {"all": ["wave"]}}, "action": "remove_tags", "tags": ["WAVE"], "expected_count": 10_000})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job3}");
        finished(app, job3["id"].as_str().unwrap()).await;
        assert_eq!(total(app, "tag=wave").await, 0);
        let (s, job4) = bulk(app, None, json!({"filter": {"tags": {"all": ["staff"]}}, "action": "delete", "expected_count": 3})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job4}");
        let done4 = finished(app, job4["id"].as_str().unwrap()).await;
        assert_eq!(done4["changed"], 3);
        for id in &outside {
            let (s, _) = app.get(&format!("/api/v1/contacts/{id}")).await;
            assert_eq!(s, StatusCode::NOT_FOUND);
        }
        assert_eq!(total(app, "").await, 10_000);
        let (_, recent) = app.get("/api/v1/bulk-actions").await;
        assert_eq!(recent["items"].as_array().unwrap().len(), 4);
        assert_eq!(recent["items"][0]["action"], "delete");
    }

    async fn bulk_requests_are_checked(app) {
        let cases = [
            (json!({"action": "paint"}), StatusCode::UNPROCESSABLE_ENTITY, "action"),
            (json!({"action": "add_tags"}), StatusCode::UNPROCESSABLE_ENTITY, "tags"),
            (json!({"action": "add_tags", "tags": [""]}), StatusCode::UNPROCESSABLE_ENTITY, "tags"),
            (json!({"action": "delete", "tags": ["x"]}), StatusCode::UNPROCESSABLE_ENTITY, "tags"),
            (json!({"action": "delete"}), StatusCode::UNPROCESSABLE_ENTITY, "expected_count"),
            (json!({"action": "delete", "expected_count": 0, "filter": {"status": "martian"}}), StatusCode::UNPROCESSABLE_ENTITY, "filter.status"),
        ];
        for (body, status, field) in cases {
            let (s, e) = bulk(app, None, body.clone()).await;
            assert_eq!(s, status, "{body}: {e}");
            assert_eq!(e["error"]["field"], field, "{body}: {e}");
        }
        let (s, e) = bulk(app, None, json!({"list": "nope", "action": "delete", "expected_count": 0})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
        let (s, e) = app.get("/api/v1/bulk-actions/nope").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
        // An empty selection is a job that is done at once.
        let (s, job) = bulk(app, None, json!({"action": "delete", "expected_count": 0})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        assert_eq!(job["status"], "done");
    }
}
