//! The chat widget in a real headless Chromium, on a host page served from another origin
//! (and site) than Kith, with hostile CSS, found by role and accessible name inside its shadow
//! root: a visit that only loads the script writes nothing; a visitor writes (a lead appears),
//! is identified (the same contact becomes a customer), gets agent replies live, also those
//! sent while its network was off, still sees the conversation after a reload, and `reset`
//! starts a new visitor who sees none of it. On SQLite and PostgreSQL.

mod browser;
#[macro_use]
mod common;

use browser::{button, status, textbox, Browser};
use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A shop's page on its own origin: everything but the widget's host hidden, buttons without
/// text. The widget must not care.
fn host_page(kith: &str, website_key: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<style>
  *:not(html):not(body):not([data-kith]) {{ display: none !important; }}
  button {{ font-size: 0; }}
  body {{ font-size: 40px; color: red; }}
</style></head>
<body><h1>Welcome to the shop</h1><button>Buy</button>
<script>
  window.Kith = window.Kith || function () {{ (Kith.q = Kith.q || []).push(arguments); }};
  Kith('on', 'message', function (m) {{ (window.received = window.received || []).push(m.body); }});
  // Counts the identify calls that leave the page.
  window.identifyCalls = 0;
  const realFetch = window.fetch;
  window.fetch = function (url) {{
    if (String(url).includes('/identify')) window.identifyCalls++;
    return realFetch.apply(this, arguments);
  }};
</script>
<script src="{kith}/widget.js" data-website="{website_key}" async></script>
</body></html>"#
    )
}

/// Serves `page` at `http://localhost:<port>/` (Kith is at 127.0.0.1: another site).
async fn serve_host(page: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://localhost:{}/",
        listener.local_addr().unwrap().port()
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

/// A TCP relay in front of Kith that the test can cut, as a lost network cuts a browser's
/// connections: `cut()` closes every open connection (the live event stream too) and refuses
/// new ones until `restore()`.
struct Network {
    url: String,
    up: Arc<AtomicBool>,
    /// Milliseconds each new connection waits before it reaches the server.
    delay_ms: Arc<AtomicU64>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Network {
    async fn in_front_of(base: &str) -> Network {
        let upstream = base.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, open2, delay2) = (up.clone(), open.clone(), delay_ms.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the browser sees a failed connection
                }
                let upstream = upstream.clone();
                let delay = Duration::from_millis(delay2.load(Ordering::SeqCst));
                let relay = tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                open2.lock().unwrap().push(relay.abort_handle());
            }
        });
        Network {
            url,
            up,
            delay_ms,
            open,
            task,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for relay in self.open.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// From now on every new connection is held for `by` before it goes through (a slow
    /// network: requests leave, answers come late).
    fn slow_down(&self, by: Duration) {
        self.delay_ms.store(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn contacts(app: &TestApp) -> Vec<Value> {
    let (s, v) = app.get("/api/v1/contacts").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

/// Polls the admin API (bounded) until `check` holds for the contacts.
async fn wait_for_contacts(
    app: &TestApp,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let items = contacts(app).await;
        if check(&items) {
            return items;
        }
        assert!(
            started.elapsed() < browser::WAIT,
            "{what}: contacts are {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reply(app: &TestApp, conversation: &str, body: &str) {
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(json!({"body": body})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn only_conversation(app: &TestApp, contact: &str) -> String {
    let (s, v) = app
        .get(&format!("/api/v1/contacts/{contact}/conversations"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    items[0]["id"].as_str().unwrap().to_string()
}

/// Runs a widget command in the page and waits for it to finish.
async fn kith(b: &Browser, command: &str, args: Value) {
    let script = format!(
        "const done = arguments[arguments.length - 1]; \
         Promise.resolve(Kith('{command}', {args})).then(() => done(true), e => done(String(e)));"
    );
    assert_eq!(b.run_async(&script).await, json!(true), "Kith('{command}')");
}

/// A JSON value the page computes (`expr` is a JavaScript expression).
async fn page_value(b: &Browser, expr: &str) -> Value {
    b.run_async(&format!(
        "const done = arguments[arguments.length - 1]; done({expr});"
    ))
    .await
}

async fn write(b: &Browser, text: &str) {
    let message = b.in_widget(&textbox("Message")).await;
    message.send_keys(text).await.expect("type");
    b.in_widget(&button("Send"))
        .await
        .click()
        .await
        .expect("send");
    b.wait_for_widget_text(text).await;
}

both_backends! {
    async fn a_visitor_chats_through_the_widget_on_another_site(app) {
        let cookie = format!("kith_{}", app.creds.website_key);
        // The page loads the widget (and so talks to Kith) through a network the test can cut.
        let network = Network::in_front_of(&app.base).await;
        let (host, server) = serve_host(host_page(&network.url, &app.creds.website_key)).await;
        let b = Browser::open(&app.base).await;
        b.goto_url(&host).await;

        // Only loading the script: the launcher is there, and nothing is written anywhere.
        let launcher = b.in_widget(&button("Open chat")).await;
        assert_eq!(b.cookie(&cookie).await, None, "no cookie for a page view");
        assert_eq!(app.store.org(&app.creds.org_id).visitor_count().await.unwrap(), 0);
        assert!(contacts(app).await.is_empty());

        // Opening moves focus into the message box; the launcher now closes.
        launcher.click().await.expect("open");
        b.in_widget(&button("Close chat")).await;
        let focused = b
            .run_async(
                "const done = arguments[arguments.length - 1]; \
                 const a = document.querySelector('[data-kith]').shadowRoot.activeElement; \
                 done(a && a.getAttribute('aria-label'));",
            )
            .await;
        assert_eq!(focused, json!("Message"));

        // Writing makes a lead.
        write(&b, "Hello from the shop").await;
        assert!(b.cookie(&cookie).await.is_some(), "the visitor token is kept on the shop's site");
        let leads = wait_for_contacts(app, "one lead", |c| c.len() == 1).await;
        assert_eq!(leads[0]["status"], "lead");
        let contact = leads[0]["id"].as_str().unwrap().to_string();
        let conversation = only_conversation(app, &contact).await;

        // The shop's app identifies the visitor: the same contact becomes a customer.
        let hash = app.user_hash("u-ada");
        kith(&b, "identify", json!({"user_id": "u-ada", "user_hash": hash, "name": "Ada"})).await;
        let customers = wait_for_contacts(app, "the lead promoted", |c| {
            c.len() == 1 && c[0]["status"] == "customer"
        })
        .await;
        assert_eq!(customers[0]["id"], contact.as_str(), "no duplicate");
        assert_eq!(customers[0]["name"], "Ada");
        // Apps identify on every page: the same payload again does not leave the page.
        kith(&b, "identify", json!({"user_id": "u-ada", "user_hash": hash, "name": "Ada"})).await;
        kith(&b, "identify", json!({"name": "Ada", "user_hash": hash, "user_id": "u-ada"})).await;
        assert_eq!(page_value(&b, "window.identifyCalls").await, json!(1));

        // An agent's reply arrives live, and the page's listener hears it.
        reply(app, &conversation, "Hi Ada, agent here").await;
        b.wait_for_widget_text("Hi Ada, agent here").await;
        assert_eq!(page_value(&b, "window.received").await, json!(["Hi Ada, agent here"]));
        b.assert_no_console_errors().await;

        // "Talk to a human" escalates the conversation.
        b.in_widget(&button("Talk to a human")).await.click().await.expect("escalate");
        b.wait_for_widget_text("asked a human").await;
        let (s, c) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["status"], "escalated", "{c}");

        // Keyboard: Escape closes the chat and gives focus back to the launcher.
        b.in_widget(&textbox("Message")).await.send_keys("\u{e00c}").await.expect("escape");
        b.in_widget(&button("Open chat")).await;
        assert_eq!(
            page_value(&b, "document.querySelector('[data-kith]').shadowRoot.activeElement.getAttribute('aria-label')").await,
            json!("Open chat")
        );
        b.in_widget(&button("Open chat")).await.click().await.expect("open again");

        // The network goes away (the live stream with it); a reply sent meanwhile arrives
        // once it is back, exactly once.
        network.cut();
        reply(app, &conversation, "Sent while you were away").await;
        network.restore();
        b.wait_for_widget_text("Sent while you were away").await;
        let log = b.widget_log().await;
        assert_eq!(log.matches("Sent while you were away").count(), 1, "{log}");

        // A message written while the network is down waits in the outbox and is delivered,
        // once, when it is back.
        network.cut();
        write(&b, "Are you still there?").await;
        network.restore();
        let started = Instant::now();
        loop {
            let (s, c) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
            assert_eq!(s, StatusCode::OK, "{c}");
            let sent = c["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["body"] == "Are you still there?")
                .count();
            assert!(sent <= 1, "delivered twice: {c}");
            if sent == 1 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never delivered: {c}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // After a reload the conversation is still there.
        b.goto_url(&host).await;
        b.in_widget(&button("Open chat")).await.click().await.expect("open");
        b.wait_for_widget_text("Hello from the shop").await;
        b.wait_for_widget_text("Hi Ada, agent here").await;

        // Log-out: a new visitor, who sees none of the earlier conversation.
        kith(&b, "reset", json!(null)).await;
        let log = b.widget_log().await;
        assert!(!log.contains("Hello from the shop") && !log.contains("agent here"), "{log}");
        assert_eq!(b.cookie(&cookie).await, None);
        write(&b, "Someone else now").await;
        let all = wait_for_contacts(app, "a second lead", |c| c.len() == 2).await;
        assert!(all.iter().any(|c| c["status"] == "lead" && c["id"] != contact.as_str()));
        b.close().await;
        server.abort();
    }

    async fn the_demo_page_shows_the_whole_loop(app) {
        let b = Browser::open(&app.base).await;
        b.goto("/demo").await;
        b.in_widget(&button("Open chat")).await.click().await.expect("open");
        write(&b, "Hi from the demo").await;
        let leads = wait_for_contacts(app, "a lead", |c| c.len() == 1).await;
        assert_eq!(leads[0]["status"], "lead");
        b.click(&button("Identify")).await;
        let started = Instant::now();
        loop {
            let said = b.text(&status()).await;
            if said == "Identified as demo-ada." {
                break;
            }
            assert!(started.elapsed() < browser::WAIT, "the demo says {said:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let customers = wait_for_contacts(app, "the same contact promoted", |c| {
            c.len() == 1 && c[0]["status"] == "customer"
        })
        .await;
        assert_eq!(customers[0]["id"], leads[0]["id"]);
        assert_eq!(customers[0]["user_id"], "demo-ada");
        assert_eq!(customers[0]["name"], "Ada Lovelace");
        b.assert_no_console_errors().await;
        b.close().await;
    }

    // A reset (log-out) while an answer for the previous person is still on its way: the
    // answer is dropped, not painted for whoever uses the browser next.
    async fn a_reset_drops_answers_still_on_their_way(app) {
        let network = Network::in_front_of(&app.base).await;
        let (host, server) = serve_host(host_page(&network.url, &app.creds.website_key)).await;
        let b = Browser::open(&app.base).await;
        b.goto_url(&host).await;
        b.in_widget(&button("Open chat")).await.click().await.expect("open");
        write(&b, "My private question").await;
        wait_for_contacts(app, "the first person", |c| c.len() == 1).await;
        kith(&b, "close", json!(null)).await;
        // Open connections go; every new one now takes 1.5 s to reach Kith.
        network.cut();
        network.slow_down(Duration::from_millis(1500));
        network.restore();
        // Opening asks for the conversation again; the answer is on its way when the page
        // logs the person out.
        kith(&b, "open", json!(null)).await;
        kith(&b, "reset", json!(null)).await;
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let log = b.widget_log().await;
        assert!(!log.contains("My private question"), "a late answer repainted: {log}");
        b.close().await;
        server.abort();
    }

    // Issue 20: a page identifies user A, then user B in the same browser (a shared computer):
    // B never receives or sees a message addressed to A.
    async fn a_shared_browser_never_shows_the_previous_persons_replies(app) {
        let (host, server) = serve_host(host_page(&app.base, &app.creds.website_key)).await;
        let b = Browser::open(&app.base).await;
        b.goto_url(&host).await;
        let a_hash = app.user_hash("u-a");
        kith(&b, "identify", json!({"user_id": "u-a", "user_hash": a_hash})).await;
        b.in_widget(&button("Open chat")).await.click().await.expect("open");
        write(&b, "I am A").await;
        let a = wait_for_contacts(app, "A", |c| c.len() == 1).await;
        let a_conversation = only_conversation(app, a[0]["id"].as_str().unwrap()).await;
        reply(app, &a_conversation, "For A only: your invoice").await;
        b.wait_for_widget_text("For A only: your invoice").await;

        let b_hash = app.user_hash("u-b");
        kith(&b, "identify", json!({"user_id": "u-b", "user_hash": b_hash})).await;
        let started = Instant::now();
        while b.widget_log().await.contains("For A only") {
            assert!(started.elapsed() < browser::WAIT, "A's messages stay on the page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reply(app, &a_conversation, "For A only: a second reply").await;
        write(&b, "I am B").await;
        let both = wait_for_contacts(app, "B", |c| c.len() == 2).await;
        let b_contact = both.iter().find(|c| c["user_id"] == "u-b").expect("B");
        let b_conversation = only_conversation(app, b_contact["id"].as_str().unwrap()).await;
        reply(app, &b_conversation, "For B").await;
        // B's reply arrives live, after A's second one was sent: had A's reached this
        // browser, it would be there by now.
        b.wait_for_widget_text("For B").await;
        let log = b.widget_log().await;
        assert!(!log.contains("For A only"), "{log}");
        let heard = page_value(&b, "window.received").await;
        assert_eq!(heard, json!(["For A only: your invoice", "For B"]), "the page's listener");
        b.close().await;
        server.abort();
    }
}
