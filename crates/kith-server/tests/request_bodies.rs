//! Request bodies are typed (one serde struct per body, also its OpenAPI schema): what the
//! typing itself answers. JSON that is not an object is 400; a value of the wrong type is 422
//! naming the field as the parsers name it (an array by its own name); fields a client may
//! not set are ignored (SPEC); `PATCH` tells an absent field from `null`.

#[macro_use]
mod common;

use common::send;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn assert_invalid(status: StatusCode, body: &Value, field: &str, what: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
    assert_eq!(body["error"]["code"], "invalid", "{what}: {body}");
    assert_eq!(body["error"]["field"], field, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with(field), "{what}: {body}");
}

both_backends! {
    async fn wrong_types_answer_422_naming_the_field(app) {
        let v = app.visitor().await;
        let (_, contact_id) = v.say("hi").await;
        let contact = format!("/api/v1/contacts/{contact_id}");
        for (method, path, body, field) in [
            (Method::PATCH, contact.as_str(), json!({"tags": [1]}), "tags"),
            (Method::PATCH, contact.as_str(), json!({"name": ["Ada"]}), "name"),
            (Method::PATCH, contact.as_str(), json!({"user_id": 5}), "user_id"),
            (Method::POST, "/api/v1/lists", json!({"name": 5}), "name"),
            (Method::POST, "/api/v1/lists", json!({}), "name"),
            (Method::POST, "/api/v1/lists", json!({"name": "x", "filter": {"tags": {"all": "vip"}}}), "filter.tags.all"),
            (Method::POST, "/api/v1/websites", json!({"name": "Shop", "identity_verification": "yes"}), "identity_verification"),
            (Method::POST, "/api/v1/websites", json!({"name": "Shop", "allowed_origins": [1]}), "allowed_origins"),
            (Method::POST, "/api/v1/websites", json!({"name": "Shop", "allowed_origins": "https://a.example"}), "allowed_origins"),
            (Method::POST, "/api/v1/websites", json!({"name": "Shop", "allowed_origins": ["ftp://a.example"]}), "allowed_origins"),
            (Method::POST, "/api/v1/websites", json!({}), "name"),
        ] {
            let what = format!("{method} {path} {body}");
            let (s, err) = app.admin(method, path, Some(body)).await;
            assert_invalid(s, &err, field, &what);
        }
        // A numeric user id is refused with the reason (the hash covers the text as sent).
        let (s, err) = v.identify(json!({"user_id": 42})).await;
        assert_invalid(s, &err, "user_id", "identify user_id 42");
        assert!(err["error"]["message"].as_str().unwrap().contains("as text"), "{err}");
        let (s, err) = v.identify(json!({"email": true})).await;
        assert_invalid(s, &err, "email", "identify email true");
    }

    async fn bodies_that_are_not_objects_answer_400(app) {
        let v = app.visitor().await;
        for raw in ["[1]", "\"text\"", "3", "null", "{not json"] {
            let (s, err) = send(
                app.http
                    .post(format!("{}/api/widget/v1/messages", app.base))
                    .header("X-Kith-Website", &app.creds.website_key)
                    .header("X-Kith-Visitor", &v.token)
                    .header("Content-Type", "application/json")
                    .body(raw),
            )
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{raw}: {err}");
            assert_eq!(err["error"]["code"], "bad_request", "{raw}: {err}");
        }
    }

    async fn unknown_fields_are_ignored_and_patch_tells_absent_from_null(app) {
        let v = app.visitor().await;
        let (_, id) = v.say("hi").await;
        let (s, c) = app
            .patch(&id, json!({"name": "Ada", "company": "Acme", "id": "c_other", "status": "customer", "nonsense": [1]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!((c["id"].as_str(), c["name"].as_str(), c["status"].as_str()), (Some(id.as_str()), Some("Ada"), Some("lead")));
        // Absent keeps the company; null clears the name.
        let (s, c) = app.patch(&id, json!({"name": null})).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["name"], Value::Null, "{c}");
        assert_eq!(c["company"], "Acme", "{c}");
        let (s, w) = app
            .admin(Method::POST, "/api/v1/websites", Some(json!({"name": "Shop", "widget_key": "wk_mine", "extra": true})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{w}");
        assert_eq!(w["identity_verification"], true, "{w}");
        let (s, r) = v.identify(json!({"name": "Ada", "unknown": {"deep": 1}})).await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
}
