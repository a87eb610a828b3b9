//! The JSON shapes the admin API answers and their OpenAPI schemas, each made from the store's
//! domain value. Types flow one way: the store returns domain types (enums, `Timestamp`) and
//! knows nothing of HTTP; the strings and formats of the wire are decided here. The struct
//! names are the schema names of the published document (tests/openapi.snapshot.json).

use kith_core::verify::VerificationMode;
use kith_core::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// What `Debug` prints in place of a secret, so secrets never reach logs or panic messages.
const REDACTED: &str = "<redacted>";

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

impl From<&kith_store::Contact> for Contact {
    fn from(c: &kith_store::Contact) -> Self {
        Contact {
            id: c.id.to_string(),
            status: c.status.as_str().to_string(),
            user_id: c.user_id.clone(),
            email: c.email.clone(),
            name: c.name.clone(),
            phone: c.phone.clone(),
            company: c.company.clone(),
            tags: c.tags.clone(),
            metadata: c.metadata.clone(),
            conversation_count: c.conversation_count,
            message_count: c.message_count,
            last_seen_at: c.last_seen_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
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

impl From<&kith_store::LastMessage> for LastMessage {
    fn from(m: &kith_store::LastMessage) -> Self {
        LastMessage {
            preview: m.preview.clone(),
            at: m.at,
        }
    }
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

impl From<&kith_store::Conversation> for Conversation {
    fn from(c: &kith_store::Conversation) -> Self {
        Conversation {
            id: c.id.to_string(),
            website: WebsiteRef {
                id: c.website.id.to_string(),
                name: c.website.name.clone(),
            },
            contact_id: c.contact_id.to_string(),
            status: c.status.as_str().to_string(),
            message_count: c.message_count,
            last_message: c.last_message.as_ref().map(LastMessage::from),
            created_at: c.created_at,
            updated_at: c.updated_at,
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

impl From<&kith_store::Message> for Message {
    fn from(m: &kith_store::Message) -> Self {
        Message {
            id: m.id.clone(),
            conversation_id: m.conversation_id.to_string(),
            author: m.author.as_str().to_string(),
            body: m.body.clone(),
            created_at: m.created_at,
        }
    }
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

impl From<&kith_store::TimelineEvent> for TimelineEvent {
    fn from(e: &kith_store::TimelineEvent) -> Self {
        TimelineEvent {
            id: e.id.clone(),
            kind: e.kind.as_str().to_string(),
            at: e.at,
            actor: e.actor.to_string(),
            data: e.data.clone(),
        }
    }
}

/// A list as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactList {
    /// `all`, `leads`, `customers`, or the id of a custom list.
    pub id: String,
    pub name: String,
    pub builtin: bool,
    #[schema(value_type = Object)]
    pub filter: Value,
    /// Exact number of contacts in the list now (0 when `error` is set).
    pub count: i64,
    /// Set only when the stored filter can no longer be read (e.g. written by an older
    /// version with looser rules): the list answers nothing until its filter is replaced
    /// with `PATCH`, and every other list keeps working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&kith_store::ContactList> for ContactList {
    fn from(l: &kith_store::ContactList) -> Self {
        ContactList {
            id: l.id.to_string(),
            name: l.name.clone(),
            builtin: l.builtin,
            filter: l.filter.clone(),
            count: l.count,
            error: l.error.clone(),
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
    /// Server side only: the key of `user_hash` (HMAC-SHA256) and of identity tokens (HS256).
    pub identity_secret: String,
    /// Whether a previous identity secret (before the last rotation) still verifies; it is
    /// never shown again.
    pub previous_identity_secret_active: bool,
    /// Whether identify calls must be verified (`identity_verification_mode` is not `off`).
    pub identity_verification: bool,
    /// `off`, `hmac-or-jwt` (default), `hmac` or `jwt-only`.
    #[schema(value_type = crate::routes::admin::websites::IdentityVerificationMode)]
    pub identity_verification_mode: &'static str,
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
            .field(
                "previous_identity_secret_active",
                &self.previous_identity_secret_active,
            )
            .field("identity_verification", &self.identity_verification)
            .field(
                "identity_verification_mode",
                &self.identity_verification_mode,
            )
            .field("allowed_origins", &self.allowed_origins)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl From<&kith_store::Website> for WebsiteView {
    fn from(w: &kith_store::Website) -> Self {
        WebsiteView {
            id: w.id.to_string(),
            name: w.name.clone(),
            website_key: w.website_key.clone(),
            identity_secret: w.identity_secret.clone(),
            previous_identity_secret_active: w.previous_identity_secret.is_some(),
            identity_verification: w.verification != VerificationMode::Off,
            identity_verification_mode: w.verification.as_str(),
            allowed_origins: w.allowed_origins.clone(),
            created_at: w.created_at,
        }
    }
}

/// One entry of the organization's audit log.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `api`, `admin:<id>` or `cli`.
    pub actor: String,
    /// `website.identity_secret_rotated`, `website.previous_identity_secret_retired` or
    /// `website.identity_verification_changed`.
    pub action: String,
    /// What changed, e.g. `website:<id>`.
    pub subject: String,
    /// Details (never a secret).
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<&kith_store::AuditEntry> for AuditEntryView {
    fn from(e: &kith_store::AuditEntry) -> Self {
        AuditEntryView {
            id: e.id.clone(),
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            data: e.data.clone(),
        }
    }
}

/// Maps a slice of store values to their JSON shapes.
pub fn all<'a, S: 'a, J: From<&'a S>>(items: &'a [S]) -> Vec<J> {
    items.iter().map(J::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_core::conversation::{AuthorKind, ConversationStatus};
    use kith_core::timeline::{Actor, EventKind};
    use kith_core::Status;
    use kith_core::{ContactId, ConversationId};
    use serde_json::json;

    #[test]
    fn website_debug_never_prints_the_identity_secret() {
        let view = WebsiteView {
            id: "01site".into(),
            name: "Shop".into(),
            website_key: "wk_01org_public".into(),
            identity_secret: "IDENTITYSECRET".into(),
            previous_identity_secret_active: false,
            identity_verification: true,
            identity_verification_mode: "hmac-or-jwt",
            allowed_origins: vec![],
            created_at: Timestamp(0),
        };
        let printed = format!("{view:?}");
        assert!(!printed.contains("IDENTITYSECRET"), "{printed}");
        assert!(printed.contains(REDACTED) && printed.contains("01site"));
    }

    /// The wire strings of the domain enums are the ones the API has always sent.
    #[test]
    fn enums_become_their_wire_strings() {
        let contact = kith_store::Contact {
            id: ContactId::new("c"),
            status: Status::Customer,
            user_id: Some("u".into()),
            email: None,
            name: None,
            phone: None,
            company: None,
            tags: vec![],
            metadata: json!({}),
            conversation_count: 0,
            message_count: 0,
            last_seen_at: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(1),
        };
        let v = serde_json::to_value(Contact::from(&contact)).unwrap();
        assert_eq!(v["status"], "customer");
        assert_eq!(v["last_seen_at"], Value::Null);
        assert_eq!(v["updated_at"], "1970-01-01T00:00:00.001Z");

        let m = kith_store::Message {
            id: "m".into(),
            conversation_id: ConversationId::new("cv"),
            author: AuthorKind::Agent,
            body: "hi".into(),
            created_at: Timestamp(0),
        };
        assert_eq!(Message::from(&m).author, "agent");

        let e = kith_store::TimelineEvent {
            id: "e".into(),
            kind: EventKind::FieldsUpdated,
            at: Timestamp(0),
            actor: Actor::Admin("01adm".into()),
            data: Value::Null,
        };
        let e = TimelineEvent::from(&e);
        assert_eq!(
            (e.kind.as_str(), e.actor.as_str()),
            ("fields_updated", "admin:01adm")
        );

        assert_eq!(ConversationStatus::Escalated.as_str(), "escalated");
    }
}

/// One visitor (browser) linked to a contact, in an export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportedVisitor {
    pub id: String,
    pub website_id: String,
    /// Whether it proved the contact's identity (a verified identify).
    pub verified: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: Timestamp,
}

/// A conversation with every message, in an export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportedConversation {
    #[serde(flatten)]
    pub conversation: Conversation,
    /// Every message, oldest first.
    pub messages: Vec<Message>,
}

/// Everything the organization holds about one contact (`GET /api/v1/contacts/{id}/export`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactExport {
    /// Always 1; a later shape gets a new number.
    pub format: u32,
    #[schema(value_type = String, format = DateTime)]
    pub exported_at: Timestamp,
    pub contact: Contact,
    /// Every timeline entry, oldest first.
    pub timeline: Vec<TimelineEvent>,
    pub conversations: Vec<ExportedConversation>,
    pub visitors: Vec<ExportedVisitor>,
    /// Notes written on the contact, oldest first.
    pub notes: Vec<crate::routes::admin::notes::NoteView>,
    /// Ids of contacts merged into this one.
    pub merged_ids: Vec<String>,
}

impl From<&kith_store::ContactExport> for ContactExport {
    fn from(e: &kith_store::ContactExport) -> Self {
        ContactExport {
            format: 1,
            exported_at: Timestamp(kith_store::now_ms()),
            contact: Contact::from(&e.contact),
            timeline: all(&e.timeline),
            conversations: e
                .conversations
                .iter()
                .map(|(c, m)| ExportedConversation {
                    conversation: Conversation::from(c),
                    messages: all(m),
                })
                .collect(),
            visitors: e
                .visitors
                .iter()
                .map(|v| ExportedVisitor {
                    id: v.id.clone(),
                    website_id: v.website_id.clone(),
                    verified: v.verified,
                    created_at: Timestamp(v.created_at),
                    last_seen_at: Timestamp(v.last_seen_at),
                })
                .collect(),
            notes: e
                .notes
                .iter()
                .map(crate::routes::admin::notes::NoteView::from)
                .collect(),
            merged_ids: e.merged_ids.clone(),
        }
    }
}

/// What a delete removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletedContact {
    pub id: String,
    /// `true` when the delete was an erasure (`?erase=true`).
    pub erased: bool,
    pub conversations: i64,
    pub messages: i64,
    pub visitors: i64,
    pub timeline_entries: i64,
}

impl From<&kith_store::Deleted> for DeletedContact {
    fn from(d: &kith_store::Deleted) -> Self {
        DeletedContact {
            id: d.contact_id.to_string(),
            erased: d.erased,
            conversations: d.conversations,
            messages: d.messages,
            visitors: d.visitors,
            timeline_entries: d.timeline_entries,
        }
    }
}

/// A bulk action and its progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkJob {
    pub id: String,
    /// `add_tags`, `remove_tags` or `delete`.
    pub action: String,
    pub tags: Vec<String>,
    /// What was selected: `{"list": id?, "filter": {...}}`.
    #[schema(value_type = Object)]
    pub selection: Value,
    /// `running` or `done`.
    pub status: String,
    /// Contacts selected when the job started (the confirmed count).
    pub total: i64,
    /// Contacts handled so far.
    pub done: i64,
    /// Contacts the action changed (the others already were as asked or were gone).
    pub changed: i64,
    /// Contacts the action could not apply to (a limit, e.g. 100 tags).
    pub failed: i64,
    /// `api` or `admin:<id>`.
    pub actor: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

impl From<&kith_store::BulkJob> for BulkJob {
    fn from(j: &kith_store::BulkJob) -> Self {
        BulkJob {
            id: j.id.clone(),
            action: j.action.name().to_string(),
            tags: j.action.tags().to_vec(),
            selection: j.selection.clone(),
            status: j.status.clone(),
            total: j.total,
            done: j.done,
            changed: j.changed,
            failed: j.failed,
            actor: j.actor.clone(),
            created_at: Timestamp(j.created_at),
            updated_at: Timestamp(j.updated_at),
            finished_at: j.finished_at.map(Timestamp),
        }
    }
}
