//! The one error type of domain validation: which field, and what is wrong with it in words a
//! person can act on. The HTTP layer turns it into a 422 naming the field.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// A required name (of an organization, a website, a list): 1 to 255 characters after
/// trimming and no control characters (PostgreSQL refuses NUL in text, and a name is shown
/// in the panel), trimmed.
pub fn required_name(field: &str, raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > crate::limits::FIELD_MAX_CHARS {
        return Err(ValidationError::new(field, "must be 1 to 255 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_names_are_trimmed_bounded_and_printable() {
        assert_eq!(required_name("name", "  Acme "), Ok("Acme".into()));
        assert_eq!(
            required_name("name", &"é".repeat(255)).map(|n| n.chars().count()),
            Ok(255)
        );
        for bad in [
            "",
            "   ",
            &"a".repeat(256),
            "a\u{0}b",
            "tab\there",
            "bell\u{7}",
        ] {
            assert_eq!(
                required_name("name", bad).unwrap_err().field,
                "name",
                "{bad:?}"
            );
        }
    }
}
