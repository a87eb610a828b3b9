//! Admin API (`/api/v1`), one module per resource. The organization always comes from the
//! credential.

pub mod bulk;
pub mod contacts;
pub mod conversations;
pub mod events;
pub mod lists;
pub mod merges;
pub mod notes;
pub mod webhooks;
pub mod websites;

use crate::state::AppState;
use axum::Router;

// The fuzzer (fuzz/) drives the contacts query parser through this path.
pub use contacts::{filter_from_query, ContactQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(contacts::router())
        .merge(bulk::router())
        .merge(lists::router())
        .merge(conversations::router())
        .merge(websites::router())
        .merge(events::router())
        .merge(merges::router())
        .merge(notes::router())
        .merge(webhooks::router())
}
