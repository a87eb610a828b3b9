//! The two migration trees describe one schema, and that schema can be sharded by
//! organization: every table has `org_id`, and it leads every primary, unique and foreign key.
//! Columns have the same types on both sides, and the secondary indexes are the same but for
//! a short list of deliberate differences.

use kith_store::Store;
use kith_testkit::{Backend, TestDb};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, PartialEq, Eq)]
struct Catalog {
    /// table → columns (sorted)
    tables: BTreeMap<String, BTreeSet<String>>,
    /// (table, column) → declared type, normalized (lower case)
    types: BTreeMap<(String, String), String>,
    /// (table, kind, columns in key order); kind is "pk", "unique" or "fk"
    keys: BTreeSet<(String, String, Vec<String>)>,
    /// Secondary (non-key) indexes: (table, index name, columns in order)
    indexes: BTreeSet<(String, String, Vec<String>)>,
}

/// Indexes only PostgreSQL has, on purpose: on SQLite the serving process answers lists, sorts
/// and search from its in-memory contact index (migration 0005 dropped these there), while
/// on PostgreSQL SQL answers them while a process's index builds, with these indexes. Not the
/// last-seen sorts (0016): every message moves `last_seen_at`, and those indexes cost each one.
const POSTGRES_ONLY: &[&str] = &[
    "contacts_search",
    "contacts_created",
    "contacts_name",
    "contact_tags_tag",
];
/// Tables only PostgreSQL has: the change log through which each serving process's contact
/// index follows the other processes' writes (0014). It is an operational log, not data:
/// no primary key (a transaction may note one contact several times) and ordered by
/// transaction ids, which are per node (docs/scaling.md says what sharding would need).
const POSTGRES_ONLY_TABLES: &[&str] = &["contact_changes"];
/// Indexes only SQLite has: PostgreSQL numbers contacts with a sequence (0002).
const SQLITE_ONLY: &[&str] = &["contacts_rid"];

/// PostgreSQL spells some types its own way in the catalog.
fn normalize_type(t: &str) -> String {
    match t.to_ascii_lowercase().as_str() {
        "int8" => "bigint".into(),
        "int4" | "int" => "integer".into(),
        "bool" => "boolean".into(),
        "double precision" | "float8" => "real".into(),
        other => other.into(),
    }
}

async fn postgres_catalog() -> Catalog {
    let test_db = TestDb::new(Backend::Postgres).await;
    let url = test_db.url.clone();
    let store = Store::open(&url).await.expect("migrate");
    store.close().await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut types = BTreeMap::new();
    for r in sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        tables.entry(r.get(0)).or_default().insert(r.get(1));
        types.insert((r.get(0), r.get(1)), normalize_type(r.get(2)));
    }
    // Secondary indexes: those no constraint made (keys are compared above).
    let mut indexes = BTreeSet::new();
    for r in sqlx::query(
        "SELECT t.relname::text, i.relname::text, \
                array_agg(a.attname::text ORDER BY k.n) \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE ns.nspname = 'public' AND t.relname <> '_sqlx_migrations' \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         GROUP BY t.relname, i.relname",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        indexes.insert((r.get(0), r.get(1), r.get::<Vec<String>, _>(2)));
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
    Catalog {
        tables,
        types,
        keys,
        indexes,
    }
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
    let mut types = BTreeMap::new();
    let mut indexes = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for t in &names {
        let cols: Vec<(i64, String, i64)> = sqlx::query(&format!("PRAGMA table_info({t})"))
            .fetch_all(&mut db)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                types.insert(
                    (t.clone(), r.get::<String, _>("name")),
                    normalize_type(&r.get::<String, _>("type")),
                );
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
            let iname: String = idx.get("name");
            if origin == "pk" {
                continue;
            }
            let cols: Vec<String> = sqlx::query(&format!("PRAGMA index_info({iname})"))
                .fetch_all(&mut db)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("name"))
                .collect();
            if origin == "u" {
                keys.insert((t.clone(), "unique".into(), cols));
            } else {
                indexes.insert((t.clone(), iname, cols));
            }
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
    Catalog {
        tables,
        types,
        keys,
        indexes,
    }
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
    let mut pg = postgres_catalog().await;
    for table in POSTGRES_ONLY_TABLES {
        assert!(
            pg.tables.remove(*table).is_some(),
            "the deliberate difference {table} is gone: update the list"
        );
        pg.types.retain(|(t, _), _| t != table);
        pg.keys.retain(|(t, _, _)| t != table);
        pg.indexes.retain(|(t, _, _)| t != table);
    }
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
    assert_eq!(
        pg.types, lite.types,
        "column types differ between the migration trees"
    );
    let without = |c: &Catalog, names: &[&str]| -> BTreeSet<(String, String, Vec<String>)> {
        let mut out = c.indexes.clone();
        for n in names {
            let before = out.len();
            out.retain(|(_, name, _)| name != n);
            assert_eq!(
                out.len() + 1,
                before,
                "the deliberate difference {n} is gone: update the list"
            );
        }
        out
    };
    assert_eq!(
        without(&pg, POSTGRES_ONLY),
        without(&lite, SQLITE_ONLY),
        "secondary indexes differ between the migration trees beyond the deliberate differences"
    );
}
