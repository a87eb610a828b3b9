//! Rows as stored and the domain values the store returns. The JSON shapes the API answers
//! live in kith-server (views.rs): types flow one way, the store never knows about HTTP.

use kith_core::contact::Stats;
use kith_core::conversation::{AuthorKind, ConversationStatus};
use kith_core::timeline::{Actor, EventKind};
use kith_core::verify::VerificationMode;
use kith_core::{
    ContactId, ConversationId, Email, Metadata, OrgId, Phone, Profile, Status, Tags, Text,
    Timestamp, WebsiteId,
};
use serde_json::Value;

use crate::StoreError;

pub(crate) const CONTACT_COLUMNS: &str =
    "id, user_id, email, name, phone, company, tags, metadata, \
     conversation_count, message_count, last_seen_at, created_at, updated_at, email_verified";

// Serde: a manual merge keeps the rows it changed in its snapshot, to undo it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub(crate) struct ContactRow {
    pub id: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub tags: String,
    pub metadata: String,
    pub conversation_count: i64,
    pub message_count: i64,
    pub last_seen_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub email_verified: bool,
}
crate::lite::lite_row!(ContactRow {
    id,
    user_id,
    email,
    name,
    phone,
    company,
    tags,
    metadata,
    conversation_count,
    message_count,
    last_seen_at,
    created_at,
    updated_at,
    email_verified
});

impl ContactRow {
    pub fn profile(&self) -> Result<Profile, StoreError> {
        let tags: Vec<String> = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of contact {}: {e}", self.id)))?;
        let metadata: serde_json::Map<String, Value> = serde_json::from_str(&self.metadata)
            .map_err(|e| StoreError::Corrupt(format!("metadata of contact {}: {e}", self.id)))?;
        Ok(Profile {
            user_id: self.user_id.clone().map(Text::from_stored),
            email: self.email.clone().map(Email::from_stored),
            name: self.name.clone().map(Text::from_stored),
            phone: self.phone.clone().map(Phone::from_stored),
            company: self.company.clone().map(Text::from_stored),
            tags: Tags::from_stored(tags),
            metadata: Metadata::from_stored(metadata),
            email_verified: self.email.is_some() && self.email_verified,
        })
    }

    pub fn stats(&self) -> Stats {
        Stats {
            conversation_count: self.conversation_count,
            message_count: self.message_count,
            last_seen_at: self.last_seen_at,
            created_at: self.created_at,
        }
    }

    pub fn view(&self) -> Result<Contact, StoreError> {
        let p = self.profile()?;
        Ok(Contact {
            id: ContactId::new(self.id.clone()),
            status: p.status(),
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            phone: self.phone.clone(),
            company: self.company.clone(),
            tags: p.tags.as_slice().to_vec(),
            metadata: p.metadata.to_json(),
            conversation_count: self.conversation_count,
            message_count: self.message_count,
            last_seen_at: self.last_seen_at.map(Timestamp),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// A contact with its stats, as stored.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: ContactId,
    /// Customer exactly while `user_id` is set.
    pub status: Status,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub tags: Vec<String>,
    /// Flat object of custom key → string, number or boolean.
    pub metadata: Value,
    pub conversation_count: i64,
    /// Messages the contact sent.
    pub message_count: i64,
    pub last_seen_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ConversationRow {
    pub id: String,
    pub website_id: String,
    pub website_name: String,
    pub contact_id: String,
    pub visitor_id: String,
    pub status: String,
    pub message_count: i64,
    pub last_message_preview: Option<String>,
    pub last_message_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}
crate::lite::lite_row!(ConversationRow {
    id,
    website_id,
    website_name,
    contact_id,
    visitor_id,
    status,
    message_count,
    last_message_preview,
    last_message_at,
    created_at,
    updated_at
});

pub(crate) const CONVERSATION_SELECT: &str =
    "SELECT cv.id, cv.website_id, w.name AS website_name, \
     cv.contact_id, cv.visitor_id, cv.status, cv.message_count, cv.last_message_preview, \
     cv.last_message_at, cv.created_at, cv.updated_at \
     FROM conversations cv JOIN websites w ON w.org_id = cv.org_id AND w.id = cv.website_id";

/// The same columns as [`CONVERSATION_SELECT`], answered by an `UPDATE conversations` (which
/// cannot join: the website's name comes from a subquery).
pub(crate) const CONVERSATION_RETURNING: &str = "RETURNING id, website_id, \
     (SELECT w.name FROM websites w WHERE w.org_id = conversations.org_id \
      AND w.id = conversations.website_id) AS website_name, \
     contact_id, visitor_id, status, message_count, last_message_preview, \
     last_message_at, created_at, updated_at";

impl ConversationRow {
    pub fn view(&self) -> Result<Conversation, StoreError> {
        let status = ConversationStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "status {:?} of conversation {}",
                self.status, self.id
            ))
        })?;
        Ok(Conversation {
            id: ConversationId::new(self.id.clone()),
            website: WebsiteRef {
                id: WebsiteId::new(self.website_id.clone()),
                name: self.website_name.clone(),
            },
            contact_id: ContactId::new(self.contact_id.clone()),
            status,
            message_count: self.message_count,
            last_message: match (&self.last_message_preview, self.last_message_at) {
                (Some(p), Some(at)) => Some(LastMessage {
                    preview: p.clone(),
                    at: Timestamp(at),
                }),
                _ => None,
            },
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(Debug, Clone)]
pub struct WebsiteRef {
    pub id: WebsiteId,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct LastMessage {
    pub preview: String,
    pub at: Timestamp,
}

/// A conversation: one thread between a contact and the organization, on one website.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: ConversationId,
    pub website: WebsiteRef,
    pub contact_id: ContactId,
    pub status: ConversationStatus,
    pub message_count: i64,
    pub last_message: Option<LastMessage>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct MessageRow {
    pub id: String,
    pub conversation_id: String,
    pub author: String,
    pub body: String,
    pub created_at: i64,
}
crate::lite::lite_row!(MessageRow {
    id,
    conversation_id,
    author,
    body,
    created_at
});

impl MessageRow {
    pub fn view(&self) -> Result<Message, StoreError> {
        let author = AuthorKind::parse(&self.author).ok_or_else(|| {
            StoreError::Corrupt(format!("author {:?} of message {}", self.author, self.id))
        })?;
        Ok(Message {
            id: self.id.clone(),
            conversation_id: ConversationId::new(self.conversation_id.clone()),
            author,
            body: self.body.clone(),
            created_at: Timestamp(self.created_at),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub conversation_id: ConversationId,
    pub author: AuthorKind,
    pub body: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EventRow {
    pub id: String,
    pub kind: String,
    pub actor: String,
    pub data: String,
    pub at: i64,
}
crate::lite::lite_row!(EventRow {
    id,
    kind,
    actor,
    data,
    at
});

/// One entry of a contact's activity timeline.
#[derive(Debug, Clone)]
pub struct TimelineEvent {
    pub id: String,
    pub kind: EventKind,
    pub at: Timestamp,
    pub actor: Actor,
    pub data: Value,
}

impl EventRow {
    pub fn view(&self) -> Result<TimelineEvent, StoreError> {
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!("{what} {value:?} of timeline event {}", self.id))
        };
        Ok(TimelineEvent {
            id: self.id.clone(),
            kind: parse_event_kind(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))?,
            at: Timestamp(self.at),
            actor: parse_actor(&self.actor).ok_or_else(|| corrupt("actor", &self.actor))?,
            // An unreadable payload stays readable as null, as before: the entry still shows.
            data: serde_json::from_str(&self.data).unwrap_or(Value::Null),
        })
    }
}

fn parse_event_kind(s: &str) -> Option<EventKind> {
    [
        EventKind::Created,
        EventKind::ConversationStarted,
        EventKind::Escalated,
        EventKind::FieldsUpdated,
        EventKind::Promoted,
        EventKind::Merged,
        EventKind::MergeUndone,
        EventKind::Note,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

/// The inverse of `Actor`'s `Display` (`visitor`, `admin:<id>`, `api`, `system`).
pub(crate) fn parse_actor(s: &str) -> Option<Actor> {
    match s {
        "visitor" => Some(Actor::Visitor),
        "api" => Some(Actor::Api),
        "system" => Some(Actor::System),
        _ => s
            .strip_prefix("admin:")
            .map(|id| Actor::Admin(id.to_string())),
    }
}

#[derive(Clone, sqlx::FromRow)]
pub(crate) struct WebsiteRow {
    pub org_id: String,
    pub id: String,
    pub name: String,
    pub website_key: String,
    pub identity_secret: String,
    pub previous_identity_secret: Option<String>,
    pub token_secret: String,
    pub identity_verification: String,
    pub allowed_origins: String,
    pub created_at: i64,
}
crate::lite::lite_row!(WebsiteRow {
    org_id,
    id,
    name,
    website_key,
    identity_secret,
    previous_identity_secret,
    token_secret,
    identity_verification,
    allowed_origins,
    created_at
});

/// What `Debug` prints in place of a secret, so secrets never reach logs or panic messages.
pub(crate) const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for WebsiteRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebsiteRow")
            .field("org_id", &self.org_id)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("website_key", &self.website_key)
            .field("identity_secret", &REDACTED)
            .field(
                "previous_identity_secret",
                &self.previous_identity_secret.as_ref().map(|_| REDACTED),
            )
            .field("token_secret", &REDACTED)
            .field("identity_verification", &self.identity_verification)
            .field("allowed_origins", &self.allowed_origins)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A website as the store hands it to the widget API (with its secrets).
#[derive(Clone)]
pub struct Website {
    pub org_id: OrgId,
    pub id: WebsiteId,
    pub name: String,
    pub website_key: String,
    pub identity_secret: String,
    /// The secret before the last rotation: it still verifies until it is retired.
    pub previous_identity_secret: Option<String>,
    pub token_secret: String,
    /// How identify calls are verified (issue 20).
    pub verification: VerificationMode,
    pub allowed_origins: Vec<String>,
    /// The stored origins could not be decoded: every browser origin is refused (fail closed)
    /// rather than the empty list's "any origin".
    pub allowed_origins_unreadable: bool,
    pub created_at: Timestamp,
}

impl Website {
    /// The secrets that verify a `user_hash` or an identity token, current first; `None` when
    /// verification is off (every identify counts as verified).
    pub fn verifying_secrets(&self) -> Option<Vec<&str>> {
        (self.verification != VerificationMode::Off).then(|| {
            std::iter::once(self.identity_secret.as_str())
                .chain(self.previous_identity_secret.as_deref())
                .collect()
        })
    }

    /// Whether a browser call from `origin` may use this website's widget API: any origin
    /// when the list is empty, else only those listed (`*` listed: any).
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.allowed_origins_unreadable {
            return false;
        }
        self.allowed_origins.is_empty()
            || self.allowed_origins.iter().any(|a| a == origin || a == "*")
    }
}

impl std::fmt::Debug for Website {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Website")
            .field("org_id", &self.org_id)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("website_key", &self.website_key)
            .field("identity_secret", &REDACTED)
            .field(
                "previous_identity_secret",
                &self.previous_identity_secret.as_ref().map(|_| REDACTED),
            )
            .field("token_secret", &REDACTED)
            .field("verification", &self.verification)
            .field("allowed_origins", &self.allowed_origins)
            .field(
                "allowed_origins_unreadable",
                &self.allowed_origins_unreadable,
            )
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl From<WebsiteRow> for Website {
    fn from(r: WebsiteRow) -> Self {
        let (allowed_origins, allowed_origins_unreadable) =
            match serde_json::from_str::<Vec<String>>(&r.allowed_origins) {
                Ok(origins) => (origins, false),
                Err(e) => {
                    tracing::error!(website = %r.id, error = %e,
                        "stored allowed_origins cannot be decoded; refusing every browser origin");
                    (Vec::new(), true)
                }
            };
        // An unknown stored mode fails closed: hashes and tokens both still verify.
        let verification = VerificationMode::parse(&r.identity_verification).unwrap_or_else(|| {
            tracing::error!(website = %r.id, "unknown identity_verification mode; using hmac-or-jwt");
            VerificationMode::HmacOrJwt
        });
        Website {
            allowed_origins,
            allowed_origins_unreadable,
            org_id: OrgId::new(r.org_id),
            id: WebsiteId::new(r.id),
            name: r.name,
            website_key: r.website_key,
            identity_secret: r.identity_secret,
            previous_identity_secret: r.previous_identity_secret,
            token_secret: r.token_secret,
            // An unknown stored mode fails closed: hashes and tokens both still verify.
            verification,
            created_at: Timestamp(r.created_at),
        }
    }
}

/// One entry of the organization's audit log: who changed which setting. Never a secret.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: String,
    pub at: Timestamp,
    /// `api`, `admin:<id>` or `cli`.
    pub actor: String,
    /// e.g. `website.identity_secret_rotated`.
    pub action: String,
    /// What was changed, e.g. `website:<id>`.
    pub subject: String,
    pub data: Value,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub data: String,
}
crate::lite::lite_row!(AuditRow {
    id,
    at,
    actor,
    action,
    subject,
    data
});

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: Timestamp(r.at),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            data: serde_json::from_str(&r.data).unwrap_or(Value::Null),
        }
    }
}
