//! List filters (saved segments): a small typed model, parsed from JSON once and validated,
//! then compiled to SQL by the store. Every key is optional; given keys combine with AND.
//!
//! ```json
//! {"status": "lead" | "customer",
//!  "tags": {"all": [..], "any": [..], "none": [..]},
//!  "q": "text",
//!  "metadata": {"plan": {"eq": "pro"}, "beta": {"exists": true}},
//!  "last_seen_at": {"after": "2026-01-01T00:00:00Z", "before": "…"},
//!  "created_at": {"after": "…", "before": "…"},
//!  "message_count": {"min": 1, "max": 10},
//!  "conversation_count": {"min": 1},
//!  "website_id": "…"}
//! ```

use crate::contact::{check_controls, Status};
use crate::limits::{
    FIELD_MAX_CHARS, METADATA_KEY_MAX_CHARS, METADATA_VALUE_MAX_CHARS, TAGS_MAX, TAG_MAX_CHARS,
};
use crate::time::Timestamp;
use crate::validate::ValidationError;
use serde_json::{json, Map, Value};

/// A condition on one metadata key.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaCond {
    /// The key holds exactly this scalar.
    Eq(String, Value),
    /// The key is present (`true`) or absent (`false`).
    Exists(String, bool),
}

/// What metadata `eq` compares: strings and booleans by content, numbers by value, so `3` and
/// `3.0` are equal (as numeric comparison in SQLite and PostgreSQL has it) while `"3"` and `3`
/// are not. `None` for values that are not scalars.
pub fn metadata_eq_key(v: &Value) -> Option<String> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    match v {
        Value::String(s) => Some(format!("s{s}")),
        Value::Bool(b) => Some(format!("b{b}")),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => format!("i{i}"),
            None => {
                let f = n.as_f64()?;
                if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
                    format!("i{}", f as i64)
                } else {
                    format!("f{}", f.to_bits())
                }
            }
        }),
        _ => None,
    }
}

/// A half-open or closed interval; `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    /// Inclusive lower bound.
    pub min: Option<i64>,
    /// Inclusive upper bound.
    pub max: Option<i64>,
}

impl Range {
    fn and(self, o: Range) -> Range {
        Range {
            min: match (self.min, o.min) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            max: match (self.max, o.max) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    pub fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListFilter {
    /// Every status given must hold (two different ones match nothing).
    pub status: Vec<Status>,
    /// Lower-cased tags.
    pub tags_all: Vec<String>,
    /// Groups of lower-cased tags; each group needs one of its tags.
    pub tags_any: Vec<Vec<String>>,
    pub tags_none: Vec<String>,
    /// Lower-cased search terms; each must be a substring of the contact's searchable text.
    pub q: Vec<String>,
    pub metadata: Vec<MetaCond>,
    /// Unix milliseconds; `after` is exclusive and `before` exclusive, stored inclusive.
    pub last_seen_at: Range,
    pub created_at: Range,
    pub message_count: Range,
    pub conversation_count: Range,
    /// The contact has a conversation on one of these websites (all must hold).
    pub website_ids: Vec<String>,
}

fn err(field: &str, msg: impl Into<String>) -> ValidationError {
    ValidationError::new(field, msg)
}

fn object<'a>(field: &str, v: &'a Value) -> Result<&'a Map<String, Value>, ValidationError> {
    v.as_object()
        .ok_or_else(|| err(field, "must be a JSON object"))
}

fn only_keys(
    field: &str,
    obj: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), ValidationError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(
                &format!("{field}.{k}"),
                format!("unknown; use one of: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

/// A tag as filters compare it: trimmed and lower-cased. Limits are checked on the lower-cased
/// text, which is what is stored: lower-casing can lengthen text (`İ` → `i̇`), and a stored
/// filter must always parse again.
pub fn tag_key(field: &str, raw: &str) -> Result<String, ValidationError> {
    let key = raw.trim().to_lowercase();
    if key.is_empty() || key.chars().count() > TAG_MAX_CHARS {
        return Err(err(
            field,
            format!("tags are 1 to {TAG_MAX_CHARS} characters"),
        ));
    }
    check_controls(field, &key, false)?;
    Ok(key)
}

/// At most [`TAGS_MAX`] tags per array: a filter names no more tags than a contact can hold,
/// which also bounds the bind parameters of the SQL it compiles to.
fn tag_list(field: &str, v: &Value) -> Result<Vec<String>, ValidationError> {
    let items = v
        .as_array()
        .ok_or_else(|| err(field, "must be an array of tags"))?;
    if items.len() > TAGS_MAX {
        return Err(err(field, format!("at most {TAGS_MAX} tags")));
    }
    items
        .iter()
        .map(|i| {
            i.as_str()
                .ok_or_else(|| err(field, "must be an array of tags"))
                .and_then(|s| tag_key(field, s))
        })
        .collect()
}

/// A search term: trimmed, lower-cased; empty means no condition. Limits apply to the
/// lower-cased term, as for tags.
pub fn search_term(field: &str, raw: &str) -> Result<Option<String>, ValidationError> {
    let term = raw.trim().to_lowercase();
    if term.is_empty() {
        return Ok(None);
    }
    if term.chars().count() > FIELD_MAX_CHARS {
        return Err(err(field, format!("at most {FIELD_MAX_CHARS} characters")));
    }
    if term.contains('\n') {
        return Err(err(field, "must be one line"));
    }
    check_controls(field, &term, false)?;
    Ok(Some(term))
}

fn time_range(field: &str, v: &Value) -> Result<Range, ValidationError> {
    let obj = object(field, v)?;
    only_keys(field, obj, &["after", "before"])?;
    let bound =
        |k: &str| -> Result<Option<i64>, ValidationError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Timestamp::parse_rfc3339(s)
                    .map(|t| Some(t.0))
                    .ok_or_else(|| {
                        err(
                            &format!("{field}.{k}"),
                            "must be an RFC 3339 time like 2026-01-31T00:00:00Z",
                        )
                    }),
                Some(_) => Err(err(
                    &format!("{field}.{k}"),
                    "must be an RFC 3339 time string",
                )),
            }
        };
    Ok(Range {
        // Strict bounds, stored as inclusive milliseconds.
        min: bound("after")?.map(|t| t.saturating_add(1)),
        max: bound("before")?.map(|t| t.saturating_sub(1)),
    })
}

fn count_range(field: &str, v: &Value) -> Result<Range, ValidationError> {
    let obj = object(field, v)?;
    only_keys(field, obj, &["min", "max"])?;
    let bound = |k: &str| -> Result<Option<i64>, ValidationError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_i64()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| err(&format!("{field}.{k}"), "must be a whole number ≥ 0")),
        }
    };
    Ok(Range {
        min: bound("min")?,
        max: bound("max")?,
    })
}

impl ListFilter {
    /// Parses the JSON form of a filter. Unknown keys and operators are refused, naming the
    /// field (`filter.tags.some`).
    pub fn parse(v: &Value) -> Result<ListFilter, ValidationError> {
        let f = "filter";
        let obj = object(f, v)?;
        only_keys(
            f,
            obj,
            &[
                "status",
                "tags",
                "q",
                "metadata",
                "last_seen_at",
                "created_at",
                "message_count",
                "conversation_count",
                "website_id",
            ],
        )?;
        let mut out = ListFilter::default();
        if let Some(s) = obj.get("status").filter(|v| !v.is_null()) {
            let st = s
                .as_str()
                .and_then(Status::parse)
                .ok_or_else(|| err("filter.status", "must be \"lead\" or \"customer\""))?;
            out.status.push(st);
        }
        if let Some(t) = obj.get("tags").filter(|v| !v.is_null()) {
            let to = object("filter.tags", t)?;
            only_keys("filter.tags", to, &["all", "any", "none"])?;
            if let Some(v) = to.get("all") {
                out.tags_all = tag_list("filter.tags.all", v)?;
            }
            if let Some(v) = to.get("any") {
                let any = tag_list("filter.tags.any", v)?;
                if !any.is_empty() {
                    out.tags_any.push(any);
                }
            }
            if let Some(v) = to.get("none") {
                out.tags_none = tag_list("filter.tags.none", v)?;
            }
        }
        if let Some(q) = obj.get("q").filter(|v| !v.is_null()) {
            let s = q
                .as_str()
                .ok_or_else(|| err("filter.q", "must be a string"))?;
            out.q.extend(search_term("filter.q", s)?);
        }
        if let Some(m) = obj.get("metadata").filter(|v| !v.is_null()) {
            let mo = object("filter.metadata", m)?;
            if mo.len() > crate::limits::METADATA_MAX_KEYS {
                return Err(err("filter.metadata", "too many keys"));
            }
            let mut seen = std::collections::HashSet::new();
            for (key, cond) in mo {
                let field = format!("filter.metadata.{key}");
                // `"plan"` and `" plan"` are one key once trimmed; two conditions on it would
                // not survive being stored as one JSON object.
                if !seen.insert(key.trim()) {
                    return Err(err(&field, "given twice (keys are trimmed)"));
                }
                if key.trim().is_empty() || key.trim().chars().count() > METADATA_KEY_MAX_CHARS {
                    return Err(err(&field, "keys are 1 to 64 characters"));
                }
                check_controls(&field, key, false)?;
                let co = object(&field, cond)?;
                only_keys(&field, co, &["eq", "exists"])?;
                if co.is_empty() {
                    return Err(err(&field, "needs an operator: eq or exists"));
                }
                if let Some(v) = co.get("eq") {
                    match v {
                        Value::String(s) if s.chars().count() > METADATA_VALUE_MAX_CHARS => {
                            return Err(err(&format!("{field}.eq"), "too long"))
                        }
                        Value::String(s) if s.contains('\0') => {
                            return Err(err(&format!("{field}.eq"), "must not contain NUL"))
                        }
                        Value::String(_) | Value::Number(_) | Value::Bool(_) => out
                            .metadata
                            .push(MetaCond::Eq(key.trim().to_string(), v.clone())),
                        _ => {
                            return Err(err(
                                &format!("{field}.eq"),
                                "must be a string, number or boolean",
                            ))
                        }
                    }
                }
                if let Some(v) = co.get("exists") {
                    let b = v
                        .as_bool()
                        .ok_or_else(|| err(&format!("{field}.exists"), "must be true or false"))?;
                    out.metadata
                        .push(MetaCond::Exists(key.trim().to_string(), b));
                }
            }
        }
        if let Some(v) = obj.get("last_seen_at").filter(|v| !v.is_null()) {
            out.last_seen_at = time_range("filter.last_seen_at", v)?;
        }
        if let Some(v) = obj.get("created_at").filter(|v| !v.is_null()) {
            out.created_at = time_range("filter.created_at", v)?;
        }
        if let Some(v) = obj.get("message_count").filter(|v| !v.is_null()) {
            out.message_count = count_range("filter.message_count", v)?;
        }
        if let Some(v) = obj.get("conversation_count").filter(|v| !v.is_null()) {
            out.conversation_count = count_range("filter.conversation_count", v)?;
        }
        if let Some(v) = obj.get("website_id").filter(|v| !v.is_null()) {
            let s = v
                .as_str()
                .filter(|s| !s.trim().is_empty() && s.trim().len() <= FIELD_MAX_CHARS)
                .ok_or_else(|| err("filter.website_id", "must be a website id"))?;
            check_controls("filter.website_id", s, false)?;
            out.website_ids.push(s.trim().to_string());
        }
        Ok(out)
    }

    /// Both filters at once (a list's filter and the request's parameters).
    pub fn and(mut self, o: ListFilter) -> ListFilter {
        self.status.extend(o.status);
        self.tags_all.extend(o.tags_all);
        self.tags_any.extend(o.tags_any);
        self.tags_none.extend(o.tags_none);
        self.q.extend(o.q);
        self.metadata.extend(o.metadata);
        self.last_seen_at = self.last_seen_at.and(o.last_seen_at);
        self.created_at = self.created_at.and(o.created_at);
        self.message_count = self.message_count.and(o.message_count);
        self.conversation_count = self.conversation_count.and(o.conversation_count);
        self.website_ids.extend(o.website_ids);
        self
    }

    pub fn is_empty(&self) -> bool {
        *self == ListFilter::default()
    }

    /// The JSON form, as stored and shown (the inverse of [`ListFilter::parse`] for filters
    /// that came from it).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(s) = self.status.first() {
            m.insert("status".into(), json!(s.as_str()));
        }
        let mut tags = Map::new();
        if !self.tags_all.is_empty() {
            tags.insert("all".into(), json!(self.tags_all));
        }
        if let Some(any) = self.tags_any.first() {
            tags.insert("any".into(), json!(any));
        }
        if !self.tags_none.is_empty() {
            tags.insert("none".into(), json!(self.tags_none));
        }
        if !tags.is_empty() {
            m.insert("tags".into(), Value::Object(tags));
        }
        if let Some(q) = self.q.first() {
            m.insert("q".into(), json!(q));
        }
        if !self.metadata.is_empty() {
            let mut meta = Map::new();
            for c in &self.metadata {
                let (k, op, v) = match c {
                    MetaCond::Eq(k, v) => (k, "eq", v.clone()),
                    MetaCond::Exists(k, b) => (k, "exists", json!(b)),
                };
                let entry = meta.entry(k.clone()).or_insert_with(|| json!({}));
                entry[op] = v;
            }
            m.insert("metadata".into(), Value::Object(meta));
        }
        let time = |r: &Range| {
            let mut o = Map::new();
            if let Some(v) = r.min {
                o.insert("after".into(), json!(Timestamp(v - 1).to_rfc3339()));
            }
            if let Some(v) = r.max {
                o.insert("before".into(), json!(Timestamp(v + 1).to_rfc3339()));
            }
            Value::Object(o)
        };
        let count = |r: &Range| {
            let mut o = Map::new();
            if let Some(v) = r.min {
                o.insert("min".into(), json!(v));
            }
            if let Some(v) = r.max {
                o.insert("max".into(), json!(v));
            }
            Value::Object(o)
        };
        if !self.last_seen_at.is_open() {
            m.insert("last_seen_at".into(), time(&self.last_seen_at));
        }
        if !self.created_at.is_open() {
            m.insert("created_at".into(), time(&self.created_at));
        }
        if !self.message_count.is_open() {
            m.insert("message_count".into(), count(&self.message_count));
        }
        if !self.conversation_count.is_open() {
            m.insert("conversation_count".into(), count(&self.conversation_count));
        }
        if let Some(w) = self.website_ids.first() {
            m.insert("website_id".into(), json!(w));
        }
        Value::Object(m)
    }
}

/// How a list is ordered: a field and a direction. Ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    LastSeenAt,
    CreatedAt,
    Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: SortField::LastSeenAt,
            descending: true,
        }
    }
}

impl Sort {
    /// `last_seen_at`, `created_at` or `name`, with a leading `-` for descending.
    pub fn parse(s: &str) -> Result<Sort, ValidationError> {
        let (descending, name) = match s.trim().strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.trim()),
        };
        let field = match name {
            "last_seen_at" => SortField::LastSeenAt,
            "created_at" => SortField::CreatedAt,
            "name" => SortField::Name,
            _ => {
                return Err(err(
                    "sort",
                    "must be last_seen_at, created_at or name, with a leading - for descending",
                ))
            }
        };
        Ok(Sort { field, descending })
    }

    pub fn as_str(&self) -> String {
        let name = match self.field {
            SortField::LastSeenAt => "last_seen_at",
            SortField::CreatedAt => "created_at",
            SortField::Name => "name",
        };
        if self.descending {
            format!("-{name}")
        } else {
            name.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_take_any_offset_and_are_stored_in_utc() {
        let f = |t: &str| ListFilter::parse(&json!({"last_seen_at": {"after": t}})).unwrap();
        let utc = f("2026-01-01T08:00:00Z");
        assert_eq!(f("2026-01-01T10:00:00+02:00"), utc);
        assert_eq!(
            utc.to_json()["last_seen_at"]["after"],
            json!("2026-01-01T08:00:00.000Z")
        );
        let e = ListFilter::parse(&json!({"created_at": {"before": "2026-01-01T08:00:00"}}))
            .unwrap_err();
        assert_eq!(e.field, "filter.created_at.before");
    }

    #[test]
    fn a_metadata_key_given_twice_after_trimming_is_refused() {
        // Found by fuzzing: stored as one JSON object, the second condition replaced the first.
        let e =
            ListFilter::parse(&json!({"metadata": {"plan": {"eq": "a"}, " plan": {"eq": "b"}}}))
                .unwrap_err();
        assert!(e.field.starts_with("filter.metadata."), "{e:?}");
        let f =
            ListFilter::parse(&json!({"metadata": {"plan": {"eq": "a", "exists": true}}})).unwrap();
        assert_eq!(ListFilter::parse(&f.to_json()).unwrap(), f);
    }

    #[test]
    fn stored_limits_apply_to_lower_cased_text() {
        // `İ` lower-cases to two characters: 40 of them fit as typed, not as stored.
        assert!(tag_key("tag", &"İ".repeat(40)).is_err());
        assert!(tag_key("tag", &"İ".repeat(32)).is_ok());
        assert!(search_term("q", &"İ".repeat(200)).is_err());
        assert!(tag_key("tag", "a\u{0}b").is_err());
        let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
        let e = ListFilter::parse(&json!({"tags": {"none": many}})).unwrap_err();
        assert_eq!(e.field, "filter.tags.none");
    }

    #[test]
    fn numbers_are_equal_by_value_and_never_equal_to_strings() {
        let k = |v| metadata_eq_key(&v).unwrap();
        assert_eq!(k(json!(3)), k(json!(3.0)));
        assert_eq!(k(json!(0)), k(json!(-0.0)));
        assert_ne!(k(json!(3)), k(json!("3")));
        assert_ne!(k(json!(0.3)), k(json!(0.30000000000000004)));
        assert_ne!(k(json!(true)), k(json!("true")));
        assert_eq!(k(json!(u64::MAX)), k(json!(u64::MAX as f64)));
        assert!(metadata_eq_key(&json!(null)).is_none());
    }

    #[test]
    fn parses_every_field_and_round_trips() {
        let v = json!({
            "status": "lead",
            "tags": {"all": ["VIP "], "any": ["a", "B"], "none": ["spam"]},
            "q": "  Ada ",
            "metadata": {"plan": {"eq": "pro"}, "beta": {"exists": true}},
            "last_seen_at": {"after": "2026-01-01T00:00:00Z"},
            "created_at": {"before": "2026-02-01T00:00:00Z"},
            "message_count": {"min": 1, "max": 10},
            "conversation_count": {"min": 2},
            "website_id": "w1"
        });
        let f = ListFilter::parse(&v).unwrap();
        assert_eq!(f.status, [Status::Lead]);
        assert_eq!(f.tags_all, ["vip"]);
        assert_eq!(f.tags_any, [vec!["a".to_string(), "b".to_string()]]);
        assert_eq!(f.q, ["ada"]);
        assert_eq!(
            f.message_count,
            Range {
                min: Some(1),
                max: Some(10)
            }
        );
        assert_eq!(ListFilter::parse(&f.to_json()).unwrap(), f);
        assert!(ListFilter::parse(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn unknown_fields_and_operators_name_the_field() {
        for (v, field) in [
            (json!({"colour": "red"}), "filter.colour"),
            (json!({"tags": {"some": ["a"]}}), "filter.tags.some"),
            (json!({"status": "vip"}), "filter.status"),
            (
                json!({"metadata": {"plan": {"like": "p"}}}),
                "filter.metadata.plan.like",
            ),
            (json!({"metadata": {"plan": {}}}), "filter.metadata.plan"),
            (
                json!({"metadata": {"plan": {"eq": [1]}}}),
                "filter.metadata.plan.eq",
            ),
            (
                json!({"last_seen_at": {"after": "yesterday"}}),
                "filter.last_seen_at.after",
            ),
            (
                json!({"message_count": {"min": -1}}),
                "filter.message_count.min",
            ),
            (
                json!({"message_count": {"between": 1}}),
                "filter.message_count.between",
            ),
            (json!({"tags": {"all": "vip"}}), "filter.tags.all"),
            (json!({"q": 3}), "filter.q"),
            (json!([1]), "filter"),
        ] {
            assert_eq!(ListFilter::parse(&v).unwrap_err().field, field, "{v}");
        }
    }

    #[test]
    fn and_combines_conditions() {
        let a = ListFilter::parse(&json!({"tags": {"all": ["a"]}, "message_count": {"min": 2}}))
            .unwrap();
        let b = ListFilter::parse(
            &json!({"tags": {"all": ["b"]}, "message_count": {"min": 5, "max": 9}, "q": "x"}),
        )
        .unwrap();
        let c = a.and(b);
        assert_eq!(c.tags_all, ["a", "b"]);
        assert_eq!(
            c.message_count,
            Range {
                min: Some(5),
                max: Some(9)
            }
        );
        assert_eq!(c.q, ["x"]);
    }

    #[test]
    fn sorts() {
        assert_eq!(
            Sort::parse("-name").unwrap(),
            Sort {
                field: SortField::Name,
                descending: true
            }
        );
        assert_eq!(Sort::parse("created_at").unwrap().as_str(), "created_at");
        assert_eq!(Sort::parse("age").unwrap_err().field, "sort");
    }
}
