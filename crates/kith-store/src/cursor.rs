//! Keyset cursors for conversations and messages: where the next page starts, as an opaque
//! string. The same encoding as the contact lists' cursors (hex of `{"s": order, "v": sort
//! value, "id": last id}`), so every paged answer hands out one kind of cursor, and a cursor
//! made for another order (a conversation cursor passed as a message cursor) is refused.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a page starts: after the row with sort value `v` and id `id`, in order `s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    pub s: String,
    pub v: Option<Value>,
    pub id: String,
}

/// Longer than any cursor this server hands out (ids are 26 characters); refused before
/// decoding so a hostile query string costs nothing.
const MAX_CURSOR_LEN: usize = 512;

pub(crate) fn encode(order: &str, v: Option<Value>, id: &str) -> String {
    let c = Cursor {
        s: order.to_string(),
        v,
        id: id.to_string(),
    };
    hex::encode(serde_json::to_vec(&c).unwrap_or_default())
}

/// A cursor made for `order`; anything else is `BadCursor` (answered 400).
pub(crate) fn decode(raw: &str, order: &str) -> Result<Cursor, StoreError> {
    if raw.len() > MAX_CURSOR_LEN {
        return Err(StoreError::BadCursor);
    }
    let bytes = hex::decode(raw).map_err(|_| StoreError::BadCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    if c.s != order || c.id.is_empty() {
        return Err(StoreError::BadCursor);
    }
    Ok(c)
}

/// A cursor for `order` whose value must be an integer (a time in unix milliseconds).
pub(crate) fn decode_int(raw: &str, order: &str) -> Result<(i64, String), StoreError> {
    let c = decode(raw, order)?;
    match c.v.as_ref().and_then(Value::as_i64) {
        Some(v) => Ok((v, c.id)),
        None => Err(StoreError::BadCursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_orders_and_junk() {
        let raw = encode("-activity", Some(Value::from(42)), "01abc");
        assert_eq!(decode_int(&raw, "-activity").unwrap(), (42, "01abc".into()));
        assert!(matches!(decode(&raw, "-id"), Err(StoreError::BadCursor)));
        for junk in [
            "",
            "zz",
            "not a cursor",
            &hex::encode("{}"),
            &"a".repeat(2000),
        ] {
            assert!(
                matches!(decode(junk, "-id"), Err(StoreError::BadCursor)),
                "{junk}"
            );
        }
        let no_value = encode("-activity", None, "01abc");
        assert!(matches!(
            decode_int(&no_value, "-activity"),
            Err(StoreError::BadCursor)
        ));
        let no_id = encode("-id", None, "");
        assert!(matches!(decode(&no_id, "-id"), Err(StoreError::BadCursor)));
    }
}
