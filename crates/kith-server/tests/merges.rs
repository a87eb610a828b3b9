//! Issue 19: an admin's manual merge with its dry run and undo, and notes on contacts, on
//! SQLite and PostgreSQL, through the HTTP API.

#[macro_use]
mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A contact created by a visitor's message (one conversation), then edited by an admin.
async fn contact(app: &TestApp, fields: Value) -> String {
    let v = app.visitor().await;
    let (_, id) = v.say("hello").await;
    let (s, c) = app.patch(&id, fields).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    id
}

async fn merge(app: &TestApp, survivor: &str, other: &str, dry_run: bool) -> (StatusCode, Value) {
    app.admin(
        Method::POST,
        &format!("/api/v1/contacts/{survivor}/merge"),
        Some(json!({"other_id": other, "dry_run": dry_run})),
    )
    .await
}

async fn undo(app: &TestApp, merge_id: &str) -> (StatusCode, Value) {
    app.admin(
        Method::POST,
        &format!("/api/v1/merges/{merge_id}/undo"),
        None,
    )
    .await
}

async fn timeline(app: &TestApp, id: &str) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/api/v1/contacts/{id}/timeline?limit=200"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

async fn get_ok(app: &TestApp, path: &str) -> Value {
    let (s, v) = app.get(path).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

async fn add_note(app: &TestApp, id: &str, body: &str) -> Value {
    let (s, n) = app
        .admin(
            Method::POST,
            &format!("/api/v1/contacts/{id}/notes"),
            Some(json!({ "body": body })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    n
}

/// Everything the API shows of a contact: its view, timeline, conversations and notes.
async fn everything(app: &TestApp, id: &str) -> Value {
    json!({
        "contact": get_ok(app, &format!("/api/v1/contacts/{id}")).await,
        "timeline": timeline(app, id).await,
        "conversations": get_ok(app, &format!("/api/v1/contacts/{id}/conversations?limit=200")).await,
        "notes": get_ok(app, &format!("/api/v1/contacts/{id}/notes?limit=200")).await,
    })
}

/// Contact ids a query finds (one page is enough here) and its exact total.
async fn found(app: &TestApp, query: &str) -> (Vec<String>, i64) {
    let v = get_ok(app, &format!("/api/v1/contacts?limit=200&{query}")).await;
    let mut ids: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    (ids, v["total"].as_i64().unwrap())
}

fn without(mut v: Value, keys: &[&str]) -> Value {
    for k in keys {
        if let Some((head, rest)) = k.split_once('.') {
            v[head].as_object_mut().unwrap().remove(rest);
        } else {
            v.as_object_mut().unwrap().remove(*k);
        }
    }
    v
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

both_backends! {
    async fn merge_preview_equals_the_merge(app) {
        let a = contact(app, json!({"name": "Ada", "tags": ["vip"], "metadata": {"plan": "pro"}})).await;
        let b = contact(app, json!({"name": "Ada L.", "email": "ada@example.com", "user_id": "u-ada",
            "company": "Acme", "tags": ["VIP", "trial"], "metadata": {"plan": "free", "seats": 3}})).await;
        // A second conversation and a note on the other contact.
        let vb = app.visitor().await;
        vb.identify_verified("u-ada", json!({})).await;
        vb.say("again").await;
        add_note(app, &b, "Called on Monday").await;
        let before_a = everything(app, &a).await;
        let before_b = everything(app, &b).await;

        let (s, preview) = merge(app, &a, &b, true).await;
        assert_eq!(s, StatusCode::OK, "{preview}");
        assert_eq!(preview["dry_run"], true);
        assert!(preview.get("merge_id").is_none(), "{preview}");
        // A dry run changes nothing.
        assert_eq!(everything(app, &a).await, before_a);
        assert_eq!(everything(app, &b).await, before_b);
        // It says which values win and what moves.
        assert_eq!(preview["fields"]["name"], json!({"value": "Ada", "from": "survivor"}));
        assert_eq!(preview["fields"]["email"], json!({"value": "ada@example.com", "from": "other"}));
        assert_eq!(preview["fields"]["user_id"], json!({"value": "u-ada", "from": "other"}));
        assert_eq!(preview["tags_added"], json!(["trial"]));
        assert_eq!(preview["metadata_added"], json!(["seats"]));
        assert_eq!(preview["promoted"], true);
        assert_eq!(preview["moves"]["conversations"], 2);
        assert_eq!(preview["moves"]["visitors"], 2);
        assert_eq!(preview["moves"]["notes"], 1);
        assert_eq!(
            preview["moves"]["timeline_entries"].as_i64().unwrap(),
            before_b["timeline"].as_array().unwrap().len() as i64
        );
        assert_eq!(preview["survivor"]["status"], "customer");
        assert_eq!(preview["survivor"]["conversation_count"], 3);
        assert_eq!(preview["survivor"]["metadata"], json!({"plan": "pro", "seats": 3}));

        let (s, done) = merge(app, &a, &b, false).await;
        assert_eq!(s, StatusCode::OK, "{done}");
        assert_eq!(done["dry_run"], false);
        let merge_id = done["merge_id"].as_str().unwrap().to_string();
        // The preview is the merge (the preview's updated_at is the time it was asked).
        assert_eq!(
            without(preview.clone(), &["dry_run", "survivor.updated_at"]),
            without(done.clone(), &["dry_run", "merge_id", "survivor.updated_at"])
        );
        let after_a = app.contact(&a).await;
        assert_eq!(done["survivor"], after_a);
        assert_eq!(without(preview["survivor"].clone(), &["updated_at"]), without(after_a, &["updated_at"]));

        let (s, gone) = app.get(&format!("/api/v1/contacts/{b}")).await;
        assert_error(s, &gone, StatusCode::NOT_FOUND, "merged");
        assert_eq!(gone["error"]["merged_into"], a.as_str());
        let kinds = app.timeline_kinds(&a).await;
        assert_eq!(&kinds[..2], ["promoted", "merged"], "{kinds:?}");
        let tl = timeline(app, &a).await;
        assert_eq!(tl[1]["data"]["merge_id"], merge_id.as_str());
        assert_eq!(tl[1]["data"]["absorbed_contact_id"], b.as_str());
        let convs = get_ok(app, &format!("/api/v1/contacts/{a}/conversations")).await;
        assert_eq!(convs["items"].as_array().unwrap().len(), 3);
        let notes = get_ok(app, &format!("/api/v1/contacts/{a}/notes")).await;
        assert_eq!(notes["items"][0]["body"], "Called on Monday");
        let record = get_ok(app, &format!("/api/v1/merges/{merge_id}")).await;
        assert_eq!(record["survivor_id"], a.as_str());
        assert_eq!(record["absorbed_id"], b.as_str());
        assert_eq!(record["actor"], "api");
        assert!(record["undone_at"].is_null());
        app.assert_builtin_counts().await;
    }

    async fn undo_restores_both_contacts_and_timelines_byte_equal(app) {
        let a = contact(app, json!({"user_id": "u-1", "name": "Grace", "tags": ["vip"],
            "metadata": {"plan": "pro"}})).await;
        let b = contact(app, json!({"email": "grace@example.com", "name": "G. Hopper",
            "phone": "+14155550100", "tags": ["trial"], "metadata": {"seats": 2, "plan": "free"}})).await;
        add_note(app, &a, "survivor's own note").await;
        // An anonymous contact with a note, merged into B automatically (rule 3) by its
        // visitor giving B's email: its note and its `merged` redirect go with B.
        let x_visitor = app.visitor().await;
        let (_, x) = x_visitor.say("anonymous first").await;
        add_note(app, &x, "anonymous contact's note").await;
        let (s, v) = x_visitor.identify(json!({"email": "grace@example.com"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["contact_id"], b.as_str());
        let (s, v) = app.get(&format!("/api/v1/contacts/{x}")).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "merged");
        add_note(app, &b, "absorbed's note").await;
        let before_a = everything(app, &a).await;
        let before_b = everything(app, &b).await;

        let (s, done) = merge(app, &a, &b, false).await;
        assert_eq!(s, StatusCode::OK, "{done}");
        let merge_id = done["merge_id"].as_str().unwrap().to_string();
        assert_eq!(done["survivor"]["email"], "grace@example.com");
        assert_eq!(done["moves"]["notes"], 2, "{done}");
        // What was merged into B now answers with where it all went: one hop.
        let (_, v) = app.get(&format!("/api/v1/contacts/{x}")).await;
        assert_eq!(v["error"]["merged_into"], a.as_str(), "{v}");

        let (s, undone) = undo(app, &merge_id).await;
        assert_eq!(s, StatusCode::OK, "{undone}");
        let after_a = everything(app, &a).await;
        let after_b = everything(app, &b).await;
        assert_eq!(after_a["contact"], before_a["contact"], "survivor's view");
        assert_eq!(after_b["contact"], before_b["contact"], "restored contact's view");
        assert_eq!(undone["survivor"], before_a["contact"]);
        assert_eq!(undone["restored"], before_b["contact"]);
        for (after, before) in [(&after_a, &before_a), (&after_b, &before_b)] {
            assert_eq!(after["conversations"], before["conversations"]);
            assert_eq!(after["notes"], before["notes"]);
            // The timeline as it was, with the merge and its undo at the head.
            let (t, was) = (after["timeline"].as_array().unwrap(), before["timeline"].as_array().unwrap());
            assert_eq!(t.len(), was.len() + 2);
            assert_eq!(t[0]["kind"], "merge_undone");
            assert_eq!(t[0]["data"]["merge_id"], merge_id.as_str());
            assert_eq!(t[1]["kind"], "merged");
            assert_eq!(t[1]["data"]["merge_id"], merge_id.as_str());
            assert_eq!(&t[2..], &was[..]);
        }
        assert_eq!(after_b["timeline"][1]["data"]["merged_into"], a.as_str());
        let (_, v) = app.get(&format!("/api/v1/contacts/{x}")).await;
        assert_eq!(v["error"]["merged_into"], b.as_str(), "{v}");
        assert_eq!(after_b["notes"]["items"].as_array().unwrap().len(), 2);
        let record = get_ok(app, &format!("/api/v1/merges/{merge_id}")).await;
        assert!(record["undone_at"].is_string(), "{record}");

        let (s, again) = undo(app, &merge_id).await;
        assert_error(s, &again, StatusCode::CONFLICT, "already_undone");
        let (s, nope) = undo(app, "no-such-merge").await;
        assert_error(s, &nope, StatusCode::NOT_FOUND, "not_found");
        // Both are whole contacts again: they can be merged anew.
        let (s, v) = merge(app, &a, &b, true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        app.assert_builtin_counts().await;
    }

    async fn two_user_ids_never_merge(app) {
        let a = contact(app, json!({"user_id": "u-1", "name": "One"})).await;
        let b = contact(app, json!({"user_id": "u-2", "name": "Two"})).await;
        let (before_a, before_b) = (everything(app, &a).await, everything(app, &b).await);
        for dry_run in [true, false] {
            let (s, v) = merge(app, &a, &b, dry_run).await;
            assert_error(s, &v, StatusCode::CONFLICT, "user_id_conflict");
        }
        assert_eq!(everything(app, &a).await, before_a);
        assert_eq!(everything(app, &b).await, before_b);

        let (s, v) = merge(app, &a, &a, true).await;
        assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(v["error"]["field"], "other_id");
        let (s, v) = app
            .admin(Method::POST, &format!("/api/v1/contacts/{a}/merge"), Some(json!({})))
            .await;
        assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        let (s, v) = merge(app, &a, "nobody", false).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
        let (s, v) = merge(app, "nobody", &a, false).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
        // A merged id answers `merged` here as everywhere.
        let lead = contact(app, json!({"name": "Lead"})).await;
        let (s, v) = merge(app, &a, &lead, false).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = merge(app, &b, &lead, false).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "merged");
        assert_eq!(v["error"]["merged_into"], a.as_str());
        assert_eq!(everything(app, &b).await, before_b);
    }

    async fn undo_after_a_change_answers_409_naming_it(app) {
        let a = contact(app, json!({"name": "Survivor"})).await;
        let b = contact(app, json!({"email": "other@example.com"})).await;
        let (_, done) = merge(app, &a, &b, false).await;
        let merge_id = done["merge_id"].as_str().unwrap().to_string();
        let (s, _) = app.patch(&a, json!({"company": "Changed Inc"})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = undo(app, &merge_id).await;
        assert_error(s, &v, StatusCode::CONFLICT, "merge_changed");
        let changed: Vec<&str> = v["error"]["changed"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert!(changed.contains(&"survivor.fields"), "{v}");
        // Nothing changed: still merged.
        let (s, v) = app.get(&format!("/api/v1/contacts/{b}")).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "merged");

        // A new conversation on the survivor after the merge.
        let c = app.visitor().await;
        c.identify_verified("u-c", json!({})).await;
        let (_, c_id) = c.say("first").await;
        let d = contact(app, json!({"name": "Other"})).await;
        let (_, done) = merge(app, &c_id, &d, false).await;
        let merge_id = done["merge_id"].as_str().unwrap().to_string();
        c.say("a new conversation").await;
        let (s, v) = undo(app, &merge_id).await;
        assert_error(s, &v, StatusCode::CONFLICT, "merge_changed");
        let changed: Vec<&str> = v["error"]["changed"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert!(changed.contains(&"survivor.conversations"), "{v}");
        assert!(changed.contains(&"survivor.stats"), "{v}");
        assert!(!changed.contains(&"survivor.fields"), "{v}");
    }

    async fn notes_are_added_edited_and_deleted_with_author_and_time_in_the_timeline(app) {
        let a = contact(app, json!({"name": "Noted"})).await;
        let path = format!("/api/v1/contacts/{a}/notes");
        for (body, why) in [(json!({"body": "   "}), "blank"), (json!({"body": "x".repeat(10_001)}), "too long"),
                            (json!({}), "missing"), (json!({"body": 5}), "not text")] {
            let (s, v) = app.admin(Method::POST, &path, Some(body)).await;
            assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
            assert_eq!(v["error"]["field"], "body", "{why}: {v}");
        }
        let note = add_note(app, &a, "  Wants a <b>demo</b>  ").await;
        assert_eq!(note["body"], "Wants a <b>demo</b>");
        assert_eq!(note["author"], json!({"kind": "api"}));
        assert!(note["created_at"].is_string() && note["created_at"] == note["updated_at"], "{note}");
        let id = note["id"].as_str().unwrap().to_string();
        let tl = timeline(app, &a).await;
        assert_eq!(tl[0]["kind"], "note");
        assert_eq!(tl[0]["actor"], "api");
        assert_eq!(tl[0]["data"]["body"], "Wants a <b>demo</b>");
        assert_eq!(tl[0]["data"]["note_id"], id.as_str());

        let (s, edited) = app.admin(Method::PATCH, &format!("{path}/{id}"), Some(json!({"body": "Demo booked"}))).await;
        assert_eq!(s, StatusCode::OK, "{edited}");
        assert_eq!(edited["body"], "Demo booked");
        assert_eq!(edited["created_at"], note["created_at"]);
        assert_ne!(edited["updated_at"], note["updated_at"]);
        let list = get_ok(app, &path).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(list["items"][0], edited);
        let tl = timeline(app, &a).await;
        assert_eq!(tl.iter().filter(|e| e["kind"] == "note").count(), 1);
        assert_eq!(tl[0]["data"]["body"], "Demo booked");
        let (s, v) = app.admin(Method::PATCH, &format!("{path}/{id}"), Some(json!({"body": ""}))).await;
        assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");

        let (s, v) = app.admin(Method::DELETE, &format!("{path}/{id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["deleted"], true);
        assert!(get_ok(app, &path).await["items"].as_array().unwrap().is_empty());
        assert!(timeline(app, &a).await.iter().all(|e| e["kind"] != "note"));
        let (s, v) = app.admin(Method::DELETE, &format!("{path}/{id}"), None).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
        let (s, v) = app.admin(Method::POST, "/api/v1/contacts/nobody/notes", Some(json!({"body": "x"}))).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
        // A note of one contact is not reachable through another.
        let other = contact(app, json!({"name": "Other"})).await;
        let n = add_note(app, &other, "theirs").await;
        let (s, v) = app.admin(Method::PATCH, &format!("{path}/{}", n["id"].as_str().unwrap()), Some(json!({"body": "mine"}))).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    }

    async fn notes_follow_a_merge_and_its_undo(app) {
        let a = contact(app, json!({"name": "A"})).await;
        let b = contact(app, json!({"name": "B"})).await;
        let nb = add_note(app, &b, "on B").await;
        let (_, done) = merge(app, &a, &b, false).await;
        let notes = get_ok(app, &format!("/api/v1/contacts/{a}/notes")).await;
        assert_eq!(notes["items"], json!([nb.clone()]));
        let (s, v) = app.get(&format!("/api/v1/contacts/{b}/notes")).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "merged");
        let (s, v) = undo(app, done["merge_id"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(get_ok(app, &format!("/api/v1/contacts/{b}/notes")).await["items"], json!([nb]));
        assert!(get_ok(app, &format!("/api/v1/contacts/{a}/notes")).await["items"].as_array().unwrap().is_empty());

        // A note edited after a merge is a change an undo must not lose: refused, naming it.
        let (_, done) = merge(app, &a, &b, false).await;
        let (s, _) = app.admin(Method::PATCH, &format!("/api/v1/contacts/{a}/notes/{}", nb["id"].as_str().unwrap()),
            Some(json!({"body": "edited after the merge"}))).await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = undo(app, done["merge_id"].as_str().unwrap()).await;
        assert_error(s, &v, StatusCode::CONFLICT, "merge_changed");
        assert_eq!(v["error"]["changed"], json!(["survivor.notes"]));
    }

    async fn lists_counts_and_search_are_exact_after_merge_and_undo(app) {
        let a = contact(app, json!({"name": "Alpha Person", "tags": ["vip"]})).await;
        let b = contact(app, json!({"name": "Zebra Person", "email": "zebra@example.com",
            "user_id": "zeb-1", "tags": ["trial"]})).await;
        let bystander = contact(app, json!({"name": "Bystander"})).await;
        let mut everyone = vec![a.clone(), b.clone(), bystander.clone()];
        everyone.sort();
        assert_eq!(found(app, "").await, (everyone.clone(), 3));
        assert_eq!(found(app, "q=zebra").await, (vec![b.clone()], 1));

        let (_, done) = merge(app, &a, &b, false).await;
        let mut two = vec![a.clone(), bystander.clone()];
        two.sort();
        assert_eq!(found(app, "").await, (two.clone(), 2));
        // The survivor took the email and user id (its name won): found by those, not by the name.
        assert_eq!(found(app, "q=zebra%40").await, (vec![a.clone()], 1));
        assert_eq!(found(app, "q=zeb-1").await, (vec![a.clone()], 1));
        assert_eq!(found(app, "q=Zebra+Person").await, (vec![], 0));
        assert_eq!(found(app, "tag=trial").await, (vec![a.clone()], 1));
        assert_eq!(found(app, "status=customer").await, (vec![a.clone()], 1));
        assert_eq!(found(app, "list=leads").await, (vec![bystander.clone()], 1));
        app.assert_builtin_counts().await;

        let (s, v) = undo(app, done["merge_id"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(found(app, "").await, (everyone, 3));
        assert_eq!(found(app, "q=zebra").await, (vec![b.clone()], 1));
        assert_eq!(found(app, "q=zeb-1").await, (vec![b.clone()], 1));
        assert_eq!(found(app, "tag=trial").await, (vec![b.clone()], 1));
        assert_eq!(found(app, "status=customer").await, (vec![b.clone()], 1));
        let mut leads = vec![a.clone(), bystander];
        leads.sort();
        assert_eq!(found(app, "list=leads").await, (leads, 2));
        app.assert_builtin_counts().await;
    }
}
