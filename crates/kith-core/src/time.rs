//! Times are unix milliseconds inside Kith (portable across both databases) and RFC 3339
//! strings at the API edge.

use serde::{Serialize, Serializer};
use std::time::{Duration, UNIX_EPOCH};

/// A point in time in unix milliseconds that serializes as RFC 3339 (`2026-11-26T10:00:00.000Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn to_rfc3339(self) -> String {
        let t = UNIX_EPOCH + Duration::from_millis(self.0.max(0) as u64);
        humantime::format_rfc3339_millis(t).to_string()
    }

    /// Parses RFC 3339 (`2026-11-26T10:00:00Z`, fractional seconds optional).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
        let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok().map(Timestamp)
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
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
