//! Message bodies: what a message may hold, and its preview in conversation lists.

use super::values::check_controls;
use crate::limits::*;
use crate::validate::ValidationError;

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
