//! The HTTP routes: the widget API, the admin API (one module per resource) and health.

pub mod admin;
pub mod browser;
pub mod health;
pub mod widget;

use crate::error::ApiResult;
use crate::extract::QueryMap;
use kith_core::limits::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
use kith_core::ValidationError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `limit`: 1 to `PAGE_LIMIT_MAX` (200), `PAGE_LIMIT_DEFAULT` (50) when absent; anything
/// else answers 422 naming `limit`. Every paged route reads it here.
pub(crate) fn limit_param(q: &QueryMap) -> ApiResult<i64> {
    match q.one("limit") {
        None => Ok(PAGE_LIMIT_DEFAULT),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=PAGE_LIMIT_MAX).contains(n))
            .ok_or_else(|| {
                ValidationError::new(
                    "limit",
                    format!("must be a whole number from 1 to {PAGE_LIMIT_MAX}"),
                )
                .into()
            }),
    }
}

/// A field of a partial update (`PATCH`): absent keeps the stored value, `null` clears it, a
/// value replaces it. Give the field `#[serde(default, skip_serializing_if =
/// "Patch::is_absent")]`: serde calls `deserialize` only for a field that is present.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

/// Written back as the JSON it was read from (absent fields are skipped by the container).
impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Absent | Patch::Null => s.serialize_none(),
            Patch::Value(v) => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Patch;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Deserialize, Serialize)]
    struct Edit {
        #[serde(default, skip_serializing_if = "Patch::is_absent")]
        name: Patch<String>,
    }

    #[test]
    fn a_patch_field_tells_absent_from_null_from_a_value() {
        let read = |v| serde_json::from_value::<Edit>(v).unwrap().name;
        assert_eq!(read(json!({})), Patch::Absent);
        assert_eq!(read(json!({"name": null})), Patch::Null);
        assert_eq!(read(json!({"name": "Ada"})), Patch::Value("Ada".into()));
        assert!(serde_json::from_value::<Edit>(json!({"name": 5})).is_err());
        // Written back as read, for the parsers that take the JSON.
        for v in [json!({}), json!({"name": null}), json!({"name": "Ada"})] {
            let edit: Edit = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&edit).unwrap(), v);
        }
    }
}
