//! The narrower handles every tenant query goes through.
//!
//! `Store` itself offers only what is not one organization's data: opening, organizations and
//! their credentials, finding a website by its public key, the realtime bus. Everything else
//! (contacts, lists, conversations, websites of an org) is a method of `OrgStore`, which holds
//! the organization id and puts it into every query, and the visitor side is a method of
//! `WebsiteStore`, which holds the website (and through it the organization) the widget's key
//! named. So a query that forgets the tenant cannot be written by accident: there is no
//! signature to call it with.
//!
//! ```
//! # async fn f(store: kith_store::Store, org: kith_core::OrgId, id: kith_core::ContactId) {
//! let contact = store.org(&org).contact(&id).await; // the tenant goes into the query
//! # }
//! ```
//!
//! ```compile_fail
//! # async fn f(store: kith_store::Store, id: kith_core::ContactId) {
//! let contact = store.contact(&id).await; // no tenant: there is no such method
//! # }
//! ```
//!
//! ```compile_fail
//! # async fn f(store: kith_store::Store, org: kith_core::OrgId, id: kith_core::ConversationId) {
//! let contact = store.org(&org).contact(&id).await; // a conversation id is not a contact id
//! # }
//! ```

use crate::{Store, Website};
use kith_core::OrgId;

/// One organization's view of the store: `store.org(&org_id)`.
#[derive(Clone, Copy)]
pub struct OrgStore<'a> {
    pub(crate) store: &'a Store,
    pub(crate) org: &'a OrgId,
}

/// One website's visitor-side view of the store: `store.website(&website)`.
#[derive(Clone, Copy)]
pub struct WebsiteStore<'a> {
    pub(crate) store: &'a Store,
    pub(crate) website: &'a Website,
}

impl Store {
    /// The handle for one organization's data; the id comes from a verified credential.
    pub fn org<'a>(&'a self, org: &'a OrgId) -> OrgStore<'a> {
        OrgStore { store: self, org }
    }

    /// The handle for a widget's calls on one website (found by `website_by_key`).
    pub fn website<'a>(&'a self, website: &'a Website) -> WebsiteStore<'a> {
        WebsiteStore {
            store: self,
            website,
        }
    }
}

impl<'a> OrgStore<'a> {
    pub fn id(self) -> &'a OrgId {
        self.org
    }

    /// The organization id as the queries bind it.
    pub(crate) fn org_id(self) -> &'a str {
        self.org.as_str()
    }
}

impl<'a> WebsiteStore<'a> {
    pub fn website(self) -> &'a Website {
        self.website
    }
}
