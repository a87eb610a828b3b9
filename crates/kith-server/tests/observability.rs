//! What an operator sees: a request id on every answer and in every log line of the request,
//! and Prometheus metrics with latency histograms per route and status.

mod common;

use common::{Backend, TestApp};
use reqwest::StatusCode;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Every log line the server writes during this test binary, captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("kith_server=debug")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_comes_back_and_names_every_log_line_of_the_request() {
    let logs = logs();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let resp = app
        .http
        .get(format!("{}/api/v1/contacts", app.base))
        .bearer_auth(&app.creds.api_token)
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-42");

    // No id given, or one that is not a plain token: a fresh one is made.
    for given in [None, Some("two words"), Some(&*"x".repeat(65))] {
        let mut req = app.http.get(format!("{}/healthz", app.base));
        if let Some(g) = given {
            req = req.header("X-Request-Id", g);
        }
        let resp = req.send().await.unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(
            id.len() >= 20 && Some(id.as_str()) != given,
            "{given:?} -> {id}"
        );
    }

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("request_id=trace-me-42") && l.contains("answered"))
        .unwrap_or_else(|| panic!("no log line names the request id:\n{text}"));
    assert!(
        line.contains("status=200") && line.contains("route=/api/v1/contacts"),
        "{line}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_latency_histograms_per_route_and_status() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let visitor = app.visitor().await;
    let (_, contact) = visitor.say("hello").await;
    assert_eq!(app.contact(&contact).await["id"], contact.as_str());
    assert_eq!(
        app.get("/api/v1/contacts/nope").await.0,
        StatusCode::NOT_FOUND
    );
    // A list answers once the contact index is built, so its build time is recorded by now.
    assert_eq!(app.get("/api/v1/contacts").await.0, StatusCode::OK);

    let body = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |metric: &str, labels: &[&str]| {
        body.lines()
            .any(|l| l.starts_with(metric) && labels.iter().all(|x| l.contains(x)))
    };
    for (route, status) in [
        ("/api/widget/v1/messages", "201"),
        ("/api/widget/v1/session", "200"),
        ("/api/v1/contacts/{id}", "200"),
        ("/api/v1/contacts/{id}", "404"),
    ] {
        let route = format!("route=\"{route}\"");
        let status = format!("status=\"{status}\"");
        assert!(
            has(
                "kith_http_request_duration_seconds_bucket{",
                &[&route, &status, "le=\"0.005\""]
            ),
            "no histogram for {route} {status}:\n{body}"
        );
        assert!(has(
            "kith_http_request_duration_seconds_count{",
            &[&route, &status]
        ));
    }
    assert!(
        has("kith_http_responses_total{", &["class=\"4xx\""]),
        "{body}"
    );
    assert!(
        has("kith_messages_total{", &["author=\"visitor\""]),
        "{body}"
    );
    assert!(has("kith_event_streams", &[]), "{body}");
    assert!(has("kith_index_build_seconds", &[]), "{body}");
    app.stop().await;
}
