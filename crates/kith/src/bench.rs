//! `kith bench lists`: a fixed mix of list queries against a seeded database, timed in
//! process (store call to answer, no HTTP), with page + exact count and count alone per
//! query shape, and full-scan search as the baseline for indexed search; with `--http`, the
//! same shapes as the panel asks for them, through `GET /api/v1/contacts` of a server on
//! 127.0.0.1 (page and exact count in one answer). `kith bench contact`: what a contact's
//! page reads, for contacts sampled at random.

use anyhow::Context;
use kith_core::filter::{ListFilter, Sort};
use kith_core::{ListId, OrgId};
use kith_store::Store;
use serde_json::json;
use std::time::{Duration, Instant};

struct Shape {
    name: String,
    filter: ListFilter,
    sort: Sort,
    /// Pages to walk before timing (a deep cursor).
    depth: usize,
}

fn shape(name: &str, filter: ListFilter) -> Shape {
    Shape {
        name: name.into(),
        filter,
        sort: Sort::default(),
        depth: 0,
    }
}

fn tags(all: &[&str]) -> ListFilter {
    ListFilter {
        tags_all: all.iter().map(|t| t.to_string()).collect(),
        ..ListFilter::default()
    }
}

fn q(term: &str) -> ListFilter {
    ListFilter {
        q: vec![term.to_string()],
        ..ListFilter::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Stats {
    p50: f64,
    p95: f64,
    p99: f64,
}

fn stats(mut d: Vec<Duration>) -> Stats {
    d.sort();
    Stats {
        p50: percentile(&d, 0.50),
        p95: percentile(&d, 0.95),
        p99: percentile(&d, 0.99),
    }
}

/// Size fields (`VmRSS:`, `RssAnon:`, …) of a process's `/proc/PID/status` (`pid` "self"
/// for this one), in KiB, in the order asked; 0 where there is none (not Linux).
pub(crate) fn status_kib<const N: usize>(pid: &str, fields: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    fields.map(|field| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// A fresh admin of the organization for a bench to sign in as (the first admin's password
/// was shown once and is not known here): its id, email and password.
pub(crate) async fn bench_admin(
    store: &Store,
    org_id: &OrgId,
) -> anyhow::Result<(String, String, String)> {
    let email = format!(
        "bench-{}@kith.invalid",
        kith_store::new_secret()[..12].to_lowercase()
    );
    let password = kith_store::new_secret();
    let id = store
        .org(org_id)
        .add_admin(&email, &password)
        .await
        .map_err(|e| anyhow::anyhow!("adding the bench admin: {e}"))?;
    Ok((id, email, password))
}

/// `kith serve`'s router over the bench's store on 127.0.0.1 (a free port), in this process,
/// with the admin rate limits off; stopped by `stop`.
pub(crate) struct LocalServer {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalServer {
    pub async fn start(store: &Store) -> anyhow::Result<LocalServer> {
        use kith_server::state::AppState;
        use kith_server::{realtime::Bus, Config, Limits};
        let config = Config {
            limits: Limits {
                admin_per_second: 0,
                signin_per_minute: 0,
                ..Limits::default()
            },
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = AppState::new(store.clone(), Bus::new(), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(kith_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(LocalServer {
            base,
            stop: Some(stop),
            server,
        })
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.server.await;
    }
}

/// A server over the bench's store, and an admin session to ask it with.
struct HttpLists {
    server: LocalServer,
    cookie: String,
    client: reqwest::Client,
}

impl HttpLists {
    async fn start(store: &Store, org_id: &OrgId) -> anyhow::Result<HttpLists> {
        let (admin_id, _, _) = bench_admin(store, org_id).await?;
        let session = store
            .create_admin_session(org_id, &admin_id, kith_store::SessionPolicy::default())
            .await?;
        Ok(HttpLists {
            server: LocalServer::start(store).await?,
            cookie: session.cookie,
            client: reqwest::Client::new(),
        })
    }

    /// One page of 50 as the panel asks for it: the answer's exact total and next cursor.
    async fn page(&self, s: &Shape, cursor: Option<&str>) -> anyhow::Result<(i64, Option<String>)> {
        let mut query = vec![
            ("filter", s.filter.to_json().to_string()),
            ("sort", s.sort.as_str()),
            ("limit", "50".to_string()),
        ];
        if let Some(c) = cursor {
            query.push(("cursor", c.to_string()));
        }
        let answer = self
            .client
            .get(format!("{}/api/v1/contacts", self.server.base))
            .query(&query)
            .header(
                reqwest::header::COOKIE,
                format!("kith_session={}", self.cookie),
            )
            .send()
            .await?;
        let status = answer.status();
        let body: serde_json::Value = answer.json().await?;
        anyhow::ensure!(status.is_success(), "{} answered {status}: {body}", s.name);
        let total = body["total"]
            .as_i64()
            .with_context(|| format!("{}: no total in the answer", s.name))?;
        Ok((total, body["next_cursor"].as_str().map(str::to_string)))
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// One page of 50 of `s` after `cursor`, through `http` when given, else from the store: its
/// exact total and the next cursor.
async fn page(
    org: kith_store::OrgStore<'_>,
    http: Option<&HttpLists>,
    s: &Shape,
    cursor: Option<&str>,
) -> anyhow::Result<(Option<i64>, Option<String>)> {
    match http {
        Some(h) => {
            let (total, next) = h.page(s, cursor).await?;
            Ok((Some(total), next))
        }
        None => {
            let p = org
                .list_contacts(&s.filter, &s.sort, cursor, 50)
                .await
                .with_context(|| format!("query shape {}", s.name))?;
            Ok((p.total, p.next_cursor))
        }
    }
}

/// How `kith bench lists` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Store calls in process.
    Store,
    /// `GET /api/v1/contacts` of a server on 127.0.0.1, as the panel asks.
    Http,
}

pub async fn lists(
    store: &Store,
    org_id: &OrgId,
    iterations: usize,
    json_out: bool,
    opened: Duration,
    via: Via,
    clients: usize,
) -> anyhow::Result<()> {
    let index = store.contact_index_size();
    anyhow::ensure!(
        clients == 1 || via == Via::Http,
        "several clients at once ask through HTTP: add --http"
    );
    let org = store.org(org_id);
    let total = org.count_contacts(&ListFilter::default()).await?;
    anyhow::ensure!(
        total > 0,
        "organization {org_id} has no contacts; run `kith seed` first"
    );
    let leads = org.list_filter(&ListId::new("leads")).await?;
    let customers = org.list_filter(&ListId::new("customers")).await?;
    let mut combined = customers.clone().and(tags(&["enterprise"]));
    combined.q.push("son".into());
    let mut shapes = vec![
        shape("list all", ListFilter::default()),
        shape("list leads", leads),
        shape("list customers", customers),
        shape("tag enterprise", tags(&["enterprise"])),
        shape("tags trial + newsletter", tags(&["trial", "newsletter"])),
        shape(
            "tags any churned|vip",
            ListFilter {
                tags_any: vec![vec!["churned".into(), "vip".into()]],
                ..ListFilter::default()
            },
        ),
        shape(
            "tags none newsletter",
            ListFilter {
                tags_none: vec!["newsletter".into()],
                ..ListFilter::default()
            },
        ),
        shape("customer + enterprise + q 'son'", combined),
        shape("q 2 chars 'an'", q("an")),
        shape("q 3 chars 'hop'", q("hop")),
        shape("q 8 chars 'lovelace'", q("lovelace")),
        shape("q non-ASCII 'ström'", q("ström")),
    ];
    shapes.push(Shape {
        sort: Sort::parse("name")?,
        ..shape("sort name", ListFilter::default())
    });
    shapes.push(Shape {
        depth: 50,
        ..shape("page 51 of list all", ListFilter::default())
    });
    shapes.push(Shape {
        sort: Sort::parse("name")?,
        depth: 200,
        ..shape("page 201 by name, tag trial", tags(&["trial"]))
    });

    let http = match via {
        Via::Http => Some(HttpLists::start(store, org_id).await?),
        Via::Store => None,
    };
    let counts_timed = via == Via::Store;
    let mut results = vec![];
    if !json_out {
        println!(
            "{} contacts, {} backend, {iterations} runs per shape{}, page of 50{}\n",
            total,
            store.backend_name(),
            match clients {
                1 => String::new(),
                n => format!(" by each of {n} clients at once"),
            },
            match via {
                Via::Http => ", through HTTP (GET /api/v1/contacts: page and exact count)",
                Via::Store => ", in process",
            }
        );
        match &index {
            Some((contacts, m)) => {
                let mib = |b: u64| b as f64 / (1 << 20) as f64;
                let [anon, resident] = status_kib("self", ["RssAnon:", "VmRSS:"]);
                println!(
                    "opened in {:.2} s, building the contact index: {contacts} contacts, {:.0} MiB \
                     (ids {:.0}, columns {:.0}, texts {:.0}, per-contact sets {:.0}, bitmaps {:.0}, \
                     search grams {:.0}); this process: {:.0} MiB anonymous, {:.0} MiB resident\n",
                    opened.as_secs_f64(),
                    mib(m.total()),
                    mib(m.ids),
                    mib(m.columns),
                    mib(m.texts),
                    mib(m.contact_sets),
                    mib(m.bitmaps),
                    mib(m.grams),
                    anon as f64 / 1024.0,
                    resident as f64 / 1024.0,
                )
            }
            None => println!(
                "opened in {:.2} s; lists answered by SQL\n",
                opened.as_secs_f64()
            ),
        }
        match via {
            Via::Store => println!(
                "{:<34} {:>9} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
                "shape", "matches", "p50 ms", "p95 ms", "p99 ms", "count50", "count95", "count99"
            ),
            Via::Http => println!(
                "{:<34} {:>9} {:>8} {:>8} {:>8}",
                "shape", "matches", "p50 ms", "p95 ms", "p99 ms"
            ),
        }
    }
    for s in &shapes {
        // Walk to the page this shape times.
        let mut cursor: Option<String> = None;
        for _ in 0..s.depth {
            cursor = page(org, http.as_ref(), s, cursor.as_deref()).await?.1;
        }
        let mut page_times = vec![];
        let mut count_times = vec![];
        let mut matches = 0;
        // With several clients the timed runs are theirs (below); these warm up and check.
        let serial = if clients > 1 { 0 } else { iterations };
        for i in 0..serial + 3 {
            // Through HTTP the page's answer is the count; in process it is timed alone too.
            let check = counts_timed || i == 0;
            let before = if check {
                Some(org.count_contacts(&s.filter).await?)
            } else {
                None
            };
            let t = Instant::now();
            let (total, _) = page(org, http.as_ref(), s, cursor.as_deref()).await?;
            let page_time = t.elapsed();
            let t = Instant::now();
            let after = if check {
                Some(org.count_contacts(&s.filter).await?)
            } else {
                None
            };
            let count_time = t.elapsed();
            // The page's total is the exact count, unless a writer beside the bench (another
            // process on the same PostgreSQL database) moved the count meanwhile.
            if let (Some(before), Some(after)) = (before, after) {
                anyhow::ensure!(
                    before != after || total == Some(after),
                    "count mismatch in {}: the page says {total:?}, a count {after}",
                    s.name
                );
            }
            matches = total.unwrap_or_default();
            if i >= 3 {
                page_times.push(page_time);
                if counts_timed {
                    count_times.push(count_time);
                }
            }
        }
        if let (Some(h), true) = (http.as_ref(), clients > 1) {
            // Each client asks `iterations` times, one request after another; all at once.
            let cursor = cursor.as_deref();
            let runs = (0..clients).map(|_| async move {
                let mut times = Vec::with_capacity(iterations);
                for _ in 0..iterations {
                    let t = Instant::now();
                    h.page(s, cursor).await?;
                    times.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(times)
            });
            page_times = futures::future::try_join_all(runs).await?.concat();
        }
        let p = stats(page_times);
        let c = counts_timed.then(|| stats(count_times));
        if !json_out {
            match &c {
                Some(c) => println!(
                    "{:<34} {:>9} {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2}",
                    s.name, matches, p.p50, p.p95, p.p99, c.p50, c.p95, c.p99
                ),
                None => println!(
                    "{:<34} {:>9} {:>8.2} {:>8.2} {:>8.2}",
                    s.name, matches, p.p50, p.p95, p.p99
                ),
            }
        }
        results.push(json!({"shape": s.name, "matches": matches,
            "page_and_count_ms": {"p50": p.p50, "p95": p.p95, "p99": p.p99},
            "count_ms": c.map(|c| json!({"p50": c.p50, "p95": c.p95, "p99": c.p99}))}));
    }

    // Indexed search against a full scan, on the same data.
    let mut comparisons = vec![];
    if !json_out {
        println!("\nsearch count: indexed vs full-scan LIKE");
    }
    for term in ["an", "hop", "lovelace"] {
        let filter = q(term);
        let mut indexed = vec![];
        let mut scan = vec![];
        let runs = (iterations / 10).max(3);
        for _ in 0..runs {
            let t = Instant::now();
            let a = org.count_contacts(&filter).await?;
            indexed.push(t.elapsed());
            let t = Instant::now();
            let b = org.count_search_by_scan(term).await?;
            scan.push(t.elapsed());
            anyhow::ensure!(
                a == b,
                "indexed search found {a}, the scan {b} for {term:?}"
            );
        }
        let i = stats(indexed);
        let s = stats(scan);
        let speedup = s.p50 / i.p50.max(0.001);
        if !json_out {
            println!(
                "  q {:<10} indexed p50 {:>8.2} ms   scan p50 {:>8.2} ms   {:>6.1}x",
                format!("{term:?}"),
                i.p50,
                s.p50,
                speedup
            );
        }
        comparisons.push(json!({"term": term, "indexed_p50_ms": i.p50, "scan_p50_ms": s.p50, "speedup": speedup}));
    }
    if let Some(h) = http {
        h.stop().await;
    }
    if json_out {
        println!(
            "{}",
            json!({"contacts": total, "backend": store.backend_name(), "iterations": iterations,
                   "clients": clients,
                   "via": match via { Via::Http => "http", Via::Store => "store" },
                   "open_seconds": opened.as_secs_f64(),
                   "index": index.map(|(n, m)| json!({"contacts": n, "bytes": m.total(), "by_part": m})),
                   "process_rss_anon_kib": status_kib("self", ["RssAnon:"])[0],
                   "shapes": results, "search_vs_scan": comparisons})
        );
    }
    Ok(())
}

/// `kith bench contact`: for `iterations` contacts sampled at random, times the profile
/// (`GET /api/v1/contacts/{id}`), the first timeline page of 50 and the first page of 20
/// conversations, each read once per contact, in process.
pub async fn contact(
    store: &Store,
    org_id: &OrgId,
    iterations: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let org = store.org(org_id);
    let ids = org.sample_contact_ids(iterations as i64).await?;
    anyhow::ensure!(
        !ids.is_empty(),
        "organization {org_id} has no contacts; run `kith seed` first"
    );
    let (mut profile, mut timeline, mut conversations) = (vec![], vec![], vec![]);
    // The timeline reads that filled a page: contacts with a long history.
    let mut full_timeline = vec![];
    let (mut entries, mut with_conversations) = (0usize, 0usize);
    for (i, id) in ids.iter().enumerate() {
        let t = Instant::now();
        org.contact(id).await?;
        let a = t.elapsed();
        let t = Instant::now();
        let events = org.timeline(id, None, 50).await?;
        let b = t.elapsed();
        let t = Instant::now();
        let convs = org.contact_conversations(id, None, 20).await?;
        let c = t.elapsed();
        entries += events.items.len();
        with_conversations += usize::from(!convs.items.is_empty());
        // The first few warm the caches and the prepared statements.
        if i >= 3 || ids.len() <= 3 {
            profile.push(a);
            timeline.push(b);
            conversations.push(c);
            if events.items.len() == 50 {
                full_timeline.push(b);
            }
        }
    }
    let full_pages = full_timeline.len();
    let mut rows = vec![
        ("contact profile", stats(profile)),
        ("timeline, first 50", stats(timeline)),
        ("conversations, first 20", stats(conversations)),
    ];
    if full_pages > 0 {
        rows.push(("timeline, full pages only", stats(full_timeline)));
    }
    if json_out {
        let calls: Vec<_> = rows
            .iter()
            .map(|(name, s)| json!({"call": name, "p50_ms": s.p50, "p95_ms": s.p95, "p99_ms": s.p99}))
            .collect();
        println!(
            "{}",
            json!({"backend": store.backend_name(), "contacts_sampled": ids.len(),
                   "with_conversations": with_conversations,
                   "timeline_entries_read": entries, "timeline_full_pages": full_pages,
                   "calls": calls})
        );
    } else {
        println!(
            "{} contacts sampled at random ({} with conversations, {:.1} timeline entries a page, \
             {} full pages of 50), {} backend\n",
            ids.len(),
            with_conversations,
            entries as f64 / ids.len() as f64,
            full_pages,
            store.backend_name()
        );
        println!(
            "{:<26} {:>8} {:>8} {:>8}",
            "call", "p50 ms", "p95 ms", "p99 ms"
        );
        for (name, s) in &rows {
            println!("{:<26} {:>8.2} {:>8.2} {:>8.2}", name, s.p50, s.p95, s.p99);
        }
    }
    Ok(())
}
