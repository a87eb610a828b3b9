//! CSV export through the admin API (equal to paging the list, errors in the spec's shape) and
//! the panel's CSV upload (CSRF, summary, rejected rows, the admin as the timeline's actor),
//! on both databases.

#[macro_use]
mod common;

use common::TestApp;
use kith_core::timeline::Actor;
use kith_store::ImportOptions;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kith-store/tests/fixtures/import")
        .join(name)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie(resp: &reqwest::Response, name: &str) -> String {
    let line = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .expect("cookie")
        .to_string();
    line.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

fn token_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let i = html.find(marker).expect("a CSRF token in the page") + marker.len();
    html[i..i + html[i..].find('"').unwrap()].to_string()
}

/// Signs in as the organization's admin: the session cookie and the CSRF token.
async fn sign_in(app: &TestApp) -> (String, String) {
    let form = client()
        .get(format!("{}/signin", app.base))
        .send()
        .await
        .unwrap();
    let signin_cookie = cookie(&form, "kith_signin");
    let token = token_in(&form.text().await.unwrap());
    let resp = client()
        .post(format!("{}/signin", app.base))
        .header("cookie", format!("kith_signin={signin_cookie}"))
        .form(&[
            ("email", app.creds.admin_email.as_str()),
            ("password", app.creds.admin_password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/");
    let session = cookie(&resp, "kith_session");
    let page = client()
        .get(format!("{}/contacts/import", app.base))
        .header("cookie", format!("kith_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<label for=\"import-file\">CSV file</label>"),
        "{html}"
    );
    (session.clone(), token_in(&html))
}

/// A multipart upload of `file` (and `csrf_token` when given) to the panel.
async fn upload(
    app: &TestApp,
    session: &str,
    csrf: Option<&str>,
    file: &[u8],
) -> (StatusCode, String) {
    let boundary = "kith-test-boundary-7d1c";
    let mut body = Vec::new();
    if let Some(t) = csrf {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{t}\r\n").bytes());
    }
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n").bytes());
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let resp = client()
        .post(format!("{}/contacts/import", app.base))
        .header("cookie", format!("kith_session={session}"))
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

async fn export(app: &TestApp, query: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = app
        .http
        .get(format!("{}/api/v1/contacts/export?{query}", app.base))
        .bearer_auth(&app.creds.api_token)
        .send()
        .await
        .unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    (s, h, resp.text().await.unwrap())
}

both_backends! {
    async fn the_export_route_streams_what_paging_the_api_shows(app) {
        let dir = kith_testkit::TempDir::new("export-api");
        let file = dir.join("in.csv");
        let mut text = String::from("email,name,tags,plan\n");
        for i in 0..230 {
            text.push_str(&format!("p{i}@example.com,Person {},{},{}\n", 1000 - i, if i % 3 == 0 { "trial" } else { "paid" }, ["free", "pro"][i % 2]));
        }
        std::fs::write(&file, text).unwrap();
        let opts = ImportOptions { actor: Actor::System, errors_path: dir.join("e.csv"), start_line: 0, stop: None };
        let s = app.store.org(&app.creds.org_id).import_csv(&file, &opts, &mut |_| {}).await.unwrap();
        assert_eq!(s.created, 230);

        for query in ["tag=trial&sort=name", "q=person%209&sort=-created_at", "list=leads"] {
            let (status, headers, body) = export(app, query).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(headers[CONTENT_TYPE], "text/csv; charset=utf-8");
            assert!(headers[CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
            let rows: Vec<Vec<String>> = csv::ReaderBuilder::new().from_reader(body.as_bytes()).records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
            let mut paged = Vec::new();
            let mut cursor = String::new();
            loop {
                let (s, v) = app.get(&format!("/api/v1/contacts?{query}&limit=50{cursor}")).await;
                assert_eq!(s, StatusCode::OK, "{v}");
                paged.extend(v["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
                match v["next_cursor"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => break,
                }
            }
            let ids: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
            assert_eq!(ids, paged, "{query}");
            assert!(!ids.is_empty());
        }

        let (status, _, body) = export(app, "sort=shoe_size").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["field"], "sort");
        let (status, _, body) = export(app, "list=nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let resp = app.http.get(format!("{}/api/v1/contacts/export", app.base)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    async fn the_panel_upload_imports_and_lists_the_rejected_rows(app) {
        let (session, csrf) = sign_in(app).await;
        // Without the form's token nothing is imported.
        let file = std::fs::read(fixture("intercom.csv")).unwrap();
        let (status, _) = upload(app, &session, None, &file).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(app.all_contacts().await.len(), 0);

        let (status, html) = upload(app, &session, Some(&csrf), &file).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Imported 7 rows: 3 created, 2 updated, 0 unchanged, 2 rejected."), "{html}");
        assert!(html.contains("line 7: phone"), "{html}");
        assert!(html.contains("line 8: email"), "{html}");
        let contacts = app.all_contacts().await;
        assert_eq!(contacts.len(), 3);
        let ada = contacts.iter().find(|c| c["user_id"] == "u-1").unwrap();
        let (_, tl) = app.get(&format!("/api/v1/contacts/{}/timeline", ada["id"].as_str().unwrap())).await;
        assert!(tl["items"][0]["actor"].as_str().unwrap().starts_with("admin:"), "{tl}");

        // The rejected rows' cells are shown escaped.
        let (status, html) = upload(app, &session, Some(&csrf), b"email,name\n<img src=x onerror=alert(1)>,<b>Eve</b>\n").await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("&#60;img src=x") && !html.contains("<img src=x") && !html.contains("<b>Eve"), "{html}");

        // A file that is not CSV with a header is refused with the reason.
        let (status, html) = upload(app, &session, Some(&csrf), b"ada@example.com,Ada\n").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(html.contains("header"), "{html}");

        // The contacts page links to the export of what it shows; the session cookie serves it.
        let page = client().get(format!("{}/?tags=vip", app.base)).header("cookie", format!("kith_session={session}")).send().await.unwrap().text().await.unwrap();
        let marker = "href=\"/api/v1/contacts/export?";
        let i = page.find(marker).expect("an Export CSV link") + "href=\"".len();
        let href = page[i..i + page[i..].find('"').unwrap()].replace("&#38;", "&");
        let resp = client().get(format!("{}{href}", app.base)).header("cookie", format!("kith_session={session}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.text().await.unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 2, "the header and Ada, the one vip ({href}): {body}");
        assert!(lines[1].contains("u-1"));
    }
}
