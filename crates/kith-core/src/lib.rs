//! Kith's domain: what a contact is, which values are valid, and how an incoming identity
//! is resolved against the contacts that already exist. Everything here is pure: no I/O, no
//! async, no clock. The store gathers the facts, asks these functions what to do, and applies
//! the answer in one transaction.

pub mod contact;
pub mod conversation;
pub mod filter;
pub mod identity;
pub mod identity_token;
pub mod ids;
pub mod import;
pub mod limits;
pub mod merge;
pub mod time;
pub mod timeline;
pub mod validate;
pub mod verify;
pub mod webhook;

pub use contact::{Email, Metadata, Phone, Profile, Status, Tags, Text};
pub use ids::{ContactId, ConversationId, ListId, OrgId, VisitorId, WebsiteId};
pub use time::Timestamp;
pub use validate::ValidationError;
