//! A few process counters in the Prometheus text format. Hand-written on purpose: a handful
//! of atomics needs no registry crate, and the output stays easy to read.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub static HTTP_2XX: Counter = Counter::new();
pub static HTTP_4XX: Counter = Counter::new();
pub static HTTP_5XX: Counter = Counter::new();
pub static VISITOR_MESSAGES: Counter = Counter::new();
pub static AGENT_MESSAGES: Counter = Counter::new();
pub static IDENTIFIES: Counter = Counter::new();
/// Answers 429 (any limit).
pub static RATE_LIMITED: Counter = Counter::new();
/// Credentials that were presented and failed (API token, website key, visitor token).
pub static AUTH_FAILURES: Counter = Counter::new();
static SSE_STREAMS: AtomicI64 = AtomicI64::new(0);

/// Counts an open event stream for as long as it lives.
pub struct SseGuard;

impl SseGuard {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        SSE_STREAMS.fetch_add(1, Ordering::Relaxed);
        SseGuard
    }
}

impl Drop for SseGuard {
    fn drop(&mut self) {
        SSE_STREAMS.fetch_sub(1, Ordering::Relaxed);
    }
}

pub fn record_status(status: u16) {
    match status {
        200..=399 => HTTP_2XX.inc(),
        400..=499 => HTTP_4XX.inc(),
        _ => HTTP_5XX.inc(),
    }
}

pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP kith_http_responses_total HTTP responses by status class."
    );
    let _ = writeln!(out, "# TYPE kith_http_responses_total counter");
    for (class, c) in [("2xx", &HTTP_2XX), ("4xx", &HTTP_4XX), ("5xx", &HTTP_5XX)] {
        let _ = writeln!(
            out,
            "kith_http_responses_total{{class=\"{class}\"}} {}",
            c.get()
        );
    }
    let _ = writeln!(
        out,
        "# HELP kith_messages_total Messages written, by author."
    );
    let _ = writeln!(out, "# TYPE kith_messages_total counter");
    let _ = writeln!(
        out,
        "kith_messages_total{{author=\"visitor\"}} {}",
        VISITOR_MESSAGES.get()
    );
    let _ = writeln!(
        out,
        "kith_messages_total{{author=\"agent\"}} {}",
        AGENT_MESSAGES.get()
    );
    let _ = writeln!(out, "# HELP kith_identify_total Identify calls answered.");
    let _ = writeln!(out, "# TYPE kith_identify_total counter");
    let _ = writeln!(out, "kith_identify_total {}", IDENTIFIES.get());
    let _ = writeln!(out, "# HELP kith_rate_limited_total Requests answered 429.");
    let _ = writeln!(out, "# TYPE kith_rate_limited_total counter");
    let _ = writeln!(out, "kith_rate_limited_total {}", RATE_LIMITED.get());
    let _ = writeln!(
        out,
        "# HELP kith_auth_failures_total Presented credentials that were not valid."
    );
    let _ = writeln!(out, "# TYPE kith_auth_failures_total counter");
    let _ = writeln!(out, "kith_auth_failures_total {}", AUTH_FAILURES.get());
    let _ = writeln!(
        out,
        "# HELP kith_event_streams Open Server-Sent Event streams."
    );
    let _ = writeln!(out, "# TYPE kith_event_streams gauge");
    let _ = writeln!(
        out,
        "kith_event_streams {}",
        SSE_STREAMS.load(Ordering::Relaxed)
    );
    out
}
