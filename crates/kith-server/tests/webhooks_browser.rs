//! The Webhooks page in real Chromium, on SQLite and PostgreSQL: reached from the navigation,
//! an endpoint added with the form (URL and an event checkbox), a visitor's message delivered
//! to a receiver inside the test and shown in the endpoint's delivery log, then the endpoint
//! disabled and deleted. Controls are found by role and accessible name.

mod browser;
#[macro_use]
mod common;

use browser::{button, checkbox, heading, link, status, text, Browser};
use std::sync::atomic::{AtomicUsize, Ordering};
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
