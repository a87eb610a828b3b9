//! CSV export of contacts: the API's `GET /api/v1/contacts/export`, `kith export contacts`.
//!
//! With the contact index (a serving process), the file is produced page by page with the
//! listing's own keyset cursor (pages of [`EXPORT_PAGE`], no count), so an export of a list is
//! exactly that list paged through the API. Without it (`kith export` from the command line,
//! or a server whose index is still being built), each keyset page would be a scan and a
//! sort of the whole organization on SQLite, so the export is one query in the same order,
//! streamed: the database sorts once (SQLite spilling
//! to temporary files, PostgreSQL to `work_mem` files) and rows arrive in chunks through a
//! bounded channel. Either way memory stays flat whatever the number of contacts. The
//! columns are what import reads back (`kith_core::import::EXPORT_COLUMNS`).

use crate::backend::Backend;
use crate::conn::Conn;
use crate::model::ContactRow;
use crate::{Contact, Store, StoreError};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kith_core::filter::{ListFilter, Sort};
use kith_core::import::{spreadsheet_safe, tags_cell, EXPORT_COLUMNS};
use kith_core::OrgId;

/// Contacts per page read from the store.
pub const EXPORT_PAGE: i64 = 1000;

fn write_row(w: &mut csv::Writer<Vec<u8>>, cells: Vec<String>) {
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cells.into_iter().map(spreadsheet_safe));
}

/// The header line.
pub fn export_header() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    write_row(
        &mut w,
        EXPORT_COLUMNS.iter().map(|s| s.to_string()).collect(),
    );
    w.into_inner().unwrap_or_default()
}

/// The lines of `contacts`, in order.
pub fn export_rows(contacts: &[Contact]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(contacts.len() * 200));
    for c in contacts {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        write_row(
            &mut w,
            vec![
                c.id.as_str().to_string(),
                opt(&c.user_id),
                opt(&c.email),
                opt(&c.name),
                opt(&c.phone),
                opt(&c.company),
                tags_cell(&c.tags),
                if c.metadata.as_object().is_some_and(|m| !m.is_empty()) {
                    c.metadata.to_string()
                } else {
                    String::new()
                },
                c.status.as_str().to_string(),
                c.created_at.to_rfc3339(),
                c.updated_at.to_rfc3339(),
                c.last_seen_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                c.conversation_count.to_string(),
                c.message_count.to_string(),
            ],
        );
    }
    w.into_inner().unwrap_or_default()
}

enum Step {
    Header,
    Page(Option<String>),
    Done,
}

impl Store {
    /// The CSV of the organization's contacts matching `filter`, in `sort` order: the header,
    /// then one chunk per page. A failing page ends the stream with its error (the caller
    /// cuts the download short, so a partial file never looks complete).
    pub fn export_csv(
        &self,
        org: OrgId,
        filter: ListFilter,
        sort: Sort,
    ) -> impl Stream<Item = Result<Vec<u8>, StoreError>> + Send + 'static {
        if !self.lists_from_index() {
            return self.export_csv_streamed(org, filter, sort).boxed();
        }
        self.export_csv_paged(org, filter, sort).boxed()
    }

    fn export_csv_paged(
        &self,
        org: OrgId,
        filter: ListFilter,
        sort: Sort,
    ) -> BoxStream<'static, Result<Vec<u8>, StoreError>> {
        let store = self.clone();
        futures::stream::unfold(Step::Header, move |step| {
            let (store, org, filter) = (store.clone(), org.clone(), filter.clone());
            async move {
                match step {
                    Step::Header => Some((Ok(export_header()), Step::Page(None))),
                    Step::Page(cursor) => {
                        let page = store
                            .org(&org)
                            .export_page(&filter, &sort, cursor.as_deref(), EXPORT_PAGE)
                            .await;
                        match page {
                            Ok(p) => {
                                let next = match p.next_cursor {
                                    Some(c) => Step::Page(Some(c)),
                                    None => Step::Done,
                                };
                                Some((Ok(export_rows(&p.items)), next))
                            }
                            Err(e) => Some((Err(e), Step::Done)),
                        }
                    }
                    Step::Done => None,
                }
            }
        })
        .boxed()
    }

    /// The export as one streamed query (see the module doc).
    fn export_csv_streamed(
        &self,
        org: OrgId,
        filter: ListFilter,
        sort: Sort,
    ) -> BoxStream<'static, Result<Vec<u8>, StoreError>> {
        // Two chunks in flight: the database reads one while the caller writes the other.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<ContactRow>, StoreError>>(2);
        let store = self.clone();
        tokio::spawn(async move {
            let result = stream_rows(&store, org.as_str(), &filter, &sort, &tx).await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        let rows = futures::stream::unfold(rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            let csv = chunk.and_then(|rows| {
                let contacts = rows
                    .iter()
                    .map(ContactRow::view)
                    .collect::<Result<Vec<Contact>, _>>()?;
                Ok(export_rows(&contacts))
            });
            Some((csv, rx))
        });
        futures::stream::once(async { Ok(export_header()) })
            .chain(rows)
            .boxed()
    }
}

/// Sends every matching contact row, in order, in chunks of [`EXPORT_PAGE`].
async fn stream_rows(
    store: &Store,
    org_id: &str,
    filter: &ListFilter,
    sort: &Sort,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<ContactRow>, StoreError>>,
) -> Result<(), StoreError> {
    let chunk = EXPORT_PAGE as usize;
    match &store.inner.backend {
        Backend::Sqlite(pool) => {
            // Its own connection, closed afterwards: the sort spills to temporary files
            // (this store keeps temporary data in memory, which would hold every row), and
            // the file is read through the page cache rather than mapped, so the pages of a
            // whole-table read do not all count as this process's memory.
            let mut conn = pool.acquire().await?.detach();
            conn.execute("PRAGMA temp_store = FILE", vec![]).await?;
            conn.execute("PRAGMA mmap_size = 0", vec![]).await?;
            let (sql, args) = crate::lists::export_query(conn.dialect(), org_id, filter, sort);
            Ok(conn.fetch_chunks(&sql, args, chunk, tx).await?)
        }
        Backend::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            let (sql, args) = crate::lists::export_query(conn.dialect(), org_id, filter, sort);
            Ok(conn.fetch_chunks(&sql, args, chunk, tx).await?)
        }
    }
}
