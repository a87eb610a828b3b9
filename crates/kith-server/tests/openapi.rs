//! The OpenAPI document is the API's contract: a snapshot makes every change to it a visible
//! diff in review, and every request body it documents must be one the server accepts.

mod common;

use common::{send, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.snapshot.json")
}

async fn served_document(app: &TestApp) -> Value {
    let (status, doc) = send(app.http.get(format!("{}/api/openapi.json", app.base))).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

/// `GET /api/openapi.json` equals `tests/openapi.snapshot.json`. After a deliberate API
/// change, `UPDATE_SNAPSHOTS=1 cargo test -p kith-server --test openapi` rewrites the file;
/// review its diff like code.
#[tokio::test]
async fn the_document_matches_its_snapshot() {
    // The document does not depend on the database: one backend is enough.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = served_document(&app).await;
    app.stop().await;
    // serde_json's map is ordered by key, so the file is stable from run to run.
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = snapshot_path();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != pretty {
        let committed_lines: Vec<&str> = committed.lines().collect();
        let first_difference = pretty
            .lines()
            .enumerate()
            .find(|(i, line)| committed_lines.get(*i) != Some(line))
            .map(|(i, line)| format!("line {}: {line}", i + 1))
            .unwrap_or_else(|| "the committed file is longer".into());
        panic!(
            "/api/openapi.json differs from {} (first difference at {first_difference}); \
             if the API change is intended, rerun with UPDATE_SNAPSHOTS=1 and commit the file",
            path.display()
        );
    }
}

/// Follows a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("{r}")))
        }
        None => schema,
    }
}

/// The smallest value a schema allows: an object carries only its required properties.
fn minimal(doc: &Value, schema: &Value) -> Value {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[key].as_array().and_then(|a| a.first()) {
            return minimal(doc, first);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values[0].clone();
    }
    // `type` may be a list (`["string", "null"]`): the first type that is not null.
    let kind = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "object",
    };
    match kind {
        "string" => {
            if schema["format"] == "email" {
                return json!("someone@example.com");
            }
            if schema["format"] == "uri" {
                return json!("https://example.com/hook");
            }
            let min = schema["minLength"].as_u64().unwrap_or(0).max(1) as usize;
            json!("a".repeat(min))
        }
        "integer" | "number" => json!(schema["minimum"].as_i64().unwrap_or(1)),
        "boolean" => json!(true),
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(0) as usize;
            Value::Array(vec![minimal(doc, &schema["items"]); n])
        }
        "null" => Value::Null,
        _ => {
            let mut object = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                object.insert(name.to_string(), minimal(doc, &schema["properties"][name]));
            }
            Value::Object(object)
        }
    }
}

/// For each documented operation with a JSON request body, the minimal body its schema
/// allows (required fields only) answers neither 400 nor 422 nor 5xx on a real server, with
/// real credentials and ids: the document never describes a body the server refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_request_body_is_accepted() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = TestApp::spawn(backend).await;
        let doc = served_document(&app).await;
        let visitor = app.visitor().await;
        let (conversation_id, contact_id) = visitor.say("hello").await;
        let (status, list) = app
            .admin(
                Method::POST,
                "/api/v1/lists",
                Some(json!({"name": "Fixture"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{list}");
        let list_id = list["id"].as_str().unwrap().to_string();
        let (_, websites) = app.get("/api/v1/websites").await;
        let website_id = websites["items"][0]["id"].as_str().unwrap().to_string();
        // A contact to merge into the fixture contact, and a note on it to edit.
        let (_, other_contact_id) = app.visitor().await.say("hello too").await;
        let (status, note) = app
            .admin(
                Method::POST,
                &format!("/api/v1/contacts/{contact_id}/notes"),
                Some(json!({"body": "Fixture"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{note}");
        let note_id = note["id"].as_str().unwrap().to_string();
        let (status, webhook) = app
            .admin(
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"url": "https://example.com/hook", "events": ["message.created"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{webhook}");
        let webhook_id = webhook["id"].as_str().unwrap().to_string();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Some(schema) =
                    operation.pointer("/requestBody/content/application~1json/schema")
                else {
                    continue;
                };
                let mut body = minimal(&doc, schema);
                if path.starts_with("/api/v1/bulk-actions") {
                    // A bulk action's minimal shape is not a request by itself: a tag action
                    // names its tags, and starting one confirms the count its preview read
                    // (409 otherwise). Both are filled from the server, the shape is checked.
                    body["tags"] = json!(["a"]);
                    if body.get("expected_count").is_some() || path == "/api/v1/bulk-actions" {
                        let (s, preview) = app
                            .admin(
                                Method::POST,
                                "/api/v1/bulk-actions/preview",
                                Some(body.clone()),
                            )
                            .await;
                        assert_eq!(s, StatusCode::OK, "{preview}");
                        body["expected_count"] = preview["count"].clone();
                    }
                } else if path.ends_with("/merge") {
                    body["other_id"] = json!(other_contact_id);
                }
                let id = if path.starts_with("/api/v1/contacts/") {
                    &contact_id
                } else if path.starts_with("/api/v1/lists/") {
                    &list_id
                } else if path.starts_with("/api/v1/websites/") {
                    &website_id
                } else if path.starts_with("/api/v1/webhooks/") {
                    &webhook_id
                } else {
                    &conversation_id
                };
                let url = format!(
                    "{}{}",
                    app.base,
                    path.replace("{id}", id).replace("{note_id}", &note_id)
                );
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut request = app.http.request(method.clone(), &url).json(&body);
                if path.starts_with("/api/widget/") {
                    request = request
                        .header("X-Kith-Website", &app.creds.website_key)
                        .header("X-Kith-Visitor", &visitor.token);
                } else {
                    request = request.bearer_auth(&app.creds.api_token);
                }
                let (status, answer) = send(request).await;
                assert!(
                    status.is_success(),
                    "{backend:?} {method} {path} with the documented minimal body {body} \
                     answered {status}: {answer}"
                );
                checked += 1;
            }
        }
        // session, identify, messages; list create/edit, contact edit, reply, website create.
        assert!(checked >= 8, "only {checked} request bodies documented");
        app.stop().await;
    }
}
