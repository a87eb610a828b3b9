//! `kith bench ingest`: visitor traffic over real HTTP against `kith serve` processes started
//! for the run, on a database already seeded (`kith seed`).
//!
//! The server runs as a child process (this same binary, `serve`), so its peak resident size
//! is its own and the load generator competes with it for the CPU exactly as `wrk` would on
//! the same machine. The run:
//!
//! 1. warm-up: `--warmup` visitors each open a session, identify with an email of their own
//!    and write a first message (they are the returning visitors, and their emails are what
//!    merging identifies name);
//! 2. `/healthz` with the same generator and concurrency, for the reference rate;
//! 3. the mix, for `--duration`: 70 % messages of returning visitors, 20 % first messages of
//!    new visitors (session, then the message), 10 % identifies of new visitors, half with an
//!    email a returning visitor's contact holds (their two contacts merge), half with a new one;
//! 4. the server stops, and the stored totals are checked against what was acknowledged:
//!    visitor messages added = messages answered 201, the counters equal the rows they count,
//!    contacts added = new visitors − merges, and no email held twice.

use anyhow::Context;
use kith_core::OrgId;
use kith_store::{Access, IngestTotals, Store};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct IngestArgs {
    pub db: String,
    pub org: String,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: usize,
    pub healthz: Duration,
    pub servers: usize,
    pub db_connections: u32,
    pub json: bool,
}

/// A visitor of the warm-up: it comes back during the mix.
struct Returning {
    token: String,
    conversation_id: String,
    email: String,
    contact_id: String,
}

/// A visitor whose first message was written during the mix: identifies pick from these.
struct Fresh {
    token: String,
    contact_id: String,
}

#[derive(Default)]
struct Tally {
    /// Latency of every message post (returning and first messages).
    messages: Vec<Duration>,
    first_messages: Vec<Duration>,
    identifies: Vec<Duration>,
    merges: u64,
    renames: u64,
    new_visitors: u64,
    errors: Vec<String>,
}

struct Shared {
    servers: Vec<String>,
    key: String,
    http: reqwest::Client,
    returning: Vec<Returning>,
    fresh: Mutex<Vec<Fresh>>,
    next_email: AtomicU64,
    run: String,
}

impl Shared {
    fn base(&self, i: usize) -> &str {
        &self.servers[i % self.servers.len()]
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn pcts(mut d: Vec<Duration>) -> Value {
    d.sort();
    json!({"n": d.len(), "p50": percentile(&d, 0.5), "p95": percentile(&d, 0.95),
           "p99": percentile(&d, 0.99), "max": percentile(&d, 1.0)})
}

/// A free port on 127.0.0.1 (bound then released; the server binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `kith serve` child process, killed if the bench fails before it stops it.
struct Server {
    child: tokio::process::Child,
    base: String,
}

impl Server {
    async fn start(args: &IngestArgs) -> anyhow::Result<Server> {
        let port = free_port()?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--db", &args.db, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "--rate-sessions-per-ip",
                "0",
                "--rate-visitor",
                "0",
                "--rate-failed-auth",
                "0",
                "--disable-demo",
                "--db-connections",
            ])
            .arg(args.db_connections.to_string())
            .env("KITH_LOG", "warn,sqlx=error")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting kith serve")?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak and current resident size in KiB, from /proc (Linux).
    fn rss_kib(&self) -> (u64, u64) {
        let Some(pid) = self.pid() else { return (0, 0) };
        let [peak, now] = crate::bench::status_kib(&pid.to_string(), ["VmHWM:", "VmRSS:"]);
        (peak, now)
    }

    /// SIGTERM (a clean shutdown, as an operator's), then wait.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

/// Waits until the server answers `/healthz` and its contact index is built (its gauge
/// appears on `/metrics`): the run measures the served state, not the start.
async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the server at {base} did not get ready"
        );
        let up = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            let metrics = match http.get(format!("{base}/metrics")).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if metrics.contains("kith_index_contacts") {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post(
    s: &Shared,
    server: usize,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value, String> {
    let mut r = s
        .http
        .post(format!("{}{path}", s.base(server)))
        .header("X-Kith-Website", &s.key);
    if let Some(t) = token {
        r = r.header("X-Kith-Visitor", t);
    }
    let r = r
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("{path}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

async fn session(s: &Shared, server: usize) -> Result<String, String> {
    let v = post(s, server, "/api/widget/v1/session", None, json!({})).await?;
    v["visitor_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "session: no visitor_token".to_string())
}

fn field(v: &Value, name: &str) -> Result<String, String> {
    v[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("answer without {name}"))
}

/// A warm-up visitor: session, identify with its own email, first message.
async fn warm_visitor(s: &Shared, i: usize) -> Result<Returning, String> {
    let token = session(s, i).await?;
    let email = format!("r{i}-{}@bench.invalid", s.run);
    post(
        s,
        i,
        "/api/widget/v1/identify",
        Some(&token),
        json!({"email": email, "name": format!("Returning {i}")}),
    )
    .await?;
    let m = post(
        s,
        i,
        "/api/widget/v1/messages",
        Some(&token),
        json!({"body": "hello, it's me again"}),
    )
    .await?;
    Ok(Returning {
        token,
        conversation_id: field(&m, "conversation_id")?,
        email,
        contact_id: field(&m, "contact_id")?,
    })
}

/// One worker of the mix: a closed loop (next request when the previous one answered).
async fn mix_worker(s: Arc<Shared>, worker: usize, until: Instant) -> Tally {
    use rand::{Rng, SeedableRng};
    let mut t = Tally::default();
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut n = worker;
    while Instant::now() < until {
        n += 1;
        let roll: u32 = rng.gen_range(0..100);
        let outcome: Result<(), String> = async {
            if roll < 70 {
                let r = &s.returning[rng.gen_range(0..s.returning.len())];
                let started = Instant::now();
                post(
                    &s,
                    n,
                    "/api/widget/v1/messages",
                    Some(&r.token),
                    json!({"body": format!("message {n} from a returning visitor"),
                           "conversation_id": r.conversation_id}),
                )
                .await?;
                t.messages.push(started.elapsed());
            } else if roll < 90 {
                let token = session(&s, n).await?;
                let started = Instant::now();
                let m = post(
                    &s,
                    n,
                    "/api/widget/v1/messages",
                    Some(&token),
                    json!({"body": "hi, first time here"}),
                )
                .await?;
                let took = started.elapsed();
                t.messages.push(took);
                t.first_messages.push(took);
                t.new_visitors += 1;
                let contact_id = field(&m, "contact_id")?;
                s.fresh
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Fresh { token, contact_id });
            } else {
                let fresh = s.fresh.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some(fresh) = fresh else {
                    // Nobody new to identify yet (the first moments of the run).
                    return Ok(());
                };
                let merge = rng.gen_bool(0.5);
                let (email, holder) = if merge {
                    let r = &s.returning[rng.gen_range(0..s.returning.len())];
                    (r.email.clone(), Some(r.contact_id.as_str()))
                } else {
                    let k = s.next_email.fetch_add(1, Ordering::Relaxed);
                    (format!("n{k}-{}@bench.invalid", s.run), None)
                };
                let started = Instant::now();
                let v = post(
                    &s,
                    n,
                    "/api/widget/v1/identify",
                    Some(&fresh.token),
                    json!({"email": email}),
                )
                .await?;
                t.identifies.push(started.elapsed());
                let landed = field(&v, "contact_id")?;
                match holder {
                    Some(h) if landed == h => t.merges += 1,
                    Some(h) => return Err(format!("merge landed on {landed}, not {h}")),
                    None if landed == fresh.contact_id => t.renames += 1,
                    None => return Err(format!("identify moved {} to {landed}", fresh.contact_id)),
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            t.errors.push(e);
        }
    }
    t
}

async fn totals(db: &str, org: &OrgId) -> anyhow::Result<IngestTotals> {
    let store = Store::open_with(db, 1, Access::Shared).await?;
    let t = store.org(org).ingest_totals().await;
    store.close().await;
    Ok(t?)
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let org = OrgId::new(&args.org);
    let sqlite = args.db.starts_with("sqlite:");
    let servers_wanted = if sqlite { 1 } else { args.servers.max(1) };
    let (key, before) = {
        let store = Store::open_with(&args.db, 1, Access::Shared)
            .await
            .context("opening the database")?;
        let websites = store.org(&org).websites().await?;
        let key = websites
            .first()
            .with_context(|| format!("organization {} has no website", args.org))?
            .website_key
            .clone();
        let before = store.org(&org).ingest_totals().await?;
        store.close().await;
        (key, before)
    };
    let mut servers = Vec::new();
    for _ in 0..servers_wanted {
        servers.push(Server::start(&args).await?);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let started_at = Instant::now();
    for s in &servers {
        wait_ready(&http, &s.base).await?;
    }
    let ready_after = started_at.elapsed();
    let run_id = kith_store::new_id().to_lowercase();
    let mut shared = Shared {
        servers: servers.iter().map(|s| s.base.clone()).collect(),
        key,
        http: http.clone(),
        returning: Vec::new(),
        fresh: Mutex::new(Vec::new()),
        next_email: AtomicU64::new(0),
        run: run_id,
    };

    // 1. Warm-up: the returning visitors.
    let warm = Arc::new(shared);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (s, next, total) = (warm.clone(), next.clone(), args.warmup.max(1) as u64);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                out.push(warm_visitor(&s, i as usize).await);
            }
            out
        }));
    }
    let mut returning = Vec::new();
    for t in tasks {
        for r in t.await? {
            returning.push(r.map_err(|e| anyhow::anyhow!("warm-up: {e}"))?);
        }
    }
    let warm_messages = returning.len() as i64;
    shared = Arc::try_unwrap(warm).map_err(|_| anyhow::anyhow!("warm-up tasks still running"))?;
    shared.returning = returning;
    let shared = Arc::new(shared);

    // 2. /healthz under the same generator.
    let until = Instant::now() + args.healthz;
    let healthz_ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        let (s, ok) = (shared.clone(), healthz_ok.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let r = s.http.get(format!("{}/healthz", s.base(w))).send().await;
                if let Ok(r) = r {
                    if r.status().is_success() && r.bytes().await.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let healthz_started = Instant::now();
    for t in tasks {
        t.await?;
    }
    let healthz_rate =
        healthz_ok.load(Ordering::Relaxed) as f64 / healthz_started.elapsed().as_secs_f64();

    // 3. The mix.
    let mix_started = Instant::now();
    let until = mix_started + args.duration;
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        tasks.push(tokio::spawn(mix_worker(shared.clone(), w, until)));
    }
    let mut tally = Tally::default();
    for t in tasks {
        let part = t.await?;
        tally.messages.extend(part.messages);
        tally.first_messages.extend(part.first_messages);
        tally.identifies.extend(part.identifies);
        tally.merges += part.merges;
        tally.renames += part.renames;
        tally.new_visitors += part.new_visitors;
        tally.errors.extend(part.errors);
    }
    let mix_seconds = mix_started.elapsed().as_secs_f64();
    let rss: Vec<(u64, u64)> = servers.iter().map(Server::rss_kib).collect();
    for s in servers {
        s.stop().await?;
    }

    // 4. Exactness.
    let after = totals(&args.db, &org).await?;
    let messages = tally.messages.len() as i64;
    let expected_messages = warm_messages + messages;
    let expected_contacts = warm_messages + tally.new_visitors as i64 - tally.merges as i64;
    let mut wrong = Vec::new();
    let mut check = |what: &str, got: i64, want: i64| {
        if got != want {
            wrong.push(format!("{what}: {got}, expected {want}"));
        }
    };
    check(
        "visitor messages added",
        after.visitor_messages - before.visitor_messages,
        expected_messages,
    );
    check(
        "contacts' message counters",
        after.contact_message_sum,
        after.visitor_messages,
    );
    check(
        "contacts' conversation counters",
        after.contact_conversation_sum,
        after.conversations,
    );
    check(
        "contacts added",
        after.contacts - before.contacts,
        expected_contacts,
    );
    check("emails held twice", after.duplicate_emails, 0);
    check("visitors linked to no contact", after.dangling_visitors, 0);
    let exact = wrong.is_empty();

    let rate = messages as f64 / mix_seconds;
    let ratio = if healthz_rate > 0.0 {
        rate / healthz_rate
    } else {
        0.0
    };
    let peak_mib: Vec<f64> = rss.iter().map(|r| r.0 as f64 / 1024.0).collect();
    let errors = tally.errors.len();
    let mut error_kinds: Vec<String> = tally.errors.iter().take(5).cloned().collect();
    error_kinds.dedup();
    let backend = if sqlite { "sqlite" } else { "postgres" };
    let report = json!({
        "backend": backend, "servers": servers_wanted, "concurrency": args.concurrency,
        "seconds": mix_seconds, "contacts_before": before.contacts,
        "messages": messages, "messages_per_second": rate,
        "message_ms": pcts(tally.messages),
        "first_message_ms": pcts(tally.first_messages),
        "identify_ms": pcts(tally.identifies),
        "identifies_merging": tally.merges, "identifies_new_email": tally.renames,
        "new_visitors": tally.new_visitors,
        "errors": errors, "first_errors": error_kinds,
        "healthz_per_second": healthz_rate, "messages_vs_healthz": ratio,
        "server_peak_rss_mib": peak_mib, "ready_after_seconds": ready_after.as_secs_f64(),
        "exact": exact, "mismatches": wrong,
    });
    if args.json {
        println!("{report}");
    } else {
        let m = &report["message_ms"];
        println!(
            "{backend}, {} contacts, {servers_wanted} server(s), {} concurrent clients, {:.1} s",
            before.contacts, args.concurrency, mix_seconds
        );
        println!(
            "  messages: {messages} = {rate:.0}/s  p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  (first messages p99 {:.2} ms)",
            m["p50"].as_f64().unwrap_or(0.0),
            m["p95"].as_f64().unwrap_or(0.0),
            m["p99"].as_f64().unwrap_or(0.0),
            report["first_message_ms"]["p99"].as_f64().unwrap_or(0.0),
        );
        println!(
            "  identifies: {} merging two contacts, {} with a new email, p99 {:.2} ms",
            tally.merges,
            tally.renames,
            report["identify_ms"]["p99"].as_f64().unwrap_or(0.0)
        );
        println!("  errors: {errors} {error_kinds:?}");
        println!(
            "  /healthz under the same generator: {healthz_rate:.0}/s; messages are {:.1} % of it",
            ratio * 100.0
        );
        println!(
            "  server peak RSS: {peak_mib:.0?} MiB (ready after {:.1} s)",
            ready_after.as_secs_f64()
        );
        if exact {
            println!("  data exact: visitor messages +{expected_messages} (= acknowledged), counters equal rows, contacts +{expected_contacts} (= new visitors − merges), no email held twice");
        } else {
            println!("  DATA NOT EXACT: {}", wrong.join("; "));
        }
    }
    anyhow::ensure!(
        exact,
        "the stored data does not match what was acknowledged"
    );
    Ok(())
}
