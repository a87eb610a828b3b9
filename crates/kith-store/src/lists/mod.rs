//! Saved segments and the contact listing: built-in lists (`all`, `leads`, `customers`),
//! custom lists with a filter, and `list_contacts` — one page in a chosen order plus the exact
//! count, paged with keyset cursors.
//!
//! `cursor` holds the keyset cursors and sort columns, `listing` the page and count queries
//! (SQL or the contact index), `saved` the lists themselves.

mod cursor;
mod listing;
mod saved;

pub(crate) use listing::export_query;
pub use saved::ContactList;
