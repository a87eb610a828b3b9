//! The admin panel over HTTP, on both databases: assets (fingerprints, ETags, 304), sign-in
//! and its throttling and login-CSRF guard, cookie flags, CSRF on panel forms and on the admin
//! API called with the session cookie, session expiry, the CSP of panel pages.

#[macro_use]
mod common;

use common::{Backend, TestApp};
use kith_server::{Config, Limits};
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A browser-like HTTP client that does not follow redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` line for cookie `name`, if the answer sets it.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value in a `Set-Cookie` line.
fn cookie_value(line: &str) -> String {
    line.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// `name="csrf_token" value="…"` or `name="csrf-token" content="…"` in a page.
fn token_in(html: &str) -> String {
    for marker in [
        "name=\"csrf_token\" value=\"",
        "name=\"csrf-token\" content=\"",
    ] {
        if let Some(i) = html.find(marker) {
            let rest = &html[i + marker.len()..];
            return rest[..rest.find('"').unwrap()].to_string();
        }
    }
    panic!("no CSRF token in the page: {html}");
}

/// A signed-in panel session: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

/// The sign-in form's cookie and hidden token.
async fn signin_form(app: &TestApp) -> (String, String) {
    let resp = client()
        .get(format!("{}/signin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = cookie_value(&set_cookie(resp.headers(), "kith_signin").expect("form cookie"));
    let token = token_in(&resp.text().await.unwrap());
    assert_eq!(cookie, token);
    (cookie, token)
}

async fn attempt(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let (cookie, token) = signin_form(app).await;
    client()
        .post(format!("{}/signin", app.base))
        .header("cookie", format!("kith_signin={cookie}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap()
}

async fn sign_in(app: &TestApp) -> Session {
    let resp = attempt(app, &app.creds.admin_email, &app.creds.admin_password).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/");
    let cookie = cookie_value(&set_cookie(resp.headers(), "kith_session").expect("session"));
    let page = get_page(app, "/", Some(&cookie)).await;
    assert_eq!(page.0, StatusCode::OK);
    let csrf = token_in(&page.2);
    Session { cookie, csrf }
}

async fn get_page(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = client().get(format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("kith_session={c}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// A panel form post with the session cookie and, when given, a `csrf_token` field.
async fn post_form(
    app: &TestApp,
    path: &str,
    s: &Session,
    csrf: Option<&str>,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut fields = fields.to_vec();
    if let Some(t) = csrf {
        fields.push(("csrf_token", t));
    }
    let resp = client()
        .post(format!("{}{path}", app.base))
        .header("cookie", format!("kith_session={}", s.cookie))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

/// An admin API call with the session cookie (and `X-CSRF-Token` when given).
async fn api_with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    s: &Session,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", app.base))
        .header("cookie", format!("kith_session={}", s.cookie));
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    common::send(req).await
}

/// A GET that accepts gzip (reqwest here neither asks for it nor decodes it): the status, the
/// headers and the body as it travelled.
async fn get_gzip(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    etag: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = client()
        .get(format!("{}{path}", app.base))
        .header("accept-encoding", "gzip, deflate, br");
    if let Some(c) = cookie {
        req = req.header("cookie", format!("kith_session={c}"));
    }
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read;
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("a gzip body");
    out
}

both_backends! {
    async fn assets_and_pages_travel_gzipped(app) {
        let s = sign_in(app).await;
        let (_, _, html) = get_page(app, "/", Some(&s.cookie)).await;
        // The contacts page itself.
        let (status, headers, body) = get_gzip(app, "/", Some(&s.cookie), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-encoding"], "gzip");
        assert!(body.len() < html.len(), "{} gzipped vs {} plain", body.len(), html.len());
        let page = gunzip(&body);
        assert!(page.contains("id=\"results\""), "{page}");
        // Each asset the page links: gzipped, its own ETag, immutable, 304 on that ETag.
        let urls: Vec<String> = html
            .match_indices("/assets/")
            .map(|(i, _)| html[i..].split('"').next().unwrap().to_string())
            .collect();
        assert_eq!(urls.len(), 3, "{urls:?}");
        for url in urls {
            let (status, headers, body) = get_gzip(app, &url, None, None).await;
            assert_eq!(status, StatusCode::OK, "{url}");
            assert_eq!(headers["content-encoding"], "gzip", "{url}");
            assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
            assert_eq!(headers["vary"], "Accept-Encoding");
            let etag = headers["etag"].to_str().unwrap().to_string();
            assert!(etag.ends_with("-gz\""), "{etag}");
            let plain = client().get(format!("{}{url}", app.base)).send().await.unwrap();
            assert!(plain.headers().get("content-encoding").is_none());
            assert_ne!(plain.headers()["etag"].to_str().unwrap(), etag, "one ETag per coding");
            let plain = plain.text().await.unwrap();
            assert_eq!(gunzip(&body), plain, "{url}");
            assert!(body.len() * 2 < plain.len(), "{url}: {} gzipped of {}", body.len(), plain.len());
            let (status, headers, body) = get_gzip(app, &url, None, Some(&etag)).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{url}");
            assert_eq!(headers["etag"].to_str().unwrap(), etag);
            assert!(body.is_empty());
        }
    }

    async fn two_admins_adding_tags_at_once_lose_nothing(app) {
        let (_, id) = app.visitor().await.say("hello").await;
        let contact = kith_core::ContactId::new(&id);
        let org = app.store.org(&app.creds.org_id);
        let actor = kith_core::timeline::Actor::Admin("someone".into());
        // Ten tags added at once, then five removed at once: every one lands.
        let tags: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        let adds = tags.iter().map(|t| org.edit_tag(&contact, kith_store::TagEdit::Add(t), &actor));
        for r in futures::future::join_all(adds).await {
            r.expect("tag added");
        }
        let mut got: Vec<String> = serde_json::from_value(app.contact(&id).await["tags"].clone()).unwrap();
        got.sort();
        assert_eq!(got, tags);
        let removes = tags[..5].iter().map(|t| org.edit_tag(&contact, kith_store::TagEdit::Remove(t), &actor));
        for r in futures::future::join_all(removes).await {
            r.expect("tag removed");
        }
        let mut got: Vec<String> = serde_json::from_value(app.contact(&id).await["tags"].clone()).unwrap();
        got.sort();
        assert_eq!(got, tags[5..].to_vec());
        // Each change is in the timeline; adding a tag already there (any case) changes nothing.
        let kinds = app.timeline_kinds(&id).await;
        assert_eq!(kinds.iter().filter(|k| *k == "fields_updated").count(), 15, "{kinds:?}");
        org.edit_tag(&contact, kith_store::TagEdit::Add("T9"), &actor).await.unwrap();
        assert_eq!(app.timeline_kinds(&id).await.len(), kinds.len());
        let err = org.edit_tag(&kith_core::ContactId::new("01nonexistent"), kith_store::TagEdit::Add("x"), &actor).await;
        assert!(matches!(err, Err(kith_store::StoreError::NotFound)), "{err:?}");
    }

    async fn assets_are_fingerprinted_cached_and_revalidated(app) {
        let (_, _, html) = get_page(app, "/signin", None).await;
        let start = html.find("/assets/panel.").expect("a fingerprinted stylesheet");
        let url = &html[start..start + html[start..].find('"').unwrap()];
        assert!(url.ends_with(".css") && url.len() == "/assets/panel..css".len() + 16, "{url}");
        let resp = client().get(format!("{}{url}", app.base)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
        let etag = resp.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
        let bytes = resp.bytes().await.unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains("--accent"));
        // The page names the file's subresource-integrity hash.
        use base64::Engine;
        use sha2::Digest;
        let sri = format!(
            "integrity=\"sha384-{}\"",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&bytes))
        );
        assert!(html.contains(&format!("href=\"{url}\" {sri}")), "{sri} in {html}");

        let again = client()
            .get(format!("{}{url}", app.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert!(again.text().await.unwrap().is_empty());

        let stale = client()
            .get(format!("{}{url}", app.base))
            .header("if-none-match", "\"something else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::OK);

        for missing in ["/assets/panel.css", "/assets/panel.0000000000000000.css", "/assets/nope.js"] {
            let resp = client().get(format!("{}{missing}", app.base)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{missing}");
        }
        // The scripts the panel pages link are there too.
        let s = sign_in(app).await;
        let (_, _, html) = get_page(app, "/", Some(&s.cookie)).await;
        for prefix in ["/assets/htmx.min.", "/assets/panel."] {
            let start = html
                .match_indices(prefix)
                .map(|(i, _)| i)
                .find(|&i| html[i..].split('"').next().unwrap().ends_with(".js"))
                .unwrap_or_else(|| panic!("{prefix}*.js in {html}"));
            let url = html[start..].split('"').next().unwrap();
            let resp = client().get(format!("{}{url}", app.base)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{url}");
            assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
        }
    }

    async fn signed_out_goes_to_signin_and_pages_carry_the_csp(app) {
        let (status, headers, _) = get_page(app, "/", None).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/signin");
        let (status, _, _) = get_page(app, "/settings", None).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let s = sign_in(app).await;
        for path in ["/signin", "/", "/settings"] {
            let cookie = (path != "/signin").then_some(s.cookie.as_str());
            let (status, headers, html) = get_page(app, path, cookie).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
            for directive in [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self' data:",
                "connect-src 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(directive), "{path}: {csp}");
            }
            assert_eq!(headers["cache-control"], "no-store", "{path}");
            // Nothing inline that the CSP would block.
            assert!(!html.contains("<script>") && !html.contains("style="), "{path}: {html}");
            assert!(!html.contains("onclick") && !html.contains("<style"), "{path}");
        }
        // Signed in, /signin goes to the panel.
        let (status, headers, _) = get_page(app, "/signin", Some(&s.cookie)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/");
        let (_, _, html) = get_page(app, "/", Some(&s.cookie)).await;
        assert!(html.contains(&app.creds.admin_email));
        assert!(html.contains("<meta name=\"csrf-token\""));
    }

    async fn session_cookie_flags(app) {
        let resp = attempt(app, &app.creds.admin_email, &app.creds.admin_password).await;
        let line = set_cookie(resp.headers(), "kith_session").unwrap();
        assert!(line.contains("; HttpOnly"), "{line}");
        assert!(line.contains("; SameSite=Lax"), "{line}");
        assert!(line.contains("; Path=/"), "{line}");
        assert!(!line.contains("Secure"), "plain HTTP from a client: no Secure: {line}");
        // A client claiming HTTPS is not a trusted proxy: still no Secure.
        let (cookie, token) = signin_form(app).await;
        let resp = client()
            .post(format!("{}/signin", app.base))
            .header("cookie", format!("kith_signin={cookie}"))
            .header("x-forwarded-proto", "https")
            .form(&[("email", app.creds.admin_email.as_str()), ("password", &app.creds.admin_password), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        assert!(!set_cookie(resp.headers(), "kith_session").unwrap().contains("Secure"));
        // Signing in again from the same browser ends the session it had.
        let first = cookie_value(&line);
        let (form_cookie, token) = signin_form(app).await;
        let resp = client()
            .post(format!("{}/signin", app.base))
            .header("cookie", format!("kith_signin={form_cookie}; kith_session={first}"))
            .form(&[("email", app.creds.admin_email.as_str()), ("password", &app.creds.admin_password), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let second = cookie_value(&set_cookie(resp.headers(), "kith_session").unwrap());
        assert_ne!(first, second);
        assert_eq!(get_page(app, "/", Some(&first)).await.0, StatusCode::SEE_OTHER);
        assert_eq!(get_page(app, "/", Some(&second)).await.0, StatusCode::OK);
        // The session cookie never holds what the database stores.
        let value = cookie_value(&line);
        assert!(value.starts_with(&format!("ks_{}_", app.creds.org_id)));
    }

    async fn panel_forms_need_the_csrf_token(app) {
        let s = sign_in(app).await;
        let fields = [("email", "eve@acme.test"), ("password", "long enough")];
        for token in [None, Some(""), Some("0000"), Some(&s.csrf[1..])] {
            let (status, html) = post_form(app, "/settings/admins", &s, token, &fields).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}");
            assert!(html.contains("role=\"alert\""), "{html}");
        }
        assert!(app.store.verify_admin_password("eve@acme.test", "long enough").await.unwrap().is_none(),
            "nothing was added");
        // Sign-out is a state change too.
        let (status, _) = post_form(app, "/signout", &s, None, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(get_page(app, "/", Some(&s.cookie)).await.0, StatusCode::OK, "still signed in");

        // The token as a form field, or as htmx's header.
        let (status, html) = post_form(app, "/settings/admins", &s, Some(&s.csrf), &fields).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(app.store.verify_admin_password("eve@acme.test", "long enough").await.unwrap().is_some());
        let resp = client()
            .post(format!("{}/settings/admins", app.base))
            .header("cookie", format!("kith_session={}", s.cookie))
            .header("x-csrf-token", &s.csrf)
            .header("hx-request", "true")
            .form(&[("email", "fay@acme.test"), ("password", "long enough")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // An htmx request with a wrong token gets the API's JSON error.
        let resp = client()
            .post(format!("{}/settings/admins", app.base))
            .header("cookie", format!("kith_session={}", s.cookie))
            .header("x-csrf-token", "wrong")
            .header("hx-request", "true")
            .form(&[("email", "gus@acme.test"), ("password", "long enough")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf");

        // Adding the same email again: 409, and a short password: 422, both on the page.
        let (status, html) = post_form(app, "/settings/admins", &s, Some(&s.csrf), &fields).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(html.contains("already an admin"), "{html}");
        let (status, html) = post_form(app, "/settings/admins", &s, Some(&s.csrf),
            &[("email", "hal@acme.test"), ("password", "short")]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(html.contains("Password must be at least 8 characters."), "{html}");

        // Signing out with the token ends the session.
        let (status, _) = post_form(app, "/signout", &s, Some(&s.csrf), &[]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get_page(app, "/", Some(&s.cookie)).await.0, StatusCode::SEE_OTHER);
    }

    async fn the_admin_api_takes_the_session_cookie_with_its_csrf_token(app) {
        let (_, contact_id) = app.visitor().await.say("hello").await;
        let s = sign_in(app).await;
        let path = format!("/api/v1/contacts/{contact_id}");
        // Reading needs no token.
        let (status, v) = api_with_cookie(app, Method::GET, &path, &s, None, None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        for token in [None, Some("wrong")] {
            let (status, v) = api_with_cookie(app, Method::PATCH, &path, &s, token,
                Some(json!({"name": "Mallory"}))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
            assert_eq!(v["error"]["code"], "csrf", "{v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("X-CSRF-Token"));
        }
        assert_eq!(app.contact(&contact_id).await["name"], Value::Null, "nothing changed");

        let (status, v) = api_with_cookie(app, Method::PATCH, &path, &s, Some(&s.csrf),
            Some(json!({"name": "Ada"}))).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["name"], "Ada");
        let (_, timeline) = app.get(&format!("{path}/timeline")).await;
        let admin = app.store.verify_admin_password(&app.creds.admin_email, &app.creds.admin_password)
            .await.unwrap().unwrap();
        assert_eq!(timeline["items"][0]["kind"], "fields_updated");
        assert_eq!(timeline["items"][0]["actor"], format!("admin:{}", admin.admin_id));

        // Bearer-token calls need no CSRF token and act as `api`.
        let (status, v) = app.patch(&contact_id, json!({"company": "Acme"})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let (_, timeline) = app.get(&format!("{path}/timeline")).await;
        assert_eq!(timeline["items"][0]["actor"], "api");

        // A forged or ended session is 401.
        let forged = Session { cookie: format!("ks_{}_{}", app.creds.org_id, "ab".repeat(32)), csrf: s.csrf.clone() };
        let (status, v) = api_with_cookie(app, Method::GET, &path, &forged, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    }

    async fn an_expired_session_goes_back_to_signin(app) {
        let s = sign_in(app).await;
        assert_eq!(get_page(app, "/", Some(&s.cookie)).await.0, StatusCode::OK);
        // Expiry itself (idle and absolute, with the clock passed in) is tested in
        // kith-store/tests/admins.rs; here the server honours it.
        app.sql("UPDATE admin_sessions SET expires_at = 0").await;
        let (status, headers, _) = get_page(app, "/", Some(&s.cookie)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/signin");
        let (status, _) = api_with_cookie(app, Method::GET, "/api/v1/lists", &s, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // htmx is told to load the sign-in page.
        let resp = client()
            .get(format!("{}/settings", app.base))
            .header("cookie", format!("kith_session={}", s.cookie))
            .header("hx-request", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["hx-redirect"], "/signin");
    }

    async fn the_signin_form_refuses_posts_without_its_token(app) {
        // Login CSRF: another site posting the attacker's credentials to the form.
        for (cookie, field) in [(None, None), (Some("aa"), Some("bb")), (None, Some("aa")), (Some("aa"), None)] {
            let mut fields = vec![("email", app.creds.admin_email.clone()), ("password", app.creds.admin_password.clone())];
            if let Some(f) = field {
                fields.push(("csrf_token", f.to_string()));
            }
            let mut req = client().post(format!("{}/signin", app.base)).form(&fields);
            if let Some(c) = cookie {
                req = req.header("cookie", format!("kith_signin={c}"));
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{cookie:?} {field:?}");
            assert!(set_cookie(resp.headers(), "kith_session").is_none());
            assert!(resp.text().await.unwrap().contains("role=\"alert\""));
        }
    }

    async fn wrong_passwords_say_nothing_about_the_email(app) {
        let known = attempt(app, &app.creds.admin_email, "wrong password").await;
        assert_eq!(known.status(), StatusCode::UNAUTHORIZED);
        assert!(set_cookie(known.headers(), "kith_session").is_none());
        let known = known.text().await.unwrap();
        let unknown = attempt(app, "nobody@acme.test", "wrong password").await.text().await.unwrap();
        let alert = |html: &str| {
            let i = html.find("role=\"alert\"").expect("an alert");
            html[i..i + html[i..].find("</p>").unwrap()].to_string()
        };
        assert_eq!(alert(&known), alert(&unknown));
    }
}

/// The 11th attempt within a minute for one IP and email is refused, whatever the password;
/// another email from the same IP is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_throttled_per_ip_and_email() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = TestApp::spawn_with(backend, Config::default()).await;
        assert_eq!(Limits::default().signin_per_minute, 10);
        for i in 0..10 {
            let resp = attempt(&app, &app.creds.admin_email, "wrong password").await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
        }
        let resp = attempt(&app, &app.creds.admin_email, &app.creds.admin_password).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(set_cookie(resp.headers(), "kith_session").is_none());
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("Too many sign-in attempts. Try again in"),
            "{html}"
        );
        // The same email in other capitals is the same email.
        let upper = app.creds.admin_email.to_uppercase();
        let resp = attempt(&app, &upper, &app.creds.admin_password).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let resp = attempt(&app, "someone.else@acme.test", "wrong password").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        app.stop().await;
    }
}

/// Behind a trusted proxy that says the browser came over HTTPS, cookies are `Secure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_behind_a_trusted_https_proxy() {
    let config = Config {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Config::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let resp = client()
        .get(format!("{}/signin", app.base))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let form_cookie = set_cookie(resp.headers(), "kith_signin").unwrap();
    assert!(form_cookie.ends_with("; Secure"), "{form_cookie}");
    let token = token_in(&resp.text().await.unwrap());
    let resp = client()
        .post(format!("{}/signin", app.base))
        .header("cookie", format!("kith_signin={token}"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "203.0.113.7")
        .form(&[
            ("email", app.creds.admin_email.as_str()),
            ("password", &app.creds.admin_password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let line = set_cookie(resp.headers(), "kith_session").unwrap();
    assert!(
        line.contains("; HttpOnly; SameSite=Lax") && line.ends_with("; Secure"),
        "{line}"
    );
    // The same proxy forwarding plain HTTP: no Secure.
    let resp = attempt(&app, &app.creds.admin_email, &app.creds.admin_password).await;
    assert!(!set_cookie(resp.headers(), "kith_session")
        .unwrap()
        .contains("Secure"));
    app.stop().await;
}

/// Spraying one password over many emails from one IP spends that IP's budget of failed
/// authentications (`KITH_RATE_FAILED_AUTH`): past it every sign-in from the IP is 429, even
/// a right one, until the budget refills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_spraying_from_one_ip_is_throttled() {
    let config = Config {
        limits: Limits {
            failed_auth_per_ip_per_second: 1,
            ..Limits::default()
        },
        ..Config::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let mut refused_after = None;
    for i in 0..20 {
        let resp = attempt(&app, &format!("guess{i}@acme.test"), "Summer2026!").await;
        match resp.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                refused_after = Some(i);
                break;
            }
            other => panic!("attempt {i}: {other}"),
        }
    }
    let refused_after = refused_after.expect("the IP was throttled");
    assert!(
        refused_after >= 3,
        "the burst of 3 failures is allowed: {refused_after}"
    );
    let resp = attempt(&app, &app.creds.admin_email, &app.creds.admin_password).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

// The contacts page's list forms (issue 16) are state changes like any other.
#[tokio::test]
async fn list_forms_need_the_csrf_token() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let s = sign_in(&app).await;
    let fields = [("name", "Sneaky"), ("status", "lead")];
    for csrf in [None, Some("wrong")] {
        let (status, _) = post_form(&app, "/lists", &s, csrf, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{csrf:?}");
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!names(&app.get("/api/v1/lists").await.1).contains(&"Sneaky".to_string()));
    // With the token: saved, and the browser is sent to the new list.
    let (status, _) = post_form(&app, "/lists", &s, Some(&s.csrf), &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(names(&app.get("/api/v1/lists").await.1).contains(&"Sneaky".to_string()));
    app.stop().await;
}
