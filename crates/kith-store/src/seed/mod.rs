//! Synthetic data for demos and benchmarks (`kith seed`): realistic contacts (names, emails,
//! companies, phones, tags from a small vocabulary, metadata, skewed last-seen times) with
//! conversations and messages, written in large batches so a million contacts take well
//! under a minute on SQLite.
//!
//! Two threads share the work: a generator (a blocking task) draws the data and encodes each
//! batch for the database, while the writer inserts the previous batch. SQLite gets
//! fixed-size multi-row INSERTs with anonymous `?` parameters; PostgreSQL gets one
//! `INSERT … SELECT FROM unnest(arrays)` per table and batch.
//!
//! Where the time goes and what was tried: docs/benchmarks.md, "Seeding".
//!
//! `generate` draws the contacts, `sqlite` and `postgres` encode and write a batch each their
//! own way; this module runs the two threads.

mod generate;
mod postgres;
mod sqlite;

use crate::conn::{Conn, Dialect};
use crate::ids::now_ms;
use crate::{transact, OrgStore, StoreError};
use generate::Generator;
use postgres::PgColumns;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sqlite::SqliteRows;
use std::future::Future;

pub struct SeedReport {
    pub contacts: u64,
    pub conversations: u64,
    pub messages: u64,
    pub timeline_entries: u64,
}

/// Contacts per SQLite transaction (one batch each): large enough that commits and their WAL
/// checkpoints are few, small enough that a server beside the seed gets the write lock every
/// second or two.
const SQLITE_BATCH_CONTACTS: u64 = 50_000;
/// Contacts per PostgreSQL transaction (one batch each). Small: every contact row updates one
/// of a few counter rows (the `contact_counts` trigger), and within one transaction each
/// update must walk past the versions the earlier ones left, so the cost per contact grows
/// with the transaction.
const PG_BATCH_CONTACTS: u64 = 1_000;

/// A batch of contacts encoded for the database it goes to, with what it adds.
struct Batch {
    contacts: u64,
    conversations: u64,
    messages: u64,
    events: u64,
    rows: Encoded,
}

enum Encoded {
    Sqlite(SqliteRows),
    Postgres(Box<PgColumns>),
}

/// How a batch is written on each database, inside the transaction `transact!` opened.
trait WriteBatch: Conn {
    /// Writes the batch in `pending`. Run again after a lost race, it must still find it.
    fn write_batch(
        &mut self,
        ids: (&str, &str),
        pending: &mut Option<Encoded>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn wrong_encoding() -> StoreError {
    StoreError::Seed {
        reason: "a batch was encoded for the other database",
        source: None,
    }
}

impl OrgStore<'_> {
    /// Adds `count` synthetic contacts to the organization (deterministic for a given
    /// `seed`), with conversations on the organization's first website.
    pub async fn seed(self, count: u64, seed: u64) -> Result<SeedReport, StoreError> {
        let org_id = self.org_id();
        let websites = self.websites().await?;
        let website = websites.first().ok_or(StoreError::NotFound)?;
        let (website_id, website_name) = (website.id.clone(), website.name.clone());
        let website_id = website_id.as_str();
        // Unique values (emails, user ids) continue after the contacts already there.
        let offset = self.count_contacts(&Default::default()).await? as u64;
        let dialect = self.store.dialect();

        // Generation runs beside the writes: the next batch is drawn and encoded while the
        // database takes the current one. Two batches in flight bound the memory.
        let (sender, mut batches) = tokio::sync::mpsc::channel(2);
        let website_id_owned = website_id.to_string();
        let generator = tokio::task::spawn_blocking(move || {
            let mut g = Generator {
                rng: StdRng::seed_from_u64(seed),
                website: (website_id_owned, website_name),
                now: now_ms(),
                next_index: offset,
            };
            let size = match dialect {
                Dialect::Sqlite => SQLITE_BATCH_CONTACTS,
                Dialect::Postgres => PG_BATCH_CONTACTS,
            };
            let mut done = 0;
            while done < count {
                let n = size.min(count - done);
                let batch = g.batch(n, dialect);
                let failed = batch.is_err();
                // A closed channel: the writer stopped on an error it reports.
                if sender.blocking_send(batch).is_err() || failed {
                    break;
                }
                done += n;
            }
        });

        let mut report = SeedReport {
            contacts: 0,
            conversations: 0,
            messages: 0,
            timeline_entries: 0,
        };
        while let Some(batch) = batches.recv().await {
            let batch = batch?;
            let mut pending = Some(batch.rows);
            transact!(self.store, |c| c
                .write_batch((org_id, website_id), &mut pending)
                .await)?;
            if dialect == Dialect::Postgres && report.contacts == 0 {
                // PostgreSQL keeps the plan of each foreign-key check for the session. Made on
                // nearly empty tables it is a scan, then run for every later row (a seed of
                // 500-contact batches crawled). New statistics invalidate it; the next plan
                // is an index lookup.
                crate::read!(self.store, |c| c
                    .execute(
                        "ANALYZE contacts, contact_tags, visitors, conversations, messages, \
                         contact_events",
                        vec![]
                    )
                    .await)?;
            }
            report.contacts += batch.contacts;
            report.conversations += batch.conversations;
            report.messages += batch.messages;
            report.timeline_entries += batch.events;
        }
        match generator.await {
            Ok(()) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(StoreError::Seed {
                    reason: "its generator stopped",
                    source: Some(Box::new(e)),
                })
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
