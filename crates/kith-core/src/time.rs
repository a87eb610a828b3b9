//! Times are unix milliseconds inside Kith (portable across both databases) and RFC 3339
//! strings at the API edge, read and written with `jiff` (a maintained date-time crate, so no
//! calendar arithmetic is hand-rolled here).

use serde::{Serialize, Serializer};

/// A point in time in unix milliseconds that serializes as RFC 3339 in UTC with milliseconds
/// (`2026-11-26T10:00:00.000Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn to_rfc3339(self) -> String {
        // Times before 1970 never arise inside Kith; clamp rather than fail.
        let ts = jiff::Timestamp::from_millisecond(self.0.max(0)).unwrap_or(jiff::Timestamp::MAX);
        ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// Parses RFC 3339 with any offset (`2026-11-26T10:00:00Z`, `2026-11-26T12:00:00+02:00`),
    /// fractional seconds optional. Times before 1970 are refused (`None`).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let ts: jiff::Timestamp = s.trim().parse().ok()?;
        let ms = ts.as_millisecond();
        (ms >= 0).then_some(Timestamp(ms))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let t = Timestamp(1_795_000_000_123);
        let s = t.to_rfc3339();
        assert!(s.ends_with(".123Z"), "{s}");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn accepts_any_offset() {
        let utc = Timestamp::parse_rfc3339("2026-01-01T08:00:00Z").unwrap();
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-01T10:00:00+02:00"),
            Some(utc)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-01T03:00:00-05:00"),
            Some(utc)
        );
        assert_eq!(
            Timestamp::parse_rfc3339(" 2026-01-01T08:00:00.000Z "),
            Some(utc)
        );
        // A time without an offset is ambiguous: refused.
        assert_eq!(Timestamp::parse_rfc3339("2026-01-01T08:00:00"), None);
        assert_eq!(Timestamp::parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }
}
