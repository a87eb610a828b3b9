//! The admin panel in a real headless Chromium, on both databases: signing in and out,
//! a wrong password, adding an admin and changing a password. Elements are found by role and
//! accessible name (see `browser/mod.rs`).

mod browser;
#[macro_use]
mod common;

use browser::{alert, button, link, status, text, textbox, Browser};
use reqwest::StatusCode;

both_backends! {
    async fn sign_in_with_the_printed_credentials_then_sign_out(app) {
        let b = Browser::open(&app.base).await;
        b.goto("/").await;
        b.wait_for_path("/signin").await;
        b.find(&textbox("Email")).await;
        b.screenshot(&format!("signin-{:?}", app.backend)).await;
        b.fill("Email", &app.creds.admin_email).await;
        b.fill("Password", &app.creds.admin_password).await;
        b.click(&button("Sign in")).await;
        b.wait_for_path("/").await;
        b.find(&text(&app.creds.admin_email)).await;
        b.find(&text("Acme")).await;
        b.find(&link("Contacts")).await;
        b.find(&link("Settings")).await;
        b.assert_no_console_errors().await;
        b.screenshot(&format!("contacts-placeholder-{:?}", app.backend)).await;
        let cookie = b.cookie("kith_session").await.expect("a session cookie");

        // Scripts on the page call the admin API with the cookie: panel.js's fetch adds the
        // CSRF token, a bare fetch does not and is refused; htmx requests carry it too.
        let create = r#"const done = arguments[arguments.length - 1];
            const opts = {method: "POST", headers: {"content-type": "application/json"},
                          body: JSON.stringify({name: "VIPs", filter: {tags: {all: ["vip"]}}})};"#;
        let bare = format!("{create} fetch('/api/v1/lists', opts).then(r => done(r.status));");
        let with_token =
            format!("{create} kithPanel.fetch('/api/v1/lists', opts).then(r => done(r.status));");
        assert_eq!(b.run_async(&bare).await, 403);
        assert_eq!(b.run_async(&with_token).await, 201);
        let htmx = r#"const done = arguments[arguments.length - 1];
            document.body.addEventListener("htmx:afterRequest",
                e => done(e.detail.xhr.status), {once: true});
            htmx.ajax("DELETE", "/api/v1/lists/no-such-list", {target: "body", swap: "none"});"#;
        assert_eq!(b.run_async(htmx).await, 404, "htmx sent the token: not 403");
        let (_, lists) = app.get("/api/v1/lists").await;
        assert!(lists.to_string().contains("VIPs"));

        b.click(&button("Sign out")).await;
        b.wait_for_path("/signin").await;
        assert_eq!(b.cookie("kith_session").await, None);
        // The old cookie signs nobody in any more.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .get(format!("{}/", app.base))
            .header("cookie", format!("kith_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()["location"], "/signin");
        b.close().await;
    }

    async fn a_wrong_password_shows_an_alert_and_starts_no_session(app) {
        let b = Browser::open(&app.base).await;
        b.goto("/signin").await;
        b.fill("Email", &app.creds.admin_email).await;
        b.fill("Password", "not the password").await;
        b.click(&button("Sign in")).await;
        let message = b.text(&alert()).await;
        b.screenshot(&format!("signin-wrong-password-{:?}", app.backend)).await;
        assert_eq!(message, "The email or password is not right.");
        assert_eq!(b.path().await, "/signin");
        assert_eq!(b.cookie("kith_session").await, None);
        // The email stays filled in; the password does not.
        let email = b.find(&textbox("Email")).await;
        assert_eq!(email.prop("value").await.unwrap().as_deref(), Some(app.creds.admin_email.as_str()));
        // An unknown email reads the same, on the page that answers it (not the one before,
        // whose alert says the same).
        let first_answer = b.find(&alert()).await;
        b.fill("Email", "nobody@acme.test").await;
        b.fill("Password", "not the password").await;
        b.click(&button("Sign in")).await;
        b.wait_gone(&first_answer).await;
        b.wait_for_path("/signin").await;
        assert_eq!(b.text(&alert()).await, message);
        b.assert_no_console_errors().await;
        b.close().await;
    }

    async fn add_an_admin_who_signs_in_then_changes_their_password(app) {
        let b = Browser::open(&app.base).await;
        b.sign_in(&app.creds.admin_email, &app.creds.admin_password).await;
        b.click(&link("Settings")).await;
        b.wait_for_path("/settings").await;
        b.fill("Email", "bob@acme.test").await;
        b.fill("Password", "bobs first password").await;
        b.click(&button("Add admin")).await;
        assert_eq!(b.text(&status()).await, "bob@acme.test is now an admin and can sign in.");
        // The same email again is refused, beside the form.
        b.fill("Email", "Bob@Acme.test").await;
        b.fill("Password", "another password").await;
        b.click(&button("Add admin")).await;
        assert_eq!(
            b.text(&alert()).await,
            "Bob@Acme.test is already an admin of this organization."
        );
        b.close().await;

        // Bob, in a browser of his own.
        let bob = Browser::open(&app.base).await;
        bob.sign_in("bob@acme.test", "bobs first password").await;
        bob.find(&text("bob@acme.test")).await;
        bob.click(&link("Settings")).await;
        bob.fill("Current password", "wrong").await;
        bob.fill("New password", "bobs second password").await;
        bob.click(&button("Change password")).await;
        assert_eq!(bob.text(&alert()).await, "The current password is not right.");
        bob.fill("Current password", "bobs first password").await;
        bob.fill("New password", "bobs second password").await;
        bob.click(&button("Change password")).await;
        assert_eq!(
            bob.text(&status()).await,
            "Your password was changed. Your other sessions were signed out."
        );
        bob.screenshot(&format!("settings-{:?}", app.backend)).await;
        // The layout holds from 1024 to 1440 px wide.
        for width in [1024, 1440, 1280] {
            bob.assert_fits(width).await;
        }
        bob.click(&button("Sign out")).await;
        bob.wait_for_path("/signin").await;

        // The old password no longer works; the new one does.
        bob.fill("Email", "bob@acme.test").await;
        bob.fill("Password", "bobs first password").await;
        bob.click(&button("Sign in")).await;
        assert_eq!(bob.text(&alert()).await, "The email or password is not right.");
        bob.sign_in("bob@acme.test", "bobs second password").await;
        bob.find(&text("bob@acme.test")).await;
        bob.assert_no_console_errors().await;
        bob.close().await;
    }
}
