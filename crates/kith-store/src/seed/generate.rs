//! Drawing synthetic contacts: names, emails, companies, phones, tags and metadata from a
//! small vocabulary, skewed last-seen times, and each contact's conversation.

use super::{Batch, Encoded, SqliteRows};
use crate::conn::{Arg, Dialect};
use crate::contact_rows::profile_args;
use crate::ids::new_id;
use crate::StoreError;
use kith_core::contact::{Changes, FieldChange};
use kith_core::timeline::EventKind;
use kith_core::{Email, Metadata, Phone, Profile, Status, Tags, Text};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

pub(super) const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Hedy",
    "Tim",
    "Radia",
    "Guido",
    "Zoë",
    "José",
    "Ångström",
    "Mary",
    "Edsger",
    "Donald",
    "Sophie",
    "Yukihiro",
    "Anders",
    "Bjarne",
    "Niklaus",
    "Karen",
    "Annie",
    "Claude",
    "Jean",
    "Lena",
];
pub(super) const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Lamarr",
    "Berners-Lee",
    "Perlman",
    "van Rossum",
    "Müller",
    "García",
    "Nakamura",
    "Hejlsberg",
    "Stroustrup",
    "Wirth",
    "Spärck Jones",
    "Easley",
    "Shannon",
    "Sammet",
    "Johnson",
    "Wilson",
    "Brown",
    "Martin",
    "Anderson",
    "Smith",
];
pub(super) const COMPANIES: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Pied Piper",
    "Aperture",
    "Black Mesa",
];
pub(super) const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example",
    "corp.example",
    "inbox.example",
];
/// Tags and the share of contacts carrying each.
pub(super) const TAGS: &[(&str, f64)] = &[
    ("enterprise", 0.10),
    ("trial", 0.25),
    ("churned", 0.05),
    ("vip", 0.02),
    ("newsletter", 0.40),
    ("beta", 0.08),
    ("partner", 0.01),
    ("support-priority", 0.15),
];
pub(super) const PLANS: &[&str] = &["free", "starter", "pro", "enterprise"];
pub(super) const MESSAGES: &[&str] = &[
    "Hi, I have a question about my invoice",
    "How do I reset my password?",
    "Can I upgrade my plan?",
    "The export button does nothing",
    "Thanks, that fixed it!",
    "Do you offer discounts for non-profits?",
];

/// One generated contact. Its profile's columns come from `profile_args`, the builder every
/// other contact write uses, so the seed cannot drift from the normal write path.
pub(super) struct Contact {
    pub(super) id: String,
    /// The values of `PROFILE_COLUMNS`, in that order (`updated_at` included).
    pub(super) profile: Vec<Arg>,
    /// The `contact_tags` rows: each tag lower-cased.
    pub(super) tag_keys: Vec<String>,
    pub(super) last_seen_at: Option<i64>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    pub(super) conversation: Option<Conversation>,
    /// Its timeline, oldest first.
    pub(super) events: Vec<Event>,
}

/// One timeline entry (`contact_events`), as the write paths record them.
pub(super) struct Event {
    pub(super) id: String,
    pub(super) kind: &'static str,
    pub(super) actor: &'static str,
    pub(super) data: String,
    pub(super) at: i64,
}

/// The share of contacts with a long history (plan changes over the years): enough of them
/// that a timeline page of 50 is a full page for a sampled contact now and then.
const LONG_HISTORY_SHARE: f64 = 0.02;

/// A contact's one conversation, started by the visitor whose first message created the
/// contact (so the visitor's link is proven, as `resolve_and_apply` records it).
pub(super) struct Conversation {
    pub(super) id: String,
    pub(super) visitor_id: String,
    /// The visitor identified with a verified user id: the customers.
    pub(super) verified: bool,
    pub(super) status: &'static str,
    pub(super) body: &'static str,
    pub(super) message_ids: Vec<String>,
}

pub(super) fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// Draws contacts in a fixed order from one seeded generator, so a seed gives the same data.
pub(super) struct Generator {
    pub(super) rng: StdRng,
    /// The website conversations start on: its id and name, as timeline entries name it.
    pub(super) website: (String, String),
    pub(super) now: i64,
    /// Makes emails and user ids unique: continues after the contacts already there.
    pub(super) next_index: u64,
}

impl Generator {
    fn contact(&mut self) -> Result<Contact, StoreError> {
        const DAY: i64 = 86_400_000;
        let rng = &mut self.rng;
        let idx = self.next_index;
        self.next_index += 1;
        let first = pick(rng, FIRST);
        let last = pick(rng, LAST);
        let customer = rng.gen_bool(0.4);
        let mut p = Profile {
            name: Text::parse("name", &format!("{first} {last}"))?,
            email: Email::parse(
                "email",
                &format!(
                    "{}.{}.{idx}@{}",
                    first.to_lowercase().replace(['ë', 'é', 'Å', 'å', 'ö'], "o"),
                    last.to_lowercase().replace([' ', 'ü', 'í', 'ä'], ""),
                    pick(rng, DOMAINS)
                ),
            )?,
            company: rng
                .gen_bool(0.7)
                .then(|| Text::from_stored(pick(rng, COMPANIES).to_string())),
            phone: if rng.gen_bool(0.3) {
                Phone::parse(
                    "phone",
                    &format!("+1415{:07}", rng.gen_range(0..10_000_000)),
                )?
            } else {
                None
            },
            user_id: customer.then(|| Text::from_stored(format!("usr_{idx}"))),
            ..Profile::default()
        };
        let mut tags = Tags::default();
        for (t, share) in TAGS {
            if rng.gen_bool(*share) {
                tags.insert(t);
            }
        }
        p.tags = tags;
        p.metadata = Metadata::from_stored(
            json!({"plan": pick(rng, PLANS), "seats": rng.gen_range(1..200), "source": if rng.gen_bool(0.5) {"ads"} else {"organic"}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        // Skewed activity: most contacts were seen recently, a long tail long ago, and a few
        // (imported) never.
        let age_days = (-(1.0 - rng.gen::<f64>()).ln() * 20.0).min(720.0);
        let last_seen = self.now - (age_days * DAY as f64) as i64;
        let created = last_seen - rng.gen_range(0..90) * DAY;
        let never_seen = rng.gen_bool(0.02);
        let id = new_id();
        let conversation = if !never_seen && rng.gen_bool(0.6) {
            let messages = rng.gen_range(1..4i64);
            Some(Conversation {
                visitor_id: new_id(),
                id: new_id(),
                verified: customer,
                body: pick(rng, MESSAGES),
                status: pick(rng, &["open", "open", "resolved", "escalated"]),
                message_ids: (0..messages).map(|_| new_id()).collect(),
            })
        } else {
            None
        };
        let events = self.timeline(&p, created, last_seen, conversation.as_ref());
        Ok(Contact {
            id,
            events,
            profile: profile_args(&p, last_seen),
            tag_keys: p.tags.as_slice().iter().map(|t| t.to_lowercase()).collect(),
            last_seen_at: (!never_seen).then_some(last_seen),
            created_at: created,
            updated_at: last_seen,
            conversation,
        })
    }
}

impl Generator {
    /// The entries the write paths would have left: created (by the first message's visitor,
    /// or by the API for a contact never seen), the conversation it started, for a customer
    /// the identify that set its user id and promoted it, and for a few a long run of plan
    /// changes between creation and last sight.
    fn timeline(
        &mut self,
        p: &Profile,
        created: i64,
        last_seen: i64,
        conversation: Option<&Conversation>,
    ) -> Vec<Event> {
        let by = if conversation.is_some() {
            "visitor"
        } else {
            "api"
        };
        let mut events = vec![Event {
            id: new_id(),
            kind: EventKind::Created.as_str(),
            actor: by,
            data: json!({"status": Status::Lead.as_str()}).to_string(),
            at: created,
        }];
        if let Some(cv) = conversation {
            events.push(Event {
                id: new_id(),
                kind: EventKind::ConversationStarted.as_str(),
                actor: "visitor",
                data: json!({"conversation_id": cv.id, "website_id": self.website.0,
                             "website_name": self.website.1})
                .to_string(),
                at: created,
            });
        }
        // Field changes as `Changes::to_json` writes them (`record_changes`).
        let changed = |field: &str, old: Value, new: Value| {
            json!({"changes": Changes(vec![FieldChange { field: field.into(), old, new }]).to_json()})
                .to_string()
        };
        if let Some(user_id) = &p.user_id {
            events.push(Event {
                id: new_id(),
                kind: EventKind::FieldsUpdated.as_str(),
                actor: by,
                data: changed("user_id", Value::Null, json!(user_id.as_str())),
                at: created,
            });
            events.push(Event {
                id: new_id(),
                kind: EventKind::Promoted.as_str(),
                actor: by,
                data: json!({"from": Status::Lead.as_str(), "to": Status::Customer.as_str()})
                    .to_string(),
                at: created,
            });
        }
        if self.rng.gen_bool(LONG_HISTORY_SHARE) {
            let n = self.rng.gen_range(60..=120);
            let span = (last_seen - created).max(n);
            let mut plan = pick(&mut self.rng, PLANS);
            for i in 0..n {
                let next = pick(&mut self.rng, PLANS);
                events.push(Event {
                    id: new_id(),
                    kind: EventKind::FieldsUpdated.as_str(),
                    actor: "api",
                    data: changed("metadata", json!({"plan": plan}), json!({"plan": next})),
                    at: created + span * (i + 1) / (n + 1),
                });
                plan = next;
            }
        }
        events
    }

    pub(super) fn batch(&mut self, n: u64, dialect: Dialect) -> Result<Batch, StoreError> {
        let mut batch = Batch {
            contacts: n,
            conversations: 0,
            messages: 0,
            events: 0,
            rows: match dialect {
                Dialect::Sqlite => Encoded::Sqlite(SqliteRows::default()),
                Dialect::Postgres => Encoded::Postgres(Box::default()),
            },
        };
        for _ in 0..n {
            let c = self.contact()?;
            if let Some(cv) = &c.conversation {
                batch.conversations += 1;
                batch.messages += cv.message_ids.len() as u64;
            }
            batch.events += c.events.len() as u64;
            match &mut batch.rows {
                Encoded::Sqlite(rows) => rows.push(c),
                Encoded::Postgres(cols) => cols.push(c)?,
            }
        }
        Ok(batch)
    }
}
