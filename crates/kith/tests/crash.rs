//! Crash safety: many widget clients write messages (identifying, some with shared emails so
//! merges happen) while the server is killed with SIGKILL — on SQLite in the middle of group
//! commits, many writers' savepoints in one open transaction (checked on /metrics before the
//! kill); after a restart on the same
//! database every acknowledged message is there, stats equal the messages, no person became
//! two contacts, SQLite's integrity check passes, and the lists (on SQLite: the in-memory
//! contact index rebuilt at start) answer what SQL answers. On SQLite and PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{all_pages, http, org_create, Server, Sql, Widget};

const CLIENTS: usize = 64;
/// The server is killed once this many messages were acknowledged (or after `KILL_AFTER`).
const ACKED_BEFORE_KILL: usize = 1_500;
const KILL_AFTER: Duration = Duration::from_secs(8);

/// How a client identifies: which decides what its contact must hold afterwards.
#[derive(Clone, Debug, PartialEq)]
enum Role {
    /// An unverified email, given before the first message.
    EmailFirst(String),
    /// A verified user id, before the first message.
    UserId(String),
    /// Anonymous first; after a few messages an unverified email (its contact merges into
    /// the email's holder, or takes the email).
    EmailLater(String),
    Anonymous,
}

#[derive(Default)]
struct Outcome {
    /// (message id, conversation id, body) of every 201.
    acked: Vec<(String, String, String)>,
    /// The contact id of the visitor's last 201.
    last_contact: Option<String>,
    /// The late identify was answered 200 before that last 201.
    identified_before_last: bool,
}

fn role(i: usize, secret: &str) -> (Role, Option<Value>) {
    let email = format!("shared{}@crash.test", i % 3);
    match i % 4 {
        0 => (
            Role::EmailFirst(email.clone()),
            Some(json!({"email": email})),
        ),
        1 => {
            let uid = format!("user-{}", i % 5);
            let hash = kith_core::verify::user_hash(secret, &uid);
            (
                Role::UserId(uid.clone()),
                Some(json!({"user_id": uid, "user_hash": hash})),
            )
        }
        2 => (Role::EmailLater(email), None),
        _ => (Role::Anonymous, None),
    }
}

/// One client: writes until the server goes away. Never panics on a transport error: those
/// are expected once the server is killed.
async fn client(
    i: usize,
    base: String,
    key: String,
    secret: String,
    acked_total: Arc<AtomicUsize>,
) -> (Role, Outcome) {
    let http = http();
    let (role, first_identify) = role(i, &secret);
    let mut out = Outcome::default();
    let Ok(w) = Widget::session(&http, &base, &key).await else {
        return (role, out);
    };
    if let Some(body) = first_identify {
        match w.post("/identify", body).await {
            Ok((200, _)) => {}
            Ok((s, v)) => panic!("identify answered {s}: {v}"),
            Err(_) => return (role, out),
        }
    }
    let mut conversation: Option<String> = None;
    let mut identified = false;
    for n in 0.. {
        if n == 3 {
            if let Role::EmailLater(email) = &role {
                match w.post("/identify", json!({"email": email})).await {
                    Ok((200, _)) => identified = true,
                    Ok((s, v)) => panic!("identify answered {s}: {v}"),
                    Err(_) => break,
                }
            }
        }
        let body = format!("client {i} message {n}");
        // A new conversation every fifth message, else the current one.
        let mut req = json!({ "body": body });
        if n % 5 != 0 {
            req["conversation_id"] = json!(conversation);
        }
        match w.post("/messages", req).await {
            Ok((201, v)) => {
                let conv = v["conversation_id"].as_str().unwrap().to_string();
                out.acked
                    .push((v["message_id"].as_str().unwrap().into(), conv.clone(), body));
                out.last_contact = Some(v["contact_id"].as_str().unwrap().into());
                out.identified_before_last = identified;
                conversation = Some(conv);
                acked_total.fetch_add(1, Ordering::Relaxed);
            }
            // The server died while answering.
            Ok((500..=599, _)) | Err(_) => break,
            Ok((s, v)) => panic!("client {i}: message answered {s}: {v}"),
        }
    }
    (role, out)
}

/// The `_sum` and `_count` of a summary on /metrics (0 when absent).
fn summary(text: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{suffix} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (value("_sum"), value("_count"))
}

async fn crash_and_restart(db_url: &str, sqlite_file: Option<&std::path::Path>) {
    let started = Instant::now();
    let creds = org_create(db_url);
    let org = creds["org_id"].as_str().unwrap().to_string();
    let token = creds["api_token"].as_str().unwrap().to_string();
    let key = creds["website_key"].as_str().unwrap().to_string();
    let secret = creds["identity_secret"].as_str().unwrap().to_string();

    let server = Server::start(db_url);
    let acked_total = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                i,
                server.base.clone(),
                key.clone(),
                secret.clone(),
                acked_total.clone(),
            ))
        })
        .collect();
    let load_started = Instant::now();
    while acked_total.load(Ordering::Relaxed) < ACKED_BEFORE_KILL
        && load_started.elapsed() < KILL_AFTER
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // On SQLite the writes are batched (group commit): before the kill, check that batches
    // of several concurrent writers were committed, so the kill lands among such batches.
    let metrics = http()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.kill();
    let (writes, batches) = summary(&metrics, "kith_store_group_commit_size");
    if sqlite_file.is_some() {
        assert!(
            batches > 0.0 && writes > batches * 1.5,
            "no group commit under load: {writes} writes in {batches} batches"
        );
    }
    let killed_at = acked_total.load(Ordering::Relaxed);
    let mut outcomes = vec![];
    for c in clients {
        outcomes.push(c.await.unwrap());
    }
    let acked: usize = outcomes.iter().map(|(_, o)| o.acked.len()).sum();
    assert!(
        killed_at >= 100,
        "too little load before the kill: {killed_at}"
    );
    assert!(acked >= killed_at);

    if let Some(file) = sqlite_file {
        // The file as the crash left it (the WAL is recovered on open).
        assert_eq!(support::sqlite_integrity(file).await, ["ok"]);
    }

    let server = Server::start(db_url);
    let http = http();
    let mut sql = Sql::connect(db_url).await;

    // 1. Every acknowledged message is stored, in the conversation it was acknowledged in.
    let stored: HashMap<String, (String, String)> = sql
        .rows(
            "SELECT id, conversation_id, body FROM messages WHERE org_id = $1",
            &org,
        )
        .await
        .into_iter()
        .map(|r| {
            let mut r = r.into_iter().map(Option::unwrap);
            (r.next().unwrap(), (r.next().unwrap(), r.next().unwrap()))
        })
        .collect();
    for (_, o) in &outcomes {
        for (id, conv, body) in &o.acked {
            assert_eq!(
                stored.get(id),
                Some(&(conv.clone(), body.clone())),
                "acknowledged message {id} lost"
            );
        }
    }

    // 2. Stats equal the messages: per contact and per conversation.
    let contact_stats_off = sql
        .int(
            "SELECT count(*) FROM contacts c WHERE c.org_id = $1 AND (\
               c.conversation_count <> (SELECT count(*) FROM conversations v \
                 WHERE v.org_id = c.org_id AND v.contact_id = c.id) \
               OR c.message_count <> (SELECT count(*) FROM messages m \
                 JOIN conversations v ON v.org_id = m.org_id AND v.id = m.conversation_id \
                 WHERE m.org_id = c.org_id AND v.contact_id = c.id AND m.author = 'visitor'))",
            &org,
        )
        .await;
    assert_eq!(
        contact_stats_off, 0,
        "contacts whose stats differ from their messages"
    );
    let conversation_stats_off = sql
        .int(
            "SELECT count(*) FROM conversations v WHERE v.org_id = $1 AND v.message_count <> \
               (SELECT count(*) FROM messages m WHERE m.org_id = v.org_id \
                AND m.conversation_id = v.id)",
            &org,
        )
        .await;
    assert_eq!(conversation_stats_off, 0);

    // 3. Nobody became two contacts: follow merges from each visitor's last answer.
    let merges: HashMap<String, String> = sql
        .rows(
            "SELECT absorbed_id, merged_into FROM contact_merges WHERE org_id = $1",
            &org,
        )
        .await
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    let contacts: HashMap<String, (Option<String>, Option<String>)> = sql
        .rows(
            "SELECT id, email_lower, user_id FROM contacts WHERE org_id = $1",
            &org,
        )
        .await
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), (r[1].clone(), r[2].clone())))
        .collect();
    let follow = |mut id: String| {
        while let Some(next) = merges.get(&id) {
            id = next.clone();
        }
        id
    };
    let mut by_key: HashMap<String, HashSet<String>> = HashMap::new();
    let mut anonymous: Vec<String> = vec![];
    for (i, (role, o)) in outcomes.iter().enumerate() {
        let Some(last) = &o.last_contact else {
            continue;
        };
        let id = follow(last.clone());
        let (email, user_id) = contacts
            .get(&id)
            .unwrap_or_else(|| panic!("client {i}: contact {id} does not exist"));
        match role {
            Role::EmailFirst(e) => {
                assert_eq!(email.as_ref(), Some(e), "client {i}");
                by_key.entry(e.clone()).or_default().insert(id);
            }
            Role::EmailLater(e) if o.identified_before_last => {
                assert_eq!(email.as_ref(), Some(e), "client {i}");
                by_key.entry(e.clone()).or_default().insert(id);
            }
            Role::UserId(u) => {
                assert_eq!(user_id.as_ref(), Some(u), "client {i}");
                by_key.entry(u.clone()).or_default().insert(id);
            }
            Role::Anonymous => {
                assert_eq!((email, user_id), (&None, &None), "client {i}");
                anonymous.push(id);
            }
            Role::EmailLater(_) => {}
        }
    }
    for (k, ids) in &by_key {
        assert_eq!(ids.len(), 1, "{k} is held by several contacts: {ids:?}");
    }
    let distinct: HashSet<&String> = anonymous.iter().collect();
    assert_eq!(
        distinct.len(),
        anonymous.len(),
        "two anonymous visitors share a contact"
    );
    let orphans = sql
        .int(
            "SELECT count(*) FROM contacts c WHERE c.org_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM visitors v WHERE v.org_id = c.org_id AND v.contact_id = c.id)",
            &org,
        )
        .await;
    assert_eq!(orphans, 0, "contacts without a visitor");

    // 4. Lists after the restart (SQLite: the rebuilt in-memory index) equal SQL.
    let token = token.as_str();
    let checks = [
        ("sort=created_at", "TRUE"),
        ("status=lead", "c.status = 'lead'"),
        ("status=customer&sort=-name", "c.status = 'customer'"),
        ("q=shared1", "c.email_lower = 'shared1@crash.test'"),
        (
            "filter=%7B%22message_count%22%3A%7B%22min%22%3A10%7D%7D",
            "c.message_count >= 10",
        ),
    ];
    for (query, condition) in checks {
        let want: HashSet<String> = sql
            .rows(
                &format!("SELECT c.id FROM contacts c WHERE c.org_id = $1 AND {condition}"),
                &org,
            )
            .await
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        let (ids, total) = all_pages(&http, &server.base, token, query).await;
        assert_eq!(total as usize, want.len(), "{query}: total");
        assert_eq!(ids.len(), want.len(), "{query}: paged items");
        assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), want, "{query}");
    }
    // And a contact read through the API has the stats SQL counts.
    for ids in by_key.values() {
        let id = ids.iter().next().unwrap();
        let (status, c) = support::admin_get(
            &http,
            &server.base,
            token,
            &format!("/api/v1/contacts/{id}"),
        )
        .await;
        assert_eq!(status, 200, "{c}");
        let messages = sql
            .int(
                &format!(
                    "SELECT count(*) FROM messages m JOIN conversations v \
                     ON v.org_id = m.org_id AND v.id = m.conversation_id \
                     WHERE m.org_id = $1 AND v.contact_id = '{id}' AND m.author = 'visitor'"
                ),
                &org,
            )
            .await;
        assert_eq!(c["message_count"], messages, "{c}");
    }
    sql.close().await;
    drop(server);
    eprintln!(
        "crash test: {acked} messages acknowledged ({killed_at} when killed; {writes} writes in \
         {batches} commits before), {} stored, {} contacts, {} merges, {:.1} s",
        stored.len(),
        contacts.len(),
        merges.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_no_acknowledged_message_sqlite() {
    let dir = support::temp_dir("crash");
    let file = dir.join("kith.db");
    let url = format!("sqlite://{}", file.display());
    crash_and_restart(&url, Some(&file)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_no_acknowledged_message_postgres() {
    let db = support::pg_db().await;
    crash_and_restart(&db.url, None).await;
}
