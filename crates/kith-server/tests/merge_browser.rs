//! Issue 19 in the admin panel, in a real headless Chromium on both databases: a note added,
//! edited and shown in the timeline (as text), a duplicate merged from the contact page
//! through its preview and a confirm, the merge undone from the timeline, and an undo that
//! is no longer possible refused in words.

mod browser;
#[macro_use]
mod common;

use browser::{alert, button, heading, searchbox, text, Browser};
use common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn contact(app: &TestApp, fields: Value) -> String {
    let (_, id) = app.visitor().await.say("hello").await;
    let (s, c) = app.patch(&id, fields).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    id
}

/// "2026-11-30T06:26:39.123Z" → "2026-11-30 06:26 UTC", as the panel writes times.
fn when(rfc3339: &str) -> String {
    format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..16])
}

both_backends! {
    async fn merge_from_the_contact_page_with_preview_then_undo_and_add_a_note(app) {
        let ada = contact(app, json!({"name": "Ada Lovelace", "tags": ["vip"]})).await;
        let dup = contact(app, json!({"name": "Ada Duplicate", "email": "ada@dup.test",
            "tags": ["trial"], "metadata": {"plan": "pro"}})).await;
        let dup_before = app.contact(&dup).await;
        let ada_before = app.contact(&ada).await;

        let b = Browser::open(&app.base).await;
        b.sign_in(&app.creds.admin_email, &app.creds.admin_password).await;
        b.goto(&format!("/contacts/{ada}")).await;
        b.find(&heading("Ada Lovelace")).await;

        // A note, shown as text, in the notes and in the timeline, with author and time.
        let hostile = "Prefers <b>email</b>, not calls";
        b.fill("New note", hostile).await;
        b.click(&button("Add note")).await;
        b.find(&text(&format!("Note: {hostile}"))).await;
        let (_, notes) = app.get(&format!("/api/v1/contacts/{ada}/notes")).await;
        let note = &notes["items"][0];
        assert_eq!(note["body"], hostile);
        assert_eq!(note["author"]["kind"], "admin");
        assert_eq!(note["author"]["email"], app.creds.admin_email.as_str());
        let at = when(note["created_at"].as_str().unwrap());
        b.find(&text(&format!("by you · {at}"))).await;
        let injected = r#"arguments[arguments.length - 1](document.querySelector('.note-body b, .event-text b') === null)"#;
        assert_eq!(b.run_async(injected).await, true);

        // Edited in place; the timeline follows.
        b.click(&button(&format!("Edit note from {at}"))).await;
        b.fill("Edit note", "Prefers email").await;
        b.click(&button("Save note")).await;
        b.find(&text("Note: Prefers email")).await;
        assert!(b.absent(&text(&format!("Note: {hostile}"))).await);

        // Merge…: search, preview, confirm.
        b.fill_in(&searchbox("Find a contact to merge into this one"), "duplicate").await;
        b.click(&button("Preview merging Ada Duplicate")).await;
        b.find(&heading("Merge Ada Duplicate into this contact")).await;
        b.find(&text("ada@dup.test")).await;
        b.find(&text("Tags added: trial")).await;
        b.find(&text("Moves here: 1 conversation, 1 visitor, 3 timeline entries, 0 notes.")).await;
        b.screenshot("merge-preview").await;
        b.click(&button("Confirm merge")).await;
        b.find(&text("Merged with Ada Duplicate")).await;
        let (s, gone) = app.get(&format!("/api/v1/contacts/{dup}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{gone}");
        assert_eq!(gone["error"]["merged_into"], ada.as_str());
        assert_eq!(app.contact(&ada).await["email"], "ada@dup.test");

        // Undo from the timeline: both contacts as they were.
        b.click(&button("Undo merge")).await;
        b.find(&text("Merge undone: the merged contact is separate again")).await;
        assert!(b.absent(&button("Undo merge")).await, "an undone merge offers no undo");
        assert_eq!(app.contact(&dup).await, dup_before);
        let ada_now = app.contact(&ada).await;
        assert_eq!(ada_now["email"], ada_before["email"]);
        assert_eq!(ada_now["tags"], ada_before["tags"]);

        // Merged again, then the survivor edited: the undo is refused, in words.
        let (s, v) = app
            .admin(reqwest::Method::POST, &format!("/api/v1/contacts/{ada}/merge"),
                   Some(json!({"other_id": dup})))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = app.patch(&ada, json!({"company": "Analytical Engines"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        b.goto(&format!("/contacts/{ada}")).await;
        b.click(&button("Undo merge")).await;
        let message = b.text(&alert()).await;
        assert_eq!(message, "This merge can no longer be undone: this contact's fields changed since.");
        b.assert_no_console_errors().await;
        b.close().await;
    }
}
