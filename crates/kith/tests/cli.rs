//! The `kith` binary as a user runs it: `org create --json` and `serve` on an empty
//! database, on SQLite and PostgreSQL.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;
use support::{kith, pg_db};

/// A temporary folder, removed on drop (also when the test fails).
fn temp_dir() -> kith_testkit::TempDir {
    support::temp_dir("cli")
}

/// `kith org create --json`, checked as the spec says: exactly one line, every credential.
fn org_create(db: &str) -> Value {
    let out = kith()
        .args(["org", "create", "Acme Inc", "--json", "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "exactly one line: {stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    for key in [
        "org_id",
        "api_token",
        "website_key",
        "identity_secret",
        "admin_email",
        "admin_password",
    ] {
        assert!(
            v[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key} missing in {v}"
        );
    }
    v
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kith serve` on a random port; answers the server, its base URL and what it printed.
fn serve(db: &str, cwd: &std::path::Path) -> (Server, String, Vec<String>) {
    serve_with(db, cwd, &[])
}

fn serve_with(db: &str, cwd: &std::path::Path, extra: &[&str]) -> (Server, String, Vec<String>) {
    let mut child = kith()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .args(if db.is_empty() {
            vec![]
        } else {
            vec!["--db", db]
        })
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = vec![];
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("is listening on");
        lines.push(line);
        if done {
            break;
        }
    }
    let last = lines.last().expect("serve printed nothing");
    let base = last
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_string();
    (server, base, lines)
}

async fn check_server(base: &str, lines: &[String]) {
    let text = lines.join("\n");
    assert!(text.contains("created an organization"), "{text}");
    let token = lines
        .iter()
        .find(|l| l.contains("API token:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    sign_in_to_the_panel(base, lines).await;
    let r = http
        .get(format!("{base}/api/v1/websites"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn org_create_prints_one_json_line_sqlite() {
    let dir = temp_dir();
    let db = format!("sqlite://{}/k.db", dir.display());
    let a = org_create(&db);
    let b = org_create(&db);
    assert_ne!(a["org_id"], b["org_id"]);
}

#[tokio::test]
async fn org_create_prints_one_json_line_postgres() {
    let pg = pg_db().await;
    let url = pg.url.clone();
    org_create(&url);
}

#[tokio::test]
async fn serve_on_an_empty_default_database_creates_the_first_organization() {
    let dir = temp_dir();
    let (server, base, lines) = serve("", &dir);
    check_server(&base, &lines).await;
    drop(server);
    assert!(
        dir.join("kith-data/kith.db").exists(),
        "default database under ./kith-data/"
    );
    // A second start finds the organization and creates none.
    let (server, base, lines) = serve("", &dir);
    assert!(!lines.join("\n").contains("created an organization"));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    drop(server);
}

#[tokio::test]
async fn serve_on_postgres() {
    let pg = pg_db().await;
    let url = pg.url.clone();
    let dir = temp_dir();
    let (server, base, lines) = serve(&url, &dir);
    check_server(&base, &lines).await;
    drop(server);
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let out = kith()
        .args(["org", "create", "X", "--json", "--db", "mysql://nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported database URL"), "{err}");
}

/// `GET url` with the API token: the JSON answer.
async fn admin_get(http: &reqwest::Client, token: &str, url: String) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The widget's calls, as a page makes them, to the server at `base`.
#[derive(Clone)]
struct Widget {
    http: reqwest::Client,
    key: String,
}

impl Widget {
    /// A new visitor: its token.
    async fn session(&self, base: &str) -> String {
        let s = self
            .post(base, None, "session", serde_json::json!({}), 200)
            .await;
        s["visitor_token"].as_str().unwrap().to_string()
    }

    /// `POST /api/widget/v1/{path}` as visitor `vt`, which must answer `expect`: the answer.
    async fn post(
        &self,
        base: &str,
        vt: Option<&str>,
        path: &str,
        body: Value,
        expect: u16,
    ) -> Value {
        let mut r = self
            .http
            .post(format!("{base}/api/widget/v1/{path}"))
            .header("X-Kith-Website", &self.key);
        if let Some(vt) = vt {
            r = r.header("X-Kith-Visitor", vt);
        }
        let r = r.json(&body).send().await.unwrap();
        let status = r.status();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(status.as_u16(), expect, "{path}: {answer}");
        answer
    }
}

/// Several server processes on one PostgreSQL database: the identity rules hold across them,
/// what one writes is in the other's next list answer, and realtime events reach subscribers
/// of the other process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgres_database() {
    use serde_json::json;
    let pg = pg_db().await;
    let url = pg.url.clone();
    let creds = org_create(&url);
    let dir = temp_dir();
    let no_limits = [
        "--rate-visitor",
        "0",
        "--rate-sessions-per-ip",
        "0",
        "--rate-admin",
        "0",
    ];
    let (a, base_a, _) = serve_with(&url, &dir, &no_limits);
    let (b, base_b, _) = serve_with(&url, &dir, &no_limits);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let key = creds["website_key"].as_str().unwrap().to_string();
    let widget = Widget {
        http: http.clone(),
        key: key.clone(),
    };
    let secret = creds["identity_secret"].as_str().unwrap().to_string();
    let token = creds["api_token"].as_str().unwrap().to_string();

    // 200 new visitors per identity, alternating between the processes, all at once.
    const N: usize = 200;
    for identity in [
        json!({"email": "race@example.com"}),
        json!({"user_id": "racer", "user_hash": kith_core::verify::user_hash(&secret, "racer")}),
    ] {
        let mut tasks = vec![];
        for i in 0..N {
            let base = if i % 2 == 0 {
                base_a.clone()
            } else {
                base_b.clone()
            };
            let (widget, identity) = (widget.clone(), identity.clone());
            tasks.push(tokio::spawn(async move {
                let vt = widget.session(&base).await;
                widget
                    .post(&base, Some(&vt), "identify", identity, 200)
                    .await;
                let v = widget
                    .post(&base, Some(&vt), "messages", json!({"body": "first!"}), 201)
                    .await;
                v["contact_id"].as_str().unwrap().to_string()
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap());
        }
        assert_eq!(ids.len(), 1, "one contact for {identity}");
        let id = ids.into_iter().next().unwrap();
        let c = admin_get(&http, &token, format!("{base_b}/api/v1/contacts/{id}")).await;
        assert_eq!(c["message_count"], N, "{c}");
        assert_eq!(c["conversation_count"], N, "{c}");
    }
    let list = admin_get(&http, &token, format!("{base_a}/api/v1/contacts")).await;
    assert_eq!(list["total"], 2);

    // Lists are exact at commit across processes: what is written through one process is in
    // the other's very next list answer (search, tag filter, count), with no wait between.
    let total_through = |base: &str, query: &str| {
        admin_get(&http, &token, format!("{base}/api/v1/contacts?{query}"))
    };
    let mut fresh = vec![];
    for i in 0..20 {
        let (writer, reader) = if i % 2 == 0 {
            (&base_a, &base_b)
        } else {
            (&base_b, &base_a)
        };
        let vt = widget.session(writer).await;
        let email = format!("freshness{i}@example.com");
        widget
            .post(
                writer,
                Some(&vt),
                "identify",
                json!({ "email": email }),
                200,
            )
            .await;
        let m = widget
            .post(
                writer,
                Some(&vt),
                "messages",
                json!({"body": "am I listed?"}),
                201,
            )
            .await;
        let id = m["contact_id"].as_str().unwrap().to_string();
        let found = total_through(reader, &format!("q={email}")).await;
        assert_eq!(
            found["total"], 1,
            "written through {writer}, listed through {reader}: {found}"
        );
        assert_eq!(found["items"][0]["id"], id.as_str());
        let r = http
            .patch(format!("{writer}/api/v1/contacts/{id}"))
            .bearer_auth(&token)
            .json(&json!({"tags": ["fresh-wave"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        fresh.push(id);
        let tagged = total_through(reader, "tag=fresh-wave").await;
        assert_eq!(tagged["total"], fresh.len(), "{tagged}");
    }
    let gone = fresh.pop().unwrap();
    let r = http
        .delete(format!("{base_a}/api/v1/contacts/{gone}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        total_through(&base_b, "tag=fresh-wave").await["total"],
        fresh.len()
    );
    assert_eq!(total_through(&base_b, "").await["total"], 2 + fresh.len());

    // A visitor streams events from process B; an agent replies through process A.
    let vt = widget.session(&base_b).await;
    let m = widget
        .post(&base_b, Some(&vt), "messages", json!({"body": "help"}), 201)
        .await;
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    let resp = http
        .get(format!(
            "{base_b}/api/widget/v1/events?website_key={key}&visitor_token={vt}"
        ))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(10), async {
        while !buf.contains("event: ready") {
            buf.push_str(&String::from_utf8_lossy(
                &stream.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await
    .expect("ready");
    let r = http
        .post(format!("{base_a}/api/v1/conversations/{conv}/messages"))
        .bearer_auth(&token)
        .json(&json!({"body": "Reply from process A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !buf.contains("Reply from process A") {
            buf.push_str(&String::from_utf8_lossy(
                &stream.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await
    .expect("the reply posted through A reaches the subscriber on B");

    drop((a, b));
}

/// The admin sign-in `kith serve` printed works in the panel at once.
async fn sign_in_to_the_panel(base: &str, lines: &[String]) {
    let words: Vec<&str> = lines
        .iter()
        .find(|l| l.contains("Admin sign-in:"))
        .expect("the admin sign-in is printed")
        .split_whitespace()
        .collect();
    let (email, password) = (words[2], words[4]);
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("Admin panel: {base}/"))));
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let form = http.get(format!("{base}/signin")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let html = form.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the form's token") + marker.len();
    let token = &html[start..start + html[start..].find('"').unwrap()];
    let r = http
        .post(format!("{base}/signin"))
        .header("cookie", cookie)
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signing in with {email}");
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("kith_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = http
        .get(format!("{base}/"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(email));
}

/// `kith website rotate-secret --json`: one line with the new secret; the old one is kept as
/// the previous secret (it still verifies until retired) and the rotation is in the audit log
/// by `cli`; an unknown website is a clear error.
async fn rotate_secret(db: &str) {
    let creds = org_create(db);
    let org = creds["org_id"].as_str().unwrap().to_string();
    let old = creds["identity_secret"].as_str().unwrap().to_string();
    let store = kith_store::Store::open_with(db, 1, kith_store::Access::Shared)
        .await
        .unwrap();
    let org_id = kith_core::OrgId::new(&org);
    let website = store.org(&org_id).websites().await.unwrap()[0].id.clone();
    let out = kith()
        .args(["website", "rotate-secret", "--website", website.as_str()])
        .args(["--org", &org, "--json", "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "exactly one line: {stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let new = v["identity_secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(v["website_id"], website.as_str());
    assert_eq!(v["previous_secret_active"], true);
    let w = store.org(&org_id).website(&website).await.unwrap();
    assert_eq!(w.identity_secret, new);
    assert_eq!(w.previous_identity_secret.as_deref(), Some(old.as_str()));
    let log = store.org(&org_id).audit_log(None, 10).await.unwrap();
    assert_eq!(log.items.len(), 1);
    assert_eq!(log.items[0].actor, "cli");
    assert_eq!(log.items[0].action, "website.identity_secret_rotated");
    store.close().await;

    let out = kith()
        .args([
            "website",
            "rotate-secret",
            "--website",
            "nope",
            "--org",
            &org,
            "--db",
            db,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no website nope"));
}

#[tokio::test]
async fn website_rotate_secret_sqlite() {
    let dir = temp_dir();
    rotate_secret(&format!("sqlite://{}/k.db", dir.display())).await;
}

#[tokio::test]
async fn website_rotate_secret_postgres() {
    let pg = pg_db().await;
    rotate_secret(&pg.url.clone()).await;
}
