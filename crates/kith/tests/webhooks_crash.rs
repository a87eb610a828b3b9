//! Webhooks across a SIGKILL: visitors write while a slow receiver gets `message.created` and
//! `contact.created`; the server is killed with deliveries still in the outbox (perhaps some
//! in flight), restarted on the same database, and then every acknowledged message's event
//! arrives, each contact's events in order, and an event that arrived twice did so with the
//! same `Kith-Webhook-Id`. On SQLite and PostgreSQL.

mod support;

use axum::routing::post;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{http, org_create, Server, Widget};

const CLIENTS: usize = 12;
const ACKED_BEFORE_KILL: usize = 300;
/// The deliverer's flags: a short lease, so the killed process's claims come back quickly.
const SERVE_ARGS: [&str; 8] = [
    "--webhook-lease-ms",
    "1500",
    "--webhook-timeout-ms",
    "500",
    "--webhook-poll-ms",
    "100",
    "--webhook-retry-base-ms",
    "50",
];

/// (Kith-Webhook-Id, body) in arrival order.
type Got = Arc<Mutex<Vec<(String, Value)>>>;

async fn receiver() -> (Got, String) {
    let got: Got = Arc::default();
    let record = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                // Slow on purpose: the outbox holds a backlog when the server is killed.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let id = headers
                    .get("kith-webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                record
                    .lock()
                    .unwrap()
                    .push((id, serde_json::from_str(&body).unwrap()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

/// One visitor: a conversation, then messages in it until the server goes away. Answers the
/// acknowledged message ids.
async fn client(base: String, key: String, acked: Arc<AtomicUsize>) -> Vec<String> {
    let http = http();
    let mut ids = vec![];
    let Ok(w) = Widget::session(&http, &base, &key).await else {
        return ids;
    };
    let mut conversation: Option<String> = None;
    for i in 0.. {
        let mut body = json!({"body": format!("message {i}")});
        if let Some(c) = &conversation {
            body["conversation_id"] = json!(c);
        }
        match w.post("/messages", body).await {
            Ok((201, v)) => {
                conversation = v["conversation_id"].as_str().map(str::to_string);
                ids.push(v["message_id"].as_str().unwrap().to_string());
                acked.fetch_add(1, Ordering::Relaxed);
            }
            _ => break,
        }
    }
    ids
}

async fn webhooks_survive_a_crash(db_url: &str) {
    let creds = org_create(db_url);
    let token = creds["api_token"].as_str().unwrap().to_string();
    let key = creds["website_key"].as_str().unwrap().to_string();
    let (got, url) = receiver().await;

    let server = Server::start_with(db_url, &SERVE_ARGS);
    let r = http()
        .post(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&token)
        .json(&json!({"url": url, "events": ["contact.created", "message.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let acked = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(server.base.clone(), key.clone(), acked.clone())))
        .collect();
    let started = Instant::now();
    while acked.load(Ordering::Relaxed) < ACKED_BEFORE_KILL
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let delivered_at_kill = got.lock().unwrap().len();
    let mut messages: HashSet<String> = HashSet::new();
    for c in clients {
        messages.extend(c.await.unwrap());
    }
    assert!(messages.len() >= 100, "too little load: {}", messages.len());
    assert!(
        delivered_at_kill < messages.len(),
        "the outbox should hold a backlog at the kill ({delivered_at_kill} delivered, {} acknowledged)",
        messages.len()
    );

    // After a restart every acknowledged message's event arrives.
    let server = Server::start_with(db_url, &SERVE_ARGS);
    // A message after the restart raises its event too (the new process knows the endpoint).
    let after = Widget::session(&http(), &server.base, &key).await.unwrap();
    let (status, v) = after
        .post("/messages", json!({"body": "after the restart"}))
        .await
        .unwrap();
    assert_eq!(status, 201, "{v}");
    messages.insert(v["message_id"].as_str().unwrap().to_string());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v)| v["type"] == "message.created")
            .map(|(_, v)| v["data"]["message"]["id"].as_str().unwrap().to_string())
            .collect();
        let missing = messages.difference(&seen).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged messages never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);

    let got = got.lock().unwrap().clone();
    // Duplicates only as the same delivery again: one Kith-Webhook-Id per event.
    let mut delivery_of: HashMap<String, String> = HashMap::new();
    for (webhook_id, v) in &got {
        let event = v["id"].as_str().unwrap().to_string();
        let first = delivery_of
            .entry(event.clone())
            .or_insert_with(|| webhook_id.clone());
        assert_eq!(first, webhook_id, "event {event} came as two deliveries");
    }
    // In order per contact: its `contact.created` first, then its messages in the order
    // they were written (ids increase with each message of a visitor), first arrivals.
    let mut seen_events = HashSet::new();
    let mut last_message: HashMap<String, String> = HashMap::new();
    let mut created: HashSet<String> = HashSet::new();
    for (_, v) in &got {
        if !seen_events.insert(v["id"].as_str().unwrap().to_string()) {
            continue;
        }
        let contact = v["data"]["contact_id"].as_str().unwrap().to_string();
        match v["type"].as_str().unwrap() {
            "contact.created" => {
                assert!(
                    !last_message.contains_key(&contact),
                    "created after a message"
                );
                created.insert(contact);
            }
            "message.created" => {
                assert!(
                    created.contains(&contact),
                    "a message before its contact was created"
                );
                let id = v["data"]["message"]["id"].as_str().unwrap().to_string();
                if let Some(prev) = last_message.get(&contact) {
                    assert!(
                        prev < &id,
                        "messages of {contact} out of order: {prev} then {id}"
                    );
                }
                last_message.insert(contact, id);
            }
            other => panic!("not subscribed: {other}"),
        }
    }
    eprintln!(
        "webhooks crash test: {} messages acknowledged, {delivered_at_kill} deliveries before the kill, {} received in all ({} events)",
        messages.len(),
        got.len(),
        seen_events.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_survive_sigkill_sqlite() {
    let dir = support::temp_dir("webhooks-crash");
    let url = format!("sqlite://{}", dir.join("kith.db").display());
    webhooks_survive_a_crash(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_survive_sigkill_postgres() {
    let db = support::pg_db().await;
    webhooks_survive_a_crash(&db.url).await;
}
