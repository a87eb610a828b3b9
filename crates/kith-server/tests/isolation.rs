//! Tenant isolation, as an attacker would probe it: every admin route with the ids of another
//! organization, every route with missing, malformed or foreign credentials, the widget with a
//! visitor token of another website, and bodies that try to set what the server owns (mass
//! assignment). After each probe the victim's data is read back through its owner's API and
//! must be exactly as before.
//!
//! The route tables below are checked against `/api/openapi.json` and the routers' source, so
//! a new route that is not added here fails `matrix_covers_every_route`.

mod common;

use common::{send, Backend, Site, TestApp, Visitor};
use futures::StreamExt;
use kith_core::OrgId;
use kith_server::{Config, Limits};
use kith_store::NewOrg;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// What a cross-organization probe of one admin route must answer.
#[derive(Clone, Copy)]
enum Probe {
    /// The path's `{id}` is the other organization's: 404 `not_found`.
    ForeignId,
    /// No id in the path: the probe puts foreign ids in the query or body instead, and the
    /// answer may succeed but must show or touch nothing of the other organization.
    Collection,
    /// A long-lived stream: checked by `admin_event_stream_carries_no_foreign_message`.
    Stream,
}

/// Every admin operation: method, path as OpenAPI names it, a valid body, the probe.
const ADMIN_ROUTES: &[(&str, &str, Probe)] = &[
    ("get", "/api/v1/contacts", Probe::Collection),
    ("get", "/api/v1/contacts/{id}", Probe::ForeignId),
    ("patch", "/api/v1/contacts/{id}", Probe::ForeignId),
    ("get", "/api/v1/contacts/{id}/timeline", Probe::ForeignId),
    (
        "get",
        "/api/v1/contacts/{id}/conversations",
        Probe::ForeignId,
    ),
    ("get", "/api/v1/lists", Probe::Collection),
    ("post", "/api/v1/lists", Probe::Collection),
    ("get", "/api/v1/lists/{id}", Probe::ForeignId),
    ("patch", "/api/v1/lists/{id}", Probe::ForeignId),
    ("delete", "/api/v1/lists/{id}", Probe::ForeignId),
    ("get", "/api/v1/conversations/{id}", Probe::ForeignId),
    (
        "get",
        "/api/v1/conversations/{id}/messages",
        Probe::ForeignId,
    ),
    (
        "post",
        "/api/v1/conversations/{id}/messages",
        Probe::ForeignId,
    ),
    (
        "post",
        "/api/v1/conversations/{id}/escalate",
        Probe::ForeignId,
    ),
    (
        "post",
        "/api/v1/conversations/{id}/resolve",
        Probe::ForeignId,
    ),
    (
        "post",
        "/api/v1/conversations/{id}/reopen",
        Probe::ForeignId,
    ),
    ("get", "/api/v1/websites", Probe::Collection),
    ("post", "/api/v1/websites", Probe::Collection),
    ("patch", "/api/v1/websites/{id}", Probe::ForeignId),
    (
        "post",
        "/api/v1/websites/{id}/rotate-secret",
        Probe::ForeignId,
    ),
    (
        "post",
        "/api/v1/websites/{id}/retire-previous-secret",
        Probe::ForeignId,
    ),
    ("get", "/api/v1/audit", Probe::Collection),
    ("delete", "/api/v1/contacts/{id}", Probe::ForeignId),
    ("get", "/api/v1/contacts/{id}/export", Probe::ForeignId),
    ("get", "/api/v1/contacts/export", Probe::Collection),
    ("get", "/api/v1/bulk-actions", Probe::Collection),
    ("post", "/api/v1/bulk-actions/preview", Probe::Collection),
    ("post", "/api/v1/bulk-actions", Probe::Collection),
    ("get", "/api/v1/bulk-actions/{id}", Probe::ForeignId),
    ("get", "/api/v1/webhooks", Probe::Collection),
    ("post", "/api/v1/webhooks", Probe::Collection),
    ("get", "/api/v1/webhooks/{id}", Probe::ForeignId),
    ("patch", "/api/v1/webhooks/{id}", Probe::ForeignId),
    ("delete", "/api/v1/webhooks/{id}", Probe::ForeignId),
    ("get", "/api/v1/webhooks/{id}/deliveries", Probe::ForeignId),
    (
        "post",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
        Probe::ForeignId,
    ),
    ("get", "/api/v1/events", Probe::Stream),
    ("post", "/api/v1/contacts/{id}/merge", Probe::ForeignId),
    ("get", "/api/v1/merges/{id}", Probe::ForeignId),
    ("post", "/api/v1/merges/{id}/undo", Probe::ForeignId),
    ("get", "/api/v1/contacts/{id}/notes", Probe::ForeignId),
    ("post", "/api/v1/contacts/{id}/notes", Probe::ForeignId),
    (
        "patch",
        "/api/v1/contacts/{id}/notes/{note_id}",
        Probe::ForeignId,
    ),
    (
        "delete",
        "/api/v1/contacts/{id}/notes/{note_id}",
        Probe::ForeignId,
    ),
];

/// Every widget operation (method, path as OpenAPI names it).
const WIDGET_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/widget/v1/session"),
    ("post", "/api/widget/v1/identify"),
    ("post", "/api/widget/v1/messages"),
    ("get", "/api/widget/v1/conversations"),
    ("get", "/api/widget/v1/conversations/{id}/messages"),
    ("post", "/api/widget/v1/conversations/{id}/escalate"),
    ("get", "/api/widget/v1/events"),
];

/// Operations outside both APIs, documented but not tenant-scoped.
const PUBLIC_ROUTES: &[(&str, &str)] =
    &[("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")];

/// A body the route would accept from its owner, so a refusal is about the tenant, not the
/// body.
fn valid_body(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("patch", "/api/v1/contacts/{id}") => {
            Some(json!({"name": "Mallory", "tags": ["owned"], "metadata": {"pwned": true}}))
        }
        ("patch", "/api/v1/lists/{id}") => Some(json!({"name": "Renamed", "filter": {}})),
        ("post", "/api/v1/lists") => Some(json!({"name": "Probe", "filter": {}})),
        // Bulk actions over nothing (no contact is on a website with this id): a job that is
        // done at once, so the probes change no data.
        ("post", "/api/v1/bulk-actions/preview") | ("post", "/api/v1/bulk-actions") => Some(
            json!({"filter": {"website_id": "no-such-website"}, "action": "delete", "expected_count": 0}),
        ),
        ("post", "/api/v1/conversations/{id}/messages") => Some(json!({"body": "pwned"})),
        ("post", "/api/v1/websites") => Some(json!({"name": "Probe site"})),
        ("patch", "/api/v1/websites/{id}") => {
            Some(json!({"name": "pwned", "identity_verification_mode": "off"}))
        }
        // Disabled: nothing is delivered, so the victim's state stays still between snapshots.
        ("post", "/api/v1/webhooks") => Some(
            json!({"url": "https://probe.example.test/", "events": ["message.created"], "enabled": false}),
        ),
        ("patch", "/api/v1/webhooks/{id}") => Some(
            json!({"url": "https://evil.example.test/", "enabled": true, "rotate_secret": true}),
        ),
        ("post", "/api/widget/v1/identify") => Some(json!({"name": "Mallory"})),
        ("post", "/api/widget/v1/messages") => Some(json!({"body": "pwned"})),
        ("post", "/api/v1/contacts/{id}/merge") => Some(json!({"other_id": "x"})),
        ("post", "/api/v1/contacts/{id}/notes")
        | ("patch", "/api/v1/contacts/{id}/notes/{note_id}") => Some(json!({"body": "pwned"})),
        ("post" | "patch", _) => Some(json!({})),
        _ => None,
    }
}

/// One organization's data: a contact with a conversation, messages and a timeline, a
/// contact merged into it, a custom list and a second website.
struct Tenant {
    org_id: OrgId,
    token: String,
    site: Site,
    visitor: Visitor,
    contact: String,
    merged: String,
    conversation: String,
    list: String,
    website: String,
    website_key: String,
    /// A note on `contact`, and a manual merge into it.
    note: String,
    manual_merge: String,
    /// A disabled webhook endpoint.
    webhook: String,
    /// A finished bulk action.
    bulk: String,
}

impl Tenant {
    /// The id a path's `{id}` stands for.
    fn id_for(&self, path: &str) -> &str {
        let kind = path
            .trim_start_matches("/api/v1/")
            .trim_start_matches("/api/widget/v1/");
        if kind.starts_with("contacts/") {
            &self.contact
        } else if kind.starts_with("conversations/") {
            &self.conversation
        } else if kind.starts_with("lists/") {
            &self.list
        } else if kind.starts_with("websites/") {
            &self.website
        } else if kind.starts_with("merges/") {
            &self.manual_merge
        } else if kind.starts_with("webhooks/") {
            &self.webhook
        } else if kind.starts_with("bulk-actions/") {
            &self.bulk
        } else {
            panic!(
                "the isolation matrix does not know what {{id}} is in {path}; teach Tenant::id_for"
            )
        }
    }
}

fn unlimited() -> Config {
    // The matrix sends hundreds of calls, many with bad credentials, from one address; rate
    // limits are tested elsewhere and would only turn 401/404 into 429 here.
    Config {
        limits: Limits {
            sessions_per_ip_per_minute: 0,
            visitor_per_second: 0,
            admin_per_second: 0,
            failed_auth_per_ip_per_second: 0,
            ..Limits::default()
        },
        ..Config::default()
    }
}

/// OpenAPI names methods in lower case; HTTP's are upper case.
fn verb(method: &str) -> Method {
    method.to_uppercase().parse().unwrap()
}

async fn admin_call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.admin_as(token, verb(method), path, body).await
}

async fn tenant(app: &TestApp, org_id: OrgId, token: String, site: Site) -> Tenant {
    let email = format!("person@{org_id}.test");
    let visitor = site.visitor().await;
    visitor
        .identify_verified("u-1", json!({"email": email, "name": "Person"}))
        .await;
    let (conversation, contact) = visitor.say("hello from the customer").await;
    let (s, v) = admin_call(
        app,
        &token,
        "post",
        &format!("/api/v1/conversations/{conversation}/messages"),
        Some(json!({"body": "hello from support"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = admin_call(
        app,
        &token,
        "patch",
        &format!("/api/v1/contacts/{contact}"),
        Some(json!({"tags": ["vip"], "metadata": {"plan": "pro"}, "company": "Acme"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // An anonymous contact that an (unverified) email moves into the person: a merged id.
    let other = site.visitor().await;
    let (_, merged) = other.say("anonymous first").await;
    let (s, v) = other.identify(json!({"email": email})).await;
    assert_eq!(
        (s, v["contact_id"].as_str()),
        (StatusCode::OK, Some(contact.as_str())),
        "{v}"
    );
    let (s, v) = admin_call(
        app,
        &token,
        "post",
        "/api/v1/lists",
        Some(json!({"name": "VIPs", "filter": {"tags": {"all": ["vip"]}}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let list = v["id"].as_str().unwrap().to_string();
    let (s, v) = admin_call(
        app,
        &token,
        "post",
        "/api/v1/websites",
        Some(json!({"name": "Second site"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let website = v["id"].as_str().unwrap().to_string();
    let website_key = v["website_key"].as_str().unwrap().to_string();
    let (s, note) = admin_call(
        app,
        &token,
        "post",
        &format!("/api/v1/contacts/{contact}/notes"),
        Some(json!({"body": "a private note"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{note}");
    let (_, duplicate) = site.visitor().await.say("a duplicate").await;
    let (s, merge) = admin_call(
        app,
        &token,
        "post",
        &format!("/api/v1/contacts/{contact}/merge"),
        Some(json!({"other_id": duplicate})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{merge}");
    let (s, hook) = admin_call(
        app,
        &token,
        "post",
        "/api/v1/webhooks",
        Some(json!({"url": "https://hooks.example.test/in", "events": ["message.created"], "enabled": false})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let (s, bulk) = admin_call(
        app,
        &token,
        "post",
        "/api/v1/bulk-actions",
        valid_body("post", "/api/v1/bulk-actions"),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{bulk}");
    Tenant {
        org_id,
        token,
        site,
        visitor,
        contact,
        merged,
        conversation,
        list,
        website,
        website_key,
        note: note["id"].as_str().unwrap().to_string(),
        manual_merge: merge["merge_id"].as_str().unwrap().to_string(),
        webhook: hook["id"].as_str().unwrap().to_string(),
        bulk: bulk["id"].as_str().unwrap().to_string(),
    }
}

/// Organization A (the fixture's) and organization B, in one server and one database.
async fn two_tenants(app: &TestApp) -> (Tenant, Tenant) {
    let a_site = app.site();
    let a = tenant(
        app,
        app.creds.org_id.clone(),
        app.creds.api_token.clone(),
        a_site,
    )
    .await;
    let b_creds = app
        .store
        .create_org(&NewOrg {
            name: "Globex".into(),
            admin_email: "admin@globex.test".into(),
            website_name: "Globex shop".into(),
        })
        .await
        .expect("second organization");
    let b_site = Site {
        base: app.base.clone(),
        http: app.http.clone(),
        key: b_creds.website_key.clone(),
        secret: b_creds.identity_secret.clone(),
    };
    let b = tenant(app, b_creds.org_id, b_creds.api_token, b_site).await;
    (a, b)
}

/// Everything an owner can read of its organization, through its own token.
async fn snapshot(app: &TestApp, t: &Tenant) -> Value {
    let get = |path: String| async move {
        let (s, v) = admin_call(app, &t.token, "get", &path, None).await;
        json!({"status": s.as_u16(), "body": v})
    };
    let mut contacts = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=200&cursor={c}"),
            None => "/api/v1/contacts?limit=200".to_string(),
        };
        let (s, page) = admin_call(app, &t.token, "get", &path, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        contacts.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut details = vec![];
    for c in &contacts {
        let id = c["id"].as_str().unwrap();
        let convs = get(format!("/api/v1/contacts/{id}/conversations?limit=200")).await;
        let mut threads = vec![];
        for conv in convs["body"]["items"].as_array().into_iter().flatten() {
            let cid = conv["id"].as_str().unwrap();
            threads.push(json!({
                "conversation": get(format!("/api/v1/conversations/{cid}")).await,
                "messages": get(format!("/api/v1/conversations/{cid}/messages?limit=200")).await,
            }));
        }
        details.push(json!({
            "contact": get(format!("/api/v1/contacts/{id}")).await,
            "timeline": get(format!("/api/v1/contacts/{id}/timeline?limit=200")).await,
            "conversations": convs,
            "threads": threads,
            "notes": get(format!("/api/v1/contacts/{id}/notes?limit=200")).await,
        }));
    }
    json!({
        "contacts": contacts,
        "details": details,
        "merged": get(format!("/api/v1/contacts/{}", t.merged)).await,
        "lists": get("/api/v1/lists".into()).await,
        "list": get(format!("/api/v1/lists/{}", t.list)).await,
        "websites": get("/api/v1/websites".into()).await,
        "audit": get("/api/v1/audit".into()).await,
        "manual_merge": get(format!("/api/v1/merges/{}", t.manual_merge)).await,
        "bulk": get(format!("/api/v1/bulk-actions/{}", t.bulk)).await,
        "webhooks": get("/api/v1/webhooks".into()).await,
        "webhook_log": get(format!("/api/v1/webhooks/{}/deliveries", t.webhook)).await,
    })
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
        "{what}: not the error shape: {body}"
    );
}

/// `attacker` probes every admin route with `victim`'s ids; the victim's data must not move.
async fn probe_foreign_ids(app: &TestApp, attacker: &Tenant, victim: &Tenant) {
    let before = snapshot(app, victim).await;
    let foreign = |v: &Value| {
        let text = v.to_string();
        for id in [
            &victim.contact,
            &victim.merged,
            &victim.conversation,
            &victim.list,
            &victim.website,
            &victim.website_key,
            &victim.org_id.to_string(),
            &victim.note,
            &victim.manual_merge,
        ] {
            assert!(
                !text.contains(id.as_str()),
                "{id} of the other organization leaked: {text}"
            );
        }
    };
    for &(method, path, probe) in ADMIN_ROUTES {
        let what = format!("{method} {path} with the other organization's ids");
        match probe {
            Probe::ForeignId => {
                let url = path
                    .replace("{id}", victim.id_for(path))
                    .replace("{note_id}", &victim.note);
                let (s, v) =
                    admin_call(app, &attacker.token, method, &url, valid_body(method, path)).await;
                assert_error(s, &v, StatusCode::NOT_FOUND, &what);
                assert_eq!(v["error"]["code"], "not_found", "{what}: {v}");
                foreign(&v);
            }
            Probe::Collection => {
                let (s, v) = match (method, path) {
                    ("get", "/api/v1/contacts") => {
                        let (s, v) = admin_call(
                            app,
                            &attacker.token,
                            method,
                            &format!("{path}?list={}", victim.list),
                            None,
                        )
                        .await;
                        assert_error(s, &v, StatusCode::NOT_FOUND, &format!("{what} (list)"));
                        let filter = json!({"website_id": victim.website}).to_string();
                        let url = format!("{path}?filter={}", urlencode(&filter));
                        let (s, v) = admin_call(app, &attacker.token, method, &url, None).await;
                        assert_eq!(
                            (s, v["total"].as_i64()),
                            (StatusCode::OK, Some(0)),
                            "{what} (website filter): {v}"
                        );
                        foreign(&v);
                        let url = format!("{path}?q=person&limit=200");
                        admin_call(app, &attacker.token, method, &url, None).await
                    }
                    ("post", "/api/v1/lists") => {
                        // A saved filter naming the other organization's website, and an id
                        // naming its list: a new list of the caller's own, counting nothing.
                        let body = json!({"name": "Probe", "id": victim.list, "org_id": victim.org_id,
                            "filter": {"website_id": victim.website}});
                        let (s, v) =
                            admin_call(app, &attacker.token, method, path, Some(body)).await;
                        assert_eq!(
                            (s, v["count"].as_i64()),
                            (StatusCode::CREATED, Some(0)),
                            "{what}: {v}"
                        );
                        assert_ne!(v["id"], json!(victim.list), "{what}: {v}");
                        let id = v["id"].as_str().unwrap();
                        let (s, _) = admin_call(
                            app,
                            &attacker.token,
                            "delete",
                            &format!("/api/v1/lists/{id}"),
                            None,
                        )
                        .await;
                        assert_eq!(s, StatusCode::OK);
                        (s, json!({}))
                    }
                    ("get", "/api/v1/contacts/export") => {
                        // CSV, not JSON: read as text; the other organization's list is 404.
                        let (s, v) = admin_call(
                            app,
                            &attacker.token,
                            method,
                            &format!("{path}?list={}", victim.list),
                            None,
                        )
                        .await;
                        assert_error(s, &v, StatusCode::NOT_FOUND, &format!("{what} (list)"));
                        let resp = app
                            .http
                            .get(format!("{}{path}", app.base))
                            .bearer_auth(&attacker.token)
                            .send()
                            .await
                            .unwrap();
                        let s = resp.status();
                        (s, json!(resp.text().await.unwrap()))
                    }
                    ("post", "/api/v1/bulk-actions") | ("post", "/api/v1/bulk-actions/preview") => {
                        // The other organization's list is not found; a filter naming its
                        // website selects nothing.
                        let body =
                            json!({"list": victim.list, "action": "delete", "expected_count": 0});
                        let (s, v) =
                            admin_call(app, &attacker.token, method, path, Some(body)).await;
                        assert_error(s, &v, StatusCode::NOT_FOUND, &format!("{what} (list)"));
                        let body = json!({"filter": {"website_id": victim.website}, "action": "delete", "expected_count": 0});
                        let (s, v) =
                            admin_call(app, &attacker.token, method, path, Some(body)).await;
                        assert!(s.is_success(), "{what}: {s} {v}");
                        let n = v["count"].as_i64().or(v["total"].as_i64());
                        assert_eq!(n, Some(0), "{what}: {v}");
                        // A job echoes the selection the caller sent (its own text), so the
                        // answer is checked by its count, not searched for foreign ids.
                        (s, json!({}))
                    }
                    ("post", "/api/v1/websites") => {
                        let body = json!({"name": "Probe site", "id": victim.website, "org_id": victim.org_id,
                            "website_key": victim.website_key});
                        admin_call(app, &attacker.token, method, path, Some(body)).await
                    }
                    _ => {
                        admin_call(app, &attacker.token, method, path, valid_body(method, path))
                            .await
                    }
                };
                assert!(s.is_success(), "{what}: {s} {v}");
                foreign(&v);
            }
            Probe::Stream => {}
        }
    }
    assert_eq!(
        snapshot(app, victim).await,
        before,
        "the other organization's data changed"
    );
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Credentials that must never open the admin API.
fn bad_credentials(
    owner: &Tenant,
    visitor_token: &str,
) -> Vec<(&'static str, Option<HeaderValue>)> {
    let t = &owner.token;
    let v = |s: String| Some(HeaderValue::from_str(&s).unwrap());
    vec![
        ("none", None),
        ("empty bearer", v("Bearer ".into())),
        ("bearer without a space", v(format!("Bearer{t}"))),
        ("junk", v("Bearer not-a-token".into())),
        ("basic", v("Basic YWRtaW46YWRtaW4=".into())),
        ("bare token", v(t.clone())),
        ("token plus a character", v(format!("Bearer {t}x"))),
        (
            "truncated token",
            v(format!("Bearer {}", &t[..t.len() - 1])),
        ),
        (
            "token with another organization prefix",
            v(format!(
                "Bearer kt_{}_{}",
                "0".repeat(26),
                t.rsplit('_').next().unwrap()
            )),
        ),
        ("website key", v(format!("Bearer {}", owner.site.key))),
        (
            "identity secret",
            v(format!("Bearer {}", owner.site.secret)),
        ),
        ("visitor token", v(format!("Bearer {visitor_token}"))),
        ("very long", v(format!("Bearer {}", "k".repeat(4096)))),
        (
            "not UTF-8",
            Some(HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap()),
        ),
        ("SQL", v("Bearer ' OR '1'='1".into())),
    ]
}

/// Every admin route, on the owner's own ids, with every kind of bad credential: 401.
async fn probe_bad_credentials(app: &TestApp, owner: &Tenant) {
    let before = snapshot(app, owner).await;
    for (kind, header) in bad_credentials(owner, &owner.visitor.token) {
        for &(method, path, _) in ADMIN_ROUTES {
            let url = if path.contains("{id}") {
                path.replace("{id}", owner.id_for(path))
            } else {
                path.to_string()
            };
            let mut req = app.http.request(verb(method), format!("{}{url}", app.base));
            if let Some(h) = &header {
                req = req.header(AUTHORIZATION, h.clone());
            }
            if let Some(b) = valid_body(method, path) {
                req = req.json(&b);
            }
            let (s, v) = send(req).await;
            assert_error(
                s,
                &v,
                StatusCode::UNAUTHORIZED,
                &format!("{method} {path} with {kind}"),
            );
        }
    }
    assert_eq!(
        snapshot(app, owner).await,
        before,
        "bad credentials changed data"
    );
}

macro_rules! both_backends_unlimited {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: &TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = TestApp::spawn_with(Backend::Sqlite, unlimited()).await;
                    run(&app).await;
                    app.stop().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = TestApp::spawn_with(Backend::Postgres, unlimited()).await;
                    run(&app).await;
                    app.stop().await;
                }
            }
        )*
    };
}

both_backends_unlimited! {
    async fn admin_routes_answer_404_for_another_organizations_ids(app) {
        let (a, b) = two_tenants(app).await;
        probe_foreign_ids(app, &a, &b).await;
        probe_foreign_ids(app, &b, &a).await;
    }

    async fn admin_routes_answer_401_without_valid_credentials(app) {
        let (a, _b) = two_tenants(app).await;
        probe_bad_credentials(app, &a).await;
    }

    async fn admin_event_stream_carries_no_foreign_message(app) {
        let (a, b) = two_tenants(app).await;
        let resp = app.http.get(format!("{}/api/v1/events", app.base)).bearer_auth(&a.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            while !buf.contains("event: ready") {
                buf.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
            }
        }).await.expect("ready event");
        let (s, _) = b.visitor.say_in(&b.conversation, "secret of the other organization").await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = a.visitor.say_in(&a.conversation, "own message").await;
        assert_eq!(s, StatusCode::CREATED);
        tokio::time::timeout(Duration::from_secs(10), async {
            while !buf.contains("own message") {
                buf.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
            }
        }).await.expect("own message event");
        assert!(!buf.contains("secret of the other"), "{buf}");
        assert!(!buf.contains(&b.conversation), "{buf}");
    }

    async fn widget_refuses_another_websites_visitor_and_foreign_conversations(app) {
        let (a, b) = two_tenants(app).await;
        let a_before = snapshot(app, &a).await;
        let b_before = snapshot(app, &b).await;
        // A's visitor token presented with B's website key, or with A's other website's key:
        // tokens belong to one website.
        for key in [b.site.key.clone(), a.website_key.clone()] {
            for &(method, path) in WIDGET_ROUTES {
                let url = path.replace("{id}", &a.conversation);
                let mut req = app.http.request(verb(method), format!("{}{url}", app.base))
                    .header("X-Kith-Website", &key)
                    .header("X-Kith-Visitor", &a.visitor.token);
                if let Some(body) = valid_body(method, path) {
                    req = req.json(&body);
                }
                let (s, v) = send(req).await;
                if path.ends_with("/session") {
                    // A session with a token of another website starts a new visitor.
                    assert_eq!(s, StatusCode::OK, "{v}");
                    assert_ne!(v["visitor_token"], json!(a.visitor.token));
                } else {
                    assert_error(s, &v, StatusCode::UNAUTHORIZED, &format!("{method} {path} with key {key}"));
                }
            }
        }
        // A visitor of B, and another (unverified) visitor of A's own website, name A's
        // conversation: 404, and it is in neither one's list.
        for intruder in [b.visitor.clone(), a.site.visitor().await] {
            for &(method, path) in WIDGET_ROUTES.iter().filter(|(_, p)| p.contains("{id}")) {
                let url = path.trim_start_matches("/api/widget/v1").replace("{id}", &a.conversation);
                let (s, v) = intruder.call(verb(method), &url, valid_body(method, path)).await;
                assert_error(s, &v, StatusCode::NOT_FOUND, &format!("{method} {path}"));
            }
            let (s, v) = intruder.say_in(&a.conversation, "let me in").await;
            assert_error(s, &v, StatusCode::NOT_FOUND, "message into a foreign conversation");
            assert!(!intruder.conversation_ids().await.contains(&a.conversation));
        }
        assert_eq!(snapshot(app, &a).await, a_before, "A's data changed");
        // B's visitor wrote nothing that stuck; its session calls may only touch last_seen_at.
        let strip = |mut v: Value| { strip_key(&mut v, "last_seen_at"); v };
        assert_eq!(strip(snapshot(app, &b).await), strip(b_before), "B's data changed");
    }

    async fn contact_patch_ignores_fields_the_server_owns(app) {
        let (a, b) = two_tenants(app).await;
        let path = format!("/api/v1/contacts/{}", a.contact);
        let before = app.contact(&a.contact).await;
        let timeline = app.timeline_kinds(&a.contact).await;
        let owned = json!({
            "id": "c_chosen", "org_id": b.org_id, "status": "lead",
            "message_count": 999, "conversation_count": 999,
            "last_seen_at": "2001-01-01T00:00:00Z", "created_at": "2001-01-01T00:00:00Z",
            "updated_at": "2001-01-01T00:00:00Z",
        });
        let (s, v) = app.patch(&a.contact, owned.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v, before, "a body of server-owned fields changed the answer");
        assert_eq!(app.contact(&a.contact).await, before, "read back");
        assert_eq!(app.timeline_kinds(&a.contact).await, timeline, "no fields_updated for nothing");
        // Mixed with a real edit, only the real edit applies.
        let mut body = owned.clone();
        body["name"] = json!("Renamed");
        let (s, v) = app.patch(&a.contact, body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let after = app.contact(&a.contact).await;
        assert_eq!(after["name"], "Renamed");
        for key in ["id", "status", "user_id", "email", "message_count", "conversation_count", "last_seen_at", "created_at", "tags", "metadata"] {
            assert_eq!(after[key], before[key], "{key} moved");
        }
        assert_ne!(after["updated_at"], owned["updated_at"]);
        // Nothing arrived under the chosen id or in the other organization.
        let (s, _) = app.get("/api/v1/contacts/c_chosen").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = admin_call(app, &b.token, "get", &path, None).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "A's contact through B");
        let (_, lists) = admin_call(app, &b.token, "get", "/api/v1/lists", None).await;
        let all = lists["items"].as_array().unwrap().iter().find(|l| l["id"] == "all").unwrap();
        assert_eq!(all["count"], 1, "B still has exactly its one contact");
    }

    async fn list_bodies_ignore_id_builtin_and_count(app) {
        let (a, _b) = two_tenants(app).await;
        let (_, lists_before) = app.get("/api/v1/lists").await;
        let (s, v) = app.admin(Method::POST, "/api/v1/lists", Some(json!({
            "name": "Chosen", "filter": {"status": "customer"},
            "id": "all", "builtin": true, "count": 999, "created_at": "2001-01-01T00:00:00Z",
        }))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        assert_ne!(id, "all");
        assert_eq!((v["builtin"].as_bool(), v["count"].as_i64()), (Some(false), Some(1)), "{v}");
        let (_, lists) = app.get("/api/v1/lists").await;
        let builtin_all: Vec<&Value> = lists["items"].as_array().unwrap().iter().filter(|l| l["id"] == "all").collect();
        assert_eq!(builtin_all.len(), 1);
        let old_all = lists_before["items"].as_array().unwrap().iter().find(|l| l["id"] == "all").unwrap();
        assert_eq!(builtin_all[0], old_all, "the built-in list is untouched");
        // PATCH of the same fields alone changes nothing, on the new list and on A's list.
        for list in [id.as_str(), a.list.as_str()] {
            let path = format!("/api/v1/lists/{list}");
            let (_, before) = app.get(&path).await;
            let (s, v) = app.admin(Method::PATCH, &path, Some(json!({"id": "leads", "builtin": true, "count": 5}))).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(app.get(&path).await.1, before, "read back {list}");
            assert_eq!(v, before);
        }
        let (s, _) = app.get("/api/v1/lists/leads").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.get("/api/v1/lists/leads").await.1["builtin"], true);
    }

    async fn website_bodies_ignore_id_keys_and_secrets(app) {
        let (a, b) = two_tenants(app).await;
        let (s, v) = app.admin(Method::POST, "/api/v1/websites", Some(json!({
            "name": "Chosen", "id": a.website, "org_id": b.org_id,
            "website_key": "wk_chosen", "identity_secret": "chosen-secret",
            "created_at": "2001-01-01T00:00:00Z",
        }))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_ne!(v["id"], json!(a.website));
        assert_ne!(v["website_key"], "wk_chosen");
        assert_ne!(v["identity_secret"], "chosen-secret");
        assert!(!v["created_at"].as_str().unwrap().starts_with("2001"), "{v}");
        let (_, mine) = app.get("/api/v1/websites").await;
        let ids: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&v["id"].as_str().unwrap()) && ids.contains(&a.website.as_str()), "{mine}");
        let (_, theirs) = admin_call(app, &b.token, "get", "/api/v1/websites", None).await;
        assert_eq!(theirs["items"].as_array().unwrap().len(), 2, "B's websites: {theirs}");
        // The chosen key opens nothing.
        let (s, e) = send(app.http.post(format!("{}/api/widget/v1/session", app.base))
            .header("X-Kith-Website", "wk_chosen").json(&json!({}))).await;
        assert_error(s, &e, StatusCode::UNAUTHORIZED, "a key chosen by the client");
    }
}

fn strip_key(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|x| strip_key(x, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_key(x, key)),
        _ => {}
    }
}

/// The `.route("…")` paths of a router's source file. axum cannot list a router's routes, so
/// the source is read: a route added there and not to OpenAPI (and this matrix) fails below.
fn routed_paths(source: &str, prefix: &str) -> BTreeSet<String> {
    source
        .split(".route(")
        .skip(1)
        .map(|rest| {
            let start = rest.find('"').expect("route path") + 1;
            let end = start + rest[start..].find('"').expect("route path end");
            format!("{prefix}{}", &rest[start..end])
        })
        .collect()
}

#[tokio::test]
async fn matrix_covers_every_route() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (s, doc) = send(app.http.get(format!("{}/api/openapi.json", app.base))).await;
    assert_eq!(s, StatusCode::OK);
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| {
                    [
                        "get", "post", "put", "patch", "delete", "head", "options", "trace",
                    ]
                    .contains(&m.as_str())
                })
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let covered: BTreeSet<(String, String)> = ADMIN_ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .chain(
            WIDGET_ROUTES
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string())),
        )
        .chain(
            PUBLIC_ROUTES
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string())),
        )
        .collect();
    assert_eq!(
        documented.difference(&covered).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented operations the isolation matrix does not probe: add them to ADMIN_ROUTES / WIDGET_ROUTES"
    );
    assert_eq!(
        covered.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "operations in the matrix that OpenAPI does not document"
    );
    // Every routed path is documented.
    let documented_paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    // The admin API's routers, one file per resource: every file of src/routes/admin/ is
    // read, so a resource added there is scanned too.
    let admin_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes/admin");
    let admin_sources: Vec<String> = std::fs::read_dir(&admin_dir)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    let routed = admin_sources
        .iter()
        .flat_map(|source| routed_paths(source, "/api/v1"))
        .chain(routed_paths(
            include_str!("../src/routes/widget.rs"),
            "/api/widget/v1",
        ));
    let routed: Vec<String> = routed.collect();
    assert!(
        routed.len() > 10,
        "the router scan found too few routes: {routed:?}"
    );
    for path in routed {
        assert!(
            documented_paths.contains(&path),
            "{path} is routed but not in /api/openapi.json"
        );
    }
    // And on every documented path, only the documented methods are routed: an undocumented
    // method answers 404/405 before any credential is looked at, never 401 or 2xx.
    for path in &documented_paths {
        if !path.starts_with("/api/") {
            continue;
        }
        let url = format!("{}{}", app.base, path.replace("{id}", "x"));
        for method in ["get", "post", "put", "patch", "delete"] {
            if documented.contains(&(method.to_string(), path.clone())) {
                continue;
            }
            let resp = app.http.request(verb(method), &url).send().await.unwrap();
            assert!(
                [StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&resp.status()),
                "{method} {path} is routed ({}) but not documented",
                resp.status()
            );
        }
    }
    app.stop().await;
}
