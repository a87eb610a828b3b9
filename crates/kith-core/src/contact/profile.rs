//! A contact's profile, its status, and how incoming values (a visitor's claim, an admin's
//! patch, a merge) are written into it with the changes reported for the timeline.

use super::values::{Email, Metadata, MetadataPatch, Phone, Tags, Text};
use crate::limits::*;
use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `lead` until a `user_id` is set, `customer` exactly while it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Lead,
    Customer,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Lead => "lead",
            Status::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "lead" => Some(Status::Lead),
            "customer" => Some(Status::Customer),
            _ => None,
        }
    }
}

/// Everything about a person that people or apps edit. Stats and times live beside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub user_id: Option<Text>,
    pub email: Option<Email>,
    pub name: Option<Text>,
    pub phone: Option<Phone>,
    pub company: Option<Text>,
    pub tags: Tags,
    pub metadata: Metadata,
    /// The email is proven: a verified identify's hash covered it, or an admin set it. Not
    /// part of the profile people see; it decides whether somebody who later proves that
    /// address may land on this contact (see `identity::resolve`).
    pub email_verified: bool,
}

/// One changed field for a `fields_updated` timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// Collects changes as fields are written, so every write path reports them the same way.
#[derive(Debug, Default)]
pub struct Changes(pub Vec<FieldChange>);

impl Changes {
    fn record(&mut self, field: &str, old: Value, new: Value) {
        if old != new {
            self.0.push(FieldChange {
                field: field.to_string(),
                old,
                new,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the changes of a later write to the same profile: a field written twice keeps its
    /// first `old` and takes the later `new` (one timeline entry says what happened in all).
    pub fn merge_later(&mut self, later: Changes) {
        for c in later.0 {
            match self.0.iter_mut().find(|mine| mine.field == c.field) {
                Some(mine) => mine.new = c.new,
                None => self.0.push(c),
            }
        }
        self.0.retain(|c| c.old != c.new);
    }

    /// `{"field": {"old": .., "new": ..}, ..}`, the `data.changes` of a timeline entry.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for c in &self.0 {
            m.insert(
                c.field.clone(),
                serde_json::json!({"old": c.old, "new": c.new}),
            );
        }
        Value::Object(m)
    }
}

fn opt_json<T: AsRef<str>>(v: &Option<T>) -> Value {
    v.as_ref()
        .map(|s| Value::String(s.as_ref().to_string()))
        .unwrap_or(Value::Null)
}

/// What a visitor's claim may do with metadata keys a contact does not have yet. The
/// 100-key quota is shared with the customer's app and the admins, so a claim nobody proved
/// must not be able to fill it on somebody else's contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKeys {
    /// Add none (an unverified claim on a contact that is not the visitor's own).
    None,
    /// Add while there is room; the rest are not stored (unverified claims on the visitor's
    /// own contact, and remembered claims applied by a first message, which must not fail).
    UpToLimit,
    /// Add, and refuse the whole write (422) rather than drop a key (a verified identify).
    RefuseOverLimit,
}

/// How incoming values meet stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// A verified identify or an admin: given values replace stored ones.
    Overwrite,
    /// An unverified identify: given values only fill fields that are absent.
    FillAbsent,
}

fn write_field<T: Clone + AsRef<str>>(
    changes: &mut Changes,
    name: &str,
    slot: &mut Option<T>,
    incoming: &Option<T>,
    mode: WriteMode,
) {
    let Some(new) = incoming else { return };
    if mode == WriteMode::FillAbsent && slot.is_some() {
        return;
    }
    let old = opt_json(slot);
    *slot = Some(new.clone());
    changes.record(name, old, opt_json(slot));
}

impl Profile {
    /// The patch that adds the tags `add` and removes the tags `remove` (case-insensitively):
    /// the new set goes through the same parsing (limits, case-insensitive dedup) as an
    /// admin's edit of `tags`. A contact page's tag edit and a bulk action both use it.
    pub fn retag(
        &self,
        add: &[String],
        remove: &[String],
    ) -> Result<ProfilePatch, ValidationError> {
        let remove: Vec<String> = remove.iter().map(|r| r.trim().to_lowercase()).collect();
        let tags: Vec<&str> = self
            .tags
            .as_slice()
            .iter()
            .filter(|t| !remove.contains(&t.to_lowercase()))
            .map(String::as_str)
            .chain(add.iter().map(String::as_str))
            .collect();
        ProfilePatch::parse(&serde_json::json!({ "tags": tags }))
    }

    pub fn status(&self) -> Status {
        if self.user_id.is_some() {
            Status::Customer
        } else {
            Status::Lead
        }
    }

    /// Writes identity fields given by a visitor. `email` and `user_id` are passed separately
    /// because the resolution decides whether this contact may take them. `keys` says what
    /// the claim may do with metadata keys the contact does not have yet.
    #[allow(clippy::too_many_arguments)]
    pub fn write_identity(
        &mut self,
        mode: WriteMode,
        keys: NewKeys,
        user_id: &Option<Text>,
        (email, email_proven): (&Option<Email>, bool),
        name: &Option<Text>,
        phone: &Option<Phone>,
        company: &Option<Text>,
        metadata: &MetadataPatch,
    ) -> Result<Changes, ValidationError> {
        if keys == NewKeys::RefuseOverLimit && mode == WriteMode::Overwrite {
            // Decided before anything is written: the net count after removals and additions.
            let mut after = self.metadata.len();
            for (k, v) in metadata {
                match (self.metadata.get(k).is_some(), v.is_some()) {
                    (false, true) => after += 1,
                    (true, false) => after -= 1,
                    _ => {}
                }
            }
            if after > METADATA_MAX_KEYS {
                return Err(ValidationError::new(
                    "metadata",
                    format!(
                        "the contact would hold more than {METADATA_MAX_KEYS} metadata keys; \
                         remove some before adding new ones"
                    ),
                ));
            }
        }
        let mut ch = Changes::default();
        let old_meta = self.metadata.to_json();
        // Keys already held first, so removals make room before additions count it.
        let (held, new): (Vec<_>, Vec<_>) = metadata
            .iter()
            .partition(|(k, _)| self.metadata.get(k).is_some());
        for (k, v) in held.into_iter().chain(new) {
            let present = self.metadata.get(k).is_some();
            if !present && v.is_some() {
                let room = self.metadata.len() < METADATA_MAX_KEYS;
                if keys == NewKeys::None || !room {
                    continue;
                }
            }
            match mode {
                WriteMode::Overwrite => self.metadata.set(k, v.clone()),
                // An unverified identify may add keys, never change or remove them.
                WriteMode::FillAbsent if !present && v.is_some() => self.metadata.set(k, v.clone()),
                WriteMode::FillAbsent => {}
            }
        }
        write_field(&mut ch, "user_id", &mut self.user_id, user_id, mode);
        let email_before = self.email.as_ref().map(Email::key);
        write_field(&mut ch, "email", &mut self.email, email, mode);
        if let (Some(given), Some(now)) = (email, &self.email) {
            // Written now, or the same address proven now.
            let written = email_before.as_deref() != Some(&now.key());
            if given.key() == now.key() && (written || email_proven) {
                self.email_verified = email_proven;
            }
        }
        write_field(&mut ch, "name", &mut self.name, name, mode);
        write_field(&mut ch, "phone", &mut self.phone, phone, mode);
        write_field(&mut ch, "company", &mut self.company, company, mode);
        ch.record("metadata", old_meta, self.metadata.to_json());
        Ok(ch)
    }

    /// Applies an admin's edit; every given field replaces the stored one.
    pub fn apply_patch(&mut self, patch: &ProfilePatch) -> Changes {
        let mut ch = Changes::default();
        fn set<T: Clone + AsRef<str>>(
            ch: &mut Changes,
            name: &str,
            slot: &mut Option<T>,
            p: &Option<Option<T>>,
        ) {
            if let Some(v) = p {
                let old = opt_json(slot);
                *slot = v.clone();
                ch.record(name, old, opt_json(slot));
            }
        }
        set(&mut ch, "user_id", &mut self.user_id, &patch.user_id);
        set(&mut ch, "email", &mut self.email, &patch.email);
        if patch.email.is_some() {
            // An admin vouches for the email they set.
            self.email_verified = self.email.is_some();
        }
        set(&mut ch, "name", &mut self.name, &patch.name);
        set(&mut ch, "phone", &mut self.phone, &patch.phone);
        set(&mut ch, "company", &mut self.company, &patch.company);
        if let Some(tags) = &patch.tags {
            if !tags.same_set(&self.tags) || tags != &self.tags {
                let old = serde_json::to_value(&self.tags).unwrap_or(Value::Null);
                self.tags = tags.clone();
                ch.record(
                    "tags",
                    old,
                    serde_json::to_value(&self.tags).unwrap_or(Value::Null),
                );
            }
        }
        if let Some(meta) = &patch.metadata {
            let old = self.metadata.to_json();
            for (k, v) in meta {
                self.metadata.set(k, v.clone());
            }
            ch.record("metadata", old, self.metadata.to_json());
        }
        ch
    }

    /// Merge rule 3: `self` is the holder and survives. Its values win; absent fields and
    /// missing metadata keys are filled from the absorbed profile; tags are united.
    pub fn absorb(&mut self, absorbed: &Profile) {
        fn fill<T: Clone>(slot: &mut Option<T>, from: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(from);
            }
        }
        fill(&mut self.user_id, &absorbed.user_id);
        if self.email.is_none() {
            self.email_verified = absorbed.email.is_some() && absorbed.email_verified;
        }
        fill(&mut self.email, &absorbed.email);
        fill(&mut self.name, &absorbed.name);
        fill(&mut self.phone, &absorbed.phone);
        fill(&mut self.company, &absorbed.company);
        for t in absorbed.tags.as_slice() {
            if self.tags.as_slice().len() >= TAGS_MAX {
                break;
            }
            self.tags.insert(t);
        }
        for (k, v) in absorbed.metadata.iter() {
            if self.metadata.get(k).is_none() && self.metadata.len() < METADATA_MAX_KEYS {
                self.metadata.set(k, Some(v.clone()));
            }
        }
    }

    /// What free-text search looks in: name, email, phone, company, user_id and metadata
    /// values (numbers and booleans as their JSON text), lower-cased, one per line so a search
    /// term never spans two fields.
    pub fn search_text(&self) -> String {
        let mut parts: Vec<String> = [&self.name, &self.user_id, &self.company]
            .into_iter()
            .flatten()
            .map(|t| t.as_str().to_lowercase())
            .collect();
        parts.extend(self.email.iter().map(|e| e.as_str().to_lowercase()));
        parts.extend(self.phone.iter().map(|p| p.as_str().to_lowercase()));
        for (_, v) in self.metadata.iter() {
            let text = match v {
                Value::String(s) => s.to_lowercase(),
                other => other.to_string(),
            };
            parts.push(text.replace('\n', " "));
        }
        parts.join("\n")
    }

    /// The profile of the response and of timeline snapshots.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("user_id".into(), opt_json(&self.user_id));
        m.insert("email".into(), opt_json(&self.email));
        m.insert("name".into(), opt_json(&self.name));
        m.insert("phone".into(), opt_json(&self.phone));
        m.insert("company".into(), opt_json(&self.company));
        m.insert(
            "tags".into(),
            serde_json::to_value(&self.tags).unwrap_or(Value::Null),
        );
        m.insert("metadata".into(), self.metadata.to_json());
        m
    }
}

/// An admin's edit (`PATCH /api/v1/contacts/{id}`). For each field: `None` leaves it,
/// `Some(None)` clears it, `Some(Some(v))` sets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfilePatch {
    pub user_id: Option<Option<Text>>,
    pub email: Option<Option<Email>>,
    pub name: Option<Option<Text>>,
    pub phone: Option<Option<Phone>>,
    pub company: Option<Option<Text>>,
    pub tags: Option<Tags>,
    pub metadata: Option<MetadataPatch>,
}

impl ProfilePatch {
    /// Parses a JSON object body. Fields a client may not set (`id`, stats, `status`, times)
    /// and unknown fields are ignored, as the spec says.
    pub fn parse(body: &Value) -> Result<ProfilePatch, ValidationError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        let mut p = ProfilePatch::default();
        fn text_of<'a>(field: &str, v: &'a Value) -> Result<Option<&'a str>, ValidationError> {
            match v {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s)),
                _ => Err(ValidationError::new(field, "must be a string or null")),
            }
        }
        if let Some(v) = obj.get("user_id") {
            p.user_id = Some(match text_of("user_id", v)? {
                Some(s) => Text::parse("user_id", s)?,
                None => None,
            });
        }
        if let Some(v) = obj.get("email") {
            p.email = Some(match text_of("email", v)? {
                Some(s) => Email::parse("email", s)?,
                None => None,
            });
        }
        if let Some(v) = obj.get("name") {
            p.name = Some(match text_of("name", v)? {
                Some(s) => Text::parse("name", s)?,
                None => None,
            });
        }
        if let Some(v) = obj.get("phone") {
            p.phone = Some(match text_of("phone", v)? {
                Some(s) => Phone::parse("phone", s)?,
                None => None,
            });
        }
        if let Some(v) = obj.get("company") {
            p.company = Some(match text_of("company", v)? {
                Some(s) => Text::parse("company", s)?,
                None => None,
            });
        }
        if let Some(v) = obj.get("tags") {
            p.tags = Some(if v.is_null() {
                Tags::default()
            } else {
                Tags::parse("tags", v)?
            });
        }
        if let Some(v) = obj.get("metadata") {
            if !v.is_null() {
                p.metadata = Some(Metadata::parse_patch("metadata", v)?);
            }
        }
        Ok(p)
    }
}
