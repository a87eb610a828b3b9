//! What the crash and backup tests share: the `kith` binary run as a user runs it, a fresh
//! database per test, the widget calls, and SQL read straight from either database.
#![allow(dead_code)]

use kith_testkit::{Backend, TempDir, TestDb};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn kith() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kith"));
    c.env_remove("KITH_DATABASE_URL").env("KITH_LOG", "warn");
    c
}

/// A temporary folder, removed on drop (also when the test fails).
pub fn temp_dir(what: &str) -> TempDir {
    TempDir::new(what)
}

/// A fresh PostgreSQL database for one test, dropped with the returned guard (also when the
/// test fails).
pub async fn pg_db() -> TestDb {
    TestDb::new(Backend::Postgres).await
}

/// `kith org create --json`: the credentials.
pub fn org_create(db: &str) -> Value {
    let out = kith()
        .args(["org", "create", "Acme Inc", "--json", "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A `kith serve` process; killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts `kith serve` on a random port over `db` with every rate limit off.
    pub fn start(db: &str) -> Server {
        Server::start_with(db, &[])
    }

    /// `start`, with more `kith serve` arguments.
    pub fn start_with(db: &str, extra: &[&str]) -> Server {
        let mut child = kith()
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .args(["--rate-visitor", "0", "--rate-sessions-per-ip", "0"])
            .args(["--rate-admin", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut base = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.contains("is listening on") {
                base = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .map(str::to_string);
                break;
            }
        }
        let base = base.unwrap_or_else(|| {
            let _ = child.kill();
            panic!("kith serve did not start on {db}")
        });
        Server { child, base }
    }

    /// SIGKILL: the process gets no chance to flush, close or clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// One widget visitor of one website.
#[derive(Clone)]
pub struct Widget {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
    pub token: String,
}

impl Widget {
    pub async fn session(http: &reqwest::Client, base: &str, key: &str) -> reqwest::Result<Widget> {
        let v: Value = http
            .post(format!("{base}/api/widget/v1/session"))
            .header("X-Kith-Website", key)
            .json(&json!({}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Widget {
            http: http.clone(),
            base: base.to_string(),
            key: key.to_string(),
            token: v["visitor_token"].as_str().unwrap().to_string(),
        })
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}/api/widget/v1{path}", self.base))
            .header("X-Kith-Website", &self.key)
            .header("X-Kith-Visitor", &self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await?))
    }
}

/// An admin API call with the bearer token; answers status and body.
pub async fn admin_get(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
) -> (u16, Value) {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Every contact of a contacts query, walking `next_cursor`; answers the ids and the total
/// the first page reported.
pub async fn all_pages(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
) -> (Vec<String>, i64) {
    let mut ids = vec![];
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let mut path = format!("/api/v1/contacts?limit=200&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = admin_get(http, base, token, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        total.get_or_insert(page["total"].as_i64().unwrap());
        for c in page["items"].as_array().unwrap() {
            ids.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    (ids, total.unwrap())
}

/// A direct connection to the database under test, for reading back what the API said.
pub enum Sql {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

macro_rules! on_both {
    ($self:expr, |$c:ident| $body:expr) => {
        match $self {
            Sql::Sqlite($c) => $body,
            Sql::Postgres($c) => $body,
        }
    };
}

impl Sql {
    pub async fn connect(url: &str) -> Sql {
        if url.starts_with("sqlite:") {
            Sql::Sqlite(SqliteConnection::connect(url).await.unwrap())
        } else {
            Sql::Postgres(PgConnection::connect(url).await.unwrap())
        }
    }

    /// One integer (`$1` bound to `arg`).
    pub async fn int(&mut self, sql: &str, arg: &str) -> i64 {
        on_both!(self, |c| sqlx::query_scalar::<_, i64>(sql)
            .bind(arg)
            .fetch_one(&mut *c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")))
    }

    /// Rows of text columns (`$1` bound to `arg`); SQL NULL reads as `None`.
    pub async fn rows(&mut self, sql: &str, arg: &str) -> Vec<Vec<Option<String>>> {
        use sqlx::Row;
        on_both!(self, |c| sqlx::query(sql)
            .bind(arg)
            .fetch_all(&mut *c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| (0..r.len())
                .map(|i| r.get::<Option<String>, _>(i))
                .collect())
            .collect())
    }

    pub async fn close(self) {
        let _ = on_both!(self, |c| c.close().await);
    }
}

/// `PRAGMA integrity_check` of a SQLite file, on a connection of its own.
pub async fn sqlite_integrity(path: &Path) -> Vec<String> {
    let mut c = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut c)
        .await
        .unwrap();
    let fk: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert!(fk.is_empty(), "foreign key violations in {fk:?}");
    c.close().await.unwrap();
    verdict
}
