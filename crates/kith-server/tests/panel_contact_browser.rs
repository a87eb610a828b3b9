//! The contact detail page and the conversation page of the admin panel, in a real headless
//! Chromium on both databases: fields edited in place and each change in the timeline, a
//! 409 naming the contact that holds an email, hostile visitor text shown as text, an agent
//! reply the visitor receives, a visitor message arriving live. Plus, over plain HTTP, the
//! CSRF guard of the page's edits.

mod browser;
#[macro_use]
mod common;

use browser::{alert, button, heading, link, text, textbox, Browser};
use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Waits (bounded by the harness's script timeout) until `selector` matches an element.
async fn wait_for_selector(b: &Browser, selector: &str) {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        const tick = () => document.querySelector({sel:?}) ? done(true) : setTimeout(tick, 50);
        tick();"#,
        sel = selector
    );
    assert_eq!(b.run_async(&script).await, true, "{selector}");
}

/// How many elements of the page match `selector` and read exactly `text`.
async fn count_text(b: &Browser, selector: &str, text: &str) -> u64 {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        done([...document.querySelectorAll({selector:?})]
            .filter(e => e.textContent.trim() === {text:?}).length);"#
    );
    b.run_async(&script).await.as_u64().unwrap()
}

async fn scroll_to_top(b: &Browser) {
    b.run_async("window.scrollTo(0, 0); arguments[arguments.length - 1](true);")
        .await;
}

async fn signed_in(app: &TestApp) -> Browser {
    let b = Browser::open(&app.base).await;
    b.sign_in(&app.creds.admin_email, &app.creds.admin_password)
        .await;
    b
}

both_backends! {
    async fn edit_a_contact_in_place_and_read_each_change_in_the_timeline(app) {
        let (_, id) = app.visitor().await.say("Hello, is anyone there?").await;
        // Another contact holds grace@acme.test.
        let (_, grace) = app.visitor().await.say("Hi from Grace").await;
        let (s, v) = app.patch(&grace, json!({"name": "Grace Hopper", "email": "grace@acme.test"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");

        let b = signed_in(app).await;
        b.goto(&format!("/contacts/{id}")).await;
        b.find(&heading("Anonymous lead")).await;
        b.find(&text("Created as a lead")).await;
        b.find(&text("Started a conversation on Acme shop")).await;

        // The name, edited in place.
        b.click(&button("Edit name")).await;
        b.fill("Name", "Ada Lovelace").await;
        b.click(&button("Save name")).await;
        b.find(&text("Name set to Ada Lovelace")).await;
        b.find(&heading("Ada Lovelace")).await;
        assert!(b.absent(&textbox("Name")).await, "the form closed");

        // An invalid phone: 422, the reason beside the field, the value kept in the box.
        b.click(&button("Edit phone")).await;
        b.fill("Phone", "call me maybe").await;
        b.click(&button("Save phone")).await;
        let message = b.text(&alert()).await;
        assert!(message.starts_with("Phone "), "{message}");
        let phone = b.find(&textbox("Phone")).await;
        assert_eq!(phone.prop("value").await.unwrap().as_deref(), Some("call me maybe"));
        b.click(&button("Cancel editing phone")).await;
        b.find(&button("Edit phone")).await;

        // A tag.
        b.fill("New tag", "vip").await;
        b.click(&button("Add tag")).await;
        b.find(&button("Remove tag vip")).await;
        b.find(&text("Tag vip added")).await;

        // A metadata key, then its value edited in place.
        b.fill("Key", "plan").await;
        b.fill("Value", "pro").await;
        b.click(&button("Add data")).await;
        b.find(&text("Metadata plan set to pro")).await;
        b.click(&button("Edit plan")).await;
        b.fill("Value of plan", "enterprise").await;
        b.click(&button("Save plan")).await;
        b.find(&text("Metadata plan changed from pro to enterprise")).await;

        // An email another contact holds: 409, the holder named and linked, nothing changed.
        b.click(&button("Edit email")).await;
        b.fill("Email", "Grace@Acme.test").await;
        b.click(&button("Save email")).await;
        let message = b.text(&alert()).await;
        assert!(message.starts_with("Grace Hopper already has this email."), "{message}");
        let holder = b.find(&link("Grace Hopper")).await;
        assert_eq!(holder.attr("href").await.unwrap().as_deref(), Some(format!("/contacts/{grace}").as_str()));
        scroll_to_top(&b).await;
        b.screenshot("contact-detail").await;

        // A user id promotes the lead; the summary follows.
        b.click(&button("Cancel editing email")).await;
        b.click(&button("Edit user ID")).await;
        b.fill("User ID", "ada-1815").await;
        b.click(&button("Save user ID")).await;
        b.find(&text("Promoted from lead to customer")).await;
        b.find(&text("Customer")).await;

        let c = app.contact(&id).await;
        assert_eq!(c["name"], "Ada Lovelace");
        assert_eq!(c["email"], serde_json::Value::Null);
        assert_eq!(c["tags"], json!(["vip"]));
        assert_eq!(c["metadata"], json!({"plan": "enterprise"}));
        assert_eq!(c["status"], "customer");
        // The panel's edits are the admin's, as the API's timeline says.
        let (_, tl) = app.get(&format!("/api/v1/contacts/{id}/timeline")).await;
        assert!(tl["items"][0]["actor"].as_str().unwrap().starts_with("admin:"), "{tl}");

        // Removing the tag and the key.
        b.click(&button("Remove tag vip")).await;
        b.find(&text("Tag vip removed")).await;
        b.click(&button("Remove plan")).await;
        b.find(&text("Metadata plan removed (was enterprise)")).await;

        for width in [1024, 1440, 1280] {
            b.assert_fits(width).await;
        }
        b.assert_no_console_errors().await;

        // A merged contact's id leads to the contact it went into.
        // The timeline names the absorbed contact (it no longer exists), not its id.
        let merged = app.visitor().await;
        let (_, absorbed) = merged.say("I'm Grace again").await;
        merged.identify(json!({"name": "Amazing Grace"})).await;
        merged.identify(json!({"email": "grace@acme.test"})).await;
        b.goto(&format!("/contacts/{absorbed}")).await;
        b.wait_for_path(&format!("/contacts/{grace}")).await;
        b.find(&heading("Grace Hopper")).await;
        b.find(&text("Merged with Amazing Grace (by email)")).await;

        // Another admin's edit reads "by <their email>"; one's own reads "by you".
        let org = app.store.org(&app.creds.org_id);
        let ann = org.add_admin("ann@acme.test", "correct horse battery").await.unwrap();
        let patch = kith_core::contact::ProfilePatch::parse(&json!({"company": "Analytical Engines"})).unwrap();
        app.store
            .org(&app.creds.org_id)
            .patch_contact(&kith_core::ContactId::new(&grace), &patch, &kith_core::timeline::Actor::Admin(ann))
            .await
            .unwrap();
        b.goto(&format!("/contacts/{grace}")).await;
        b.find(&text("Company set to Analytical Engines")).await;
        let meta = b
            .run_async("arguments[arguments.length - 1](document.querySelector('#timeline .event .event-meta').textContent)")
            .await;
        assert!(meta.as_str().unwrap().starts_with("by ann@acme.test ·"), "{meta}");
        b.close().await;
    }

    async fn visitor_text_is_shown_as_text(app) {
        let v = app.visitor().await;
        let hostile = "<img src=x onerror=alert(1)>";
        let (s, r) = v.identify(json!({"name": hostile, "metadata": {"note": "<script>alert(2)</script>"}})).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let (conv, id) = v.say("<svg onload=alert(3)>hi</svg>").await;
        let (s, r) = app.patch(&id, json!({"tags": ["<b onmouseover=alert(4)>x</b>"]})).await;
        assert_eq!(s, StatusCode::OK, "{r}");

        let b = signed_in(app).await;
        b.goto(&format!("/contacts/{id}")).await;
        b.find(&heading(hostile)).await;
        b.find(&text("<script>alert(2)</script>")).await;
        b.find(&text("<svg onload=alert(3)>hi</svg>")).await;
        b.find(&button("Remove tag <b onmouseover=alert(4)>x</b>")).await;
        let injected = r#"const done = arguments[arguments.length - 1];
            done(document.querySelector('img, svg, b, script:not([src])') === null);"#;
        // An alert would have made this WebDriver call fail with "unexpected alert open".
        assert_eq!(b.run_async(injected).await, true);
        b.goto(&format!("/conversations/{conv}")).await;
        b.find(&text("<svg onload=alert(3)>hi</svg>")).await;
        assert_eq!(b.run_async(injected).await, true);
        b.assert_no_console_errors().await;
        b.close().await;
    }

    async fn reply_to_a_conversation_and_see_the_visitor_live(app) {
        let v = app.visitor().await;
        let (conv, id) = v.say("I need help with my order").await;
        let b = signed_in(app).await;
        b.goto(&format!("/contacts/{id}")).await;
        b.click(&text("I need help with my order")).await;
        b.wait_for_path(&format!("/conversations/{conv}")).await;
        b.find(&heading("Conversation with Anonymous lead")).await;
        b.find(&text("I need help with my order")).await;

        // A new visitor message arrives without a reload.
        wait_for_selector(&b, "#transcript[data-live=ready]").await;
        let (s, r) = v.say_in(&conv, "Are you there? <i>hello</i>").await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        b.find(&text("Are you there? <i>hello</i>")).await;

        // The agent replies; the visitor receives it, the transcript shows it once.
        b.fill("Reply", "Yes! How can I help?").await;
        b.click(&button("Send reply")).await;
        b.find(&text("Yes! How can I help?")).await;
        let (s, msgs) = v.call(Method::GET, &format!("/conversations/{conv}/messages"), None).await;
        assert_eq!(s, StatusCode::OK, "{msgs}");
        let last = msgs["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["author"], "agent");
        assert_eq!(last["body"], "Yes! How can I help?");
        let reply = b.find(&textbox("Reply")).await;
        assert_eq!(reply.prop("value").await.unwrap().as_deref(), Some(""), "the box empties");
        // Give the event stream's copy a moment to arrive, then count.
        let (s, _) = v.say_in(&conv, "Thanks").await;
        assert_eq!(s, StatusCode::CREATED);
        b.find(&text("Thanks")).await;
        assert_eq!(count_text(&b, "#transcript .msg-body", "Yes! How can I help?").await, 1);
        scroll_to_top(&b).await;
        b.screenshot("conversation").await;

        // Escalate, then resolve.
        b.click(&button("Escalate")).await;
        b.find(&text("escalated")).await;
        assert!(b.absent(&button("Escalate")).await);
        b.click(&button("Resolve")).await;
        b.find(&text("resolved")).await;
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}")).await;
        assert_eq!(c["status"], "resolved");
        // A resolved conversation offers Reopen (and no Resolve).
        assert!(b.absent(&button("Resolve")).await);
        b.click(&button("Reopen")).await;
        b.find(&text("open")).await;
        b.find(&button("Resolve")).await;
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}")).await;
        assert_eq!(c["status"], "open");
        let tl = app.timeline_kinds(&id).await;
        assert!(tl.contains(&"escalated".to_string()), "{tl:?}");

        for width in [1024, 1440] {
            b.assert_fits(width).await;
        }
        b.assert_no_console_errors().await;
        b.close().await;
    }

    async fn the_timeline_conversations_and_transcript_page_back(app) {
        let v = app.visitor().await;
        let (first_conv, id) = v.say("my very first message").await;
        // 21 conversations: one more than a page.
        for i in 1..=20 {
            v.call(Method::POST, "/messages", Some(json!({"body": format!("question {i}")}))).await;
        }
        // 25 edits: the timeline's first entries are more than a page back.
        for i in 0..25 {
            let (s, r) = app.patch(&id, json!({"company": format!("Company {i}")})).await;
            assert_eq!(s, StatusCode::OK, "{r}");
        }
        // 55 agent replies: the first visitor message is more than a page back.
        for i in 0..55 {
            let (s, r) = app
                .admin(Method::POST, &format!("/api/v1/conversations/{first_conv}/messages"),
                       Some(json!({"body": format!("reply {i}")})))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
        }
        let b = signed_in(app).await;
        b.goto(&format!("/contacts/{id}")).await;
        b.find(&text("Company changed from Company 23 to Company 24")).await;
        assert!(b.absent(&text("Created as a lead")).await);
        // 47 entries: three pages of 20.
        b.click(&button("Show older")).await;
        b.find(&text("Company set to Company 0")).await;
        assert!(b.absent(&text("Created as a lead")).await);
        b.click(&button("Show older")).await;
        b.find(&text("Created as a lead")).await;
        assert!(b.absent(&button("Show older")).await, "no page after the last");

        // Newest activity first: the replied one, then questions 20 down to 2 on this page.
        b.find(&text("question 20")).await;
        assert!(b.absent(&text("question 1")).await);
        b.click(&button("Show more conversations")).await;
        b.find(&text("question 1")).await;
        b.click(&text("reply 54")).await;

        b.wait_for_path(&format!("/conversations/{first_conv}")).await;
        b.find(&text("reply 54")).await;
        assert!(b.absent(&text("my very first message")).await);
        b.click(&button("Show older")).await;
        b.find(&text("my very first message")).await;
        assert_eq!(count_text(&b, "#transcript .msg-body", "reply 10").await, 1);
        b.assert_no_console_errors().await;
        b.close().await;
    }

    async fn an_edit_without_the_csrf_token_is_refused_and_changes_nothing(app) {
        let (conv, id) = app.visitor().await.say("hello").await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // Sign in over HTTP: the form's cookie and token, then the session cookie.
        let form = http.get(format!("{}/signin", app.base)).send().await.unwrap();
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
        let token = signin_cookie.split_once('=').unwrap().1.to_string();
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
        let page = http
            .get(format!("{}/contacts/{id}", app.base))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let marker = "name=\"csrf-token\" content=\"";
        let at = html.find(marker).unwrap() + marker.len();
        let csrf = html[at..at + html[at..].find('"').unwrap()].to_string();

        let post = |path: String, token: Option<&'static str>, fields: Vec<(&'static str, &'static str)>| {
            let mut req = http
                .post(format!("{}{path}", app.base))
                .header("cookie", &session)
                .header("hx-request", "true")
                .form(&fields);
            if let Some(t) = token {
                req = req.header("x-csrf-token", t);
            }
            req.send()
        };
        for (path, fields) in [
            (format!("/contacts/{id}/fields/name"), vec![("value", "Mallory")]),
            (format!("/contacts/{id}/tags"), vec![("tag", "pwned")]),
            (format!("/contacts/{id}/metadata"), vec![("key", "k"), ("value", "v")]),
            (format!("/contacts/{id}/metadata/remove"), vec![("key", "k")]),
            (format!("/conversations/{conv}/reply"), vec![("body", "not from us")]),
            (format!("/conversations/{conv}/resolve"), vec![]),
            (format!("/conversations/{conv}/reopen"), vec![]),
            (format!("/conversations/{conv}/escalate"), vec![]),
        ] {
            for token in [None, Some("0000")] {
                let resp = post(path.clone(), token, fields.clone()).await.unwrap();
                assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path} with {token:?}");
            }
        }
        let c = app.contact(&id).await;
        assert_eq!(c["name"], serde_json::Value::Null);
        assert_eq!(c["tags"], json!([]));
        assert_eq!(c["metadata"], json!({}));
        assert_eq!(app.timeline_kinds(&id).await, ["conversation_started", "created"]);
        let (_, cv) = app.get(&format!("/api/v1/conversations/{conv}")).await;
        assert_eq!(cv["status"], "open");
        assert_eq!(cv["messages"].as_array().unwrap().len(), 1);

        // With the page's token, the same edit goes through.
        let resp = http
            .post(format!("{}/contacts/{id}/fields/name", app.base))
            .header("cookie", &session)
            .header("hx-request", "true")
            .header("x-csrf-token", &csrf)
            .form(&[("value", "Mallory")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["hx-trigger"], "contact-changed");
        assert_eq!(app.contact(&id).await["name"], "Mallory");
    }
}
