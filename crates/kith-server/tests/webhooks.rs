//! Webhooks end to end: a receiver (an axum server inside the test) subscribed to every event
//! gets each event once, signed, in order per contact, for a scripted scenario; a receiver
//! answering 500 gets the delivery again and the log shows both attempts; a change refused
//! writes no event. On SQLite and PostgreSQL.

#[macro_use]
mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use common::{Backend, TestApp};
use kith_server::webhooks::WebhookConfig;
use kith_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    webhook_id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to the first attempt of every delivery.
    fail_first: bool,
    /// Answer 500 to every body containing this.
    refuse: Arc<Mutex<Option<String>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> AxumStatus {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let got = Received {
        webhook_id: h("kith-webhook-id"),
        timestamp: h("kith-webhook-timestamp"),
        signature: h("kith-signature"),
        body,
    };
    let refused = r
        .refuse
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|text| got.body.contains(text.as_str()));
    let mut all = r.got.lock().unwrap();
    let seen_before = all.iter().any(|g| g.webhook_id == got.webhook_id);
    all.push(got);
    if refused || (r.fail_first && !seen_before) {
        AxumStatus::INTERNAL_SERVER_ERROR
    } else {
        AxumStatus::OK
    }
}

impl Receiver {
    /// Serves on 127.0.0.1:0; answers the URL to subscribe.
    async fn start(fail_first: bool) -> (Receiver, String) {
        let r = Receiver {
            got: Arc::default(),
            fail_first,
            refuse: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds for what was received.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; got {:#?}",
                got.iter()
                    .map(|g| g.json()["type"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a receiver does: HMAC-SHA256(secret, "{timestamp}.{body}"), compared to `v1=…`.
fn signature_valid(secret: &str, r: &Received) -> bool {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", r.timestamp, r.body).as_bytes());
    let expected = format!("v1={}", hex_lower(&mac.finalize().into_bytes()));
    let fresh = r
        .timestamp
        .parse::<i64>()
        .map(|t| (kith_store::now_ms() / 1000 - t).abs() < 300)
        .unwrap_or(false);
    fresh && expected == r.signature
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Quick retries, so a test sees them.
fn fast() -> Config {
    Config {
        webhooks: WebhookConfig {
            retry_base: Duration::from_millis(20),
            retry_cap: Duration::from_millis(200),
            poll: Duration::from_millis(100),
            max_attempts: 3,
            ..WebhookConfig::default()
        },
        ..Config::default()
    }
}

async fn subscribe(app: &TestApp, url: &str, events: Value) -> Value {
    let (s, hook) = app
        .admin(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    hook
}

const ALL: [&str; 8] = [
    "contact.created",
    "contact.updated",
    "contact.merged",
    "contact.promoted",
    "contact.deleted",
    "conversation.started",
    "conversation.escalated",
    "message.created",
];

/// The event types received for one contact, in arrival order.
fn types_for(got: &[Received], contact_id: &str) -> Vec<String> {
    got.iter()
        .map(Received::json)
        .filter(|v| v["data"]["contact_id"] == contact_id)
        .map(|v| v["type"].as_str().unwrap().to_string())
        .collect()
}

async fn scripted_scenario(app: &TestApp) {
    let (receiver, url) = Receiver::start(false).await;
    let hook = subscribe(app, &url, json!(ALL)).await;
    let secret = hook["secret"].as_str().unwrap().to_string();

    // Ann writes, writes again, logs in (promotion), an admin sets her email, she asks for a
    // human and an agent answers.
    let ann = app.visitor().await;
    let (conv, ann_id) = ann.say("hi").await;
    let (s, _) = ann.say_in(&conv, "anyone there?").await;
    assert_eq!(s, StatusCode::CREATED);
    ann.identify_verified("u-ann", json!({"name": "Ann"})).await;
    let (s, v) = app
        .patch(&ann_id, json!({"email": "ann@example.test"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = ann
        .call(
            Method::POST,
            &format!("/conversations/{conv}/escalate"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(json!({"body": "Here!"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A second browser writes anonymously, then gives Ann's email: merged into Ann.
    let other = app.visitor().await;
    let (_, other_id) = other.say("hello from my phone").await;
    let (s, v) = other.identify(json!({"email": "ann@example.test"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["contact_id"], ann_id.as_str(), "merged into Ann");
    // A refused change (the email is Ann's) writes no event.
    let third = app.visitor().await;
    let (_, third_id) = third.say("third").await;
    let (s, _) = app
        .patch(&third_id, json!({"email": "ann@example.test"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let got = receiver
        .wait_for("the merge and the third contact's message", |g| {
            let types: Vec<String> = g
                .iter()
                .map(|r| r.json()["type"].as_str().unwrap().into())
                .collect();
            types.contains(&"contact.merged".to_string()) && types_for(g, &third_id).len() >= 3
        })
        .await;
    // Nothing more comes (e.g. a second copy or an event for the refused change).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got_later = receiver.got();
    assert_eq!(
        got_later.len(),
        got.len(),
        "nothing after the scenario's events"
    );

    // Every event once, every body signed.
    let ids: HashSet<&str> = got.iter().map(|g| g.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "a delivery arrived twice");
    let events: HashSet<String> = got
        .iter()
        .map(|g| g.json()["id"].as_str().unwrap().into())
        .collect();
    assert_eq!(events.len(), got.len(), "an event arrived twice");
    for g in &got {
        assert!(signature_valid(&secret, g), "bad signature: {g:?}");
        let v = g.json();
        assert_eq!(v["organization_id"], app.creds.org_id.as_str());
        assert!(v["created_at"].as_str().unwrap().ends_with('Z'), "{v}");
    }

    // In order per contact, exactly the scenario's events.
    assert_eq!(
        types_for(&got, &ann_id),
        [
            "contact.created",
            "conversation.started",
            "message.created",
            "message.created",
            "contact.updated",
            "contact.promoted",
            "contact.updated",
            "conversation.escalated",
            "message.created",
            "contact.merged",
        ],
        "Ann's events"
    );
    assert_eq!(
        types_for(&got, &other_id),
        ["contact.created", "conversation.started", "message.created"],
        "the absorbed contact's events"
    );
    assert_eq!(
        types_for(&got, &third_id),
        ["contact.created", "conversation.started", "message.created"],
        "the refused edit raised nothing"
    );

    // What a receiver reads: the contact as the API shows it, the message, the merge.
    let by_type = |t: &str| -> Vec<Value> {
        got.iter()
            .map(Received::json)
            .filter(|v| v["type"] == t)
            .collect()
    };
    let promoted = &by_type("contact.promoted")[0];
    assert_eq!(promoted["data"]["contact"]["status"], "customer");
    assert_eq!(promoted["data"]["contact"]["user_id"], "u-ann");
    let merged = &by_type("contact.merged")[0];
    assert_eq!(
        merged["data"]["details"]["absorbed_contact_id"],
        other_id.as_str()
    );
    let now = app.contact(&ann_id).await;
    for key in [
        "id",
        "status",
        "user_id",
        "email",
        "name",
        "tags",
        "metadata",
        "created_at",
    ] {
        assert_eq!(merged["data"]["contact"][key], now[key], "{key}");
    }
    let reply = by_type("message.created")
        .into_iter()
        .find(|v| v["data"]["message"]["author"] == "agent")
        .expect("the agent's reply");
    assert_eq!(reply["data"]["message"]["body"], "Here!");
    assert_eq!(reply["data"]["conversation_id"], conv.as_str());

    // The delivery log shows each of them delivered, once.
    let (s, log) = app
        .get(&format!(
            "/api/v1/webhooks/{}/deliveries?limit=200",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), got.len());
    for d in items {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["attempt_log"][0]["status_code"], 200);
    }
}

async fn retried_after_a_500(app: &TestApp) {
    let (receiver, url) = Receiver::start(true).await;
    let hook = subscribe(app, &url, json!(["message.created"])).await;
    let v = app.visitor().await;
    let (conv, _) = v.say("first").await;
    v.say_in(&conv, "second").await;
    // Each delivery: a 500, then (retried) a 200 — and the second message only after the
    // first one's delivery succeeded (order per contact).
    let got = receiver
        .wait_for("two deliveries, twice each", |g| g.len() >= 4)
        .await;
    let bodies: Vec<String> = got
        .iter()
        .map(|g| {
            g.json()["data"]["message"]["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(bodies, ["first", "first", "second", "second"]);
    assert_eq!(
        got[0].webhook_id, got[1].webhook_id,
        "a retry keeps its Kith-Webhook-Id"
    );
    assert_eq!(got[0].body, got[1].body);
    let hook_id = hook["id"].as_str().unwrap();
    let log = wait_for_log(app, hook_id, |items| {
        items.len() == 2 && items.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    for d in &log {
        assert_eq!(d["attempts"], 2, "{d}");
        let attempts: Vec<Value> = d["attempt_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status_code"].clone())
            .collect();
        assert_eq!(attempts, [json!(500), json!(200)], "{d}");
        assert!(d["attempt_log"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500"));
    }
}

/// After the last attempt a delivery is `failed` and the contact's later events go on; a
/// manual retry sends it once more, with the same `Kith-Webhook-Id`.
async fn gives_up_then_later_events_proceed(app: &TestApp) {
    let (receiver, url) = Receiver::start(false).await;
    *receiver.refuse.lock().unwrap() = Some("\"poison\"".into());
    let hook = subscribe(app, &url, json!(["message.created"])).await;
    let hook_id = hook["id"].as_str().unwrap();
    let v = app.visitor().await;
    let (conv, _) = v.say("poison").await;
    v.say_in(&conv, "fine").await;
    let log = wait_for_log(app, hook_id, |items| {
        items.len() == 2 && items.iter().all(|d| d["status"] != "pending")
    })
    .await;
    // Newest first: "fine" went out after "poison" was given up on.
    assert_eq!(log[1]["status"], "failed", "{log:#?}");
    assert_eq!(log[1]["attempts"], 3);
    assert_eq!(log[1]["attempt_log"].as_array().unwrap().len(), 3);
    assert_eq!(log[0]["status"], "delivered");
    let bodies: Vec<String> = receiver
        .got()
        .iter()
        .map(|g| {
            g.json()["data"]["message"]["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(bodies, ["poison", "poison", "poison", "fine"]);

    // The receiver is fixed; an admin sends the failed one again.
    *receiver.refuse.lock().unwrap() = None;
    let failed_id = log[1]["id"].as_str().unwrap();
    let (s, d) = app
        .admin(
            Method::POST,
            &format!("/api/v1/webhooks/{hook_id}/deliveries/{failed_id}/retry"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let log = wait_for_log(app, hook_id, |items| items[1]["status"] == "delivered").await;
    assert_eq!(log[1]["attempts"], 4);
    let got = receiver.got();
    assert_eq!(
        got.last().unwrap().webhook_id,
        failed_id,
        "the same Kith-Webhook-Id"
    );
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/api/v1/webhooks/{hook_id}/deliveries/nope/retry"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn wait_for_log(app: &TestApp, hook_id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, log) = app
            .get(&format!("/api/v1/webhooks/{hook_id}/deliveries?limit=200"))
            .await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let items = log["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(tokio::time::Instant::now() < deadline, "log: {items:#?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn endpoints_api(app: &TestApp) {
    // Bad input: 422 naming the field.
    for (body, field) in [
        (
            json!({"url": "ftp://x.test/", "events": ["message.created"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["message.created"]}),
            "url",
        ),
        (
            json!({"url": "https://x.test/", "events": ["contact.exploded"]}),
            "events",
        ),
        (json!({"url": "https://x.test/", "events": []}), "events"),
        (json!({"events": ["message.created"]}), "url"),
    ] {
        let (s, v) = app
            .admin(Method::POST, "/api/v1/webhooks", Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let hook = subscribe(
        app,
        "https://hooks.example.test/in",
        json!(["contact.created"]),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let (s, list) = app.get("/api/v1/webhooks").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (s, v) = app
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"enabled": false, "events": ["message.created", "contact.deleted"], "rotate_secret": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    assert_eq!(v["events"], json!(["contact.deleted", "message.created"]));
    assert_ne!(v["secret"], hook["secret"], "rotated");
    let (s, v) = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries?cursor=zz"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = app
        .admin(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A disabled endpoint gets nothing; other organizations' events never reach an endpoint.
async fn disabled_and_other_orgs(app: &TestApp) {
    let (receiver, url) = Receiver::start(false).await;
    let hook = subscribe(app, &url, json!(["message.created"])).await;
    let id = hook["id"].as_str().unwrap();
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.visitor().await.say("while disabled").await;
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let other = app
        .store
        .create_org(&kith_store::NewOrg {
            name: "Other".into(),
            admin_email: "admin@other.test".into(),
            website_name: "Other site".into(),
        })
        .await
        .unwrap();
    let other_site = common::Site {
        base: app.base.clone(),
        http: app.http.clone(),
        key: other.website_key.clone(),
        secret: other.identity_secret.clone(),
    };
    other_site.visitor().await.say("other org").await;
    app.visitor().await.say("enabled again").await;
    let got = receiver
        .wait_for("the message after enabling", |g| !g.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_later = receiver.got();
    assert_eq!(got_later.len(), got.len());
    let bodies: Vec<Value> = got
        .iter()
        .map(|g| g.json()["data"]["message"]["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("enabled again")]);
}

/// The panel's Webhooks page: add an endpoint with the form (CSRF required), see it listed
/// with everything escaped, disable it, open its delivery log, delete it.
async fn panel_page(app: &TestApp) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token_in = |html: &str| -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let i = html.find(marker).expect("a CSRF token in the page") + marker.len();
        html[i..i + html[i..].find('"').unwrap()].to_string()
    };
    // Sign in like a browser: the form's cookie and token, then the session cookie.
    let form = http
        .get(format!("{}/signin", app.base))
        .send()
        .await
        .unwrap();
    let signin_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kith_signin="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = token_in(&form.text().await.unwrap());
    let resp = http
        .post(format!("{}/signin", app.base))
        .header("cookie", &signin_cookie)
        .form(&[
            ("email", app.creds.admin_email.as_str()),
            ("password", app.creds.admin_password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kith_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let get = |path: String| {
        let req = http
            .get(format!("{}{path}", app.base))
            .header("cookie", &session);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let req = http
            .post(format!("{}{path}", app.base))
            .header("cookie", &session)
            .form(&fields);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, page) = get("/webhooks".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("aria-current=\"page\">Webhooks</a>"),
        "{page}"
    );
    let csrf = token_in(&page);

    let url = "https://hooks.example.test/in?<script>alert(1)</script>";
    let fields = vec![
        ("url", url.to_string()),
        ("event_message.created", "on".to_string()),
        ("event_contact.created", "on".to_string()),
    ];
    let (s, _) = post("/webhooks".into(), fields.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no CSRF token, no endpoint");
    let mut with_csrf = fields.clone();
    with_csrf.push(("csrf_token", csrf.clone()));
    let (s, page) = post("/webhooks".into(), with_csrf).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Endpoint added"), "{page}");
    assert!(!page.contains("<script>alert(1)"), "escaped");
    assert!(page.contains("&#60;script&#62;alert(1)"), "{page}");
    assert!(page.contains("contact.created, message.created"), "{page}");
    let (s, page) = post(
        "/webhooks".into(),
        vec![("url", "ftp://nope".into()), ("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("role=\"alert\""), "{page}");

    let (_, list) = app.get("/api/v1/webhooks").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "the refused one was not added"
    );
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    let (s, page) = post(
        format!("/webhooks/{id}/toggle"),
        vec![("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("is disabled"), "{page}");
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}")).await.1["enabled"],
        false
    );
    let (s, page) = get(format!("/webhooks/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("&#60;script&#62;alert(1)"), "{page}");
    assert!(!page.contains("<script>alert(1)"), "escaped");
    let (s, _) = get("/webhooks/nope".into()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, page) = post(format!("/webhooks/{id}/delete"), vec![("csrf_token", csrf)]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("No endpoints yet"), "{page}");
}

macro_rules! both_fast {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = super::TestApp::spawn_with(super::Backend::Sqlite, super::fast()).await;
                super::$name(&app).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = super::TestApp::spawn_with(super::Backend::Postgres, super::fast()).await;
                super::$name(&app).await;
                app.stop().await;
            }
        }
    )*};
}

both_fast!(
    scripted_scenario,
    retried_after_a_500,
    gives_up_then_later_events_proceed,
    endpoints_api,
    disabled_and_other_orgs,
    panel_page
);
