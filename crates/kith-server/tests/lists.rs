//! SPEC 1 "Lists (saved segments)": built-in and custom lists, every filter field and
//! operator, search, sorting and keyset paging, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A contact created by a visitor's message, then edited by an admin.
async fn contact(app: &TestApp, fields: Value) -> String {
    let v = app.visitor().await;
    let (_, id) = v.say("hello").await;
    if fields.as_object().is_some_and(|o| !o.is_empty()) {
        let (s, c) = app.patch(&id, fields).await;
        assert_eq!(s, StatusCode::OK, "{c}");
    }
    id
}

/// Ids of every contact matching `query` (walking all pages), and the total of the first page.
async fn ids(app: &TestApp, query: &str) -> (Vec<String>, i64) {
    let mut out = vec![];
    let mut total = None;
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=2{sep}{query}&cursor={c}"),
            None => format!("/api/v1/contacts?limit=2{sep}{query}"),
        };
        let (s, page) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{query}: {page}");
        total.get_or_insert(page["total"].as_i64().unwrap());
        out.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    (out, total.unwrap())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Asserts that `query` matches exactly `want` and counts them exactly.
async fn expect(app: &TestApp, query: &str, want: &[&String]) {
    let (got, total) = ids(app, query).await;
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(sorted(got.clone()), sorted(want.clone()), "{query}");
    assert_eq!(total as usize, want.len(), "count of {query}");
    assert_eq!(
        got.len(),
        want.len(),
        "paged items of {query} equal its count"
    );
}

async fn filter_query(f: Value) -> String {
    format!("filter={}", enc(&f.to_string()))
}

both_backends! {
    async fn built_in_lists_count_exactly_and_cannot_change(app) {
        let lead = contact(app, json!({})).await;
        let customer = contact(app, json!({"user_id": "u-1"})).await;
        let (s, lists) = app.get("/api/v1/lists").await;
        assert_eq!(s, StatusCode::OK);
        let by_id = |id: &str| lists["items"].as_array().unwrap().iter().find(|l| l["id"] == id).cloned().unwrap();
        assert_eq!(by_id("all")["count"], 2);
        assert_eq!(by_id("leads")["count"], 1);
        assert_eq!(by_id("customers")["count"], 1);
        assert_eq!(by_id("all")["builtin"], true);
        expect(app, "list=leads", &[&lead]).await;
        expect(app, "list=customers", &[&customer]).await;
        expect(app, "list=all", &[&lead, &customer]).await;
        for id in ["all", "leads", "customers"] {
            let (s, err) = app.admin(Method::PATCH, &format!("/api/v1/lists/{id}"), Some(json!({"name": "x"}))).await;
            assert_eq!((s, err["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("builtin_list")));
            let (s, err) = app.admin(Method::DELETE, &format!("/api/v1/lists/{id}"), None).await;
            assert_eq!((s, err["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("builtin_list")));
        }
        let (s, err) = app.get("/api/v1/contacts?list=nope").await;
        assert_eq!((s, err["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }

    async fn custom_lists_are_created_renamed_refiltered_and_deleted(app) {
        let vip = contact(app, json!({"tags": ["VIP"]})).await;
        let trial = contact(app, json!({"tags": ["trial"], "user_id": "u-2"})).await;
        let (s, list) = app.admin(Method::POST, "/api/v1/lists", Some(json!({"name": "VIPs", "filter": {"tags": {"all": ["vip"]}}}))).await;
        assert_eq!(s, StatusCode::CREATED, "{list}");
        assert_eq!(list["count"], 1);
        assert_eq!(list["builtin"], false);
        let id = list["id"].as_str().unwrap().to_string();
        expect(app, &format!("list={id}"), &[&vip]).await;
        // Parameters AND with the list's filter.
        expect(app, &format!("list={id}&status=customer"), &[]).await;
        let (s, list) = app.admin(Method::PATCH, &format!("/api/v1/lists/{id}"), Some(json!({"name": "Trials", "filter": {"tags": {"any": ["trial"]}, "status": "customer"}}))).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list["name"], "Trials");
        assert_eq!(list["filter"], json!({"tags": {"any": ["trial"]}, "status": "customer"}));
        expect(app, &format!("list={id}"), &[&trial]).await;
        let (_, all) = app.get("/api/v1/lists").await;
        assert_eq!(all["items"].as_array().unwrap().len(), 4);
        let (s, _) = app.admin(Method::DELETE, &format!("/api/v1/lists/{id}"), None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app.get(&format!("/api/v1/lists/{id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.admin(Method::DELETE, &format!("/api/v1/lists/{id}"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Invalid filters name the field.
        for (body, field) in [
            (json!({"name": "x", "filter": {"colour": "red"}}), "filter.colour"),
            (json!({"name": "x", "filter": {"tags": {"some": ["a"]}}}), "filter.tags.some"),
            (json!({"name": "", "filter": {}}), "name"),
            (json!({"filter": {}}), "name"),
        ] {
            let (s, err) = app.admin(Method::POST, "/api/v1/lists", Some(body)).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(err["error"]["field"], field);
        }
    }

    async fn tag_filters_all_any_none_case_insensitively(app) {
        let a = contact(app, json!({"tags": ["Enterprise", "Trial"]})).await;
        let b = contact(app, json!({"tags": ["enterprise"]})).await;
        let c = contact(app, json!({"tags": ["churned"]})).await;
        let d = contact(app, json!({})).await;
        expect(app, "tag=ENTERPRISE", &[&a, &b]).await;
        expect(app, "tag=enterprise&tag=trial", &[&a]).await;
        expect(app, &filter_query(json!({"tags": {"any": ["trial", "churned"]}})).await, &[&a, &c]).await;
        expect(app, &filter_query(json!({"tags": {"none": ["enterprise"]}})).await, &[&c, &d]).await;
        expect(app, &filter_query(json!({"tags": {"all": ["enterprise"], "none": ["trial"]}})).await, &[&b]).await;
        // Tags follow edits.
        app.patch(&b, json!({"tags": []})).await;
        expect(app, "tag=enterprise", &[&a]).await;
    }

    async fn search_matches_substrings_of_every_searchable_field(app) {
        let ada = contact(app, json!({"name": "Ada Lovelace", "email": "ada@analytical.example", "company": "Engines Ltd"})).await;
        let zoe = contact(app, json!({"name": "Zoë Ångström", "phone": "+442071838750", "metadata": {"plan": "Platinum", "seats": 42, "beta": true}})).await;
        let uid = contact(app, json!({"user_id": "ACME-7781", "name": "50%_off"})).await;
        contact(app, json!({"name": "Nobody"})).await;
        for (q, want) in [
            ("lovelace", vec![&ada]),
            ("LOVE", vec![&ada]),
            ("analytical.ex", vec![&ada]),
            ("engines", vec![&ada]),
            ("ångst", vec![&zoe]),
            ("ÅNGSTRÖM", vec![&zoe]),
            ("zoë", vec![&zoe]),
            ("2071838", vec![&zoe]),
            ("platin", vec![&zoe]),
            ("42", vec![&zoe]),
            ("true", vec![&zoe]),
            ("acme-77", vec![&uid]),
            ("%_", vec![&uid]),
            ("0%", vec![&uid]),
            ("ad", vec![&ada]),
            ("ö", vec![&zoe]),
            ("  Ada  ", vec![&ada]),
            ("xyz", vec![]),
        ] {
            expect(app, &format!("q={}", enc(q)), &want).await;
        }
        // An empty q is no condition.
        let (_, total) = ids(app, "q=").await;
        assert_eq!(total, 4);
        // Searchable the moment the write commits.
        let fresh = contact(app, json!({"name": "Grace Hopper"})).await;
        expect(app, "q=hopper", &[&fresh]).await;
        app.patch(&fresh, json!({"name": "Grace Brewster"})).await;
        expect(app, "q=hopper", &[]).await;
        expect(app, "q=brewster", &[&fresh]).await;
    }

    async fn metadata_time_count_and_website_filters(app) {
        let before = chrono_now(app).await;
        let pro = contact(app, json!({"metadata": {"plan": "pro", "seats": 5, "beta": true}})).await;
        let free = contact(app, json!({"metadata": {"plan": "free", "seats": 1}})).await;
        let bare = contact(app, json!({})).await;
        expect(app, &filter_query(json!({"metadata": {"plan": {"eq": "pro"}}})).await, &[&pro]).await;
        expect(app, &filter_query(json!({"metadata": {"seats": {"eq": 1}}})).await, &[&free]).await;
        expect(app, &filter_query(json!({"metadata": {"beta": {"eq": true}}})).await, &[&pro]).await;
        expect(app, &filter_query(json!({"metadata": {"seats": {"eq": "5"}}})).await, &[]).await;
        expect(app, &filter_query(json!({"metadata": {"plan": {"exists": true}}})).await, &[&pro, &free]).await;
        expect(app, &filter_query(json!({"metadata": {"plan": {"exists": false}}})).await, &[&bare]).await;

        // Times: everything so far is after `before`; a contact created later is after `middle`.
        let middle = chrono_now(app).await;
        let late = contact(app, json!({})).await;
        let after_all = chrono_now(app).await;
        expect(app, &filter_query(json!({"created_at": {"after": before}})).await, &[&pro, &free, &bare, &late]).await;
        expect(app, &filter_query(json!({"created_at": {"after": middle}})).await, &[&late]).await;
        expect(app, &filter_query(json!({"created_at": {"before": middle}})).await, &[&pro, &free, &bare]).await;
        expect(app, &filter_query(json!({"last_seen_at": {"after": middle, "before": after_all}})).await, &[&late]).await;

        // Counts: `late` writes twice more; another contact has two conversations.
        let v = app.visitor().await;
        let (conv, busy) = v.say("one").await;
        v.say_in(&conv, "two").await;
        v.say("three, new conversation").await;
        expect(app, &filter_query(json!({"message_count": {"min": 3}})).await, &[&busy]).await;
        expect(app, &filter_query(json!({"message_count": {"max": 1}})).await, &[&pro, &free, &bare, &late]).await;
        expect(app, &filter_query(json!({"conversation_count": {"min": 2, "max": 2}})).await, &[&busy]).await;

        // Website: contacts who talked on it.
        let blog = app.unverified_site().await;
        let (_, blogger) = blog.visitor().await.say("from the blog").await;
        let (_, sites) = app.get("/api/v1/websites").await;
        let blog_id = sites["items"].as_array().unwrap().iter().find(|w| w["name"] == "Blog").unwrap()["id"].as_str().unwrap().to_string();
        expect(app, &filter_query(json!({"website_id": blog_id})).await, &[&blogger]).await;
    }

    async fn sorting_by_every_field_both_ways_with_missing_values_last(app) {
        let bob = contact(app, json!({"name": "bob"})).await;
        let alice = contact(app, json!({"name": "Alice"})).await;
        let nameless = contact(app, json!({})).await;
        let carol = contact(app, json!({"name": "carol"})).await;
        let (asc, _) = ids(app, "sort=name").await;
        assert_eq!(asc, [alice.clone(), bob.clone(), carol.clone(), nameless.clone()]);
        let (desc, _) = ids(app, "sort=-name").await;
        assert_eq!(desc, [carol.clone(), bob.clone(), alice.clone(), nameless.clone()]);
        let (created, _) = ids(app, "sort=created_at").await;
        assert_eq!(created, [bob.clone(), alice.clone(), nameless.clone(), carol.clone()]);
        let (created_desc, _) = ids(app, "sort=-created_at").await;
        assert_eq!(created_desc, [carol.clone(), nameless.clone(), alice.clone(), bob.clone()]);
        // By default, the most recently seen first.
        let (default, _) = ids(app, "").await;
        assert_eq!(default[0], carol);
        let (s, err) = app.get("/api/v1/contacts?sort=age").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error"]["field"], "sort");
        // A cursor is bound to its order.
        let (_, page) = app.get("/api/v1/contacts?limit=1&sort=name").await;
        let c = page["next_cursor"].as_str().unwrap();
        let (s, _) = app.get(&format!("/api/v1/contacts?limit=1&sort=-name&cursor={c}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    async fn paging_has_no_gaps_or_repeats_while_contacts_arrive(app) {
        let mut made = vec![];
        for i in 0..9 {
            made.push(contact(app, json!({"name": format!("n{i}"), "tags": ["batch"]})).await);
        }
        let mut seen = vec![];
        let mut cursor: Option<String> = None;
        let mut i = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/contacts?tag=batch&sort=name&limit=2&cursor={c}"),
                None => "/api/v1/contacts?tag=batch&sort=name&limit=2".to_string(),
            };
            let (_, page) = app.get(&path).await;
            seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
            // New contacts keep arriving, before and after the cursor.
            contact(app, json!({"name": format!("a-new-{i}"), "tags": ["batch"]})).await;
            contact(app, json!({"name": format!("z-new-{i}"), "tags": ["other"]})).await;
            i += 1;
            match page["next_cursor"].as_str() { Some(c) => cursor = Some(c.to_string()), None => break }
        }
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no repeats");
        for id in &made {
            assert!(seen.contains(id), "no gaps: {id} missing");
        }
    }
}

/// The server's idea of now, as RFC 3339 (a list filter bound), taken between writes.
async fn chrono_now(app: &TestApp) -> String {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let now = kith_store::now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let _ = app;
    kith_core::Timestamp(now).to_rfc3339()
}
