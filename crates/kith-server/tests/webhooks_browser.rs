//! The Webhooks page in real Chromium, on SQLite and PostgreSQL: reached from the navigation,
//! an endpoint added with the form (URL and an event checkbox), a visitor's message delivered
//! to a receiver inside the test and shown in the endpoint's delivery log, then the endpoint
//! disabled and deleted; and a delivery the receiver refused until it was given up on, sent
//! again with the log's Retry button. Controls are found by role and accessible name.

mod browser;
#[macro_use]
mod common;

use browser::{button, checkbox, heading, link, status, text, Browser};
use common::{Backend, TestApp};
use kith_server::webhooks::WebhookConfig;
use kith_server::Config;
use reqwest::{Method, StatusCode};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A receiver answering 200; counts what it got.
async fn receiver() -> (Arc<AtomicUsize>, String) {
    let got = Arc::new(AtomicUsize::new(0));
    let count = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

both_backends! {
    async fn webhooks_are_managed_and_logged_in_the_browser(app) {
        let (got, url) = receiver().await;
        let b = Browser::open(&app.base).await;
        b.sign_in(&app.creds.admin_email, &app.creds.admin_password).await;
        b.click(&link("Webhooks")).await;
        b.find(&heading("Webhooks")).await;
        b.find(&text("No endpoints yet.")).await;

        b.fill("Endpoint URL", &url).await;
        b.click(&checkbox("message.created")).await;
        b.click(&button("Add endpoint")).await;
        let added = b.text(&status()).await;
        assert!(added.starts_with("Endpoint added. Its signing secret is whsec_"), "{added}");

        // A visitor writes; the receiver gets it and the log shows it delivered.
        app.visitor().await.say("hello").await;
        let started = Instant::now();
        while got.load(Ordering::SeqCst) == 0 {
            assert!(started.elapsed() < browser::WAIT, "nothing delivered");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        b.click(&link(&format!("Delivery log of {url}"))).await;
        b.find(&heading(&format!("Deliveries to {url}"))).await;
        b.find(&text("message.created")).await;
        let started = Instant::now();
        while b.try_find(&text("delivered")).await.is_none() {
            // The attempt is recorded just after the receiver answers.
            assert!(started.elapsed() < browser::WAIT, "the log never showed it delivered");
            b.goto(&b.path().await).await;
        }

        b.click(&link("← Webhooks")).await;
        b.click(&button(&format!("Disable {url}"))).await;
        assert_eq!(b.text(&status()).await, format!("{url} is disabled."));
        b.click(&button(&format!("Delete {url}"))).await;
        b.find(&text("No endpoints yet.")).await;
        b.assert_no_console_errors().await;
        b.close().await;
    }
}

/// A receiver answering 500 while `refusing`, 200 after; counts the 200s.
async fn flaky_receiver() -> (Arc<AtomicBool>, Arc<AtomicUsize>, String) {
    let refusing = Arc::new(AtomicBool::new(true));
    let delivered = Arc::new(AtomicUsize::new(0));
    let (r, d) = (refusing.clone(), delivered.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (r, d) = (r.clone(), d.clone());
            async move {
                if r.load(Ordering::SeqCst) {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    d.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (refusing, delivered, url)
}

/// Two quick attempts, so the delivery is given up on within the test.
fn quick_retries() -> Config {
    Config {
        webhooks: WebhookConfig {
            retry_base: std::time::Duration::from_millis(20),
            retry_cap: std::time::Duration::from_millis(100),
            poll: std::time::Duration::from_millis(100),
            max_attempts: 2,
            ..WebhookConfig::default()
        },
        ..Config::default()
    }
}

/// The delivery log's status cell of the one delivery, as the page shows it now.
async fn shown_status(b: &Browser) -> String {
    let v = b
        .run_async(
            "const done = arguments[arguments.length - 1];
             const row = document.querySelector('table[aria-label=\"Delivery log\"] tbody tr');
             done(row ? [row.cells[0].textContent.trim(), row.cells[3].textContent.trim()].join('|') : '');",
        )
        .await;
    v.as_str().unwrap_or_default().to_string()
}

async fn a_failed_delivery_is_sent_again_with_retry(app: &TestApp) {
    let (refusing, delivered, url) = flaky_receiver().await;
    let (s, hook) = app
        .admin(
            Method::POST,
            "/api/v1/webhooks",
            Some(serde_json::json!({"url": url, "events": ["message.created"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    app.visitor().await.say("refused at first").await;

    let b = Browser::open(&app.base).await;
    b.sign_in(&app.creds.admin_email, &app.creds.admin_password)
        .await;
    b.click(&link("Webhooks")).await;
    b.click(&link(&format!("Delivery log of {url}"))).await;
    b.find(&heading(&format!("Deliveries to {url}"))).await;
    let log_path = b.path().await;
    // Both attempts refused: the log shows it failed, with a Retry button.
    let started = Instant::now();
    let created = loop {
        let shown = shown_status(&b).await;
        if let Some(created) = shown.strip_suffix("|failed") {
            break created.to_string();
        }
        assert!(
            started.elapsed() < browser::WAIT,
            "never shown failed: {shown:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        b.goto(&log_path).await;
    };
    assert_eq!(delivered.load(Ordering::SeqCst), 0);

    // The receiver is fixed; the admin retries.
    refusing.store(false, Ordering::SeqCst);
    b.click(&button(&format!(
        "Retry the message.created delivery of {created}"
    )))
    .await;
    assert_eq!(
        b.text(&status()).await,
        "The message.created delivery will be sent again now."
    );
    let started = Instant::now();
    while delivered.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < browser::WAIT, "the retry never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    loop {
        // The answer to the retry is the log itself (at the form's address); reload the log.
        b.goto(&log_path).await;
        let shown = shown_status(&b).await;
        if shown.ends_with("|delivered") {
            break;
        }
        assert!(
            started.elapsed() < browser::WAIT,
            "never shown delivered: {shown:?}"
        );
    }
    // Delivered once more, and no Retry button for a delivered one.
    assert_eq!(delivered.load(Ordering::SeqCst), 1);
    assert!(
        b.absent(&button(&format!(
            "Retry the message.created delivery of {created}"
        )))
        .await
    );
    b.assert_no_console_errors().await;
    b.close().await;
}

mod a_failed_delivery_is_retried_in_the_browser {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = super::TestApp::spawn_with(super::Backend::Sqlite, super::quick_retries()).await;
        super::a_failed_delivery_is_sent_again_with_retry(&app).await;
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app =
            super::TestApp::spawn_with(super::Backend::Postgres, super::quick_retries()).await;
        super::a_failed_delivery_is_sent_again_with_retry(&app).await;
        app.stop().await;
    }
}
