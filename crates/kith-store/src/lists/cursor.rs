//! Keyset cursors of the contact listing: where a page starts, bound to the order it was made
//! for, and the sort column and value each order pages on.

use crate::conn::Arg;
use crate::model::ContactRow;
use crate::StoreError;
use kith_core::filter::{Sort, SortField};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a page starts: after the row with this sort value and id, in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub(super) s: String,
    pub(super) v: Option<Value>,
    pub(super) id: String,
}

pub(super) fn encode_cursor(c: &Cursor) -> String {
    hex::encode(serde_json::to_vec(c).unwrap_or_default())
}

/// The cursor of the page that follows the contact with sort value `v` and id `id`.
pub(super) fn cursor_after(sort: &Sort, v: Option<Value>, id: String) -> String {
    encode_cursor(&Cursor {
        s: sort.as_str(),
        v,
        id,
    })
}

pub(super) fn decode_cursor(raw: &str, sort: &Sort) -> Result<Cursor, StoreError> {
    let bytes = hex::decode(raw).map_err(|_| StoreError::BadCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    // A cursor belongs to the order it was made for.
    if c.s != sort.as_str() || c.id.is_empty() {
        return Err(StoreError::BadCursor);
    }
    let value_ok = match (&sort.field, &c.v) {
        (_, None) => true,
        (SortField::Name, Some(v)) => v.is_string(),
        (_, Some(v)) => v.is_i64(),
    };
    if !value_ok {
        return Err(StoreError::BadCursor);
    }
    Ok(c)
}

pub(super) fn sort_column(f: SortField) -> &'static str {
    match f {
        SortField::LastSeenAt => "c.last_seen_at",
        SortField::CreatedAt => "c.created_at",
        SortField::Name => "c.name_lower",
    }
}

pub(super) fn sort_value(f: SortField, row: &ContactRow) -> Option<Value> {
    match f {
        SortField::LastSeenAt => row.last_seen_at.map(Value::from),
        SortField::CreatedAt => Some(Value::from(row.created_at)),
        SortField::Name => row.name.as_ref().map(|n| Value::from(n.to_lowercase())),
    }
}

pub(super) fn value_arg(v: &Value) -> Arg {
    match v {
        Value::String(s) => Arg::Text(Some(s.clone())),
        other => Arg::Int(other.as_i64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_belong_to_their_sort() {
        let sort = Sort::parse("-last_seen_at").unwrap();
        let c = Cursor {
            s: sort.as_str(),
            v: Some(Value::from(42)),
            id: "01x".into(),
        };
        let raw = encode_cursor(&c);
        assert_eq!(decode_cursor(&raw, &sort).unwrap(), c);
        assert!(matches!(
            decode_cursor(&raw, &Sort::parse("name").unwrap()),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor("zz", &sort),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor(&hex::encode("{}"), &sort),
            Err(StoreError::BadCursor)
        ));
        let wrong = Cursor {
            v: Some(Value::from("text")),
            ..c
        };
        assert!(matches!(
            decode_cursor(&encode_cursor(&wrong), &sort),
            Err(StoreError::BadCursor)
        ));
    }
}
