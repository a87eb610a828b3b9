//! `kith import contacts` and `kith export contacts` as a user runs them, on SQLite and
//! PostgreSQL: one JSON line with `--json`, the errors file, clear refusals, and an export
//! that imports back into another organization.

mod support;

use serde_json::Value;
use support::{kith, org_create, pg_db};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kith-store/tests/fixtures/import")
        .join(name)
}

/// Runs kith with `args`; answers (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = kith().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn import_export_round_trip(db: &str) {
    let dir = support::temp_dir("csv-cli");
    let org = org_create(db)["org_id"].as_str().unwrap().to_string();
    let file = dir.join("intercom.csv");
    std::fs::copy(fixture("intercom.csv"), &file).unwrap();

    let (ok, out, err) = run(&[
        "import",
        "contacts",
        file.to_str().unwrap(),
        "--org",
        &org,
        "--db",
        db,
        "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "exactly one line: {out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (
            v["rows_read"].as_u64(),
            v["created"].as_u64(),
            v["updated"].as_u64(),
            v["rejected"].as_u64()
        ),
        (Some(7), Some(3), Some(2), Some(2)),
        "{v}"
    );
    let errors = dir.join("intercom.errors.csv");
    assert_eq!(v["errors_file"], errors.to_str().unwrap());
    let text = std::fs::read_to_string(&errors).unwrap();
    assert!(text.starts_with("User ID,Name,Email,Phone,Company name,Tags,Signed up,Last seen,Web sessions,City,error\n"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");

    // Without --json: words. Ada's row changes nothing now; Grace's and Alan's rows each name
    // them two ways in turn (the file contradicts itself), so they update again.
    let (ok, out, err) = run(&[
        "import",
        "contacts",
        file.to_str().unwrap(),
        "--org",
        &org,
        "--db",
        db,
        "--errors",
        dir.join("again.csv").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Imported 7 rows: 0 created, 4 updated, 1 unchanged, 2 rejected."),
        "{out}"
    );

    // A bad file: refused, said on stderr (and in the one JSON line).
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, b"email\nok@example.com\n\xff\n").unwrap();
    let (ok, out, _) = run(&[
        "import",
        "contacts",
        bad.to_str().unwrap(),
        "--org",
        &org,
        "--db",
        db,
        "--json",
    ]);
    assert!(!ok);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("line 3"), "{v}");

    // Export, then import the export into a new organization.
    let out_file = dir.join("export.csv");
    let (ok, _, err) = run(&[
        "export",
        "contacts",
        "--org",
        &org,
        "--db",
        db,
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("Exported 3 contacts."), "{err}");
    let other = org_create(db)["org_id"].as_str().unwrap().to_string();
    let (ok, out, err) = run(&[
        "import",
        "contacts",
        out_file.to_str().unwrap(),
        "--org",
        &other,
        "--db",
        db,
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["created"].as_u64(), v["rejected"].as_u64()),
        (Some(3), Some(0)),
        "{v}"
    );
    let (ok, vip, _) = run(&[
        "export", "contacts", "--org", &other, "--db", db, "--tag", "vip",
    ]);
    assert!(ok);
    assert_eq!(vip.lines().count(), 2, "{vip}");
    assert!(
        vip.lines()
            .nth(1)
            .unwrap()
            .contains(",u-1,ADA@Example.com,Ada Lovelace,'+442079460001,"),
        "{vip}"
    );
}

#[test]
fn import_and_export_on_sqlite() {
    let dir = support::temp_dir("csv-cli-db");
    let db = format!("sqlite://{}", dir.join("kith.db").display());
    import_export_round_trip(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_on_postgres() {
    let db = pg_db().await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || import_export_round_trip(&url))
        .await
        .unwrap();
}
