//! `/widget.js` and `/demo` over HTTP: the size budget, caching, and the demo's limits. The
//! widget's behaviour in a browser is tested in tests/browser_widget.rs.

#[macro_use]
mod common;

use common::{send, Backend, TestApp};
use kith_server::Config;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Everything a visitor downloads before the first message is this one file (its CSS is
/// inside it, it loads nothing else): gzipped, at most 12 KB (issue 17).
const WIDGET_BUDGET_GZIP_BYTES: usize = 12 * 1024;

both_backends! {
    async fn the_widget_script_fits_its_budget_and_is_cached_with_an_etag(app) {
        // reqwest without its gzip feature sends no Accept-Encoding and never decodes: the
        // bytes counted are the bytes on the wire.
        let resp = app
            .raw_get("/widget.js")
            .header(ACCEPT_ENCODING, "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
        assert!(resp.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
        assert!(resp.headers()[CACHE_CONTROL].to_str().unwrap().contains("max-age"));
        assert_eq!(resp.headers()["cross-origin-resource-policy"], "cross-origin");
        let etag = resp.headers()[ETAG].clone();
        let wire = resp.bytes().await.unwrap();
        assert!(
            wire.len() <= WIDGET_BUDGET_GZIP_BYTES,
            "widget.js is {} bytes gzipped, over the {WIDGET_BUDGET_GZIP_BYTES}-byte budget",
            wire.len()
        );

        // Revalidation costs no body.
        let again = app
            .raw_get("/widget.js")
            .header(ACCEPT_ENCODING, "gzip")
            .header(IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(again.bytes().await.unwrap().is_empty());

        // Without gzip: the source as is, under its own entity tag.
        let plain = app.raw_get("/widget.js").send().await.unwrap();
        assert!(plain.headers().get(CONTENT_ENCODING).is_none());
        assert_ne!(plain.headers()[ETAG], etag);
        let source = plain.text().await.unwrap();
        assert!(source.contains("attachShadow({ mode: \"open\" })"));
        assert!(source.len() > wire.len());
    }

    async fn the_demo_page_shows_the_widget_of_the_first_website_with_its_name_escaped(app) {
        let (s, _) = app
            .admin(Method::POST, "/api/v1/websites", Some(json!({"name": "Second"})))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        app.sql("UPDATE websites SET name = '<img src=x onerror=alert(1)>' WHERE name = 'Acme shop'")
            .await;
        let resp = app.raw_get("/demo").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe"), "{csp}");
        let page = resp.text().await.unwrap();
        assert!(page.contains(&format!("data-website=\"{}\"", app.creds.website_key)));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "{page}");
        assert!(!page.contains("<img src=x"), "the website name is escaped");
        assert!(!page.contains("<script>"), "no inline script (CSP script-src 'self')");
    }

    async fn the_demo_vouches_for_demo_users_only(app) {
        let post = |body| {
            let req = app.http.post(format!("{}/demo/identify", app.base)).json(&body);
            send(req)
        };
        for bad in ["42", "ada", "demo-", "demo-a b", "DEMO-ada"] {
            let (s, v) = post(json!({"user_id": bad})).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
            assert_eq!(v["error"]["field"], "user_id", "{v}");
        }
        let (s, v) = post(json!({"user_id": "demo-ada"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["user_hash"], app.user_hash("demo-ada"));

        // The hash works as a real website's would: the lead becomes a customer.
        let visitor = app.visitor().await;
        let (_, contact) = visitor.say("hello from the demo").await;
        let (s, out) = visitor
            .identify(json!({"user_id": "demo-ada", "user_hash": v["user_hash"]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{out}");
        assert_eq!(out["contact_id"], contact.as_str());
        assert_eq!(app.contact(&contact).await["status"], "customer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_can_turn_the_demo_off() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Config {
            disable_demo: true,
            ..Config::default()
        },
    )
    .await;
    let resp = app.raw_get("/demo").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let req = app
        .http
        .post(format!("{}/demo/identify", app.base))
        .json(&json!({"user_id": "demo-ada"}));
    assert_eq!(send(req).await.0, StatusCode::NOT_FOUND);
    // The widget itself is always served.
    let resp = app.raw_get("/widget.js").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    app.stop().await;
}
