//! Issue 20: identity tokens (JWT), verification modes, secret rotation with its audit log,
//! and the event stream of a visitor that switches person — through the real HTTP API, on
//! SQLite and on PostgreSQL. Bad tokens are crafted by hand (base64url header and payload,
//! HMAC signature), so each case is exactly the one it names.

#[macro_use]
mod common;

use base64::Engine;
use common::{Site, TestApp};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `header.payload.signature` with an HMAC of the given hash over the first two parts.
fn sign_with<M: Mac + hmac::digest::KeyInit>(
    header: &Value,
    payload: &Value,
    secret: &str,
) -> String {
    let signing = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing.as_bytes());
    format!("{signing}.{}", b64(&mac.finalize().into_bytes()))
}

fn hs256(payload: &Value, secret: &str) -> String {
    sign_with::<Hmac<sha2::Sha256>>(&json!({"alg": "HS256", "typ": "JWT"}), payload, secret)
}

/// A valid token for `user_id`, living ten minutes.
fn token_for(user_id: &str, secret: &str) -> String {
    hs256(
        &json!({"user_id": user_id, "exp": now() + 600, "iat": now()}),
        secret,
    )
}

/// A new website of the organization in `mode`, as the widget knows it, and its id.
async fn site_in_mode(app: &TestApp, mode: &str) -> (Site, String) {
    let (s, w) = app
        .admin(
            Method::POST,
            "/api/v1/websites",
            Some(json!({"name": format!("Site {mode}"), "identity_verification_mode": mode})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    assert_eq!(w["identity_verification_mode"], mode, "{w}");
    let site = Site {
        base: app.base.clone(),
        http: app.http.clone(),
        key: w["website_key"].as_str().unwrap().into(),
        secret: w["identity_secret"].as_str().unwrap().into(),
    };
    (site, w["id"].as_str().unwrap().to_string())
}

async fn default_website_id(app: &TestApp) -> String {
    let (s, list) = app.get("/api/v1/websites").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list["items"][0]["id"].as_str().unwrap().to_string()
}

fn assert_refused(s: StatusCode, body: &Value, code: &str) {
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{code}: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// Reads an event stream until `done(buf)` holds or it ends; false when it ended first.
async fn read_until<B: AsRef<[u8]>>(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<B>> + Unpin),
    buf: &mut String,
    done: impl Fn(&str) -> bool,
) -> bool {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done(buf) {
            match stream.next().await {
                Some(Ok(chunk)) => buf.push_str(&String::from_utf8_lossy(chunk.as_ref())),
                _ => return false,
            }
        }
        true
    })
    .await
    .expect("the event stream neither answered nor ended within 10 s")
}

async fn open_stream(app: &TestApp, v: &common::Visitor) -> reqwest::Response {
    let resp = app
        .http
        .get(format!(
            "{}/api/widget/v1/events?website_key={}&visitor_token={}",
            app.base, v.site.key, v.token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp
}

both_backends! {
    async fn a_valid_token_verifies_like_a_valid_user_hash(app) {
        // A's first browser proves who it is with a hash and writes.
        let first = app.visitor().await;
        first.identify_verified("u-ann", json!({})).await;
        let (conv, contact) = first.say("from my laptop").await;
        // A second browser proves it with a token carrying a profile: verified, so it lands on
        // the contact, sees its conversations and its values overwrite stored ones.
        let second = app.visitor().await;
        let token = hs256(&json!({"user_id": "u-ann", "name": "Ann Token", "email": "ann@x.io",
            "exp": now() + 600, "iat": now()}), &app.creds.identity_secret);
        let (s, out) = second.identify(json!({"identity_token": token})).await;
        assert_eq!(s, StatusCode::OK, "{out}");
        assert_eq!(out, json!({"contact_id": contact, "status": "customer"}));
        assert_eq!(second.conversation_ids().await, vec![conv]);
        let c = app.contact(&contact).await;
        assert_eq!(c["name"], "Ann Token");
        assert_eq!(c["email"], "ann@x.io");
        // The body may repeat the token's user id unchanged; a different one is refused.
        let (s, _) = second.identify(json!({"identity_token": token, "user_id": "u-ann"})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, err) = second.identify(json!({"identity_token": token, "user_id": "u-bob"})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], "user_id");
        // Fields beside the token are unverified: they fill what the contact lacks and never
        // overwrite what it holds, even on the contact the token proves.
        let (s, out) = second.identify(json!({"identity_token": token, "name": "Mallory",
            "company": "Acme", "metadata": {"plan": "pro"}})).await;
        assert_eq!(s, StatusCode::OK, "{out}");
        let c = app.contact(&contact).await;
        assert_eq!(c["name"], "Ann Token", "{c}");
        assert_eq!(c["company"], "Acme", "{c}");
        assert_eq!(c["metadata"]["plan"], "pro", "{c}");
        let (s, _) = second.identify(json!({"identity_token": token, "company": "Evil Corp",
            "metadata": {"plan": "free"}})).await;
        assert_eq!(s, StatusCode::OK);
        let c = app.contact(&contact).await;
        assert_eq!((c["company"].as_str(), c["metadata"]["plan"].as_str()), (Some("Acme"), Some("pro")));
        // A value inside the token still overwrites (it is proven).
        let renamed = hs256(&json!({"user_id": "u-ann", "company": "Acme Two",
            "exp": now() + 600, "iat": now()}), &app.creds.identity_secret);
        let (s, _) = second.identify(json!({"identity_token": renamed, "company": "Evil Corp"})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.contact(&contact).await["company"], "Acme Two");
        // An email contradicting the token's is refused; a user_hash beside it is ignored.
        let (s, err) = second.identify(json!({"identity_token": token, "email": "other@x.io"})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], "email");
        let (s, out) = second.identify(json!({"identity_token": token, "user_hash": "00"})).await;
        assert_eq!(s, StatusCode::OK, "{out}");
        assert_eq!(app.contact(&contact).await["name"], "Ann Token");
    }

    async fn an_email_beside_a_token_is_unproven_and_takes_nobodys_contact(app) {
        // The victim's email sits, proven, on the victim's contact.
        let victim = app.visitor().await;
        victim.identify_verified("u-victim", json!({"email": "victim@x.io"})).await;
        let (victim_conv, victim_contact) = victim.say("my secret").await;
        let proven = hs256(&json!({"email": "victim@x.io", "exp": now() + 600}), &app.creds.identity_secret);
        victim.identify(json!({"identity_token": proven})).await;
        // An attacker with a valid token for its own user id adds the victim's email beside it.
        let attacker = app.visitor().await;
        let own = token_for("u-mallory", &app.creds.identity_secret);
        let (s, out) = attacker.identify(json!({"identity_token": own, "email": "victim@x.io",
            "name": "Victim"})).await;
        assert_eq!(s, StatusCode::OK, "{out}");
        assert_ne!(out["contact_id"], json!(victim_contact), "{out}");
        let (_, mine) = attacker.say("hi").await;
        assert_ne!(mine, victim_contact);
        assert!(!attacker.conversation_ids().await.contains(&victim_conv));
        let v = app.contact(&victim_contact).await;
        assert_eq!((v["email"].as_str(), v["user_id"].as_str()), (Some("victim@x.io"), Some("u-victim")), "{v}");
    }

    async fn fields_beside_a_token_before_the_first_message_stay_unverified(app) {
        // An admin already wrote the person's company; the app identifies before the first
        // message with a token and a different company beside it.
        let first = app.visitor().await;
        first.identify_verified("u-remembered", json!({})).await;
        let (_, contact) = first.say("hello").await;
        let (s, _) = app.patch(&contact, json!({"company": "Real Co"})).await;
        assert_eq!(s, StatusCode::OK);
        let v = app.visitor().await;
        let token = hs256(&json!({"user_id": "u-remembered", "name": "Remy",
            "exp": now() + 600}), &app.creds.identity_secret);
        let (s, out) = v.identify(json!({"identity_token": token, "company": "Fake Co",
            "phone": "+14155550100"})).await;
        assert_eq!(s, StatusCode::OK, "{out}");
        // A second identify (another page view) with the token alone keeps both the proof
        // and the unverified values as they were.
        let (s, _) = v.identify(json!({"identity_token": token})).await;
        assert_eq!(s, StatusCode::OK);
        let (_, landed) = v.say("again").await;
        assert_eq!(landed, contact);
        let c = app.contact(&contact).await;
        assert_eq!(c["name"], "Remy", "{c}");
        assert_eq!(c["company"], "Real Co", "{c}");
        assert_eq!(c["phone"], "+14155550100", "{c}");
        assert_eq!(v.conversation_ids().await.len(), 2, "verified: sees both conversations");
    }

    async fn every_bad_token_is_refused_with_its_reason_and_changes_nothing(app) {
        let secret = app.creds.identity_secret.clone();
        let t = now();
        let claims = json!({"user_id": "u-victim", "name": "Mallory", "exp": t + 600, "iat": t});
        let good = hs256(&claims, &secret);
        let parts: Vec<&str> = good.split('.').collect();
        let forged_payload = b64(json!({"user_id": "u-admin", "name": "Mallory", "exp": t + 600, "iat": t})
            .to_string().as_bytes());
        let cases: Vec<(&str, String)> = vec![
            ("token_expired", hs256(&json!({"user_id": "u-victim", "exp": t - 120, "iat": t - 900}), &secret)),
            ("token_not_yet_valid", hs256(&json!({"user_id": "u-victim", "exp": t + 900, "iat": t + 600}), &secret)),
            ("token_not_yet_valid", hs256(&json!({"user_id": "u-victim", "exp": t + 900, "nbf": t + 600}), &secret)),
            ("token_bad_signature", hs256(&claims, "not-the-website-secret")),
            ("token_bad_algorithm", format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1])),
            ("token_bad_algorithm", sign_with::<Hmac<sha2::Sha512>>(&json!({"alg": "HS512", "typ": "JWT"}), &claims, &secret)),
            ("token_bad_signature", format!("{}.{}.{}", parts[0], forged_payload, parts[2])),
            ("token_missing_exp", hs256(&json!({"user_id": "u-victim", "iat": t}), &secret)),
            ("token_exp_too_far", hs256(&json!({"user_id": "u-victim", "exp": t + 86_400 + 3_600, "iat": t}), &secret)),
            ("token_malformed", "not-a-jwt".to_string()),
            ("token_missing_identity", hs256(&json!({"name": "Mallory", "exp": t + 600}), &secret)),
        ];
        let mut visitors = Vec::new();
        for (code, token) in &cases {
            let v = app.visitor().await;
            let (s, err) = v.identify(json!({"identity_token": token})).await;
            assert_refused(s, &err, code);
            visitors.push(v);
        }
        // Nothing was written or remembered: no contact exists, and each browser's first
        // message creates an anonymous lead without the token's name or user id.
        assert!(app.all_contacts().await.is_empty());
        for v in &visitors {
            let (_, id) = v.say("hello").await;
            let c = app.contact(&id).await;
            assert_eq!(c["user_id"], Value::Null, "{c}");
            assert_eq!(c["name"], Value::Null, "{c}");
            assert_eq!(c["status"], "lead");
        }
        // The untampered token works.
        let (s, out) = app.visitor().await.identify(json!({"identity_token": good})).await;
        assert_eq!(s, StatusCode::OK, "{out}");
    }

    async fn rotation_keeps_both_secrets_until_the_old_one_is_retired(app) {
        let id = default_website_id(app).await;
        let old = app.creds.identity_secret.clone();
        let (s, w) = app.admin(Method::POST, &format!("/api/v1/websites/{id}/rotate-secret"), None).await;
        assert_eq!(s, StatusCode::OK, "{w}");
        let new = w["identity_secret"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        assert_eq!(w["previous_identity_secret_active"], true);
        assert!(!w.to_string().contains(&old), "the old secret is never shown again: {w}");

        // Both secrets verify hashes and tokens.
        for secret in [&old, &new] {
            let v = app.visitor().await;
            let (s, out) = v.identify(json!({"identity_token": token_for("u-1", secret)})).await;
            assert_eq!(s, StatusCode::OK, "{out}");
            let v = app.visitor().await;
            let hash = kith_core::verify::user_hash(secret, "u-1");
            let (s, out) = v.identify(json!({"user_id": "u-1", "user_hash": hash})).await;
            assert_eq!(s, StatusCode::OK, "{out}");
        }

        let (s, w) = app.admin(Method::POST, &format!("/api/v1/websites/{id}/retire-previous-secret"), None).await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert_eq!(w["previous_identity_secret_active"], false);
        let v = app.visitor().await;
        let (s, err) = v.identify(json!({"identity_token": token_for("u-1", &old)})).await;
        assert_refused(s, &err, "token_bad_signature");
        let hash = kith_core::verify::user_hash(&old, "u-1");
        let (s, err) = v.identify(json!({"user_id": "u-1", "user_hash": hash})).await;
        assert_refused(s, &err, "identity_unverified");
        let (s, _) = v.identify(json!({"identity_token": token_for("u-1", &new)})).await;
        assert_eq!(s, StatusCode::OK);

        // Both steps are in the audit log, newest first, without any secret; it pages.
        let (s, log) = app.get("/api/v1/audit").await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let actions: Vec<&str> = log["items"].as_array().unwrap().iter()
            .map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["website.previous_identity_secret_retired", "website.identity_secret_rotated"]);
        assert_eq!(log["items"][0]["actor"], "api");
        assert_eq!(log["items"][0]["subject"], format!("website:{id}"));
        assert!(!log.to_string().contains(&old) && !log.to_string().contains(&new), "{log}");
        let (s, page) = app.get("/api/v1/audit?limit=1").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let cursor = page["next_cursor"].as_str().unwrap().to_string();
        let (_, rest) = app.get(&format!("/api/v1/audit?limit=1&cursor={cursor}")).await;
        assert_eq!(rest["items"][0]["action"], "website.identity_secret_rotated");
        assert_eq!(rest["next_cursor"], Value::Null);
        let (s, _) = app.get("/api/v1/audit?limit=0").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

        // Another organization's id is not found.
        let (s, _) = app.admin(Method::POST, "/api/v1/websites/nope/rotate-secret", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    async fn verification_modes(app) {
        // jwt-only: a valid user_hash is refused with its own code; a token verifies.
        let (site, id) = site_in_mode(app, "jwt-only").await;
        let v = site.visitor().await;
        let (s, err) = v.identify(json!({"user_id": "u-1", "user_hash": site.user_hash("u-1")})).await;
        assert_refused(s, &err, "user_hash_not_accepted");
        let (s, err) = v.identify(json!({"user_id": "u-1"})).await;
        assert_refused(s, &err, "identity_unverified");
        let (s, out) = v.identify(json!({"identity_token": token_for("u-1", &site.secret)})).await;
        assert_eq!(s, StatusCode::OK, "{out}");

        // hmac: tokens are refused, hashes verify.
        let (s, w) = app.admin(Method::PATCH, &format!("/api/v1/websites/{id}"),
            Some(json!({"identity_verification_mode": "hmac"}))).await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert_eq!(w["identity_verification_mode"], "hmac");
        let v = site.visitor().await;
        let (s, err) = v.identify(json!({"identity_token": token_for("u-2", &site.secret)})).await;
        assert_refused(s, &err, "identity_token_not_accepted");
        let (s, _) = v.identify(json!({"user_id": "u-2", "user_hash": site.user_hash("u-2")})).await;
        assert_eq!(s, StatusCode::OK);

        // off: anything counts as verified, as verification_required = false did.
        let (s, w) = app.admin(Method::PATCH, &format!("/api/v1/websites/{id}"),
            Some(json!({"identity_verification_mode": "off"}))).await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert_eq!(w["identity_verification"], false);
        let first = site.visitor().await;
        let (s, _) = first.identify(json!({"user_id": "u-3"})).await;
        assert_eq!(s, StatusCode::OK);
        let (conv, contact) = first.say("hi").await;
        let second = site.visitor().await;
        let (s, out) = second.identify(json!({"user_id": "u-3", "user_hash": "wrong"})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(out["contact_id"], contact);
        assert_eq!(second.conversation_ids().await, vec![conv]);

        // The default, and the boolean of before: true is hmac-or-jwt, false off.
        let (s, w) = app.admin(Method::POST, "/api/v1/websites", Some(json!({"name": "Plain"}))).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(w["identity_verification_mode"], "hmac-or-jwt");
        assert_eq!(w["identity_verification"], true);
        let (s, err) = app.admin(Method::PATCH, &format!("/api/v1/websites/{id}"),
            Some(json!({"identity_verification_mode": "sometimes"}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error"]["field"], "identity_verification_mode");
        let (s, _) = app.admin(Method::PATCH, "/api/v1/websites/nope",
            Some(json!({"identity_verification_mode": "off"}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Mode changes are audited.
        let (_, log) = app.get("/api/v1/audit").await;
        let changes = log["items"].as_array().unwrap().iter()
            .filter(|e| e["action"] == "website.identity_verification_changed").count();
        assert_eq!(changes, 2, "{log}");
    }

    async fn a_switch_to_another_person_ends_the_previous_persons_stream(app) {
        let secret = app.creds.identity_secret.clone();
        let v = app.visitor().await;
        let (s, _) = v.identify(json!({"identity_token": token_for("u-a", &secret)})).await;
        assert_eq!(s, StatusCode::OK);
        let (conv_a, _) = v.say("I am A").await;

        let mut stream = open_stream(app, &v).await.bytes_stream();
        let mut buf = String::new();
        assert!(read_until(&mut stream, &mut buf, |b| b.contains("event: ready")).await);
        app.admin(Method::POST, &format!("/api/v1/conversations/{conv_a}/messages"),
            Some(json!({"body": "reply one for A"}))).await;
        assert!(read_until(&mut stream, &mut buf, |b| b.contains("reply one for A")).await);

        // Somebody else logs in on the same browser: the old stream ends at once, with no
        // further event needed to notice (it would otherwise wait for one).
        let (s, _) = v.identify(json!({"identity_token": token_for("u-b", &secret)})).await;
        assert_eq!(s, StatusCode::OK);
        let before = buf.len();
        let ended = tokio::time::timeout(Duration::from_secs(3), read_until(&mut stream, &mut buf, |_| false)).await;
        assert_eq!(ended, Ok(false), "the old stream must end within 3 s of the switch");
        assert_eq!(&buf[before..], "", "nothing more reached the old stream");
        let mut fresh = open_stream(app, &v).await.bytes_stream();
        let mut fresh_buf = String::new();
        assert!(read_until(&mut fresh, &mut fresh_buf, |b| b.contains("event: ready")).await);
        app.admin(Method::POST, &format!("/api/v1/conversations/{conv_a}/messages"),
            Some(json!({"body": "reply two for A"}))).await;

        // B writes; an agent answers B and then A: the new stream shows only B's reply.
        let (conv_b, _) = v.say("I am B").await;
        app.admin(Method::POST, &format!("/api/v1/conversations/{conv_b}/messages"),
            Some(json!({"body": "reply for B"}))).await;
        app.admin(Method::POST, &format!("/api/v1/conversations/{conv_a}/messages"),
            Some(json!({"body": "reply three for A"}))).await;
        app.admin(Method::POST, &format!("/api/v1/conversations/{conv_b}/messages"),
            Some(json!({"body": "second reply for B"}))).await;
        assert!(read_until(&mut fresh, &mut fresh_buf, |b| b.contains("second reply for B")).await);
        assert!(fresh_buf.contains("reply for B"));
        assert!(!fresh_buf.contains("for A"), "{fresh_buf}");
        assert_eq!(v.conversation_ids().await, vec![conv_b]);
    }
}
