//! The two migration trees describe one schema, and that schema can be sharded by
//! organization: every table has `org_id`, and it leads every primary, unique and foreign key.

use kith_store::Store;
use kith_testkit::{Backend, TestDb};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, PartialEq, Eq)]
struct Catalog {
    /// table → columns (sorted)
    tables: BTreeMap<String, BTreeSet<String>>,
    /// (table, kind, columns in key order); kind is "pk", "unique" or "fk"
    keys: BTreeSet<(String, String, Vec<String>)>,
}

async fn postgres_catalog() -> Catalog {
    let test_db = TestDb::new(Backend::Postgres).await;
    let url = test_db.url.clone();
    let store = Store::open(&url).await.expect("migrate");
    store.close().await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        tables.entry(r.get(0)).or_default().insert(r.get(1));
    }
    let mut keys = BTreeSet::new();
    for r in sqlx::query(
        "SELECT tc.table_name::text, tc.constraint_type::text, \
                array_agg(kcu.column_name::text ORDER BY kcu.ordinal_position) \
         FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
           ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name \
          AND kcu.table_name = tc.table_name \
         WHERE tc.table_schema = 'public' AND tc.table_name <> '_sqlx_migrations' \
           AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY') \
         GROUP BY tc.table_name, tc.constraint_type, tc.constraint_name",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        let kind = match r.get::<String, _>(1).as_str() {
            "PRIMARY KEY" => "pk",
            "UNIQUE" => "unique",
            _ => "fk",
        };
        keys.insert((r.get(0), kind.to_string(), r.get::<Vec<String>, _>(2)));
    }
    drop(db);
    Catalog { tables, keys }
}

async fn sqlite_catalog() -> Catalog {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let url = test_db.url.clone();
    let store = Store::open(&url).await.expect("migrate");
    store.close().await;
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let names: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' AND name NOT LIKE 'contact_search%'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut tables = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for t in &names {
        let cols: Vec<(i64, String, i64)> = sqlx::query(&format!("PRAGMA table_info({t})"))
            .fetch_all(&mut db)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<i64, _>("cid"),
                    r.get::<String, _>("name"),
                    r.get::<i64, _>("pk"),
                )
            })
            .collect();
        tables.insert(
            t.clone(),
            cols.iter().map(|c| c.1.clone()).collect::<BTreeSet<_>>(),
        );
        let mut pk: Vec<(i64, String)> = cols
            .iter()
            .filter(|c| c.2 > 0)
            .map(|c| (c.2, c.1.clone()))
            .collect();
        pk.sort();
        if !pk.is_empty() {
            keys.insert((
                t.clone(),
                "pk".into(),
                pk.into_iter().map(|p| p.1).collect(),
            ));
        }
        for idx in sqlx::query(&format!("PRAGMA index_list({t})"))
            .fetch_all(&mut db)
            .await
            .unwrap()
        {
            let origin: String = idx.get("origin");
            if origin != "u" {
                continue;
            }
            let iname: String = idx.get("name");
            let cols: Vec<String> = sqlx::query(&format!("PRAGMA index_info({iname})"))
                .fetch_all(&mut db)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("name"))
                .collect();
            keys.insert((t.clone(), "unique".into(), cols));
        }
        let mut fks: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
        for fk in sqlx::query(&format!("PRAGMA foreign_key_list({t})"))
            .fetch_all(&mut db)
            .await
            .unwrap()
        {
            fks.entry(fk.get("id"))
                .or_default()
                .push((fk.get("seq"), fk.get("from")));
        }
        for (_, mut cols) in fks {
            cols.sort();
            keys.insert((
                t.clone(),
                "fk".into(),
                cols.into_iter().map(|c| c.1).collect(),
            ));
        }
    }
    drop(db);
    Catalog { tables, keys }
}

fn assert_shardable(name: &str, c: &Catalog) {
    assert!(
        c.tables.len() >= 10,
        "{name}: too few tables: {:?}",
        c.tables.keys()
    );
    for (table, cols) in &c.tables {
        assert!(cols.contains("org_id"), "{name}: {table} has no org_id");
    }
    for (table, kind, cols) in &c.keys {
        assert_eq!(
            cols.first().map(String::as_str),
            Some("org_id"),
            "{name}: {kind} of {table} {cols:?} does not start with org_id"
        );
    }
    for table in c.tables.keys() {
        assert!(
            c.keys.iter().any(|(t, k, _)| t == table && k == "pk"),
            "{name}: {table} has no primary key"
        );
    }
}

#[tokio::test]
async fn both_databases_have_one_schema_sharded_by_organization() {
    let pg = postgres_catalog().await;
    let lite = sqlite_catalog().await;
    assert_shardable("postgres", &pg);
    assert_shardable("sqlite", &lite);
    assert_eq!(
        pg.tables, lite.tables,
        "tables and columns differ between the migration trees"
    );
    assert_eq!(
        pg.keys, lite.keys,
        "keys differ between the migration trees"
    );
}
