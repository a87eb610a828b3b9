//! Test fixtures: a real Kith server on a random port over a fresh database (a temporary
//! SQLite file, or a new PostgreSQL database dropped afterwards), with helpers named after
//! what users do, so tests read as user stories.
#![allow(dead_code)]

use kith_server::realtime::Bus;
use kith_server::state::AppState;
use kith_server::Config;
use kith_store::{Credentials, NewOrg, Store};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[allow(unused_imports)]
pub use kith_testkit::{postgres_admin_url, Backend, TestDb};

/// `TEST_LOG=1` shows the server's logs (`TEST_LOG=debug` or any filter for more).
fn init_test_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(v) = std::env::var("TEST_LOG") {
            let filter = if v == "1" {
                "info,sqlx=warn".to_string()
            } else {
                v
            };
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// A running server and an organization in it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Store,
    /// The server's state, for tests that look inside (limiter sizes).
    pub state: AppState,
    pub creds: Credentials,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    db: Option<TestDb>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, Config::default()).await
    }

    pub async fn spawn_with(backend: Backend, config: Config) -> TestApp {
        init_test_logs();
        kith_server::metrics::handle();
        let db = TestDb::new(backend).await;
        let store = Store::open_with(&db.url, 8, kith_store::Access::Serve)
            .await
            .expect("open store");
        let creds = store
            .create_org(&NewOrg {
                name: "Acme".into(),
                admin_email: "admin@acme.test".into(),
                website_name: "Acme shop".into(),
            })
            .await
            .expect("create org");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), Bus::new(), config);
        let serving = state.clone();
        let server = tokio::spawn(async move {
            kith_server::serve(listener, serving, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        TestApp {
            base,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            store,
            state,
            creds,
            backend,
            shutdown: Some(tx),
            server: Some(server),
            db: Some(db),
        }
    }

    /// Runs one SQL statement on the test database behind the API's back, for states the API
    /// refuses to create (rows written by an older version, corruption).
    /// The test database's URL.
    #[allow(dead_code)]
    pub fn db_url(&self) -> &str {
        &self.db.as_ref().expect("database").url
    }

    pub async fn sql(&self, sql: &str) {
        self.db.as_ref().expect("database").execute(sql).await;
    }

    /// `SELECT count(*) …` on the test database behind the API's back.
    #[allow(dead_code)]
    pub async fn sql_count(&self, sql: &str) -> i64 {
        self.db.as_ref().expect("database").count(sql).await
    }

    /// The organization's first website, as the widget sees it.
    pub fn site(&self) -> Site {
        Site {
            base: self.base.clone(),
            http: self.http.clone(),
            key: self.creds.website_key.clone(),
            secret: self.creds.identity_secret.clone(),
        }
    }

    /// A new browser on the first website, with a session.
    pub async fn visitor(&self) -> Visitor {
        self.site().visitor().await
    }

    pub fn user_hash(&self, value: &str) -> String {
        kith_core::verify::user_hash(&self.creds.identity_secret, value)
    }

    /// An admin API call with the organization's token.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.admin_as(&self.creds.api_token.clone(), method, path, body)
            .await
    }

    pub async fn admin_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    /// A GET request to build on (headers, credentials) before sending.
    #[allow(dead_code)]
    pub fn raw_get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(Method::GET, path, None).await
    }

    pub async fn contact(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("/api/v1/contacts/{id}")).await;
        assert_eq!(s, StatusCode::OK, "GET contact {id}: {v}");
        v
    }

    pub async fn patch(&self, id: &str, body: Value) -> (StatusCode, Value) {
        self.admin(Method::PATCH, &format!("/api/v1/contacts/{id}"), Some(body))
            .await
    }

    pub async fn timeline_kinds(&self, id: &str) -> Vec<String> {
        let (s, v) = self
            .get(&format!("/api/v1/contacts/{id}/timeline?limit=200"))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }

    /// All contacts of the organization (walks every page).
    pub async fn all_contacts(&self) -> Vec<Value> {
        let mut out = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/contacts?limit=200&cursor={c}"),
                None => "/api/v1/contacts?limit=200".into(),
            };
            let (s, v) = self.get(&path).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        out
    }

    /// The built-in lists' counts agree with the contacts actually there (they are kept by
    /// triggers, so every path that creates, merges or promotes must keep them right).
    pub async fn assert_builtin_counts(&self) {
        let contacts = self.all_contacts().await;
        let customers = contacts
            .iter()
            .filter(|c| c["status"] == "customer")
            .count() as i64;
        let (s, lists) = self.get("/api/v1/lists").await;
        assert_eq!(s, StatusCode::OK, "{lists}");
        let count = |id: &str| {
            lists["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["id"] == id)
                .unwrap()["count"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(count("all"), contacts.len() as i64, "all");
        assert_eq!(count("customers"), customers, "customers");
        assert_eq!(count("leads"), contacts.len() as i64 - customers, "leads");
    }

    /// A website with identity verification off.
    pub async fn unverified_site(&self) -> Site {
        let (s, w) = self
            .admin(
                Method::POST,
                "/api/v1/websites",
                Some(json!({"name": "Blog", "identity_verification": false})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{w}");
        Site {
            base: self.base.clone(),
            http: self.http.clone(),
            key: w["website_key"].as_str().unwrap().into(),
            secret: w["identity_secret"].as_str().unwrap().into(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
        self.store.close().await;
        drop(self.db.take());
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("non-JSON answer ({status}): {text}"));
    (status, value)
}

/// A website as the widget knows it.
#[derive(Clone)]
pub struct Site {
    pub base: String,
    pub http: reqwest::Client,
    pub key: String,
    pub secret: String,
}

impl Site {
    pub async fn visitor(&self) -> Visitor {
        let (s, v) = send(
            self.http
                .post(format!("{}/api/widget/v1/session", self.base))
                .header("X-Kith-Website", &self.key)
                .json(&json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "session: {v}");
        Visitor {
            site: self.clone(),
            token: v["visitor_token"].as_str().unwrap().to_string(),
        }
    }

    pub fn user_hash(&self, value: &str) -> String {
        kith_core::verify::user_hash(&self.secret, value)
    }
}

/// One browser: a visitor token on one website.
#[derive(Clone)]
pub struct Visitor {
    pub site: Site,
    pub token: String,
}

impl Visitor {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .site
            .http
            .request(method, format!("{}/api/widget/v1{path}", self.site.base))
            .header("X-Kith-Website", &self.site.key)
            .header("X-Kith-Visitor", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    pub async fn identify(&self, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/identify", Some(body)).await
    }

    /// Identify with a valid hash for `user_id`, plus any other fields.
    pub async fn identify_verified(&self, user_id: &str, mut extra: Value) -> Value {
        extra["user_id"] = json!(user_id);
        extra["user_hash"] = json!(self.site.user_hash(user_id));
        let (s, v) = self.identify(extra).await;
        assert_eq!(s, StatusCode::OK, "identify: {v}");
        v
    }

    /// Sends a message in a new conversation; answers (conversation_id, contact_id).
    pub async fn say(&self, body: &str) -> (String, String) {
        let (s, v) = self
            .call(Method::POST, "/messages", Some(json!({"body": body})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "message: {v}");
        (
            v["conversation_id"].as_str().unwrap().into(),
            v["contact_id"].as_str().unwrap().into(),
        )
    }

    /// Sends a message into an existing conversation.
    pub async fn say_in(&self, conversation_id: &str, body: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/messages",
            Some(json!({"body": body, "conversation_id": conversation_id})),
        )
        .await
    }

    pub async fn conversation_ids(&self) -> Vec<String> {
        let (s, v) = self.call(Method::GET, "/conversations", None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let mut ids: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

/// Expands each test into `name::sqlite` and `name::postgres`, so a failure names the backend.
/// Test files that use it declare `#[macro_use] mod common;` (textual scope, no export).
#[allow(unused_macros)]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: &$crate::common::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await;
                    run(&app).await;
                    app.stop().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await;
                    run(&app).await;
                    app.stop().await;
                }
            }
        )*
    };
}
