//! Browser tests in a real headless Chromium, driven over WebDriver (fantoccini).
//!
//! One `chromedriver` per test binary, started on a free port the first time a test opens a
//! browser and stopped when the binary exits (it runs under a small `sh` that kills it when
//! our end of its stdin closes, which happens however the process ends). Each test opens its
//! own Chromium session ([`Browser::open`]), so tests run in parallel.
//!
//! Tests find elements as a person does, by role and accessible name: [`button`],
//! [`textbox`], [`link`], [`alert`], [`status`], [`heading`]. Each query is an XPath over the
//! element's text, `aria-label` or `<label for>`, and the element found is then checked
//! against Chromium's own computed accessibility (WebDriver `computedrole` and
//! `computedlabel`), so a control without a proper accessible name fails the test.
//!
//! Every wait is bounded by [`WAIT`]: a browser test cannot hang the suite. A missing
//! `chromedriver` fails the test, naming the fix; it is never skipped.
#![allow(dead_code)]

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The longest any step waits: an element to appear, a page to load, the driver to start.
pub const WAIT: Duration = Duration::from_secs(10);

/// The one chromedriver of this test binary.
struct Driver {
    url: String,
    /// Held open for the life of the process: when it closes, the wrapper kills chromedriver.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static DRIVER: OnceLock<Driver> = OnceLock::new();

const INSTALL: &str = "install Debian's chromium and chromium-driver \
     (apt-get install -y chromium chromium-driver; .ci/run does it when they are missing)";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A blocking HTTP request to chromedriver (for start-up and for closing sessions from
/// `Drop`, where nothing async can run). Answers the status code.
fn raw_http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(WAIT))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // Only the status line is read: chromedriver may keep the connection open.
    let mut status_line = String::new();
    std::io::BufReader::new(s).read_line(&mut status_line)?;
    Ok(status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn driver() -> &'static Driver {
    DRIVER.get_or_init(|| {
        let found = Command::new("chromedriver")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !found.is_ok_and(|s| s.success()) {
            panic!("chromedriver was not found on PATH: {INSTALL}");
        }
        let port = free_port();
        // `sh` starts chromedriver, then waits for its stdin to close (this process ended,
        // whichever way) and kills it: no chromedriver outlives the test binary.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "chromedriver --port={port} --log-level=SEVERE >/dev/null 2>&1 & cd=$!; \
                 cat >/dev/null; kill $cd 2>/dev/null"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start chromedriver ({e}): {INSTALL}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let started = Instant::now();
        loop {
            if raw_http(port, "GET", "/status").is_ok_and(|c| c == 200) {
                break;
            }
            if started.elapsed() > WAIT {
                panic!("chromedriver did not answer on port {port} within {WAIT:?}: {INSTALL}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            url: format!("http://127.0.0.1:{port}"),
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    })
}

/// What to find: a role and an accessible name, and the XPath that finds candidates.
#[derive(Clone, Debug)]
pub struct Query {
    pub role: &'static str,
    pub name: String,
    xpath: String,
}

/// An XPath string literal for any text (XPath 1.0 has no escapes).
fn lit(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// A `<button>` (or submit input) named `name`.
pub fn button(name: &str) -> Query {
    let n = lit(name);
    Query {
        role: "button",
        name: name.into(),
        xpath: format!(
            "//button[normalize-space(.)={n} or @aria-label={n}] \
             | //input[(@type='submit' or @type='button') and (@value={n} or @aria-label={n})]"
        ),
    }
}

/// A text field (text, email, password, search, textarea) labelled `name` by a `<label for>`
/// or `aria-label`.
pub fn textbox(name: &str) -> Query {
    let n = lit(name);
    let kinds = "(not(@type) or @type='text' or @type='email' or @type='password' \
                 or @type='search' or @type='tel' or @type='url')";
    Query {
        role: "textbox",
        name: name.into(),
        xpath: format!(
            "//input[{kinds} and (@id = //label[normalize-space(.)={n}]/@for or @aria-label={n})] \
             | //textarea[@id = //label[normalize-space(.)={n}]/@for or @aria-label={n}]"
        ),
    }
}

/// A checkbox labelled `name` by the `<label>` around it, a `<label for>` or `aria-label`.
pub fn checkbox(name: &str) -> Query {
    let n = lit(name);
    Query {
        role: "checkbox",
        name: name.into(),
        xpath: format!(
            "//label[normalize-space(.)={n}]//input[@type='checkbox'] \
             | //input[@type='checkbox' and (@id = //label[normalize-space(.)={n}]/@for or @aria-label={n})]"
        ),
    }
}

/// A file chooser (`<input type="file">`, which Chromium exposes as a button) labelled
/// `name` by a `<label for>` or `aria-label`; a test "chooses" a file by typing its path.
pub fn file_input(name: &str) -> Query {
    let n = lit(name);
    Query {
        role: "button",
        name: name.into(),
        xpath: format!(
            "//input[@type='file' and (@id = //label[normalize-space(.)={n}]/@for or @aria-label={n})]"
        ),
    }
}

/// A search field (`<input type="search">`, role searchbox) labelled `name`.
pub fn searchbox(name: &str) -> Query {
    let n = lit(name);
    Query {
        role: "searchbox",
        name: name.into(),
        xpath: format!(
            "//input[@type='search' and (@id = //label[normalize-space(.)={n}]/@for or @aria-label={n})]"
        ),
    }
}

/// A drop-down (`<select>`, role combobox) labelled `name`.
#[allow(dead_code)]
pub fn combobox(name: &str) -> Query {
    let n = lit(name);
    Query {
        role: "combobox",
        name: name.into(),
        xpath: format!("//select[@id = //label[normalize-space(.)={n}]/@for or @aria-label={n}]"),
    }
}

/// A link whose text (or `aria-label`) is `name`.
pub fn link(name: &str) -> Query {
    let n = lit(name);
    Query {
        role: "link",
        name: name.into(),
        xpath: format!("//a[@href and (normalize-space(.)={n} or @aria-label={n})]"),
    }
}

/// A heading (`h1`–`h6`) reading `name`.
pub fn heading(name: &str) -> Query {
    let n = lit(name);
    Query {
        role: "heading",
        name: name.into(),
        xpath: format!(
            "//*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5 or self::h6]\
             [normalize-space(.)={n}]"
        ),
    }
}

/// Any `role="alert"` element (its text is read with [`Browser::text`]; the name is not
/// checked: alerts are named by their content).
pub fn alert() -> Query {
    Query {
        role: "alert",
        name: String::new(),
        xpath: "//*[@role='alert']".into(),
    }
}

/// Any `role="status"` element (success messages).
pub fn status() -> Query {
    Query {
        role: "status",
        name: String::new(),
        xpath: "//*[@role='status']".into(),
    }
}

/// A visible element whose whole text is `text` (no role: for plain text such as the
/// signed-in email).
pub fn text(text: &str) -> Query {
    Query {
        role: "",
        name: text.into(),
        xpath: format!("//body//*[normalize-space(.)={}]", lit(text)),
    }
}

/// One headless Chromium session, 1280×900, on the server at `base`.
pub struct Browser {
    pub client: Client,
    pub base: String,
    session_id: String,
    driver_port: u16,
    http: reqwest::Client,
    closed: bool,
}

impl Browser {
    /// A new browser (fresh profile: no cookies) for the server at `base`.
    pub async fn open(base: &str) -> Browser {
        let driver = driver();
        let mut caps = serde_json::Map::new();
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
        if std::path::Path::new("/usr/bin/chromium").exists() {
            chrome["binary"] = json!("/usr/bin/chromium");
        }
        caps.insert("goog:chromeOptions".into(), chrome);
        // The console, for `assert_no_console_errors` (CSP violations, script errors).
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        caps.insert(
            "timeouts".into(),
            json!({"implicit": 0, "pageLoad": WAIT.as_millis() as u64, "script": WAIT.as_millis() as u64}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = tokio::time::timeout(
            WAIT * 2,
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&driver.url),
        )
        .await
        .unwrap_or_else(|_| panic!("Chromium did not start within {:?}: {INSTALL}", WAIT * 2))
        .unwrap_or_else(|e| panic!("could not open a Chromium session ({e}): {INSTALL}"));
        let session_id = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session id");
        let driver_port = driver
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("driver port");
        Browser {
            client,
            base: base.trim_end_matches('/').to_string(),
            session_id,
            driver_port,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            closed: false,
        }
    }

    /// Opens `path` on the server (waits for the page load, bounded).
    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        tokio::time::timeout(WAIT, self.client.goto(&url))
            .await
            .unwrap_or_else(|_| panic!("{url} did not load within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The current page's path (and query).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits (bounded) until the current path is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let started = Instant::now();
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            if started.elapsed() > WAIT {
                panic!("expected to be on {path} within {WAIT:?}, still on {now}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first visible element `q` finds, waiting for it (bounded), checked against
    /// Chromium's computed role and accessible name.
    pub async fn find(&self, q: &Query) -> Element {
        let started = Instant::now();
        loop {
            if let Some(el) = self.try_find(q).await {
                self.assert_accessible(q, &el).await;
                return el;
            }
            if started.elapsed() > WAIT {
                let path = self.path().await;
                panic!(
                    "no visible {} named {:?} on {path} within {WAIT:?}",
                    if q.role.is_empty() { "element" } else { q.role },
                    q.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first visible match now, without waiting.
    pub async fn try_find(&self, q: &Query) -> Option<Element> {
        let found = self
            .client
            .find_all(Locator::XPath(&q.xpath))
            .await
            .unwrap_or_default();
        for el in found {
            if el.is_displayed().await.unwrap_or(false) {
                return Some(el);
            }
        }
        None
    }

    /// Whether `q` finds nothing visible now (no waiting: call it after what it depends on).
    pub async fn absent(&self, q: &Query) -> bool {
        self.try_find(q).await.is_none()
    }

    /// Chromium's computed role and label of `el` must be the query's.
    async fn assert_accessible(&self, q: &Query, el: &Element) {
        if q.role.is_empty() {
            return;
        }
        let role = self.computed(el, "computedrole").await;
        assert_eq!(
            role, q.role,
            "{q:?}: Chromium computes role {role:?}, not {:?}",
            q.role
        );
        if !q.name.is_empty() {
            let label = self.computed(el, "computedlabel").await;
            assert_eq!(
                label.trim(),
                q.name,
                "{q:?}: Chromium computes the accessible name {label:?}"
            );
        }
    }

    /// `GET /session/{id}/element/{id}/{what}` (WebDriver's computed accessibility).
    async fn computed(&self, el: &Element, what: &str) -> String {
        let url = format!(
            "http://127.0.0.1:{}/session/{}/element/{}/{what}",
            self.driver_port,
            self.session_id,
            el.element_id()
        );
        let answer: Value = tokio::time::timeout(WAIT, async {
            self.http.get(&url).send().await?.json().await
        })
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        answer["value"].as_str().unwrap_or_default().to_string()
    }

    /// Clears the text field named `label` and types `value` into it.
    pub async fn fill(&self, label: &str, value: &str) {
        let el = self.find(&textbox(label)).await;
        el.clear().await.expect("clear");
        el.send_keys(value).await.expect("type");
    }

    /// Clears the field `q` finds (a textbox or a searchbox) and types `value` into it.
    pub async fn fill_in(&self, q: &Query, value: &str) {
        let el = self.find(q).await;
        el.clear().await.expect("clear");
        el.send_keys(value).await.expect("type");
    }

    /// Clicks what `q` finds.
    pub async fn click(&self, q: &Query) {
        self.find(q).await.click().await.expect("click");
    }

    /// The visible text of what `q` finds. Found again when the page replaced the element
    /// between finding and reading it (a form's answer arriving), as a person reads on.
    pub async fn text(&self, q: &Query) -> String {
        let started = Instant::now();
        loop {
            match self.find(q).await.text().await {
                Ok(t) => return t,
                Err(e) if e.is_stale_element_reference() && started.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("text: {e}"),
            }
        }
    }

    /// Waits (bounded) until `el` is gone: removed, or its page replaced (a form posted and
    /// answered with a new page, which may look the same).
    pub async fn wait_gone(&self, el: &Element) {
        let started = Instant::now();
        loop {
            match el.text().await {
                Err(e) if e.is_stale_element_reference() => return,
                Err(e) => panic!("wait_gone: {e}"),
                Ok(_) if started.elapsed() > WAIT => {
                    panic!("the element was still there after {WAIT:?}")
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The value of cookie `name` in this browser, if set.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_all_cookies()
            .await
            .expect("cookies")
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Resizes the window to `width` × 900 and checks the page needs no horizontal scrolling.
    pub async fn assert_fits(&self, width: u32) {
        self.client
            .set_window_size(width, 900)
            .await
            .expect("resize");
        let v = self
            .client
            .execute(
                "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];",
                vec![],
            )
            .await
            .expect("measure");
        let (scroll, client) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
        assert!(
            scroll <= client,
            "{} at {width} px wide scrolls sideways: {scroll} > {client}",
            self.path().await
        );
    }

    /// Runs `script` in the page as an async WebDriver script (it calls
    /// `arguments[arguments.length - 1]` with its result), bounded by [`WAIT`].
    pub async fn run_async(&self, script: &str) -> Value {
        tokio::time::timeout(WAIT, self.client.execute_async(script, vec![]))
            .await
            .unwrap_or_else(|_| panic!("script did not finish within {WAIT:?}: {script}"))
            .unwrap_or_else(|e| panic!("script failed ({e}): {script}"))
    }

    /// Fails on any console error since the last call that is not a network answer (a 401
    /// page is a network "error"): a Content-Security-Policy violation (inline script or
    /// style), a script exception, a failed `console.error`.
    pub async fn assert_no_console_errors(&self) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// The console errors since the last call (see [`Browser::assert_no_console_errors`]).
    pub async fn console_errors(&self) -> Vec<Value> {
        let url = format!(
            "http://127.0.0.1:{}/session/{}/se/log",
            self.driver_port, self.session_id
        );
        let answer: Value = tokio::time::timeout(WAIT, async {
            self.http
                .post(&url)
                .json(&json!({"type": "browser"}))
                .send()
                .await?
                .json()
                .await
        })
        .await
        .unwrap_or_else(|_| panic!("the browser log did not answer within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("browser log: {e}"));
        let entries = answer["value"]
            .as_array()
            .unwrap_or_else(|| panic!("browser log: {answer}"));
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE" && e["source"] != "network")
            .cloned()
            .collect()
    }

    /// Saves a PNG of the window as `$KITH_SCREENSHOTS/<name>.png` when that variable names a
    /// folder (for looking at the pages, or for docs); otherwise does nothing.
    pub async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("KITH_SCREENSHOTS") else {
            return;
        };
        let png = tokio::time::timeout(WAIT, self.client.screenshot())
            .await
            .unwrap_or_else(|_| panic!("screenshot {name} took over {WAIT:?}"))
            .expect("screenshot");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png)
            .expect("write screenshot");
    }

    /// Signs in through the form (from wherever the browser is) and waits for the panel.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/signin").await;
        self.fill("Email", email).await;
        self.fill("Password", password).await;
        self.click(&button("Sign in")).await;
        self.wait_for_path("/").await;
    }

    /// The control of the chat widget (inside its open shadow root, where XPath cannot reach)
    /// whose computed role and accessible name are the query's: candidates are every button
    /// and text field in the widget, chosen by what Chromium's accessibility tree says.
    pub async fn in_widget(&self, q: &Query) -> Element {
        let started = Instant::now();
        loop {
            if let Some(el) = self.try_in_widget(q).await {
                return el;
            }
            if started.elapsed() > WAIT {
                panic!(
                    "no visible {} named {:?} in the chat widget within {WAIT:?}",
                    q.role, q.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `in_widget` without waiting.
    pub async fn try_in_widget(&self, q: &Query) -> Option<Element> {
        let host = self.client.find(Locator::Css("[data-kith]")).await.ok()?;
        let root = host.shadow_root().await.ok()?;
        let candidates = root
            .find_all(Locator::Css("button, textarea, input, [role]"))
            .await
            .unwrap_or_default();
        for el in candidates {
            if !el.is_displayed().await.unwrap_or(false) {
                continue;
            }
            if self.computed(&el, "computedrole").await == q.role
                && self.computed(&el, "computedlabel").await.trim() == q.name
            {
                return Some(el);
            }
        }
        None
    }

    /// The text of the widget's message log (`role="log"`), as a person reads it.
    pub async fn widget_log(&self) -> String {
        let host = self
            .client
            .find(Locator::Css("[data-kith]"))
            .await
            .expect("the widget's host element");
        let root = host.shadow_root().await.expect("an open shadow root");
        let log = root
            .find(Locator::Css("[role=log]"))
            .await
            .expect("the message log");
        log.text().await.expect("log text")
    }

    /// Waits (bounded) until the widget's message log contains `text`.
    pub async fn wait_for_widget_text(&self, text: &str) {
        let started = Instant::now();
        loop {
            let log = self.widget_log().await;
            if log.contains(text) {
                return;
            }
            if started.elapsed() > WAIT {
                panic!("the chat never showed {text:?} within {WAIT:?}; it shows {log:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens an absolute URL (a page on another origin than Kith).
    pub async fn goto_url(&self, url: &str) {
        tokio::time::timeout(WAIT, self.client.goto(url))
            .await
            .unwrap_or_else(|_| panic!("{url} did not load within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// A DevTools-protocol command on this browser's page (chromedriver's `goog/cdp/execute`),
    /// e.g. to take the network offline; answers its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}/goog/cdp/execute",
            self.driver_port, self.session_id
        );
        let resp = tokio::time::timeout(
            WAIT,
            self.http
                .post(&url)
                .json(&json!({"cmd": cmd, "params": params}))
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{cmd} took over {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert!(
            resp.status().is_success(),
            "{cmd} answered {}",
            resp.status()
        );
        resp.json::<Value>().await.expect("a JSON answer")["value"].clone()
    }

    /// Ends the session (also done, blocking, on drop when a test panics first).
    pub async fn close(mut self) {
        self.closed = true;
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed {
            // A test that panicked: close its Chromium so it does not outlive the test.
            let _ = raw_http(
                self.driver_port,
                "DELETE",
                &format!("/session/{}", self.session_id),
            );
        }
    }
}
