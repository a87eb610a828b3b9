//! Process metrics in the Prometheus text format, through the `metrics` facade and its
//! Prometheus exporter (a well-kept pair: the store records its own figures through the same
//! facade without knowing about HTTP or Prometheus).
//!
//! What is recorded: request latency per route and status (a histogram), responses by status
//! class, messages by author, identifies, rate-limit refusals, failed credentials, open event
//! streams, and from the store transaction retries and the contact index's build time and size.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Latency buckets in seconds: fine below 50 ms, where Kith's goals are.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use (one per process, shared by every
/// server a test starts).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("kith_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            })
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program): then these
        // metrics go there and /metrics shows what this handle saw.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    describe_histogram!(
        "kith_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a request, by method, route template and status."
    );
    describe_counter!(
        "kith_http_responses_total",
        "HTTP responses by status class."
    );
    describe_counter!("kith_messages_total", "Messages written, by author.");
    describe_counter!("kith_identify_total", "Identify calls answered.");
    describe_counter!(
        "kith_rate_limited_total",
        "Requests answered 429, by limit."
    );
    describe_counter!(
        "kith_auth_failures_total",
        "Presented credentials that were not valid."
    );
    describe_gauge!("kith_event_streams", "Open Server-Sent Event streams.");
    describe_counter!(
        "kith_store_transaction_retries_total",
        "Write transactions run again after losing a race."
    );
    describe_histogram!(
        "kith_store_group_commit_size",
        "SQLite: writes per group-commit batch."
    );
    describe_histogram!(
        "kith_store_group_commit_open_seconds",
        metrics::Unit::Seconds,
        "SQLite: how long a batch was open (its writes' bodies) before its commit began."
    );
    describe_histogram!(
        "kith_store_group_commit_seconds",
        metrics::Unit::Seconds,
        "SQLite: a batch's commit (reading back touched contacts, COMMIT, contact index)."
    );
    describe_histogram!(
        "kith_store_write_queue_seconds",
        metrics::Unit::Seconds,
        "SQLite: how long a write waited for the write connection (the bodies ahead of it, commits)."
    );
    describe_histogram!(
        "kith_store_write_body_seconds",
        metrics::Unit::Seconds,
        "SQLite: a write's own statements, in its savepoint of the open batch."
    );
    describe_histogram!(
        "kith_store_write_commit_wait_seconds",
        metrics::Unit::Seconds,
        "SQLite: from a write's body done until its batch committed and it heard (the bodies after it, the commit, the wake-up)."
    );
    describe_histogram!(
        "kith_index_build_seconds",
        metrics::Unit::Seconds,
        "Time to build the in-memory contact index at start."
    );
    describe_gauge!(
        "kith_index_contacts",
        "Contacts in the in-memory contact index."
    );
    describe_gauge!(
        "kith_index_bytes",
        metrics::Unit::Bytes,
        "Approximate memory of the in-memory contact index."
    );
    describe_counter!(
        "kith_index_followed_contacts_total",
        "PostgreSQL: contacts re-read into this process's index because a transaction (of any process) touched them."
    );
    describe_counter!(
        "kith_index_follow_errors_total",
        "PostgreSQL: failed attempts of the background loop to catch the index up with the change log."
    );
    describe_counter!(
        "kith_index_rebuilds_total",
        "PostgreSQL: rebuilds of the index after it fell too far behind the change log."
    );
    // Present from the start, so a dashboard sees zeros rather than gaps.
    for class in ["2xx", "3xx", "4xx", "5xx"] {
        counter!("kith_http_responses_total", "class" => class).absolute(0);
    }
    gauge!("kith_event_streams").set(0.0);
}

/// Renders everything recorded so far.
pub fn render() -> String {
    handle().render()
}

/// Drains histogram buffers now and then so they stay small between scrapes.
pub fn upkeep() {
    handle().run_upkeep();
}

/// One answered request.
pub fn record_request(method: &str, route: &str, status: u16, took: Duration) {
    let class = match status {
        100..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!("kith_http_responses_total", "class" => class).increment(1);
    histogram!(
        "kith_http_request_duration_seconds",
        "method" => method.to_string(),
        "route" => route.to_string(),
        "status" => status.to_string()
    )
    .record(took.as_secs_f64());
}

pub fn visitor_message() {
    counter!("kith_messages_total", "author" => "visitor").increment(1);
}

pub fn agent_message() {
    counter!("kith_messages_total", "author" => "agent").increment(1);
}

pub fn identify() {
    counter!("kith_identify_total").increment(1);
}

/// A 429, labelled with which limit refused it.
pub fn rate_limited(limit: &'static str) {
    counter!("kith_rate_limited_total", "limit" => limit).increment(1);
}

pub fn auth_failure() {
    counter!("kith_auth_failures_total").increment(1);
}

/// Counts an open event stream for as long as it lives.
pub struct SseGuard;

impl SseGuard {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        gauge!("kith_event_streams").increment(1.0);
        SseGuard
    }
}

impl Drop for SseGuard {
    fn drop(&mut self) {
        gauge!("kith_event_streams").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_count_as_3xx() {
        let line = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("kith_http_responses_total{class=\"3xx\"}"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap()
        };
        let before = line(&render());
        record_request("GET", "/", 304, Duration::from_millis(1));
        assert_eq!(line(&render()), before + 1);
    }
}
