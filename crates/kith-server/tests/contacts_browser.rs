//! The contacts page in real Chromium (issue 16), on SQLite and PostgreSQL: lists with their
//! counts, search as you type with the URL following, a filter saved as a list and deleted,
//! visitor-written text shown as text, and the layout at 1024 px.

mod browser;
#[macro_use]
mod common;

use browser::{button, heading, link, searchbox, text, Browser};
use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Three contacts: Ada (customer, tagged vip), Grace (lead), and a visitor whose name is markup.
async fn people(app: &TestApp) {
    let ada = app.visitor().await;
    ada.say("hello").await;
    ada.identify_verified(
        "u-ada",
        json!({"name": "Ada Lovelace", "email": "ada@example.com"}),
    )
    .await;
    let grace = app.visitor().await;
    grace
        .identify(json!({"name": "Grace Hopper", "email": "grace@example.com"}))
        .await;
    grace.say("hi").await;
    let mallory = app.visitor().await;
    mallory
        .identify(json!({"name": "<img src=x onerror=alert(1)>"}))
        .await;
    mallory.say("hey").await;
    let customers = app.get("/api/v1/contacts?status=customer").await.1;
    let id = customers["items"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = app.patch(&id, json!({"tags": ["vip"]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// The rows' names, as the table shows them.
async fn names(b: &Browser) -> Vec<String> {
    let v = b
        .run_async(
            "const done = arguments[arguments.length - 1]; \
             done([...document.querySelectorAll('.contacts-table tbody tr td:first-child')].map(td => td.textContent.trim()));",
        )
        .await;
    serde_json::from_value(v).unwrap()
}

async fn wait_for_names(b: &Browser, want: &[&str]) {
    let started = Instant::now();
    loop {
        let got = names(b).await;
        if got == want {
            return;
        }
        assert!(
            started.elapsed() < browser::WAIT,
            "the table shows {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends! {
    async fn lists_search_filters_and_saved_lists_in_the_browser(app) {
        people(app).await;
        let b = Browser::open(&app.base).await;
        b.sign_in(&app.creds.admin_email, &app.creds.admin_password).await;

        // All contacts, newest activity first; the markup name is text.
        b.find(&heading("All contacts")).await;
        wait_for_names(&b, &["<img src=x onerror=alert(1)>", "Grace Hopper", "Ada Lovelace"]).await;
        let images = b
            .run_async("const done = arguments[arguments.length - 1]; done(document.querySelectorAll('img').length);")
            .await;
        assert_eq!(images, json!(0), "a visitor's name never becomes an element");

        // Leads and Customers, with their exact counts in the sidebar.
        assert!(b.text(&link("Leads 2")).await.contains("Leads"));
        b.click(&link("Customers 1")).await;
        b.find(&heading("Customers")).await;
        wait_for_names(&b, &["Ada Lovelace"]).await;
        assert_eq!(b.path().await, "/?list=customers");

        // Search as you type: the table and the URL follow; back returns the earlier view.
        b.click(&link("All contacts 3")).await;
        b.find(&heading("All contacts")).await;
        b.fill_in(&searchbox("Search contacts"), "hopper").await;
        wait_for_names(&b, &["Grace Hopper"]).await;
        let started = Instant::now();
        while b.path().await != "/?q=hopper" {
            assert!(started.elapsed() < browser::WAIT, "the URL never showed the search: {}", b.path().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Back returns to the view before the search.
        b.client.back().await.expect("back");
        wait_for_names(&b, &["<img src=x onerror=alert(1)>", "Grace Hopper", "Ada Lovelace"]).await;
        assert_eq!(b.path().await, "/");

        b.assert_no_console_errors().await;
        // Typing fast, then changing one's mind: every key starts a search (after the short
        // debounce), and whatever order the answers come in, the table ends showing the
        // box's final text (a newer search aborts the older one: hx-sync replace).
        let search = b.find(&searchbox("Search contacts")).await;
        search.clear().await.unwrap();
        for key in ["l", "o", "v", "\u{e003}", "\u{e003}", "\u{e003}", "g", "r", "a"] {
            search.send_keys(key).await.unwrap();
        }
        wait_for_names(&b, &["Grace Hopper"]).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        wait_for_names(&b, &["Grace Hopper"]).await;
        let started = Instant::now();
        while b.path().await != "/?q=gra" {
            assert!(started.elapsed() < browser::WAIT, "the URL never showed the search: {}", b.path().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The only console errors: htmx reporting the searches it aborted for newer ones.
        for e in b.console_errors().await {
            let m = e["message"].as_str().unwrap_or_default();
            assert!(m.contains("htmx:sendAbort") || m.contains("htmx:afterRequest"), "{e}");
        }

        // Sort by name (a column header), ascending.
        b.goto("/").await;
        b.click(&link("Name")).await;
        wait_for_names(&b, &["<img src=x onerror=alert(1)>", "Ada Lovelace", "Grace Hopper"]).await;
        assert_eq!(b.path().await, "/?sort=name");

        // A filter saved as a list: in the sidebar with its count; then deleted.
        b.goto("/?tags=vip").await;
        wait_for_names(&b, &["Ada Lovelace"]).await;
        b.fill("New list name", "VIPs").await;
        b.click(&button("Save as list")).await;
        b.find(&heading("VIPs")).await;
        b.find(&link("VIPs 1")).await;
        wait_for_names(&b, &["Ada Lovelace"]).await;
        let (s, lists) = app.get("/api/v1/lists").await;
        assert_eq!(s, StatusCode::OK);
        let saved = lists["items"].as_array().unwrap().iter().find(|l| l["name"] == "VIPs").unwrap();
        assert_eq!(saved["count"], 1, "{saved}");
        b.click(&text("Edit list")).await;
        b.fill("List name", "Very important").await;
        b.click(&button("Rename list")).await;
        b.find(&heading("Very important")).await;
        b.find(&link("Very important 1")).await;
        b.click(&text("Edit list")).await;
        b.click(&button("Delete list")).await;
        b.find(&heading("All contacts")).await;
        assert!(b.absent(&link("Very important 1")).await);
        let (_, lists) = app.get("/api/v1/lists").await;
        assert_eq!(lists["items"].as_array().unwrap().len(), 3, "only the built-ins are left");

        // Built-in lists offer no rename or delete.
        b.goto("/?list=leads").await;
        b.find(&heading("Leads")).await;
        assert!(b.absent(&button("Delete list")).await);

        b.goto("/").await;
        wait_for_names(&b, &["<img src=x onerror=alert(1)>", "Grace Hopper", "Ada Lovelace"]).await;
        b.screenshot("contacts").await;
        b.assert_fits(1024).await;
        b.assert_no_console_errors().await;
        b.close().await;
    }

    async fn an_empty_organization_is_taught_how_to_get_contacts(app) {
        let b = Browser::open(&app.base).await;
        b.sign_in(&app.creds.admin_email, &app.creds.admin_password).await;
        b.find(&heading("No contacts yet")).await;
        let page = b.run_async("const done = arguments[arguments.length - 1]; done(document.body.innerText);").await;
        let page = page.as_str().unwrap();
        assert!(page.contains(&format!("data-website=\"{}\"", app.creds.website_key)), "{page}");
        b.find(&link("demo page")).await;
        b.find(&searchbox("Search contacts")).await;
        b.close().await;
    }
}
