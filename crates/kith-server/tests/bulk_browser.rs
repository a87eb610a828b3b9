//! Bulk actions and deleting a contact from the admin panel, in real Chromium (issue 19), on
//! SQLite and PostgreSQL: the exact count is asked before anything happens, progress is shown
//! until done, and a deleted contact is gone from the API. And the CSV upload: a file chosen in
//! the import page creates, updates and rejects rows, the summary and the rejected rows are
//! shown, and a name holding markup is shown as text.

mod browser;
#[macro_use]
mod common;

use browser::{alert, button, combobox, file_input, heading, link, status, text, Browser};
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

    async fn a_csv_file_is_imported_from_the_panel(app) {
        // Ann exists (she wrote and gave her email); the file updates her by email.
        let ann = app.visitor().await;
        ann.say("hello").await;
        let (s, _) = ann.identify(json!({"email": "ann@example.com"})).await;
        assert_eq!(s, StatusCode::OK);
        let dir = kith_testkit::TempDir::new("panel-import");
        let file = dir.join("people.csv");
        std::fs::write(
            &file,
            "Email,First name,Last name,Company,Tags\n\
             ann@example.com,Ann,Archer,Acme,vip\n\
             bob@example.com,<img src=x onerror=alert(1)>,Bee,Bees Ltd,\"trial, vip\"\n\
             not-an-email,Carl,Cole,,\n",
        )
        .unwrap();

        let b = Browser::open(&app.base).await;
        b.sign_in(&app.creds.admin_email, &app.creds.admin_password).await;
        b.click(&link("Import CSV")).await;
        b.find(&heading("Import contacts")).await;
        b.find(&file_input("CSV file")).await
            .send_keys(file.to_str().unwrap()).await.expect("choose the file");
        b.click(&button("Import CSV")).await;
        assert_eq!(
            b.text(&status()).await,
            "Imported 3 rows: 1 created, 1 updated, 0 unchanged, 1 rejected."
        );
        b.find(&heading("Rejected rows")).await;
        assert!(b.try_find(&alert()).await.is_none(), "no error shown");
        let (_, found) = app.get("/api/v1/contacts?q=ann%40example.com").await;
        assert_eq!(found["items"][0]["name"], "Ann Archer", "{found}");
        assert_eq!(found["items"][0]["company"], "Acme", "{found}");

        // The new contact's name is shown as the text it is, not run as markup.
        b.click(&link("Back to contacts")).await;
        b.click(&link("<img src=x onerror=alert(1)> Bee")).await;
        b.find(&heading("<img src=x onerror=alert(1)> Bee")).await;
        app.assert_builtin_counts().await;
        b.assert_no_console_errors().await;
        b.close().await;
    }
}
