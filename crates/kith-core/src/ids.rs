//! Typed ids. Every id is an opaque string on the wire and in the database, but the code never
//! mixes them up: a function that wants a contact id takes a `ContactId`, so an organization's
//! id cannot be passed where a contact's belongs (the compiler refuses), and the store's
//! organization-scoped handle is built from an `OrgId` only.
//!
//! Construction is deliberately unchecked (`new` takes any string): an id from a URL is just a
//! key to look up, and one that names nothing answers "not found". What the types add is that a
//! value keeps its meaning from where it was read to where it is used.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// An organization: the tenant every other record belongs to.
    OrgId
);
id_type!(
    /// A contact (a person, lead or customer) within one organization.
    ContactId
);
id_type!(
    /// A conversation between a visitor and the organization's agents.
    ConversationId
);
id_type!(
    /// A saved contact list; the built-ins are `all`, `leads` and `customers`.
    ListId
);
id_type!(
    /// A website of an organization (the widget's `X-Kith-Website` key names one).
    WebsiteId
);
id_type!(
    /// A visitor: one browser on one website, known by its signed visitor token.
    VisitorId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_their_string_on_the_wire() {
        let id = ContactId::new("01hx");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"01hx\"");
        let back: ContactId = serde_json::from_str("\"01hx\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(id.to_string(), "01hx");
        assert!(id == "01hx");
    }
}
