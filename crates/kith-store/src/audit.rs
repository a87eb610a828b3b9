//! Totals an ingest run is checked against (`kith bench ingest`): after a load, the stored
//! counters must equal the rows they count, and no two contacts may share a key.

use crate::conn::args;
use crate::{read, OrgStore, StoreError};

/// One organization's write-side totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestTotals {
    pub contacts: i64,
    /// Messages written by visitors (what `contacts.message_count` counts).
    pub visitor_messages: i64,
    /// The sum of the contacts' `message_count`.
    pub contact_message_sum: i64,
    pub conversations: i64,
    /// The sum of the contacts' `conversation_count`.
    pub contact_conversation_sum: i64,
    /// Emails held by more than one contact (the unique key forbids it; counted anyway).
    pub duplicate_emails: i64,
    /// Visitors linked to a contact that does not exist.
    pub dangling_visitors: i64,
}

impl OrgStore<'_> {
    /// Counts an organization's contacts, messages and conversations and the counters kept
    /// for them. Full scans: for benchmarks and checks, not for serving.
    pub async fn ingest_totals(self) -> Result<IngestTotals, StoreError> {
        let org_id = self.org_id();
        read!(self.store, |c| async {
            use crate::conn::Conn;
            let (contacts, contact_message_sum, contact_conversation_sum): (i64, i64, i64) = c
                .fetch_one(
                    "SELECT count(*), CAST(coalesce(sum(message_count), 0) AS BIGINT), \
                     CAST(coalesce(sum(conversation_count), 0) AS BIGINT) \
                     FROM contacts WHERE org_id = $1",
                    args![org_id],
                )
                .await?;
            let (visitor_messages,): (i64,) = c
                .fetch_one(
                    "SELECT count(*) FROM messages WHERE org_id = $1 AND author = 'visitor'",
                    args![org_id],
                )
                .await?;
            let (conversations,): (i64,) = c
                .fetch_one(
                    "SELECT count(*) FROM conversations WHERE org_id = $1",
                    args![org_id],
                )
                .await?;
            let (duplicate_emails,): (i64,) = c
                .fetch_one(
                    "SELECT count(*) FROM (SELECT email_lower FROM contacts \
                     WHERE org_id = $1 AND email_lower IS NOT NULL \
                     GROUP BY email_lower HAVING count(*) > 1) d",
                    args![org_id],
                )
                .await?;
            let (dangling_visitors,): (i64,) = c
                .fetch_one(
                    "SELECT count(*) FROM visitors v WHERE v.org_id = $1 \
                     AND v.contact_id IS NOT NULL AND NOT EXISTS \
                     (SELECT 1 FROM contacts k WHERE k.org_id = v.org_id AND k.id = v.contact_id)",
                    args![org_id],
                )
                .await?;
            Ok::<_, StoreError>(IngestTotals {
                contacts,
                visitor_messages,
                contact_message_sum,
                conversations,
                contact_conversation_sum,
                duplicate_emails,
                dangling_visitors,
            })
        }
        .await)
    }
}
