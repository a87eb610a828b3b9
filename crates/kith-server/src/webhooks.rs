//! The webhook deliverer: a task in every `kith serve` process that claims due deliveries
//! from the outbox (with a lease), POSTs them signed, and records each attempt with what
//! follows (delivered, retry later with exponential backoff, or failed). Woken when this
//! process enqueues; polls for rows other processes enqueued. See docs/webhooks.md.

use kith_core::webhook::{retry_delay_ms, signature};
use kith_store::{AttemptResult, ClaimedDelivery, Store};
use rand::Rng;
use std::time::{Duration, Instant};

/// How deliveries are sent and retried (`kith serve --webhook-*` flags).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Runs the deliverer at all (a process may serve without delivering).
    pub deliver: bool,
    /// The first retry's delay; doubled per failure.
    pub retry_base: Duration,
    /// The longest delay between attempts.
    pub retry_cap: Duration,
    /// Attempts before a delivery is marked `failed`.
    pub max_attempts: u32,
    /// How often the outbox is polled for deliveries other processes enqueued.
    pub poll: Duration,
    /// Connect and total time allowed for one attempt.
    pub timeout: Duration,
    /// How long a claim lasts (at least `timeout` + 1 s); a crashed process's claims return
    /// after it.
    pub lease: Duration,
    /// Delivered rows are pruned after this long (0: never).
    pub keep_delivered: Duration,
    /// Deliveries sent concurrently at most (each contact's one at a time).
    pub batch: i64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            deliver: true,
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(6 * 3600),
            max_attempts: 12,
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            keep_delivered: Duration::from_secs(7 * 24 * 3600),
            batch: 32,
        }
    }
}

/// At most this much of an error (or of a refused answer's reason) is kept in the log.
const ERROR_MAX_CHARS: usize = 300;

/// Starts the deliverer; it runs until the task is aborted.
pub fn spawn(store: Store, config: WebhookConfig) -> Option<tokio::task::JoinHandle<()>> {
    if !config.deliver {
        return None;
    }
    Some(tokio::spawn(run(store, config)))
}

fn client(config: &WebhookConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.timeout)
        .timeout(config.timeout)
        .user_agent(concat!("Kith-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds (no TLS configuration to fail)")
}

async fn run(store: Store, config: WebhookConfig) {
    let http = client(&config);
    let wake = kith_store::webhook_wakeups();
    let mut last_prune: Option<Instant> = None;
    // Deliveries being sent: up to `batch` at once, each its own task, so one slow receiver
    // holds one slot, not the whole deliverer.
    let mut sending = tokio::task::JoinSet::new();
    let slots = config.batch.max(1) as usize;
    // A claim outlives the attempt it covers (timeout, then recording the result), so a live
    // deliverer never loses a delivery to another one mid-send.
    let lease = config.lease.max(config.timeout + Duration::from_secs(1));
    loop {
        let now = kith_store::now_ms();
        if !config.keep_delivered.is_zero()
            && last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600))
        {
            last_prune = Some(Instant::now());
            let before = now - config.keep_delivered.as_millis() as i64;
            match store.prune_webhook_deliveries(before).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "old webhook deliveries pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning webhook deliveries failed"),
            }
        }
        // Claims are writes: made only when something is due, so an idle deliverer only
        // reads. (What this process just enqueued is due at once.)
        let due = store.next_webhook_due().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the webhook outbox failed");
            None
        });
        let free = slots.saturating_sub(sending.len());
        if free > 0 && due.is_some_and(|d| d <= now) {
            let claimed = store
                .claim_webhook_deliveries(now, lease.as_millis() as i64, free as i64)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "claiming webhook deliveries failed");
                    Vec::new()
                });
            let got = claimed.len();
            for d in claimed {
                let (store, http, config) = (store.clone(), http.clone(), config.clone());
                sending.spawn(async move { deliver_one(&store, &http, &config, &d).await });
            }
            if got == free {
                // Perhaps more are due: claim again once a slot frees.
                if sending.join_next().await.is_some() {
                    continue;
                }
            }
        }
        // Nothing more to send now: sleep until a delivery ends (its contact's next one may
        // be due), this process enqueues, the next retry or claim expiry, or the poll.
        let pause = match due {
            Some(d) => Duration::from_millis((d - kith_store::now_ms()).max(0) as u64)
                .clamp(Duration::from_millis(10).min(config.poll), config.poll),
            None => config.poll,
        };
        tokio::select! {
            Some(_) = sending.join_next(), if !sending.is_empty() => {}
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

async fn deliver_one(
    store: &Store,
    http: &reqwest::Client,
    config: &WebhookConfig,
    d: &ClaimedDelivery,
) {
    let started = Instant::now();
    let timestamp = kith_store::now_ms() / 1000;
    let body = d.payload.clone().into_bytes();
    let sig = signature(&d.secret, timestamp, &body);
    let sent = http
        .post(&d.url)
        .header("content-type", "application/json")
        .header("kith-webhook-id", &d.id)
        .header("kith-webhook-timestamp", timestamp.to_string())
        .header("kith-signature", sig)
        .body(body)
        .send()
        .await;
    let (status_code, error) = match sent {
        Ok(resp) => {
            let code = resp.status();
            let error = (!code.is_success()).then(|| format!("answered {code}"));
            (Some(code.as_u16()), error)
        }
        Err(e) => (None, Some(describe(e))),
    };
    let delivered = status_code.is_some_and(|c| (200..300).contains(&c));
    let attempt = (d.attempts + 1) as u32;
    let now = kith_store::now_ms();
    let retry_at = (!delivered && attempt < config.max_attempts).then(|| {
        let jitter: f64 = rand::thread_rng().gen();
        now + retry_delay_ms(
            attempt,
            config.retry_base.as_millis() as u64,
            config.retry_cap.as_millis() as u64,
            jitter,
        ) as i64
    });
    let result = AttemptResult {
        status_code,
        error: error.map(|e| e.chars().take(ERROR_MAX_CHARS).collect()),
        duration_ms: started.elapsed().as_millis() as i64,
        delivered,
        retry_at,
    };
    metrics::counter!("kith_webhook_attempts_total",
        "outcome" => if delivered { "delivered" } else if retry_at.is_some() { "retry" } else { "failed" })
    .increment(1);
    match store.record_webhook_attempt(d, &result, now).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            delivery = %d.id,
            "a webhook delivery's claim expired while it was sent; another deliverer took it over"
        ),
        Err(e) => {
            tracing::warn!(delivery = %d.id, error = %e, "recording a webhook attempt failed")
        }
    }
}

/// A transport error in words a person can act on (no URL: it is in the endpoint already).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let prefix = if e.is_connect() {
        "could not connect: "
    } else {
        ""
    };
    let e = e.without_url();
    let mut text = format!("{prefix}{e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
