//! `kith bench panel`: the admin panel's latency and weight, measured in a real headless
//! Chromium (through chromedriver) with the browser's own Performance API, against an
//! in-process server on 127.0.0.1 over a seeded organization.
//!
//! Why inside the CLI and not a separate binary: the bench needs the server in process (as
//! `bench ingest` does) and a WebDriver client; fantoccini without its TLS features is a small
//! pure-Rust dependency (hyper over plain HTTP to a local chromedriver), already built for the
//! browser tests, so `kith bench panel` costs the binary little and cannot drift from it.
//!
//! What is measured, all as the browser's clock reads it:
//! - **navigation → interactive**: a full load of `/` (the contacts page: list counts plus the
//!   first page of 50) with the assets cached, from navigation start to the `kith:ready` mark
//!   `panel.js` sets once htmx has bound the page's controls (after `DOMContentLoaded`); the
//!   server's part (`responseStart`) and `domInteractive` are reported beside it;
//! - **keystroke → rows visible**: one real key press (WebDriver) into the search box, from
//!   the `keydown` event to the animation frame after htmx swapped in the rows answering the
//!   box's value — the debounce included;
//! - **weight**: a cold load of `/` (browser cache cleared through the DevTools protocol):
//!   the HTML, CSS and JS bytes as transferred (`transferSize`, headers included) and as
//!   encoded bodies (`encodedBodySize`: gzip when the server compressed).

use anyhow::Context;
use fantoccini::{Client, ClientBuilder, Locator};
use kith_core::filter::ListFilter;
use kith_core::OrgId;
use kith_store::Store;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one browser step may take before the bench gives up.
const WAIT: Duration = Duration::from_secs(30);

/// The words typed, one key at a time, then erased one key at a time (every key is a sample;
/// chosen to hit names, emails and companies in `kith seed`'s data, with short and long terms).
const TERMS: &[&str] = &["ada", "lovelace", "hopper", "son", "acme"];

pub struct Options {
    pub runs: usize,
    pub rounds: usize,
    pub chromedriver: String,
    pub chromium: Option<String>,
    pub json: bool,
}

/// chromedriver, killed when dropped (the bench's own child process only).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(path: &str) -> anyhow::Result<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .arg("--log-level=SEVERE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {path} (install Debian's chromium and chromium-driver, or pass \
                 --chromedriver)"
            )
        })?;
    Ok(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn open_browser(driver: &Driver, chromium: Option<&str>) -> anyhow::Result<Client> {
    let mut chrome = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--password-store=basic",
        ]
    });
    let binary = chromium.map(str::to_string).or_else(|| {
        std::path::Path::new("/usr/bin/chromium")
            .exists()
            .then(|| "/usr/bin/chromium".to_string())
    });
    if let Some(b) = binary {
        chrome["binary"] = json!(b);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), chrome);
    caps.insert(
        "timeouts".into(),
        json!({"implicit": 0, "pageLoad": WAIT.as_millis() as u64, "script": WAIT.as_millis() as u64}),
    );
    let started = Instant::now();
    // chromedriver needs a moment to listen; retry the session until it does.
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(c) => return Ok(c),
            Err(e) if started.elapsed() > WAIT => {
                anyhow::bail!("could not open a Chromium session through chromedriver: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A DevTools command through chromedriver's `goog/cdp/execute` (to clear the cache).
async fn cdp(driver: &Driver, client: &Client, cmd: &str) -> anyhow::Result<()> {
    let id = client
        .session_id()
        .await?
        .context("a WebDriver session id")?;
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .post(format!("{}/session/{id}/goog/cdp/execute", driver.url))
        .json(&json!({"cmd": cmd, "params": {}}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "{cmd} answered {}", r.status());
    Ok(())
}

async fn run(client: &Client, script: &str) -> anyhow::Result<Value> {
    Ok(
        tokio::time::timeout(WAIT, client.execute_async(script, vec![]))
            .await
            .context("a browser script timed out")??,
    )
}

async fn goto(client: &Client, url: &str) -> anyhow::Result<()> {
    tokio::time::timeout(WAIT, client.goto(url))
        .await
        .with_context(|| format!("{url} did not load"))??;
    Ok(())
}

/// The page's navigation timing and resources, once the load event ended and `kith:ready`
/// was marked.
const NAV_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
(function poll() {
  const n = performance.getEntriesByType('navigation')[0];
  const ready = performance.getEntriesByName('kith:ready')[0];
  if (!n || n.loadEventEnd === 0 || !ready) { setTimeout(poll, 5); return; }
  done({
    response_start: n.responseStart,
    response_end: n.responseEnd,
    dom_interactive: n.domInteractive,
    dom_content_loaded: n.domContentLoadedEventEnd,
    ready: ready.startTime,
    load: n.loadEventEnd,
    path: location.pathname + location.search,
    rows: document.querySelectorAll('#results tbody tr').length,
    resources: [{name: n.name, kind: 'document', transfer: n.transferSize,
                 encoded: n.encodedBodySize, decoded: n.decodedBodySize}]
      .concat(performance.getEntriesByType('resource').map(r => ({
        name: r.name, kind: r.initiatorType, transfer: r.transferSize,
        encoded: r.encodedBodySize, decoded: r.decodedBodySize}))),
  });
})();
"#;

/// Installs the keystroke probe: `keydown` on the search box starts a sample; the first htmx
/// swap whose request carried the box's current value ends it at the next animation frame
/// (the frame that paints the rows).
const PROBE_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
const box = document.getElementById('search');
if (!box) { done(false); return; }
window.__kithBench = {samples: [], pending: null};
box.addEventListener('keydown', () => {
  window.__kithBench.pending = performance.now();
}, true);
document.addEventListener('htmx:afterSwap', (e) => {
  const b = window.__kithBench;
  if (b.pending === null) return;
  const url = new URL(e.detail.xhr.responseURL, location.href);
  if ((url.searchParams.get('q') || '') !== box.value) return;
  const t0 = b.pending;
  b.pending = null;
  const swapped = performance.now();
  // The request's own timing: when it left (after the debounce) and when its answer ended.
  const r = performance.getEntriesByType('resource')
    .filter(e => e.name === url.href).pop();
  requestAnimationFrame(() => {
    const end = performance.now();
    b.samples.push({q: box.value, ms: end - t0,
                    debounce_ms: r ? r.startTime - t0 : null,
                    request_ms: r ? r.responseEnd - r.startTime : null,
                    swap_ms: r ? end - r.responseEnd : null,
                    rows: document.querySelectorAll('#results tbody tr').length});
  });
});
done(true);
"#;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// p50 / p95 / max of milliseconds, as JSON.
fn summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(|a, b| a.total_cmp(b));
    json!({
        "n": ms.len(),
        "p50_ms": percentile(&ms, 0.50),
        "p95_ms": percentile(&ms, 0.95),
        "max_ms": ms.last().copied().unwrap_or(0.0),
    })
}

/// Sums a cold load's resources by kind (html / css / js).
fn weight(nav: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let mut total = (0u64, 0u64, 0u64);
    for r in nav["resources"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap_or_default();
        let path = name.split('?').next().unwrap_or_default();
        let kind = if r["kind"] == "document" {
            "html"
        } else if path.ends_with(".css") {
            "css"
        } else if path.ends_with(".js") {
            "js"
        } else {
            continue;
        };
        let (t, e, d) = (
            r["transfer"].as_u64().unwrap_or(0),
            r["encoded"].as_u64().unwrap_or(0),
            r["decoded"].as_u64().unwrap_or(0),
        );
        let entry = out.entry(kind).or_insert_with(
            || json!({"transfer_bytes": 0, "encoded_bytes": 0, "decoded_bytes": 0}),
        );
        for (k, v) in [
            ("transfer_bytes", t),
            ("encoded_bytes", e),
            ("decoded_bytes", d),
        ] {
            entry[k] = json!(entry[k].as_u64().unwrap_or(0) + v);
        }
        total = (total.0 + t, total.1 + e, total.2 + d);
    }
    out.insert(
        "total".into(),
        json!({"transfer_bytes": total.0, "encoded_bytes": total.1, "decoded_bytes": total.2}),
    );
    Value::Object(out)
}

/// Runs the bench against organization `org_id` of `store` and answers the report (printed
/// as one JSON line with `--json`, as a table otherwise).
pub async fn panel(store: Store, org_id: &OrgId, opts: &Options) -> anyhow::Result<Value> {
    let org = store.org(org_id);
    let contacts = org.count_contacts(&ListFilter::default()).await?;
    anyhow::ensure!(
        contacts > 0,
        "organization {org_id} has no contacts; run `kith seed` first"
    );
    let (_, email, password) = crate::bench::bench_admin(&store, org_id).await?;
    let server = crate::bench::LocalServer::start(&store).await?;
    let base = server.base.clone();

    let driver = start_driver(&opts.chromedriver)?;
    let client = open_browser(&driver, opts.chromium.as_deref()).await?;
    let measured = measure(&driver, &client, &base, &email, &password, opts).await;
    let _ = client.close().await;
    drop(driver);
    server.stop().await;
    let (nav, keys, cold) = measured?;

    let interactive = summary(
        nav.iter()
            .map(|n| n["ready"].as_f64().unwrap_or(0.0))
            .collect(),
    );
    let report = json!({
        "backend": store.backend_name(),
        "contacts": contacts,
        "runs": nav.len(),
        "navigation": {
            "interactive": interactive,
            "dom_interactive": summary(nav.iter().map(|n| n["dom_interactive"].as_f64().unwrap_or(0.0)).collect()),
            "response_start": summary(nav.iter().map(|n| n["response_start"].as_f64().unwrap_or(0.0)).collect()),
            "load": summary(nav.iter().map(|n| n["load"].as_f64().unwrap_or(0.0)).collect()),
        },
        "keystroke": summary(keys.iter().map(|k| k["ms"].as_f64().unwrap_or(0.0)).collect()),
        // Where a keystroke's time goes: the debounce (keydown to the request leaving), the
        // request (to its last byte), then htmx's swap and the frame that paints the rows.
        "keystroke_parts": {
            "debounce": summary(keys.iter().filter_map(|k| k["debounce_ms"].as_f64()).collect()),
            "request": summary(keys.iter().filter_map(|k| k["request_ms"].as_f64()).collect()),
            "swap_and_paint": summary(keys.iter().filter_map(|k| k["swap_ms"].as_f64()).collect()),
        },
        "cold_load": {
            "interactive_ms": cold["ready"],
            "weight": weight(&cold),
        },
        "targets": {"interactive_ms": 300, "keystroke_ms": 150},
    });
    if opts.json {
        println!("{report}");
    } else {
        print_report(&report);
    }
    Ok(report)
}

async fn measure(
    driver: &Driver,
    client: &Client,
    base: &str,
    email: &str,
    password: &str,
    opts: &Options,
) -> anyhow::Result<(Vec<Value>, Vec<Value>, Value)> {
    // Sign in through the form, as an admin does.
    goto(client, &format!("{base}/signin")).await?;
    client
        .find(Locator::Id("email"))
        .await
        .context("the sign-in form's email field")?
        .send_keys(email)
        .await?;
    client
        .find(Locator::Id("password"))
        .await?
        .send_keys(password)
        .await?;
    client
        .find(Locator::Css("form button[type=submit]"))
        .await?
        .click()
        .await?;
    let started = Instant::now();
    while client.current_url().await?.path() != "/" {
        anyhow::ensure!(
            started.elapsed() < WAIT,
            "the sign-in did not reach the panel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Cold: nothing cached (the sign-in page shares the stylesheet).
    cdp(driver, client, "Network.clearBrowserCache").await?;
    goto(client, &format!("{base}/")).await?;
    let cold = run(client, NAV_SCRIPT).await?;
    anyhow::ensure!(
        cold["rows"].as_u64().unwrap_or(0) > 0,
        "the contacts page showed no rows: {cold}"
    );

    // Warm navigations: two untimed, then `runs` timed.
    let mut nav = Vec::with_capacity(opts.runs);
    for i in 0..opts.runs + 2 {
        goto(client, &format!("{base}/")).await?;
        let n = run(client, NAV_SCRIPT).await?;
        if i >= 2 {
            nav.push(n);
        }
    }

    // Keystrokes: each term typed a key at a time, then erased a key at a time; the next key
    // only after the previous one's rows are shown (one sample per key).
    anyhow::ensure!(
        run(client, PROBE_SCRIPT).await? == json!(true),
        "the contacts page has no search box"
    );
    let search = client.find(Locator::Id("search")).await?;
    let mut expected = 0usize;
    for _ in 0..opts.rounds {
        for term in TERMS {
            let mut strokes: Vec<&str> = term
                .char_indices()
                .map(|(i, c)| &term[i..i + c.len_utf8()])
                .collect();
            let erase = vec!["\u{e003}"; strokes.len()]; // WebDriver's Backspace
            strokes.extend(erase);
            for key in strokes {
                search.send_keys(key).await?;
                expected += 1;
                let started = Instant::now();
                loop {
                    let got = run(
                        client,
                        "arguments[arguments.length - 1](window.__kithBench.samples.length)",
                    )
                    .await?;
                    if got.as_u64().unwrap_or(0) as usize >= expected {
                        break;
                    }
                    anyhow::ensure!(
                        started.elapsed() < WAIT,
                        "the table never showed the rows of a keystroke"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // Let the page settle (history push, focus) before the next key.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let samples = run(
        client,
        "arguments[arguments.length - 1](window.__kithBench.samples)",
    )
    .await?;
    let keys = samples.as_array().cloned().unwrap_or_default();
    Ok((nav, keys, cold))
}

fn print_report(r: &Value) {
    let line = |label: &str, s: &Value| {
        println!(
            "  {label:<34} n {:>4}   p50 {:>7.1} ms   p95 {:>7.1} ms   max {:>7.1} ms",
            s["n"],
            s["p50_ms"].as_f64().unwrap_or(0.0),
            s["p95_ms"].as_f64().unwrap_or(0.0),
            s["max_ms"].as_f64().unwrap_or(0.0)
        )
    };
    println!(
        "Admin panel, {} contacts on {}, headless Chromium:",
        r["contacts"], r["backend"]
    );
    line("navigation -> interactive", &r["navigation"]["interactive"]);
    line(
        "  (server: response start)",
        &r["navigation"]["response_start"],
    );
    line("  (domInteractive)", &r["navigation"]["dom_interactive"]);
    line("keystroke -> rows visible", &r["keystroke"]);
    line(
        "  (keydown -> request sent)",
        &r["keystroke_parts"]["debounce"],
    );
    line(
        "  (request -> response end)",
        &r["keystroke_parts"]["request"],
    );
    line(
        "  (response -> rows painted)",
        &r["keystroke_parts"]["swap_and_paint"],
    );
    println!(
        "  cold load: interactive {:.1} ms",
        r["cold_load"]["interactive_ms"].as_f64().unwrap_or(0.0)
    );
    if let Some(w) = r["cold_load"]["weight"].as_object() {
        for (kind, v) in w {
            println!(
                "    {kind:<6} transferred {:>7} B   body (encoded) {:>7} B   decoded {:>7} B",
                v["transfer_bytes"], v["encoded_bytes"], v["decoded_bytes"]
            );
        }
    }
    println!("  targets: interactive <= 300 ms, keystroke <= 150 ms");
}
