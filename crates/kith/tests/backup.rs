//! `kith backup` while a server is serving and writing, and a restore that serves the copy:
//! contacts, messages and lists are there, the copy is consistent (stats equal its messages)
//! and, on SQLite, passes the integrity check. PostgreSQL: `pg_dump` is run, and without it
//! the command fails printing the commands to use.

mod support;

use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{admin_get, all_pages, http, org_create, Server, Sql, Widget};

/// What was written before the backup started: all of it must be in the copy.
struct Written {
    org: String,
    token: String,
    list_id: String,
    messages: Vec<String>,
    conversation: String,
}

/// Writes contacts, messages and a list through the API.
async fn write_some(base: &str, creds: &Value) -> Written {
    let http = http();
    let key = creds["website_key"].as_str().unwrap();
    let token = creds["api_token"].as_str().unwrap().to_string();
    let mut messages = vec![];
    let mut conversation = String::new();
    for i in 0..12 {
        let w = Widget::session(&http, base, key).await.unwrap();
        let (s, _) = w
            .post(
                "/identify",
                json!({"email": format!("person{i}@backup.test"), "name": format!("Person {i}")}),
            )
            .await
            .unwrap();
        assert_eq!(s, 200);
        for n in 0..3 {
            let (s, v) = w
                .post("/messages", json!({"body": format!("hello {i}.{n}")}))
                .await
                .unwrap();
            assert_eq!(s, 201, "{v}");
            messages.push(v["message_id"].as_str().unwrap().to_string());
            conversation = v["conversation_id"].as_str().unwrap().to_string();
        }
    }
    let r = http
        .post(format!("{base}/api/v1/lists"))
        .bearer_auth(&token)
        .json(&json!({"name": "People", "filter": {"q": "person"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let list: Value = r.json().await.unwrap();
    Written {
        org: creds["org_id"].as_str().unwrap().to_string(),
        token,
        list_id: list["id"].as_str().unwrap().to_string(),
        messages,
        conversation,
    }
}

/// Keeps writing messages from new visitors until `stop`; answers how many were acknowledged.
fn keep_writing(
    base: String,
    key: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let http = http();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let w = Widget::session(&http, &base, &key).await.unwrap();
            let (s, _) = w
                .post("/messages", json!({"body": "meanwhile"}))
                .await
                .unwrap();
            assert_eq!(s, 201);
            n += 1;
        }
        n
    })
}

fn backup(db: &str, out: &std::path::Path, path_env: Option<&str>) -> std::process::Output {
    let mut c = support::kith();
    c.args(["backup", "--db", db, "--out"]).arg(out);
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    c.output().unwrap()
}

/// The copy, served by a server of its own, holds everything written before the backup, and
/// is consistent in itself.
async fn check_restored(url: &str, w: &Written) {
    let server = Server::start(url);
    let http = http();
    let (ids, total) = all_pages(&http, &server.base, &w.token, "list=all").await;
    let mut sql = Sql::connect(url).await;
    let in_sql = sql
        .int("SELECT count(*) FROM contacts WHERE org_id = $1", &w.org)
        .await;
    assert!(total >= 12, "{total} contacts");
    assert_eq!(total, in_sql);
    assert_eq!(ids.len() as i64, total);
    // The saved list and its count.
    let (status, list) = admin_get(
        &http,
        &server.base,
        &w.token,
        &format!("/api/v1/lists/{}", w.list_id),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["name"], "People");
    assert_eq!(list["count"], 12, "{list}");
    // Every message acknowledged before the backup.
    let stored: HashSet<String> = sql
        .rows("SELECT id FROM messages WHERE org_id = $1", &w.org)
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    for m in &w.messages {
        assert!(stored.contains(m), "message {m} missing from the copy");
    }
    let (status, conv) = admin_get(
        &http,
        &server.base,
        &w.token,
        &format!("/api/v1/conversations/{}", w.conversation),
    )
    .await;
    assert_eq!(status, 200, "{conv}");
    // One snapshot: the stats agree with the messages the copy holds.
    let sum = sql
        .int(
            "SELECT CAST(coalesce(sum(message_count), 0) AS BIGINT) FROM contacts \
             WHERE org_id = $1",
            &w.org,
        )
        .await;
    assert_eq!(sum as usize, stored.len());
    sql.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_while_serving_then_serve_the_copy_sqlite() {
    let dir = support::temp_dir("backup");
    let url = format!("sqlite://{}", dir.join("kith.db").display());
    let creds = org_create(&url);
    let server = Server::start(&url);
    let written = write_some(&server.base, &creds).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = keep_writing(
        server.base.clone(),
        creds["website_key"].as_str().unwrap().to_string(),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = dir.join("copies/kith-backup.db");
    let done = backup(&url, &out, None);
    assert!(
        done.status.success(),
        "backup beside a serving process: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    let printed = String::from_utf8_lossy(&done.stdout);
    assert!(printed.contains("Backed up"), "{printed}");
    stop.store(true, Ordering::Relaxed);
    assert!(
        writer.await.unwrap() > 0,
        "writes went on during the backup"
    );

    // Never overwrites.
    let again = backup(&url, &out, None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // Nothing but the copy was left beside it.
    let files: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, vec![std::ffi::OsString::from("kith-backup.db")]);

    assert_eq!(support::sqlite_integrity(&out).await, ["ok"]);
    drop(server);
    check_restored(&format!("sqlite://{}", out.display()), &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_while_serving_then_restore_postgres() {
    let db = support::pg_db().await;
    let url = db.url.clone();
    let dir = support::temp_dir("backup-pg");
    let creds = org_create(&url);
    let server = Server::start(&url);
    let written = write_some(&server.base, &creds).await;

    // Without pg_dump on the PATH: a clear failure naming the commands.
    let out = dir.join("kith.dump");
    let refused = backup(&url, &out, Some("/nonexistent"));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("pg_dump --format=custom") && err.contains("pg_restore"),
        "{err}"
    );
    assert!(!out.exists());

    let stop = Arc::new(AtomicBool::new(false));
    let writer = keep_writing(
        server.base.clone(),
        creds["website_key"].as_str().unwrap().to_string(),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let done = backup(&url, &out, None);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    stop.store(true, Ordering::Relaxed);
    assert!(writer.await.unwrap() > 0);
    drop(server);

    // Restore into a new database, as the printed guidance says, and serve it.
    let restored = support::pg_db().await;
    let restored_url = restored.url.clone();
    let r = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&restored_url)
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    check_restored(&restored_url, &written).await;
}
