//! `kith bench panel`, `kith bench contact` and `kith bench lists` (in process and through
//! HTTP) on a tiny seeded SQLite database, so the benchmarks' code paths (server,
//! chromedriver, sign-in, Performance API scripts, sampling, report) cannot rot between the
//! runs at 1,000,000 contacts recorded in docs/benchmarks.md.
//! The panel's needs chromium and chromium-driver, as the browser tests do.

mod support;

use kith_testkit::TempDir;
use serde_json::Value;
use support::{kith, org_create, temp_dir};

/// `kith ARGS`, which must succeed: its standard output.
fn ok(args: &[&str]) -> String {
    let out = kith().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kith {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh SQLite database with `contacts` seeded contacts: its folder, URL and organization.
fn seeded(what: &str, contacts: u32) -> (TempDir, String, String) {
    let dir = temp_dir(what);
    let db = format!("sqlite://{}/k.db", dir.path().display());
    let org = org_create(&db)["org_id"].as_str().unwrap().to_string();
    let n = contacts.to_string();
    ok(&["seed", "--contacts", &n, "--org", &org, "--db", &db]);
    (dir, db, org)
}

#[test]
fn bench_panel_measures_a_tiny_seeded_organization() {
    let (_dir, db, org) = seeded("bench-panel", 300);
    let stdout = ok(&[
        "bench", "panel", "--org", &org, "--db", &db, "--runs", "2", "--rounds", "1", "--json",
    ]);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let r: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(r["contacts"], 300, "{r}");
    assert_eq!(r["navigation"]["interactive"]["n"], 2, "{r}");
    let interactive = r["navigation"]["interactive"]["p50_ms"].as_f64().unwrap();
    assert!(interactive > 0.0 && interactive < 10_000.0, "{r}");
    // Every key typed and erased is one sample, each with the rows on screen.
    let keys = r["keystroke"]["n"].as_u64().unwrap();
    assert!(keys >= 20, "{r}");
    assert!(r["keystroke"]["p50_ms"].as_f64().unwrap() > 0.0, "{r}");
    // The cold load fetched the page, its stylesheet and its two scripts, gzipped.
    let w = &r["cold_load"]["weight"];
    for kind in ["html", "css", "js"] {
        let encoded = w[kind]["encoded_bytes"].as_u64().unwrap_or(0);
        let decoded = w[kind]["decoded_bytes"].as_u64().unwrap_or(0);
        assert!(encoded > 0 && encoded < decoded, "{kind}: {w}");
    }
    assert!(w["total"]["transfer_bytes"].as_u64().unwrap() > 0, "{w}");
}

#[test]
fn bench_contact_times_the_reads_of_sampled_contacts() {
    let (_dir, db, org) = seeded("bench-contact", 200);
    let stdout = ok(&[
        "bench",
        "contact",
        "--org",
        &org,
        "--db",
        &db,
        "--iterations",
        "50",
        "--json",
    ]);
    let r: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(r["contacts_sampled"], 50, "{r}");
    // The seed gives about 60 % of contacts a conversation.
    let with = r["with_conversations"].as_u64().unwrap();
    assert!((10..50).contains(&with), "{r}");
    // Seeded timelines: created first, then the conversation and the identify, so every
    // contact's page holds one entry at least.
    assert!(r["timeline_entries_read"].as_u64().unwrap() >= 50, "{r}");
    let calls = r["calls"].as_array().unwrap();
    let full_pages = r["timeline_full_pages"].as_u64().unwrap() as usize;
    assert_eq!(calls.len(), 3 + usize::from(full_pages > 0), "{r}");
    for c in calls {
        let (p50, p99) = (c["p50_ms"].as_f64().unwrap(), c["p99_ms"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{c}");
    }
}

#[test]
fn bench_lists_through_http_finds_what_the_store_finds() {
    let (_dir, db, org) = seeded("bench-lists", 300);
    let lists = [
        "bench",
        "lists",
        "--org",
        &org,
        "--db",
        &db,
        "--iterations",
        "3",
        "--json",
    ];
    let store: Value = serde_json::from_str(ok(&lists).trim()).unwrap();
    let http: Value = serde_json::from_str(ok(&[&lists[..], &["--http"]].concat()).trim()).unwrap();
    assert_eq!(store["via"], "store");
    assert_eq!(http["via"], "http");
    // Where the index's bytes go, each part counted.
    let parts = &store["index"]["by_part"];
    for part in [
        "ids",
        "columns",
        "texts",
        "contact_sets",
        "bitmaps",
        "grams",
    ] {
        assert!(parts[part].as_u64().unwrap() > 0, "{part}: {parts}");
    }
    assert!(store["process_rss_anon_kib"].as_u64().unwrap() > 0);
    let shapes = |r: &Value| -> Vec<(String, u64)> {
        r["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["shape"].as_str().unwrap().to_string(),
                    s["matches"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(shapes(&store), shapes(&http), "the same counts both ways");
    // Several clients at once: every request of every client answered, timed and counted.
    let crowd: Value =
        serde_json::from_str(ok(&[&lists[..], &["--http", "--clients", "4"]].concat()).trim())
            .unwrap();
    assert_eq!(crowd["clients"], 4);
    assert_eq!(shapes(&crowd), shapes(&store));
    assert!(shapes(&store).iter().any(|(_, n)| *n == 300), "{store}");
    for s in http["shapes"].as_array().unwrap() {
        assert!(
            s["count_ms"].is_null(),
            "one answer holds page and count: {s}"
        );
        assert!(s["page_and_count_ms"]["p50"].as_f64().unwrap() > 0.0, "{s}");
    }
}
