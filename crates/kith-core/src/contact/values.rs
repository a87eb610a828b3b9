//! The field types of a profile: each `parse` trims, checks limits and syntax, and names the
//! field when it refuses.

use crate::limits::*;
use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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

    pub(super) fn set(&mut self, key: &str, value: Option<Value>) {
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
