//! CSV import and export on both databases: files shaped like Intercom's, HubSpot's and
//! Chatwoot's exports with the expected matches and rejects, duplicates within a file, the
//! row whose user_id and email name two contacts, bad files, export equal to paging the list,
//! and export → import into a fresh organization reproducing the profiles.

use futures::StreamExt;
use kith_core::filter::{ListFilter, Sort};
use kith_core::timeline::Actor;
use kith_core::{ContactId, OrgId};
use kith_store::{Contact, ImportError, ImportOptions, ImportSummary, NewOrg, Store};
use kith_testkit::{Backend, TempDir, TestDb};
use std::path::{Path, PathBuf};

macro_rules! both_backends {
    ($(async fn $name:ident($store:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($store: &Store) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = TestDb::new(Backend::Sqlite).await;
                    let store = Store::open(&db.url).await.expect("open");
                    run(&store).await;
                    store.close().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let db = TestDb::new(Backend::Postgres).await;
                    let store = Store::open(&db.url).await.expect("open");
                    run(&store).await;
                    store.close().await;
                }
            }
        )*
    };
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

async fn new_org(store: &Store) -> OrgId {
    let creds = store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: format!("admin-{}@acme.test", kith_store::new_id()),
            website_name: "Shop".into(),
        })
        .await
        .expect("create org");
    creds.org_id
}

struct Run {
    summary: Result<ImportSummary, ImportError>,
    errors: PathBuf,
    _dir: TempDir,
}

impl Run {
    fn ok(&self) -> &ImportSummary {
        self.summary.as_ref().expect("import")
    }

    /// The errors file's rows (header first).
    fn errors(&self) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(&self.errors)
            .expect("errors file");
        r.records()
            .map(|x| x.unwrap().iter().map(str::to_string).collect())
            .collect()
    }
}

async fn import(store: &Store, org: &OrgId, file: &Path) -> Run {
    let dir = TempDir::new("import");
    let errors = dir.join("errors.csv");
    let opts = ImportOptions {
        actor: Actor::System,
        errors_path: errors.clone(),
        start_line: 0,
        stop: None,
    };
    let summary = store.org(org).import_csv(file, &opts, &mut |_| {}).await;
    Run {
        summary,
        errors,
        _dir: dir,
    }
}

async fn import_text(store: &Store, org: &OrgId, text: &[u8]) -> Run {
    let dir = TempDir::new("import-src");
    let file = dir.join("in.csv");
    std::fs::write(&file, text).unwrap();
    let run = import(store, org, &file).await;
    drop(dir);
    run
}

fn counts(s: &ImportSummary) -> (u64, u64, u64, u64, u64) {
    (s.rows_read, s.created, s.updated, s.unchanged, s.rejected)
}

/// Every contact of the organization, paged through the listing.
async fn all(
    store: &Store,
    org: &OrgId,
    filter: &ListFilter,
    sort: &Sort,
    limit: i64,
) -> Vec<Contact> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .org(org)
            .list_contacts(filter, sort, cursor.as_deref(), limit)
            .await
            .expect("list");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

async fn by_email(store: &Store, org: &OrgId, email: &str) -> Contact {
    let found: Vec<Contact> = all(store, org, &ListFilter::default(), &Sort::default(), 200)
        .await
        .into_iter()
        .filter(|c| c.email.as_deref().map(str::to_lowercase) == Some(email.to_lowercase()))
        .collect();
    assert_eq!(found.len(), 1, "one contact with {email}: {found:?}");
    found.into_iter().next().unwrap()
}

async fn kinds(store: &Store, org: &OrgId, id: &ContactId) -> Vec<String> {
    let page = store
        .org(org)
        .timeline(id, None, 50)
        .await
        .expect("timeline");
    page.items
        .iter()
        .map(|e| e.kind.as_str().to_string())
        .collect()
}

async fn with_base(store: &Store) -> OrgId {
    let org = new_org(store).await;
    let run = import(store, &org, &fixture("base.csv")).await;
    assert_eq!(counts(run.ok()), (3, 3, 0, 0, 0));
    org
}

/// Exports `filter` and parses the file.
async fn export(store: &Store, org: &OrgId, filter: ListFilter, sort: Sort) -> Vec<Vec<String>> {
    let mut bytes = Vec::new();
    let mut s = std::pin::pin!(store.export_csv(org.clone(), filter, sort));
    while let Some(chunk) = s.next().await {
        bytes.extend(chunk.expect("chunk"));
    }
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

both_backends! {
    async fn an_intercom_export_matches_by_user_id_then_email(store) {
        let org = with_base(store).await;
        let ada_before = by_email(store, &org, "ada@example.com").await;
        let run = import(store, &org, &fixture("intercom.csv")).await;
        assert_eq!(counts(run.ok()), (7, 1, 3, 0, 3), "{:?}", run.summary);

        let ada = by_email(store, &org, "ada@example.com").await;
        assert_eq!(ada.id, ada_before.id, "matched by user_id, not a new contact");
        assert_eq!(ada.phone.as_deref(), Some("+442079460001"));
        assert_eq!(ada.company.as_deref(), Some("Analytical Engines"));
        assert_eq!(ada.tags, ["vip", "beta"]);
        assert_eq!(ada.metadata["City"], "London");
        assert_eq!(ada.metadata["Web sessions"], "12");
        assert_eq!(kinds(store, &org, &ada.id).await, ["fields_updated", "created"]);

        let grace = by_email(store, &org, "grace@example.com").await;
        assert_eq!(grace.company.as_deref(), Some("US Navy"));
        assert_eq!(grace.user_id, None);

        // Two rows for u-2 (the second without an email): one contact, the later row applied.
        let alan = by_email(store, &org, "alan@example.com").await;
        assert_eq!(alan.user_id.as_deref(), Some("u-2"));
        assert_eq!(alan.name.as_deref(), Some("Alan M. Turing"));
        assert_eq!(alan.tags, ["beta"]);
        assert_eq!(kinds(store, &org, &alan.id).await, ["fields_updated", "created"]);
        let total = store.org(&org).count_contacts(&ListFilter::default()).await.unwrap();
        assert_eq!(total, 4, "base 3 + Alan");

        let errors = run.errors();
        assert_eq!(errors[0].last().unwrap(), "error");
        assert_eq!(errors[0][..10], *"User ID,Name,Email,Phone,Company name,Tags,Signed up,Last seen,Web sessions,City".split(',').collect::<Vec<_>>());
        assert_eq!(errors.len(), 4);
        let linus = by_email(store, &org, "linus@example.com").await;
        let two = &errors[1];
        assert_eq!(two[0], "u-9");
        assert!(two[10].contains("line 6") && two[10].contains(linus.id.as_str()) && two[10].contains(grace.id.as_str()), "{two:?}");
        assert!(errors[2][10].starts_with("line 7: phone"), "{:?}", errors[2]);
        assert!(errors[3][10].starts_with("line 8: email"), "{:?}", errors[3]);
        // Nothing of the rejected rows was written.
        assert_eq!(linus.name.as_deref(), Some("Linus"));
    }

    async fn a_hubspot_export_joins_first_and_last_names(store) {
        let org = with_base(store).await;
        let run = import(store, &org, &fixture("hubspot.csv")).await;
        assert_eq!(counts(run.ok()), (5, 3, 1, 0, 1), "{:?}", run.summary);
        let m = by_email(store, &org, "margaret@example.com").await;
        assert_eq!(m.name.as_deref(), Some("Margaret Hamilton"));
        assert_eq!(m.phone.as_deref(), Some("+16175550101"));
        assert_eq!(m.metadata["Record ID"], "501");
        assert_eq!(m.metadata["Lifecycle Stage"], "customer");
        assert_eq!(m.status.as_str(), "lead", "no user_id: a lead, whatever the column says");
        let mary = by_email(store, &org, "mary@example.com").await;
        assert_eq!(mary.phone.as_deref(), Some("+17575550199"));
        let ada = by_email(store, &org, "ada@example.com").await;
        assert_eq!(ada.user_id.as_deref(), Some("u-1"));
        assert_eq!(ada.metadata["Record ID"], "502");
        let errors = run.errors();
        assert_eq!(errors.len(), 2);
        assert!(errors[1][8].starts_with("line 4: email"), "{:?}", errors[1]);
        assert_eq!(errors[1][3], "katherine@example");
    }

    async fn a_chatwoot_export_with_labels_a_bom_and_a_ragged_row(store) {
        let org = with_base(store).await;
        let run = import(store, &org, &fixture("chatwoot.csv")).await;
        assert_eq!(counts(run.ok()), (6, 1, 3, 0, 2), "{:?}", run.summary);
        let linus = by_email(store, &org, "linus@example.com").await;
        assert_eq!(linus.name.as_deref(), Some("Linus Torvalds"));
        assert_eq!(linus.tags, ["kernel", "maintainer"]);
        assert_eq!(linus.metadata["country"], "US");
        assert!(linus.metadata.get("created_at").is_none() && linus.metadata.get("id").is_none());
        // Grace had no user_id: the identifier promotes her.
        let grace = by_email(store, &org, "grace@example.com").await;
        assert_eq!(grace.user_id.as_deref(), Some("u-10"));
        assert_eq!(grace.status.as_str(), "customer");
        assert_eq!(kinds(store, &org, &grace.id).await, ["promoted", "fields_updated", "created"]);
        // Ken twice (the second time by email, in capitals): one contact with both labels.
        let ken = by_email(store, &org, "ken@example.com").await;
        assert_eq!(ken.tags, ["unix", "go", "plan9"]);
        assert_eq!(kinds(store, &org, &ken.id).await, ["fields_updated", "created"]);
        let errors = run.errors();
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0][0], "id", "the BOM is not part of the first column's name");
        assert!(errors[1].last().unwrap().contains("line 5: the row has 3 cells, the header 10"), "{:?}", errors[1]);
        assert!(errors[2].last().unwrap().starts_with("line 7: tags"), "{:?}", errors[2]);
    }

    async fn importing_the_same_file_twice_changes_nothing(store) {
        let org = with_base(store).await;
        let run = import(store, &org, &fixture("base.csv")).await;
        assert_eq!(counts(run.ok()), (3, 0, 0, 3, 0));
        assert!(run.ok().errors_file.is_none() && !run.errors.exists());
    }

    async fn bad_files_are_refused_with_a_clear_message_and_nothing_written(store) {
        let org = new_org(store).await;
        let refused = |r: &Run| match &r.summary {
            Err(ImportError::Refused(m)) => m.clone(),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let m = refused(&import_text(store, &org, b"").await);
        assert!(m.contains("empty"), "{m}");
        let m = refused(&import_text(store, &org, b"ada@example.com,Ada\nb@example.com,B\n").await);
        assert!(m.contains("header"), "{m}");
        let m = refused(&import_text(store, &org, b"email,name\na@example.com,A\nb@example.com,B\xff\xfe\n").await);
        assert!(m.contains("line 3") && m.contains("UTF-8"), "{m}");
        let m = refused(&import_text(store, &org, b"email,name,Email Address\n").await);
        assert!(m.contains("same field"), "{m}");
        // The valid line before the bad one was not imported either: the check comes first.
        assert_eq!(store.org(&org).count_contacts(&ListFilter::default()).await.unwrap(), 0);
        // A header alone is a file with nothing to import.
        let run = import_text(store, &org, b"\xEF\xBB\xBFemail,name\r\n").await;
        assert_eq!(counts(run.ok()), (0, 0, 0, 0, 0));
    }

    async fn a_start_line_resumes_after_the_rows_already_imported(store) {
        let org = new_org(store).await;
        let dir = TempDir::new("resume");
        let file = dir.join("in.csv");
        std::fs::write(&file, "email\na@example.com\nb@example.com\nc@example.com\n").unwrap();
        let opts = ImportOptions {
            actor: Actor::System,
            errors_path: dir.join("errors.csv"),
            start_line: 3,
            stop: None,
        };
        let s = store.org(&org).import_csv(&file, &opts, &mut |_| {}).await.unwrap();
        assert_eq!((s.rows_read, s.created, s.committed_through_line), (2, 2, 4));
        assert_eq!(store.org(&org).count_contacts(&ListFilter::default()).await.unwrap(), 2);
    }

    async fn the_export_of_a_list_equals_paging_it_and_imports_back(store) {
        let org = new_org(store).await;
        let mut text = String::from("user_id,email,name,phone,company,tags,plan,seats,metadata\n");
        for i in 0..320 {
            let user = if i % 3 == 0 { format!("u{i}") } else { String::new() };
            let tags = match i % 4 { 0 => "vip, trial", 1 => "trial", 2 => r#"["a,b", "c"]"#, _ => "" };
            let name = if i % 7 == 0 { String::new() } else { format!("=Name {i}") };
            text.push_str(&format!(
                "{user},p{i}@example.com,{name},+1415555{i:04},Co {},\"{}\",{},{},\"{{\"\"score\"\": {}, \"\"beta\"\": {}}}\"\n",
                i % 5,
                tags.replace('"', "\"\""),
                ["free", "pro"][i % 2],
                i,
                i as f64 / 2.0,
                i % 2 == 0
            ));
        }
        let run = import_text(store, &org, text.as_bytes()).await;
        assert_eq!(counts(run.ok()), (320, 320, 0, 0, 0), "{:?}", run.summary);

        let filters = [
            (ListFilter::default(), Sort::default()),
            (ListFilter { tags_all: vec!["trial".into()], ..ListFilter::default() }, Sort::parse("name").unwrap()),
            (ListFilter { q: vec!["co 3".into()], ..ListFilter::default() }, Sort::parse("-created_at").unwrap()),
        ];
        for (filter, sort) in filters {
            let paged = all(store, &org, &filter, &sort, 37).await;
            let exported = export(store, &org, filter.clone(), sort).await;
            assert_eq!(exported[0], kith_core::import::EXPORT_COLUMNS);
            let ids: Vec<&str> = exported[1..].iter().map(|r| r[0].as_str()).collect();
            let want: Vec<&str> = paged.iter().map(|c| c.id.as_str()).collect();
            assert_eq!(ids, want, "same contacts in the same order for {filter:?}");
            assert!(!want.is_empty());
            // Each line is that contact, formulas neutralised.
            for (row, c) in exported[1..].iter().zip(&paged) {
                assert_eq!(row[2], c.email.clone().unwrap_or_default());
                assert_eq!(row[4], format!("'{}", c.phone.clone().unwrap()));
                if let Some(n) = &c.name {
                    assert_eq!(row[3], format!("'{n}"));
                }
            }
        }

        // Round trip: the export imported into a fresh organization gives the same profiles.
        let exported = export(store, &org, ListFilter::default(), Sort::parse("created_at").unwrap()).await;
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &exported {
            w.write_record(r).unwrap();
        }
        let other = new_org(store).await;
        let run = import_text(store, &other, &w.into_inner().unwrap()).await;
        assert_eq!(counts(run.ok()), (320, 320, 0, 0, 0), "{:?}", run.summary);
        let key = |c: &Contact| (c.email.clone(), c.user_id.clone(), c.name.clone(), c.phone.clone(), c.company.clone(), c.tags.clone(), c.metadata.clone(), c.status);
        let mut a: Vec<_> = all(store, &org, &ListFilter::default(), &Sort::default(), 200).await.iter().map(key).collect();
        let mut b: Vec<_> = all(store, &other, &ListFilter::default(), &Sort::default(), 200).await.iter().map(key).collect();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b);
        // Metadata values came back as the strings they were, the JSON cell read as JSON.
        assert!(a.iter().all(|c| c.6["plan"].is_string() && c.6["seats"].is_string()));
        assert!(a.iter().all(|c| c.6["score"].is_number() && c.6["beta"].is_boolean()));
    }
}

/// A command-line export (no contact index: one streamed query) writes the same file, line
/// for line, as the server's (pages of the index), in every order, with contacts that have
/// no value to sort by (no name) placed as the listing places them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_export_streams_the_file_the_server_pages() {
    let db = TestDb::new(Backend::Sqlite).await;
    let served = Store::open(&db.url).await.expect("open");
    let org = new_org(&served).await;
    let mut text = String::from("user_id,email,name,tags,company\n");
    for i in 0..2_345 {
        let name = if i % 5 == 0 {
            String::new()
        } else {
            format!("Name {:04}", (i * 7919) % 2_345)
        };
        let user = if i % 3 == 0 {
            format!("u{i}")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "{user},p{i}@example.com,{name},{},Co {}\n",
            ["vip", "trial", ""][i % 3],
            i % 4
        ));
    }
    let run = import_text(&served, &org, text.as_bytes()).await;
    assert_eq!(counts(run.ok()), (2_345, 2_345, 0, 0, 0));
    let cli = Store::open_with(&db.url, 2, kith_store::Access::Shared)
        .await
        .expect("open shared");
    let shapes = [
        (ListFilter::default(), Sort::default()),
        (ListFilter::default(), Sort::parse("name").unwrap()),
        (ListFilter::default(), Sort::parse("-name").unwrap()),
        (
            ListFilter {
                tags_all: vec!["vip".into()],
                ..ListFilter::default()
            },
            Sort::parse("-created_at").unwrap(),
        ),
        (
            ListFilter {
                q: vec!["co 3".into()],
                ..ListFilter::default()
            },
            Sort::parse("created_at").unwrap(),
        ),
    ];
    for (filter, sort) in shapes {
        let paged = export(&served, &org, filter.clone(), sort).await;
        let streamed = export(&cli, &org, filter.clone(), sort).await;
        assert!(
            paged.len() > 1 + EXPORT_PAGE_USIZE.min(400),
            "{filter:?}: {} lines",
            paged.len()
        );
        assert_eq!(streamed.len(), paged.len(), "{filter:?} {sort:?}");
        assert!(streamed == paged, "{filter:?} {sort:?}: the files differ");
    }
    cli.close().await;
    served.close().await;
}

const EXPORT_PAGE_USIZE: usize = kith_store::EXPORT_PAGE as usize;
