//! CSV import of contacts (`kith import contacts`, the panel's upload).
//!
//! Two streaming passes over the file, so memory stays flat whatever its size and nothing is
//! half-imported without saying so:
//! 1. check: the header, UTF-8 on every line (a BOM is accepted), and the number of rows
//!    (for the progress bar). A file that fails here is refused before anything is written.
//! 2. import: rows in batches of [`BATCH_ROWS`], one transaction each. Rows are matched by
//!    user_id, then email (case-insensitively); a batch loads every contact holding any of
//!    its keys with one query, and later rows see what earlier rows (of the file) wrote, so
//!    two rows for one person give one contact. A row with an invalid value, a ragged row
//!    and a row whose user_id and email belong to two different contacts are rejected whole
//!    and written with the reason to the errors file; the others are imported.
//!
//! If the run stops midway (an I/O or database error, an interrupt), the error says how many
//! rows were committed and from which line to resume (`start_line`).

use crate::conn::Conn;
use crate::contact_rows::{create_contacts, record_changes, write_profile};
use crate::dialect::for_update;
use crate::ids::{new_id, now_ms};
use crate::model::{ContactRow, CONTACT_COLUMNS};
use crate::{transact, OrgStore, StoreError};
use kith_core::import::{unescape_cell, ColumnMap, ImportRow};
use kith_core::timeline::Actor;
use kith_core::Profile;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows per transaction: large enough that commits are a small part of the time, small
/// enough that a stop loses little and other writers wait briefly.
pub const BATCH_ROWS: usize = 1000;

/// How an import runs.
pub struct ImportOptions<'a> {
    /// Who the timeline names: `system` for the CLI, `admin:<id>` for the panel.
    pub actor: Actor,
    /// Where rejected rows go (original columns + `error`); created on the first rejection.
    pub errors_path: PathBuf,
    /// The file line of the first row to import; earlier rows are skipped (resuming after a
    /// stop). 0 or 1: from the start.
    pub start_line: u64,
    /// Set to stop after the current batch (an interrupt).
    pub stop: Option<&'a AtomicBool>,
}

/// Where an import is, after each batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportProgress {
    pub rows_done: u64,
    pub rows_total: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    /// Data rows read (header and skipped rows not counted).
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    /// Rows that matched a contact and changed nothing.
    pub unchanged: u64,
    pub rejected: u64,
    /// The errors file, when some row was rejected.
    pub errors_file: Option<PathBuf>,
    /// The last file line whose row is committed (0: none).
    pub committed_through_line: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be imported at all; nothing was written.
    #[error("{0}; nothing was imported")]
    Refused(String),
    /// The import stopped midway: what was committed stays.
    #[error(
        "the import stopped: {reason}. Rows up to line {} are imported ({} rows: {} created, \
         {} updated, {} unchanged, {} rejected); to go on, run it again with --start-line {resume_line}",
        .summary.committed_through_line, .summary.rows_read, .summary.created, .summary.updated,
        .summary.unchanged, .summary.rejected
    )]
    Stopped {
        reason: String,
        summary: ImportSummary,
        resume_line: u64,
    },
}

/// The outcome of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
    Rejected(String),
}

/// Reads a file with every CR LF turned into LF. The csv crate numbers the lines of a CR LF
/// file one short after the first record (it records a record's position before it steps
/// over the LF), and the errors name lines; CR LF inside a quoted cell becomes LF too, which
/// changes nothing a contact holds.
struct Lf<R> {
    inner: R,
    /// A CR read at the end of the last chunk, not yet known to precede an LF.
    held_cr: bool,
}

impl<R: std::io::Read> std::io::Read for Lf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() < 2 {
            return self.inner.read(buf);
        }
        loop {
            let start = usize::from(self.held_cr);
            if self.held_cr {
                buf[0] = b'\r';
            }
            let n = self.inner.read(&mut buf[start..])?;
            if n == 0 {
                self.held_cr = false;
                return Ok(start);
            }
            let mut len = start + n;
            // Hold back a trailing CR: the next chunk may start with its LF.
            self.held_cr = buf[len - 1] == b'\r';
            if self.held_cr {
                len -= 1;
            }
            let mut w = 0;
            for r in 0..len {
                let b = buf[r];
                if b == b'\r' && r + 1 < len && buf[r + 1] == b'\n' {
                    continue;
                }
                buf[w] = b;
                w += 1;
            }
            if w > 0 {
                return Ok(w);
            }
        }
    }
}

type CsvReader = csv::Reader<Lf<BufReader<File>>>;

fn reader(path: &Path) -> Result<CsvReader, ImportError> {
    let file = File::open(path)
        .map_err(|e| ImportError::Refused(format!("cannot open {}: {e}", path.display())))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        // Ragged rows are read and rejected one by one, not taken as the end of the file.
        .flexible(true)
        .from_reader(Lf {
            inner: BufReader::with_capacity(1 << 16, file),
            held_cr: false,
        }))
}

/// Reads one record; `None` at the end. The error names the line.
fn next_record(rdr: &mut CsvReader, rec: &mut csv::ByteRecord) -> Result<bool, String> {
    rdr.read_byte_record(rec).map_err(|e| match e.kind() {
        csv::ErrorKind::Io(io) => format!("reading the file failed: {io}"),
        _ => format!("the file is not valid CSV: {e}"),
    })
}

/// The cells of a record as text, or the line where it is not UTF-8.
fn cells(rec: &csv::ByteRecord, line: u64) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(rec.len());
    for (i, field) in rec.iter().enumerate() {
        // The first cell of the file may start with a UTF-8 byte-order mark.
        let field = if line <= 1 && i == 0 {
            field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
        } else {
            field
        };
        let s = std::str::from_utf8(field).map_err(|_| {
            format!(
                "line {line} (column {}) is not UTF-8 text; save the file as UTF-8 (CSV UTF-8 in \
                 spreadsheet apps) and import it again",
                i + 1
            )
        })?;
        out.push(s.to_string());
    }
    Ok(out)
}

/// Pass 1: the header and every line's encoding; answers the column map, the header cells and
/// the number of data rows.
fn check_file(path: &Path) -> Result<(ColumnMap, Vec<String>, u64), ImportError> {
    let mut rdr = reader(path)?;
    let mut rec = csv::ByteRecord::new();
    let refused = ImportError::Refused;
    let mut header = None;
    let mut rows = 0u64;
    while next_record(&mut rdr, &mut rec).map_err(refused)? {
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let cells = cells(&rec, line).map_err(refused)?;
        if header.is_none() {
            if cells.iter().all(|c| c.trim().is_empty()) {
                return Err(refused(format!(
                    "line {line} is empty: the first line must be the header row"
                )));
            }
            header = Some(cells);
        } else {
            rows += 1;
        }
    }
    let Some(header) = header else {
        return Err(refused(
            "the file is empty: it needs a header row, then one row per contact".into(),
        ));
    };
    let map = ColumnMap::parse(&header).map_err(|e| refused(e.message))?;
    Ok((map, header, rows))
}

/// The errors file, opened on the first rejected row.
struct Rejects {
    path: PathBuf,
    header: Vec<String>,
    writer: Option<csv::Writer<File>>,
}

impl Rejects {
    fn write(&mut self, cells: &[String], reason: &str) -> Result<(), String> {
        let io = |e: csv::Error| format!("writing {} failed: {e}", self.path.display());
        if self.writer.is_none() {
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .from_path(&self.path)
                .map_err(io)?;
            let mut h = self.header.clone();
            h.push("error".into());
            w.write_record(&h).map_err(io)?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("opened above");
        let mut row = cells.to_vec();
        // A ragged row keeps its cells; the reason goes after the header's columns.
        row.resize(row.len().max(self.header.len()), String::new());
        row.push(reason.to_string());
        w.write_record(&row).map_err(io)
    }

    fn flush(&mut self) -> Result<(), String> {
        match &mut self.writer {
            Some(w) => w
                .flush()
                .map_err(|e| format!("writing {} failed: {e}", self.path.display())),
            None => Ok(()),
        }
    }
}

/// One data row of a batch: its line, its cells, and what parsing made of it.
struct Pending {
    line: u64,
    cells: Vec<String>,
    parsed: Result<ImportRow, String>,
}

impl OrgStore<'_> {
    /// Imports the contacts of the CSV file at `path` (see the module doc). `progress` is
    /// called after every batch.
    pub async fn import_csv(
        self,
        path: &Path,
        opts: &ImportOptions<'_>,
        progress: &mut (dyn FnMut(ImportProgress) + Send),
    ) -> Result<ImportSummary, ImportError> {
        let owned = path.to_path_buf();
        let (map, header, total) = tokio::task::spawn_blocking(move || check_file(&owned))
            .await
            .map_err(|e| ImportError::Refused(format!("the check of the file failed: {e}")))??;
        let mut rdr = reader(path)?;
        let mut rec = csv::ByteRecord::new();
        let mut summary = ImportSummary::default();
        let mut rejects = Rejects {
            path: opts.errors_path.clone(),
            header: header.clone(),
            writer: None,
        };
        let width = header.len();
        let mut first = true;
        let mut skipped = 0u64;
        let mut last_line = 0u64;
        let stopped = |reason: String, summary: &ImportSummary| ImportError::Stopped {
            reason,
            summary: summary.clone(),
            resume_line: (summary.committed_through_line + 1).max(opts.start_line),
        };
        loop {
            let mut batch: Vec<Pending> = Vec::with_capacity(BATCH_ROWS);
            while batch.len() < BATCH_ROWS {
                let more = next_record(&mut rdr, &mut rec).map_err(|e| stopped(e, &summary))?;
                if !more {
                    break;
                }
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                let cells = cells(&rec, line).map_err(|e| stopped(e, &summary))?;
                if std::mem::take(&mut first) {
                    continue; // the header
                }
                last_line = line;
                if line < opts.start_line {
                    skipped += 1;
                    continue;
                }
                let parsed = if cells.len() != width {
                    Err(format!(
                        "line {line}: the row has {} cells, the header {width}",
                        cells.len()
                    ))
                } else {
                    let unescaped: Vec<&str> = cells.iter().map(|c| unescape_cell(c)).collect();
                    ImportRow::parse(&map, &unescaped).map_err(|e| format!("line {line}: {e}"))
                };
                batch.push(Pending {
                    line,
                    cells,
                    parsed,
                });
            }
            if batch.is_empty() {
                break;
            }
            let rows: Vec<Option<&ImportRow>> =
                batch.iter().map(|p| p.parsed.as_ref().ok()).collect();
            let outcomes = self
                .import_batch(&rows, &opts.actor)
                .await
                .map_err(|e| stopped(format!("the database refused a batch: {e}"), &summary))?;
            for (p, outcome) in batch.iter().zip(outcomes) {
                let outcome = match (&p.parsed, outcome) {
                    (Err(reason), _) => Outcome::Rejected(reason.clone()),
                    (Ok(_), Outcome::Rejected(r)) => {
                        Outcome::Rejected(format!("line {}: {r}", p.line))
                    }
                    (Ok(_), o) => o,
                };
                summary.rows_read += 1;
                match outcome {
                    Outcome::Created => summary.created += 1,
                    Outcome::Updated => summary.updated += 1,
                    Outcome::Unchanged => summary.unchanged += 1,
                    Outcome::Rejected(reason) => {
                        summary.rejected += 1;
                        summary.errors_file = Some(rejects.path.clone());
                        rejects
                            .write(&p.cells, &reason)
                            .map_err(|e| stopped(e, &summary))?;
                    }
                }
            }
            rejects.flush().map_err(|e| stopped(e, &summary))?;
            summary.committed_through_line = batch.last().map(|p| p.line).unwrap_or(0);
            progress(ImportProgress {
                rows_done: summary.rows_read + skipped,
                rows_total: total,
            });
            if opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(stopped("interrupted".into(), &summary));
            }
        }
        if summary.committed_through_line == 0 {
            summary.committed_through_line = last_line;
        }
        Ok(summary)
    }

    /// One batch in one transaction: `None` rows were rejected before (kept for order).
    async fn import_batch(
        self,
        rows: &[Option<&ImportRow>],
        actor: &Actor,
    ) -> Result<Vec<Outcome>, StoreError> {
        let org_id = self.org_id();
        transact!(self.store, |c| import_rows(
            c,
            org_id,
            rows,
            actor,
            now_ms()
        )
        .await)
    }
}

/// A contact the batch has seen: loaded (it holds a key of the batch) or created by it.
struct Seen {
    id: String,
    profile: Profile,
    /// Created by the batch and not written yet (see `write_new`).
    new: bool,
}

/// Writes the contacts the batch created so far, all at once (`create_contacts`).
async fn write_new<C: Conn>(
    c: &mut C,
    org_id: &str,
    seen: &mut [Seen],
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let new: Vec<(&str, &Profile)> = seen
        .iter()
        .filter(|s| s.new)
        .map(|s| (s.id.as_str(), &s.profile))
        .collect();
    create_contacts(c, org_id, &new, actor, now).await?;
    for s in seen.iter_mut() {
        s.new = false;
    }
    Ok(())
}

/// Every contact holding one of the batch's user_ids or emails. Two queries, one per unique
/// key: an `OR` of both lists makes SQLite scan the organization's contacts instead of
/// seeking each key (the batch then costs time in proportion to the table).
async fn holders<C: Conn>(
    c: &mut C,
    org_id: &str,
    rows: &[Option<&ImportRow>],
) -> Result<Vec<ContactRow>, StoreError> {
    let users: Vec<String> = rows
        .iter()
        .flatten()
        .filter_map(|r| r.user_id.as_ref().map(|u| u.as_str().to_string()))
        .collect();
    let emails: Vec<String> = rows
        .iter()
        .flatten()
        .filter_map(|r| r.email.as_ref().map(|e| e.key()))
        .collect();
    let mut found: Vec<ContactRow> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (column, keys) in [("user_id", users), ("email_lower", emails)] {
        if keys.is_empty() {
            continue;
        }
        let mut q = crate::conn::Positional::new(c.dialect());
        let org = q.arg(org_id);
        let marks: Vec<String> = keys.into_iter().map(|k| q.arg(k)).collect();
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = {org} AND {column} IN ({}){}",
            marks.join(", "),
            for_update(c.dialect())
        );
        let rows: Vec<ContactRow> = c.fetch_all(&sql, q.args).await?;
        for r in rows {
            if ids.insert(r.id.clone()) {
                found.push(r);
            }
        }
    }
    Ok(found)
}

async fn import_rows<C: Conn>(
    c: &mut C,
    org_id: &str,
    rows: &[Option<&ImportRow>],
    actor: &Actor,
    now: i64,
) -> Result<Vec<Outcome>, StoreError> {
    let mut seen: Vec<Seen> = Vec::new();
    let mut by_user: FxHashMap<String, usize> = FxHashMap::default();
    let mut by_email: FxHashMap<String, usize> = FxHashMap::default();
    for row in holders(c, org_id, rows).await? {
        let profile = row.profile()?;
        let i = seen.len();
        if let Some(u) = &profile.user_id {
            by_user.insert(u.as_str().to_string(), i);
        }
        if let Some(e) = &profile.email {
            by_email.insert(e.key(), i);
        }
        seen.push(Seen {
            id: row.id,
            profile,
            new: false,
        });
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(row) = row else {
            // Rejected before the batch; its reason is with the caller.
            out.push(Outcome::Rejected(String::new()));
            continue;
        };
        let by_u = row
            .user_id
            .as_ref()
            .and_then(|u| by_user.get(u.as_str()).copied());
        let by_e = row
            .email
            .as_ref()
            .and_then(|e| by_email.get(&e.key()).copied());
        let target = match (by_u, by_e) {
            (Some(a), Some(b)) if a != b => {
                out.push(Outcome::Rejected(format!(
                    "user_id {:?} belongs to contact {} and email {:?} to contact {}; import \
                     never merges two contacts (merge them first, or fix the row)",
                    row.user_id.as_ref().map(|u| u.as_str()).unwrap_or_default(),
                    seen[a].id,
                    row.email.as_ref().map(|e| e.as_str()).unwrap_or_default(),
                    seen[b].id
                )));
                continue;
            }
            (None, Some(b)) => match (&row.user_id, &seen[b].profile.user_id) {
                (Some(given), Some(held)) if given.as_str() != held.as_str() => {
                    out.push(Outcome::Rejected(format!(
                        "email {:?} belongs to contact {}, whose user_id is {:?}, not {:?}; \
                         import never changes who a contact is by email",
                        row.email.as_ref().map(|e| e.as_str()).unwrap_or_default(),
                        seen[b].id,
                        held.as_str(),
                        given.as_str()
                    )));
                    continue;
                }
                _ => Some(b),
            },
            (a, b) => a.or(b),
        };
        match target {
            Some(i) => {
                if seen[i].new {
                    // A later row of the file updates a contact an earlier one created: the
                    // creation is written first, so the timeline and rows read as one by one.
                    write_new(c, org_id, &mut seen, actor, now).await?;
                }
                let patch = match row.patch_for(&seen[i].profile) {
                    Ok(p) => p,
                    Err(e) => {
                        out.push(Outcome::Rejected(e.to_string()));
                        continue;
                    }
                };
                let mut profile = seen[i].profile.clone();
                let before = profile.status();
                let changes = profile.apply_patch(&patch);
                if changes.is_empty() {
                    out.push(Outcome::Unchanged);
                    continue;
                }
                let id = seen[i].id.clone();
                write_profile(c, org_id, &id, &profile, now).await?;
                record_changes(
                    c,
                    org_id,
                    &id,
                    (before, profile.status()),
                    &changes,
                    actor,
                    now,
                )
                .await?;
                // The keys it held before no longer lead to it.
                if let Some(u) = &seen[i].profile.user_id {
                    by_user.remove(u.as_str());
                }
                if let Some(e) = &seen[i].profile.email {
                    by_email.remove(&e.key());
                }
                index_keys(&mut by_user, &mut by_email, &profile, i);
                seen[i].profile = profile;
                out.push(Outcome::Updated);
            }
            None => {
                let mut profile = Profile::default();
                let patch = match row.patch_for(&profile) {
                    Ok(p) => p,
                    Err(e) => {
                        out.push(Outcome::Rejected(e.to_string()));
                        continue;
                    }
                };
                profile.apply_patch(&patch);
                let i = seen.len();
                index_keys(&mut by_user, &mut by_email, &profile, i);
                seen.push(Seen {
                    id: new_id(),
                    profile,
                    new: true,
                });
                out.push(Outcome::Created);
            }
        }
    }
    write_new(c, org_id, &mut seen, actor, now).await?;
    Ok(out)
}

fn index_keys(
    by_user: &mut FxHashMap<String, usize>,
    by_email: &mut FxHashMap<String, usize>,
    p: &Profile,
    i: usize,
) {
    if let Some(u) = &p.user_id {
        by_user.insert(u.as_str().to_string(), i);
    }
    if let Some(e) = &p.email {
        by_email.insert(e.key(), i);
    }
}

#[cfg(test)]
mod tests {
    use super::Lf;
    use std::io::Read;

    /// Reads `data` through `Lf` in chunks of `n` bytes.
    fn through(data: &[u8], n: usize) -> Vec<u8> {
        let mut lf = Lf {
            inner: data,
            held_cr: false,
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; n];
        loop {
            let got = lf.read(&mut buf).unwrap();
            if got == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..got]);
        }
    }

    #[test]
    fn crlf_becomes_lf_across_chunk_edges_and_lone_crs_stay() {
        let data = b"a,b\r\n1,\"x\r\ny\"\r\n\r\r\nlast\r";
        for n in 2..9 {
            assert_eq!(
                through(data, n),
                b"a,b\n1,\"x\ny\"\n\r\nlast\r",
                "chunks of {n}"
            );
        }
    }
}
