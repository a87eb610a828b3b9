//! Rows as stored and the views the API returns.

use kith_core::contact::Stats;
use kith_core::{Email, Metadata, Phone, Profile, Tags, Text, Timestamp};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::StoreError;

pub(crate) const CONTACT_COLUMNS: &str =
    "id, user_id, email, name, phone, company, tags, metadata, \
     conversation_count, message_count, last_seen_at, created_at, updated_at, email_verified";

#[derive(Debug, Clone, sqlx::FromRow)]
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
            id: self.id.clone(),
            status: p.status().as_str().to_string(),
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

/// A contact as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    pub id: String,
    /// `lead` or `customer` (customer exactly while `user_id` is set).
    pub status: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub tags: Vec<String>,
    /// Flat object of custom key → string, number or boolean.
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub conversation_count: i64,
    /// Messages the contact sent.
    pub message_count: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
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

pub(crate) const CONVERSATION_SELECT: &str =
    "SELECT cv.id, cv.website_id, w.name AS website_name, \
     cv.contact_id, cv.visitor_id, cv.status, cv.message_count, cv.last_message_preview, \
     cv.last_message_at, cv.created_at, cv.updated_at \
     FROM conversations cv JOIN websites w ON w.org_id = cv.org_id AND w.id = cv.website_id";

impl ConversationRow {
    pub fn view(&self) -> Conversation {
        Conversation {
            id: self.id.clone(),
            website: WebsiteRef {
                id: self.website_id.clone(),
                name: self.website_name.clone(),
            },
            contact_id: self.contact_id.clone(),
            status: self.status.clone(),
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
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebsiteRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastMessage {
    pub preview: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// A conversation: one thread between a contact and the organization, on one website.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    pub website: WebsiteRef,
    pub contact_id: String,
    /// `open`, `escalated` or `resolved`.
    pub status: String,
    pub message_count: i64,
    pub last_message: Option<LastMessage>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
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

impl MessageRow {
    pub fn view(&self) -> Message {
        Message {
            id: self.id.clone(),
            conversation_id: self.conversation_id.clone(),
            author: self.author.clone(),
            body: self.body.clone(),
            created_at: Timestamp(self.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// `visitor`, `agent`, `bot` or `system`.
    pub author: String,
    pub body: String,
    #[schema(value_type = String, format = DateTime)]
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

/// One entry of a contact's activity timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEvent {
    pub id: String,
    /// `created`, `conversation_started`, `escalated`, `fields_updated`, `promoted`, `merged`.
    pub kind: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `visitor`, `admin:<id>`, `api` or `system`.
    pub actor: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl EventRow {
    pub fn view(&self) -> TimelineEvent {
        TimelineEvent {
            id: self.id.clone(),
            kind: self.kind.clone(),
            at: Timestamp(self.at),
            actor: self.actor.clone(),
            data: serde_json::from_str(&self.data).unwrap_or(Value::Null),
        }
    }
}

#[derive(Clone, sqlx::FromRow)]
pub(crate) struct WebsiteRow {
    pub org_id: String,
    pub id: String,
    pub name: String,
    pub website_key: String,
    pub identity_secret: String,
    pub token_secret: String,
    pub verification_required: bool,
    pub allowed_origins: String,
    pub created_at: i64,
}

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
            .field("token_secret", &REDACTED)
            .field("verification_required", &self.verification_required)
            .field("allowed_origins", &self.allowed_origins)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A website as the store hands it to the widget API (with its secrets).
#[derive(Clone)]
pub struct Website {
    pub org_id: String,
    pub id: String,
    pub name: String,
    pub website_key: String,
    pub identity_secret: String,
    pub token_secret: String,
    pub verification_required: bool,
    pub allowed_origins: Vec<String>,
    /// The stored origins could not be decoded: every browser origin is refused (fail closed)
    /// rather than the empty list's "any origin".
    pub allowed_origins_unreadable: bool,
    pub created_at: i64,
}

impl Website {
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
            .field("token_secret", &REDACTED)
            .field("verification_required", &self.verification_required)
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
        Website {
            allowed_origins,
            allowed_origins_unreadable,
            org_id: r.org_id,
            id: r.id,
            name: r.name,
            website_key: r.website_key,
            identity_secret: r.identity_secret,
            token_secret: r.token_secret,
            verification_required: r.verification_required,
            created_at: r.created_at,
        }
    }
}

/// A website as the admin API shows it.
#[derive(Clone, Serialize, ToSchema)]
pub struct WebsiteView {
    pub id: String,
    pub name: String,
    /// Public: goes into the widget snippet.
    pub website_key: String,
    /// Server side only: the key of `user_hash` (HMAC-SHA256).
    pub identity_secret: String,
    /// Whether identify calls must carry a valid `user_hash`.
    pub identity_verification: bool,
    /// Origins allowed to call the widget API (empty: any).
    pub allowed_origins: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl std::fmt::Debug for WebsiteView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebsiteView")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("website_key", &self.website_key)
            .field("identity_secret", &REDACTED)
            .field("identity_verification", &self.identity_verification)
            .field("allowed_origins", &self.allowed_origins)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl From<&Website> for WebsiteView {
    fn from(w: &Website) -> Self {
        WebsiteView {
            id: w.id.clone(),
            name: w.name.clone(),
            website_key: w.website_key.clone(),
            identity_secret: w.identity_secret.clone(),
            identity_verification: w.verification_required,
            allowed_origins: w.allowed_origins.clone(),
            created_at: Timestamp(w.created_at),
        }
    }
}
