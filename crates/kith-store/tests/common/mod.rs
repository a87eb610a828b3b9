//! The start several store tests share (`mod common;` in each).

use kith_core::webhook::EventType;
use kith_store::{Credentials, NewOrg, OrgStore, Store, WebhookEndpoint, Website};

/// A new organization "Acme" with its website "Shop", and that website as a widget call's
/// key finds it.
pub async fn acme_with_shop(store: &Store) -> (Credentials, Website) {
    let created = store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: "admin@acme.test".into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("org");
    let site = store
        .website_by_key(&created.website_key)
        .await
        .expect("the key's lookup")
        .expect("the key");
    (created, site)
}

/// An enabled endpoint of the organization subscribed to `events` (never called: the tests
/// read the deliveries it gets).
pub async fn endpoint(org: OrgStore<'_>, events: &[EventType]) -> WebhookEndpoint {
    org.create_webhook("https://hooks.example.test/kith", events, true)
        .await
        .expect("endpoint")
}
