//! A contact's profile and the value types it is made of. Each type has a `parse`
//! constructor that trims, checks limits and syntax, and names the field when it refuses:
//! once a value exists it is valid, so the store never sees a bad one.

use crate::limits::*;
use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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

/// Control characters (NUL included) have no place in names, keys or labels, and PostgreSQL
/// refuses NUL outright; tabs and newlines are allowed only where text spans lines.
pub(crate) fn check_controls(field: &str, s: &str, multiline: bool) -> Result<(), ValidationError> {
    let bad = s
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
    if bad {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A short free-text field (name, company, user_id): trimmed, non-empty, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// `Ok(None)` when the value is empty after trimming: the spec calls that absent.
    pub fn parse(field: &str, raw: &str) -> Result<Option<Text>, ValidationError> {
        let t = raw.trim();
        if t.is_empty() {
            return Ok(None);
        }
        check_controls(field, t, false)?;
        if t.chars().count() > FIELD_MAX_CHARS {
            return Err(ValidationError::new(
                field,
                format!("must be at most {FIELD_MAX_CHARS} characters"),
            ));
        }
        Ok(Some(Text(t.to_string())))
    }

    /// A value read back from the store, which only ever holds parsed values.
    pub fn from_stored(s: String) -> Text {
        Text(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: trimmed, at most 255 characters, `local@domain.tld`. Compared by its
/// lower-case form, which is also the unique key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Option<Email>, ValidationError> {
        let t = raw.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if t.chars().count() > FIELD_MAX_CHARS {
            return Err(ValidationError::new(
                field,
                format!("must be at most {FIELD_MAX_CHARS} characters"),
            ));
        }
        let bad = || ValidationError::new(field, "is not an email address like ada@example.com");
        let (local, domain) = t.split_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"@<>()[]\\,;:\"".contains(c));
        if !domain_ok || !local_ok {
            return Err(bad());
        }
        Ok(Some(Email(t.to_string())))
    }

    pub fn from_stored(s: String) -> Email {
        Email(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unique key: trimmed at parse time, lower-cased here. ASCII only: Unicode folding
    /// would make look-alikes (the Kelvin sign `K` → `k`) collide with real addresses.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A phone number in E.164 (`+14155550100`). Spaces, dashes, dots and parentheses that people
/// type are removed first; anything else must be a `+`, a non-zero digit and up to 14 digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &str, raw: &str) -> Result<Option<Phone>, ValidationError> {
        let t = raw.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if t.chars().count() > FIELD_MAX_CHARS {
            return Err(ValidationError::new(
                field,
                format!("must be at most {FIELD_MAX_CHARS} characters"),
            ));
        }
        let compact: String = t
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        let ok = (2..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            return Err(ValidationError::new(
                field,
                "must be an E.164 phone number: + then country code and number, e.g. +14155550100",
            ));
        }
        Ok(Some(Phone(compact)))
    }

    pub fn from_stored(s: String) -> Phone {
        Phone(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of labels: trimmed, unique case-insensitively, first spelling kept, in the order seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tags(Vec<String>);

impl Tags {
    /// Linear in the input, and refuses it as soon as it passes a limit: a 1 MiB body holds
    /// about 130 k tags, so neither a quadratic duplicate check nor "parse all, then count"
    /// is affordable on a runtime worker.
    pub fn parse(field: &str, raw: &Value) -> Result<Tags, ValidationError> {
        let items = raw
            .as_array()
            .ok_or_else(|| ValidationError::new(field, "must be an array of strings"))?;
        let mut tags = Tags::default();
        let mut seen = std::collections::HashSet::with_capacity(items.len().min(TAGS_MAX));
        for item in items {
            let s = item
                .as_str()
                .ok_or_else(|| ValidationError::new(field, "must be an array of strings"))?;
            let t = s.trim();
            if t.is_empty() {
                return Err(ValidationError::new(field, "tags must not be empty"));
            }
            check_controls(field, t, false)?;
            if t.chars().count() > TAG_MAX_CHARS {
                return Err(ValidationError::new(
                    field,
                    format!("each tag must be at most {TAG_MAX_CHARS} characters"),
                ));
            }
            if seen.insert(t.to_lowercase()) {
                if tags.0.len() == TAGS_MAX {
                    return Err(ValidationError::new(
                        field,
                        format!("a contact has at most {TAGS_MAX} tags"),
                    ));
                }
                tags.0.push(t.to_string());
            }
        }
        Ok(tags)
    }

    pub fn from_stored(tags: Vec<String>) -> Tags {
        Tags(tags)
    }

    /// Adds `tag` unless a tag equal to it ignoring case is already there.
    pub fn insert(&mut self, tag: &str) -> bool {
        let lower = tag.to_lowercase();
        if self.0.iter().any(|t| t.to_lowercase() == lower) {
            return false;
        }
        self.0.push(tag.to_string());
        true
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Equal as sets (ignoring case and order): what decides whether an edit changed them.
    pub fn same_set(&self, other: &Tags) -> bool {
        let norm = |t: &Tags| {
            let mut v: Vec<String> = t.0.iter().map(|s| s.to_lowercase()).collect();
            v.sort();
            v
        };
        norm(self) == norm(other)
    }
}

/// Custom key → scalar pairs (string, number, boolean). Kept sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, Value>);

/// One metadata edit: `Some(value)` sets the key, `None` (JSON `null`) removes it.
pub type MetadataPatch = BTreeMap<String, Option<Value>>;

impl Metadata {
    /// Parses an incoming flat object. `null` values are kept as `None` so that the caller
    /// can treat them as "remove this key".
    pub fn parse_patch(field: &str, raw: &Value) -> Result<MetadataPatch, ValidationError> {
        let obj = raw.as_object().ok_or_else(|| {
            ValidationError::new(field, "must be a flat JSON object of key → value pairs")
        })?;
        if obj.len() > METADATA_MAX_KEYS {
            return Err(ValidationError::new(
                field,
                format!("at most {METADATA_MAX_KEYS} keys"),
            ));
        }
        let mut out = MetadataPatch::new();
        for (key, value) in obj {
            let k = key.trim();
            let kfield = format!("{field}.{k}");
            if k.is_empty() {
                return Err(ValidationError::new(field, "keys must not be empty"));
            }
            check_controls(&kfield, k, false)?;
            if k.chars().count() > METADATA_KEY_MAX_CHARS {
                return Err(ValidationError::new(
                    kfield,
                    format!("keys must be at most {METADATA_KEY_MAX_CHARS} characters"),
                ));
            }
            let v = match value {
                Value::Null => None,
                Value::String(s) => {
                    check_controls(&kfield, s, true)?;
                    if s.chars().count() > METADATA_VALUE_MAX_CHARS {
                        return Err(ValidationError::new(
                            kfield,
                            format!(
                                "string values must be at most {METADATA_VALUE_MAX_CHARS} characters"
                            ),
                        ));
                    }
                    Some(value.clone())
                }
                Value::Bool(_) | Value::Number(_) => Some(value.clone()),
                Value::Array(_) | Value::Object(_) => {
                    return Err(ValidationError::new(
                        kfield,
                        "values must be a string, number, boolean or null (no nesting)",
                    ))
                }
            };
            out.insert(k.to_string(), v);
        }
        Ok(out)
    }

    pub fn from_stored(map: Map<String, Value>) -> Metadata {
        Metadata(map.into_iter().collect())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone().into_iter().collect())
    }

    fn set(&mut self, key: &str, value: Option<Value>) {
        match value {
            Some(v) => {
                self.0.insert(key.to_string(), v);
            }
            None => {
                self.0.remove(key);
            }
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

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
impl AsRef<str> for Phone {
    fn as_ref(&self) -> &str {
        &self.0
    }
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

/// Engagement stats and times, kept by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub conversation_count: i64,
    pub message_count: i64,
    pub last_seen_at: Option<i64>,
    pub created_at: i64,
}

impl Stats {
    /// Merge rule 3 for stats: counts add up, `last_seen_at` is the later and `created_at`
    /// the earlier of the two.
    pub fn absorb(&mut self, other: &Stats) {
        self.conversation_count += other.conversation_count;
        self.message_count += other.message_count;
        self.last_seen_at = match (self.last_seen_at, other.last_seen_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.created_at = self.created_at.min(other.created_at);
    }
}

/// A message body: trimmed, non-empty, at most 10,000 characters.
pub fn parse_message_body(raw: &str) -> Result<String, ValidationError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(ValidationError::new("body", "must not be empty"));
    }
    check_controls("body", t, true)?;
    if t.chars().count() > MESSAGE_MAX_CHARS {
        return Err(ValidationError::new(
            "body",
            format!("must be at most {MESSAGE_MAX_CHARS} characters"),
        ));
    }
    Ok(t.to_string())
}

/// The first characters of a message, for conversation lists.
pub fn preview(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(PREVIEW_CHARS).collect();
    if flat.chars().count() > PREVIEW_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn email_is_trimmed_and_keyed_lower_case() {
        let e = Email::parse("email", "  Ada@Example.COM ")
            .unwrap()
            .unwrap();
        assert_eq!(e.as_str(), "Ada@Example.COM");
        assert_eq!(e.key(), "ada@example.com");
        assert_eq!(Email::parse("email", "   ").unwrap(), None);
        for bad in [
            "ada",
            "ada@",
            "@x.io",
            "a b@x.io",
            "ada@x",
            "ada@x..io",
            "a@-x.io",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse("email", &long).unwrap_err().field, "email");
    }

    #[test]
    fn phone_must_be_e164() {
        assert_eq!(
            Phone::parse("phone", "+1 (415) 555-0100")
                .unwrap()
                .unwrap()
                .as_str(),
            "+14155550100"
        );
        for bad in ["4155550100", "+0123", "+1", "+1234567890123456", "+1abc"] {
            assert!(Phone::parse("phone", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn tags_keep_first_spelling_and_are_unique_ignoring_case() {
        let t = Tags::parse(
            "tags",
            &json!([" Enterprise", "trial", "enterprise ", "TRIAL"]),
        )
        .unwrap();
        assert_eq!(t.as_slice(), ["Enterprise", "trial"]);
        assert!(Tags::parse("tags", &json!(["", "x"])).is_err());
        assert!(Tags::parse("tags", &json!(["x".repeat(65)])).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse("tags", &json!(many)).is_err());
    }

    #[test]
    fn tags_parse_in_linear_time_and_stop_at_the_limit() {
        // 200 k spellings of one tag (about 1 MiB of JSON) are one tag.
        let dupes: Vec<&str> = (0..200_000)
            .map(|i| if i % 2 == 0 { "Same" } else { "SAME" })
            .collect();
        assert_eq!(
            Tags::parse("tags", &json!(dupes)).unwrap().as_slice(),
            ["Same"]
        );
        // The 101st distinct tag is refused at once: the item after it (not a string) would
        // give another error if parsing went on.
        let mut items: Vec<Value> = (0..101).map(|i| json!(format!("t{i}"))).collect();
        items.push(json!(42));
        let e = Tags::parse("tags", &Value::Array(items)).unwrap_err();
        assert!(e.message.contains("at most 100"), "{e:?}");
    }

    fn meta(n: usize, prefix: &str) -> MetadataPatch {
        (0..n)
            .map(|i| (format!("{prefix}{i}"), Some(json!(i))))
            .collect()
    }

    fn write_meta(
        p: &mut Profile,
        keys: NewKeys,
        m: &MetadataPatch,
    ) -> Result<Changes, ValidationError> {
        let mode = match keys {
            NewKeys::RefuseOverLimit => WriteMode::Overwrite,
            _ => WriteMode::FillAbsent,
        };
        p.write_identity(mode, keys, &None, (&None, false), &None, &None, &None, m)
    }

    #[test]
    fn new_metadata_keys_follow_who_writes() {
        // An unverified claim on somebody else's contact adds no keys (and fills no quota).
        let mut p = Profile::default();
        write_meta(&mut p, NewKeys::None, &meta(100, "junk")).unwrap();
        assert!(p.metadata.is_empty());
        // On the visitor's own contact it adds keys while there is room, silently.
        write_meta(&mut p, NewKeys::UpToLimit, &meta(150, "own")).unwrap();
        assert_eq!(p.metadata.len(), 100);
        // A verified write that would pass the limit is refused whole, never cut.
        let before = p.clone();
        let e = write_meta(&mut p, NewKeys::RefuseOverLimit, &meta(1, "app")).unwrap_err();
        assert_eq!(e.field, "metadata");
        assert_eq!(p, before);
        // Removing keys in the same write makes room for as many new ones.
        let mut m = meta(2, "app");
        m.insert("own0".into(), None);
        m.insert("own1".into(), None);
        write_meta(&mut p, NewKeys::RefuseOverLimit, &m).unwrap();
        assert_eq!(p.metadata.len(), 100);
        assert!(p.metadata.get("app1").is_some() && p.metadata.get("own1").is_none());
    }

    #[test]
    fn metadata_is_flat_and_limited() {
        let p = Metadata::parse_patch("metadata", &json!({"plan": "pro", "seats": 3, "x": null}))
            .unwrap();
        assert_eq!(p["plan"], Some(json!("pro")));
        assert_eq!(p["x"], None);
        let err = Metadata::parse_patch("metadata", &json!({"nested": {"a": 1}})).unwrap_err();
        assert_eq!(err.field, "metadata.nested");
        assert!(Metadata::parse_patch("metadata", &json!({"k": "v".repeat(1001)})).is_err());
        assert!(Metadata::parse_patch("metadata", &json!([1])).is_err());
    }

    #[test]
    fn fill_absent_never_overwrites() {
        let mut p = Profile {
            name: Text::parse("name", "Ada").unwrap(),
            ..Profile::default()
        };
        let meta = Metadata::parse_patch("m", &json!({"plan": "free", "seats": 2})).unwrap();
        let mut stored = MetadataPatch::new();
        stored.insert("plan".into(), Some(json!("pro")));
        p.write_identity(
            WriteMode::Overwrite,
            NewKeys::RefuseOverLimit,
            &None,
            (&None, false),
            &None,
            &None,
            &None,
            &stored,
        )
        .unwrap();
        let ch = p
            .write_identity(
                WriteMode::FillAbsent,
                NewKeys::UpToLimit,
                &None,
                (&None, false),
                &Text::parse("name", "Mallory").unwrap(),
                &None,
                &Text::parse("company", "Acme").unwrap(),
                &meta,
            )
            .unwrap();
        assert_eq!(p.name.as_ref().unwrap().as_str(), "Ada");
        assert_eq!(p.company.as_ref().unwrap().as_str(), "Acme");
        assert_eq!(p.metadata.get("plan"), Some(&json!("pro")));
        assert_eq!(p.metadata.get("seats"), Some(&json!(2)));
        let fields: Vec<_> = ch.0.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["company", "metadata"]);
    }

    #[test]
    fn absorb_fills_only_absent_values_and_unites_tags() {
        let mut holder = Profile {
            name: Text::parse("name", "Ada").unwrap(),
            tags: Tags::from_stored(vec!["VIP".into()]),
            metadata: Metadata::from_stored(json!({"plan": "pro"}).as_object().unwrap().clone()),
            ..Profile::default()
        };
        let absorbed = Profile {
            name: Text::parse("name", "Anon").unwrap(),
            company: Text::parse("company", "Acme").unwrap(),
            tags: Tags::from_stored(vec!["vip".into(), "trial".into()]),
            metadata: Metadata::from_stored(
                json!({"plan": "free", "ref": "ad"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            ..Profile::default()
        };
        holder.absorb(&absorbed);
        assert_eq!(holder.name.unwrap().as_str(), "Ada");
        assert_eq!(holder.company.unwrap().as_str(), "Acme");
        assert_eq!(holder.tags.as_slice(), ["VIP", "trial"]);
        assert_eq!(holder.metadata.get("plan"), Some(&json!("pro")));
        assert_eq!(holder.metadata.get("ref"), Some(&json!("ad")));
    }

    #[test]
    fn search_text_has_every_searchable_field_lower_cased() {
        let p = Profile {
            name: Text::parse("name", "Zoë Ångström").unwrap(),
            email: Email::parse("email", "Zoe@Example.com").unwrap(),
            phone: Phone::parse("phone", "+14155550100").unwrap(),
            metadata: Metadata::from_stored(
                json!({"plan": "Pro\nPlus", "seats": 12, "beta": true})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            ..Profile::default()
        };
        let t = p.search_text();
        for part in [
            "zoë ångström",
            "zoe@example.com",
            "+14155550100",
            "pro plus",
            "12",
            "true",
        ] {
            assert!(t.lines().any(|l| l == part), "{part:?} missing from {t:?}");
        }
    }

    #[test]
    fn stats_add_up_and_keep_extreme_times() {
        let mut a = Stats {
            conversation_count: 1,
            message_count: 3,
            last_seen_at: Some(100),
            created_at: 50,
        };
        a.absorb(&Stats {
            conversation_count: 2,
            message_count: 4,
            last_seen_at: Some(200),
            created_at: 10,
        });
        assert_eq!(
            a,
            Stats {
                conversation_count: 3,
                message_count: 7,
                last_seen_at: Some(200),
                created_at: 10
            }
        );
    }

    #[test]
    fn patch_parses_clears_and_ignores_server_fields() {
        let p = ProfilePatch::parse(
            &json!({"name": null, "email": " A@B.io ", "status": "customer", "message_count": 9}),
        )
        .unwrap();
        assert_eq!(p.name, Some(None));
        assert_eq!(p.email.unwrap().unwrap().as_str(), "A@B.io");
        assert_eq!(p.user_id, None);
        assert_eq!(
            ProfilePatch::parse(&json!({"phone": "12"}))
                .unwrap_err()
                .field,
            "phone"
        );
        assert_eq!(
            ProfilePatch::parse(&json!({"name": 5})).unwrap_err().field,
            "name"
        );
    }

    #[test]
    fn message_body_and_preview() {
        assert!(parse_message_body("   ").is_err());
        assert!(parse_message_body(&"x".repeat(10_001)).is_err());
        assert_eq!(parse_message_body(" hi ").unwrap(), "hi");
        let p = preview(&"word ".repeat(100));
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }
}
