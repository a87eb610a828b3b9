//! Bulk actions and deleting a contact from the admin panel, in real Chromium (issue 19), on
//! SQLite and PostgreSQL: the exact count is asked before anything happens, progress is shown
//! until done, and a deleted contact is gone from the API.

mod browser;
#[macro_use]
mod common;

use browser::{button, combobox, heading, link, text, Browser};
use reqwest::StatusCode;
use serde_json::json;

both_backends! {
    async fn tag_every_lead_then_erase_one_from_the_panel(app) {
        let mut leads = vec![];
        for _ in 0..2 {
            let v = app.visitor().await;
            leads.push(v.say("hello").await.1);
        }
        let customer = app.visitor().await;
        customer.say("hi").await;
        customer.identify_verified("u-c", json!({"name": "Cora Customer"})).await;
        leads.sort();

        let b = Browser::open(&app.base).await;
        b.sign_in(&app.creds.admin_email, &app.creds.admin_password).await;
        b.goto("/?status=lead").await;
        b.find(&heading("All contacts")).await;
        b.click(&text("Bulk actions")).await;
        b.find(&combobox("Action")).await.select_by_value("add_tags").await.expect("select");
        b.fill("Tag", "spring").await;
        b.click(&button("Preview bulk action")).await;
        // Nothing happens before the count is confirmed.
        b.find(&text("Add the tag “spring” to 2 contacts?")).await;
        let (_, none) = app.get("/api/v1/contacts?tag=spring").await;
        assert_eq!(none["total"], 0);
        b.click(&button("Confirm: apply to 2 contacts")).await;
        b.find(&text("Done. Tagged 2 contacts with “spring”.")).await;
        let (s, tagged) = app.get("/api/v1/contacts?tag=spring").await;
        assert_eq!(s, StatusCode::OK);
        let mut ids: Vec<String> = tagged["items"].as_array().unwrap().iter()
            .map(|c| c["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        assert_eq!(ids, leads, "exactly the leads");

        // Erase one lead from its page.
        let gone = &leads[0];
        b.goto(&format!("/contacts/{gone}")).await;
        b.find(&link("Export this contact's data (JSON)")).await;
        b.click(&text("Delete or erase this contact…")).await;
        b.click(&button("Erase contact (GDPR)")).await;
        b.wait_for_path("/?deleted=1").await;
        let (s, body) = app.get(&format!("/api/v1/contacts/{gone}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        let (_, audit) = app.get("/api/v1/audit").await;
        assert_eq!(audit["items"][0]["action"], "contact.erased", "{audit}");
        assert!(audit["items"][0]["actor"].as_str().unwrap().starts_with("admin:"), "{audit}");
        app.assert_builtin_counts().await;
        b.assert_no_console_errors().await;
        b.close().await;
    }
}
