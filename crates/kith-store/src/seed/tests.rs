use crate::conn::{args, Conn};
use crate::{read, NewOrg, Store};
use kith_core::OrgId;

async fn new_org(store: &Store) -> OrgId {
    let new = NewOrg {
        name: "Seeded".into(),
        admin_email: "admin@example.com".into(),
        website_name: "site".into(),
    };
    store.create_org(&new).await.unwrap().org_id
}

/// (rid, id, email, name, tags, metadata, search text) of an organization's contacts.
type Contacts = Vec<(i64, String, String, String, String, String, String)>;

async fn contacts(store: &Store, org: &OrgId) -> Contacts {
    read!(store, |c| c
        .fetch_all(
            "SELECT rid, id, email, name, tags, metadata, search_text FROM contacts \
             WHERE org_id = $1 ORDER BY rid",
            args![org],
        )
        .await)
    .unwrap()
}

async fn count(store: &Store, sql: &str, org: &OrgId) -> i64 {
    let (n,): (i64,) = read!(store, |c| c.fetch_one(sql, args![org]).await).unwrap();
    n
}

/// Two seeds into one organization, one more into another: every row as the normal write
/// path leaves it, and the same seed gives the same people.
async fn seeds_add_consistent_rows(url: &str) {
    let store = Store::open(url).await.unwrap();
    let (a, b) = (new_org(&store).await, new_org(&store).await);
    let first = store.org(&a).seed(2_500, 7).await.unwrap();
    assert_eq!(first.contacts, 2_500);
    store.org(&a).seed(1_200, 7).await.unwrap();
    store.org(&b).seed(2_500, 7).await.unwrap();

    let rows = contacts(&store, &a).await;
    assert_eq!(rows.len(), 3_700);
    let emails: std::collections::HashSet<_> = rows.iter().map(|r| &r.2).collect();
    assert_eq!(
        emails.len(),
        rows.len(),
        "emails continue after a second seed"
    );
    assert!(
        rows.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "rids unique and increasing with the ids"
    );
    for status in ["lead", "customer"] {
        let kept: (Option<i64>,) = read!(&store, |c| c
            .fetch_one(
                "SELECT CAST(sum(n) AS BIGINT) FROM contact_counts \
                 WHERE org_id = $1 AND status = $2",
                args![&a, status],
            )
            .await)
        .unwrap();
        let real: (i64,) = read!(&store, |c| c
            .fetch_one(
                "SELECT count(*) FROM contacts WHERE org_id = $1 AND status = $2",
                args![&a, status],
            )
            .await)
        .unwrap();
        assert_eq!(kept.0.unwrap_or(0), real.0, "{status} count");
    }
    let tag_rows: Vec<(String, String)> = read!(&store, |c| c
        .fetch_all(
            "SELECT contact_id, tag FROM contact_tags WHERE org_id = $1",
            args![&a],
        )
        .await)
    .unwrap();
    let mut from_rows: Vec<(String, String)> = tag_rows;
    let mut from_json: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| {
            let tags: Vec<String> = serde_json::from_str(&r.4).unwrap();
            tags.into_iter().map(|t| (r.1.clone(), t.to_lowercase()))
        })
        .collect();
    from_rows.sort();
    from_json.sort();
    assert_eq!(from_rows, from_json);

    let sum_conversations = "SELECT CAST(sum(conversation_count) AS BIGINT) \
                             FROM contacts WHERE org_id = $1";
    let conversations = "SELECT count(*) FROM conversations WHERE org_id = $1";
    assert_eq!(
        count(&store, sum_conversations, &a).await,
        count(&store, conversations, &a).await
    );
    let sum_messages = "SELECT CAST(sum(message_count) AS BIGINT) \
                        FROM contacts WHERE org_id = $1";
    let messages = "SELECT count(*) FROM messages WHERE org_id = $1";
    assert_eq!(
        count(&store, sum_messages, &a).await,
        count(&store, messages, &a).await
    );
    let visitors = "SELECT count(*) FROM visitors WHERE org_id = $1 AND link_proven";
    assert_eq!(
        count(&store, visitors, &a).await,
        count(&store, conversations, &a).await
    );

    // Timelines as the write paths leave them: created first, the conversation started,
    // customers promoted, and a few long ones that fill a page.
    let events = "SELECT count(*) FROM contact_events WHERE org_id = $1";
    let all_events = count(&store, events, &a).await;
    assert!(all_events >= 2 * 3_700, "{all_events} entries");
    let created = "SELECT count(*) FROM contact_events WHERE org_id = $1 AND kind = 'created'";
    assert_eq!(count(&store, created, &a).await, 3_700);
    let started = "SELECT count(*) FROM contact_events e JOIN conversations v \
                   ON v.org_id = e.org_id AND v.contact_id = e.contact_id \
                   AND v.id = e.data ->> '$.conversation_id' \
                   WHERE e.org_id = $1 AND e.kind = 'conversation_started'";
    let started = started.replace(
        "e.data ->> '$.conversation_id'",
        match store.backend_name() {
            "postgres" => "CAST(e.data AS jsonb) ->> 'conversation_id'",
            _ => "json_extract(e.data, '$.conversation_id')",
        },
    );
    assert_eq!(
        count(&store, &started, &a).await,
        count(&store, conversations, &a).await,
        "one conversation_started per conversation, naming it"
    );
    let promoted = "SELECT count(*) FROM contact_events WHERE org_id = $1 AND kind = 'promoted'";
    let customers = "SELECT count(*) FROM contacts WHERE org_id = $1 AND status = 'customer'";
    assert_eq!(
        count(&store, promoted, &a).await,
        count(&store, customers, &a).await
    );
    let (longest,): (String,) = read!(&store, |c| c
        .fetch_one(
            "SELECT contact_id FROM contact_events WHERE org_id = $1 \
             GROUP BY contact_id ORDER BY count(*) DESC, contact_id LIMIT 1",
            args![&a],
        )
        .await)
    .unwrap();
    let page = store
        .org(&a)
        .timeline(&kith_core::ContactId::new(&longest), None, 50)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 50, "a long history fills a page");
    assert!(page.next_cursor.is_some());
    assert_eq!(
        page.items.last().map(|e| e.kind),
        Some(kith_core::timeline::EventKind::FieldsUpdated)
    );
    let total = first.timeline_entries
        + count(
            &store,
            "SELECT count(*) FROM contact_events WHERE org_id = $1",
            &b,
        )
        .await as u64;
    assert_eq!(
        total,
        2 * first.timeline_entries,
        "the same seed, the same timelines"
    );

    let same = |r: &(i64, String, String, String, String, String, String)| {
        (
            r.2.clone(),
            r.3.clone(),
            r.4.clone(),
            r.5.clone(),
            r.6.clone(),
        )
    };
    let other = contacts(&store, &b).await;
    assert_eq!(
        rows[..2_500].iter().map(same).collect::<Vec<_>>(),
        other.iter().map(same).collect::<Vec<_>>(),
        "the same seed gives the same contacts"
    );
    store.close().await;
}

#[tokio::test]
async fn seed_sqlite() {
    let dir = std::env::temp_dir().join(format!("kith-seed-{}", crate::new_id()));
    let url = format!("sqlite://{}/k.db", dir.display());
    seeds_add_consistent_rows(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn seed_postgres() {
    use sqlx::Connection;
    let admin = std::env::var("KITH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("kith_seed_{}", &crate::new_id()[16..]);
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    seeds_add_consistent_rows(&url).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut c)
        .await
        .unwrap();
}
