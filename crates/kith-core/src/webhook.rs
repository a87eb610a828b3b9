//! Webhooks: the event types an endpoint subscribes to, which timeline kind raises which, the
//! signature receivers verify, and the retry schedule. Pure: the store enqueues, the server
//! delivers.

use crate::timeline::EventKind;
use crate::validate::ValidationError;

/// What an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ContactCreated,
    ContactUpdated,
    ContactMerged,
    ContactPromoted,
    ContactDeleted,
    ConversationStarted,
    ConversationEscalated,
    MessageCreated,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::ContactCreated,
        EventType::ContactUpdated,
        EventType::ContactMerged,
        EventType::ContactPromoted,
        EventType::ContactDeleted,
        EventType::ConversationStarted,
        EventType::ConversationEscalated,
        EventType::MessageCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ContactCreated => "contact.created",
            EventType::ContactUpdated => "contact.updated",
            EventType::ContactMerged => "contact.merged",
            EventType::ContactPromoted => "contact.promoted",
            EventType::ContactDeleted => "contact.deleted",
            EventType::ConversationStarted => "conversation.started",
            EventType::ConversationEscalated => "conversation.escalated",
            EventType::MessageCreated => "message.created",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The event a timeline entry raises, if any.
    pub fn for_timeline(kind: EventKind) -> Option<EventType> {
        Some(match kind {
            EventKind::Created => EventType::ContactCreated,
            EventKind::FieldsUpdated => EventType::ContactUpdated,
            EventKind::Promoted => EventType::ContactPromoted,
            EventKind::Merged => EventType::ContactMerged,
            EventKind::ConversationStarted => EventType::ConversationStarted,
            EventKind::Escalated => EventType::ConversationEscalated,
            // Undoing a manual merge restores both contacts: each is updated (the entry's
            // `details` say it was an undo). Notes are internal to the team: no event.
            EventKind::MergeUndone => EventType::ContactUpdated,
            EventKind::Note => return None,
        })
    }

    /// Whether the payload carries the contact as it is after the change (`data.contact`);
    /// conversation and message events name the contact by id only, which keeps the message
    /// path to one statement.
    pub fn carries_contact(self) -> bool {
        matches!(
            self,
            EventType::ContactCreated
                | EventType::ContactUpdated
                | EventType::ContactMerged
                | EventType::ContactPromoted
        )
    }
}

/// A subscription as stored: each type between commas (`,contact.created,message.created,`),
/// so one `LIKE '%,type,%'` tests it in SQL.
pub fn events_column(events: &[EventType]) -> String {
    let mut sorted = events.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut s = String::from(",");
    for e in sorted {
        s.push_str(e.as_str());
        s.push(',');
    }
    s
}

/// The types of a stored subscription, in `ALL` order.
pub fn events_from_column(column: &str) -> Vec<EventType> {
    column.split(',').filter_map(EventType::parse).collect()
}

/// A subscription from the API: one or more known types (duplicates collapse).
pub fn parse_events(raw: &[String]) -> Result<Vec<EventType>, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(
            "events",
            "must name at least one event type",
        ));
    }
    let mut out = Vec::new();
    for s in raw {
        let t = EventType::parse(s.trim()).ok_or_else(|| {
            ValidationError::new(
                "events",
                format!(
                    "unknown event type {s:?}; known: {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out.sort();
    Ok(out)
}

/// A delivery URL: absolute `http` or `https` with a host, at most 2,000 characters.
pub fn parse_url(raw: &str) -> Result<String, ValidationError> {
    let url = raw.trim();
    let bad = || ValidationError::new("url", "must be an absolute http:// or https:// URL");
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || host.starts_with(':')
        || host.contains('@')
        || url.len() > 2000
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// `Kith-Signature`'s value: `v1=` and the lower-case hex HMAC-SHA256, keyed with the
/// endpoint's secret, of `"{timestamp}.{body}"` (timestamp in unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = Vec::with_capacity(body.len() + 12);
    message.extend_from_slice(timestamp.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    format!(
        "v1={}",
        hex::encode(crate::verify::hmac_sha256(secret.as_bytes(), &message))
    )
}

/// The pause before attempt `attempt + 1` after `attempt` failed ones (1-based): `base`
/// doubled per failure, at most `cap`, scaled by `jitter` in [0, 1] into its upper half (so
/// retries of many deliveries spread out, and none comes sooner than half the schedule).
pub fn retry_delay_ms(attempt: u32, base_ms: u64, cap_ms: u64, jitter: f64) -> u64 {
    let doubled = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(32));
    let full = doubled.min(cap_ms).max(1);
    let jitter = jitter.clamp(0.0, 1.0);
    full / 2 + ((full - full / 2) as f64 * jitter) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_subscriptions_store_between_commas() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        let col = events_column(&[EventType::MessageCreated, EventType::ContactCreated]);
        assert_eq!(col, ",contact.created,message.created,");
        assert_eq!(
            events_from_column(&col),
            vec![EventType::ContactCreated, EventType::MessageCreated]
        );
    }

    #[test]
    fn unknown_or_no_events_are_refused() {
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["contact.exploded".into()]).is_err());
        assert_eq!(
            parse_events(&["message.created".into(), "message.created".into()]).unwrap(),
            vec![EventType::MessageCreated]
        );
    }

    #[test]
    fn only_http_and_https_urls_with_a_host() {
        assert!(parse_url("https://example.com/hooks").is_ok());
        assert!(parse_url(" http://127.0.0.1:8080/x ").is_ok());
        for bad in [
            "ftp://example.com",
            "example.com",
            "https://",
            "https:///path",
            "javascript:alert(1)",
            "http://user@host/",
            "http://exa mple.com",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Known value: HMAC-SHA256("whsec_test", "1700000000.{}").
        let sig = signature("whsec_test", 1_700_000_000, b"{}");
        let expected = hex::encode(crate::verify::hmac_sha256(b"whsec_test", b"1700000000.{}"));
        assert_eq!(sig, format!("v1={expected}"));
        assert_ne!(sig, signature("whsec_other", 1_700_000_000, b"{}"));
        assert_ne!(sig, signature("whsec_test", 1_700_000_001, b"{}"));
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        assert_eq!(retry_delay_ms(1, 1000, 60_000, 1.0), 1000);
        assert_eq!(retry_delay_ms(2, 1000, 60_000, 1.0), 2000);
        assert_eq!(retry_delay_ms(3, 1000, 60_000, 0.0), 2000);
        assert_eq!(retry_delay_ms(20, 1000, 60_000, 1.0), 60_000);
        assert_eq!(retry_delay_ms(200, 1000, 60_000, 0.5), 45_000);
    }
}
