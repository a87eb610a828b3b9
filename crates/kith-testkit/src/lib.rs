//! Test databases, shared by every crate's tests (one copy, not one per crate).
//!
//! [`TestDb::new`] makes a fresh database for one test: a SQLite file in its own temporary
//! folder, or a new PostgreSQL database. Both are removed when the `TestDb` is dropped, which
//! also happens while a failing test unwinds, so failures leak nothing. PostgreSQL
//! unreachable is a failure naming the fix, never a skip.

use sqlx::Connection;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where PostgreSQL tests create their databases. Trust auth on loopback, as on CI.
pub fn postgres_admin_url() -> String {
    std::env::var("KITH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The admin URL with another database name.
pub fn postgres_url(name: &str) -> String {
    let admin = postgres_admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A temporary folder removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "kith-{what}-{}-{}",
            std::process::id(),
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pg_name: Option<String>,
    dir: Option<TempDir>,
}

static PG_SEQ: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("test");
                let url = format!("sqlite://{}", dir.0.join("kith.db").display());
                TestDb {
                    url,
                    backend,
                    pg_name: None,
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let name = format!(
                    "kith_t_{}_{}_{}",
                    std::process::id(),
                    PG_SEQ.fetch_add(1, Ordering::Relaxed),
                    &ulid::Ulid::new().to_string().to_lowercase()[20..]
                );
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL is not reachable at {admin}: {e}. Start it (on these \
                             machines: pg_ctlcluster --skip-systemctl-redirect \
                             $(ls /etc/postgresql) main start) or point KITH_TEST_POSTGRES_URL \
                             at a server with trust auth."
                        )
                    });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                TestDb {
                    url: postgres_url(&name),
                    backend,
                    pg_name: Some(name),
                    dir: None,
                }
            }
        }
    }

    /// The SQLite file's folder (for tests that put more files beside it).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    /// Runs one SQL statement on the database behind the application's back, for states the
    /// API refuses to create (rows written by an older version, corruption).
    pub async fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&mut c).await.expect("sql");
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&mut c).await.expect("sql");
            }
        }
    }
}

impl TestDb {
    /// The first column of the one row `sql` answers, as an integer (`SELECT count(*) …`):
    /// for tests that check what is left in the database itself, beyond what the API shows.
    pub async fn count(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("sql")
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("sql")
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside async (and during a failing test's unwinding): a short-lived
            // runtime on its own thread does the work.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}
