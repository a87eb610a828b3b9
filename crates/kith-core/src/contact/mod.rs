//! A contact's profile and the value types it is made of. Each type has a `parse`
//! constructor that trims, checks limits and syntax, and names the field when it refuses:
//! once a value exists it is valid, so the store never sees a bad one.
//!
//! `values` holds the field types, `profile` the profile and how writes meet it, `stats` the
//! engagement counters, `message` message bodies. Everything is re-exported here, so
//! `kith_core::contact::X` is the one path callers use.

mod message;
mod profile;
mod stats;
mod values;

pub use message::*;
pub use profile::*;
pub use stats::*;
pub use values::*;

#[cfg(test)]
mod tests;
