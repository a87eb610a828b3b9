//! Bulk actions over every contact of a list or filter: add tags, remove tags, delete.
//!
//! A job is created with the exact set of contacts that match when it starts (the count the
//! admin confirmed: creating it fails with `CountChanged` when the set no longer has that
//! size). The set is stored as one row per contact, so the job survives a restart and never
//! touches a contact that started matching later. A runner works through it in steps of
//! [`STEP`] contacts, each step one transaction that applies the action, writes one timeline
//! entry per changed contact, removes the step's rows and advances the job's progress: a step
//! happens wholly or not at all, so a job stopped anywhere (crash, restart) resumes without
//! doing anything twice. The actions are idempotent per contact too (a tag already there is
//! not added again), and a retried request with the same idempotency key answers the job it
//! started instead of starting another.
//!
//! Runners hold a job by a lease (`lease_until`), so on PostgreSQL several serving processes
//! never run the same job at once, and a crashed runner's job is taken over when its lease
//! runs out.

use crate::conn::{args, Arg, Conn};
use crate::contact_rows::{contact_by, record_changes, write_profile};
use crate::ids::{new_id, now_ms};
use crate::model::parse_actor;
use crate::query::{where_clause, Sql, TagPlan};
use crate::removal::delete_contact_rows;
use crate::{read, transact, OrgStore, Store, StoreError};
use kith_core::filter::ListFilter;
use kith_core::timeline::Actor;
use kith_core::OrgId;
use serde_json::Value;

/// Contacts one step handles in one transaction: large enough to amortize the commit, small
/// enough that the writer is never held long (SQLite has one).
pub const STEP: usize = 200;

/// How long a runner holds a job without renewing it.
const LEASE_MS: i64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
    Delete,
}

impl BulkAction {
    pub fn name(&self) -> &'static str {
        match self {
            BulkAction::AddTags(_) => "add_tags",
            BulkAction::RemoveTags(_) => "remove_tags",
            BulkAction::Delete => "delete",
        }
    }

    pub fn tags(&self) -> &[String] {
        match self {
            BulkAction::AddTags(t) | BulkAction::RemoveTags(t) => t,
            BulkAction::Delete => &[],
        }
    }

    fn from_stored(name: &str, tags: Vec<String>) -> Option<Self> {
        match name {
            "add_tags" => Some(BulkAction::AddTags(tags)),
            "remove_tags" => Some(BulkAction::RemoveTags(tags)),
            "delete" => Some(BulkAction::Delete),
            _ => None,
        }
    }
}

/// A bulk job as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkJob {
    pub id: String,
    pub action: BulkAction,
    /// What was selected, as given: `{"list": id?, "filter": {...}}`.
    pub selection: Value,
    /// Contacts selected when the job started.
    pub total: i64,
    /// Contacts handled so far.
    pub done: i64,
    /// Contacts the action changed (the others already were as asked, were gone, or failed).
    pub changed: i64,
    /// Contacts the action could not apply to (e.g. a contact already at 100 tags).
    pub failed: i64,
    /// `running` or `done`.
    pub status: String,
    pub actor: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    action: String,
    tags: String,
    selection: String,
    total: i64,
    done: i64,
    changed: i64,
    failed: i64,
    status: String,
    actor: String,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}
crate::lite::lite_row!(JobRow {
    id,
    action,
    tags,
    selection,
    total,
    done,
    changed,
    failed,
    status,
    actor,
    created_at,
    updated_at,
    finished_at
});

const JOB_COLUMNS: &str = "id, action, tags, selection, total, done, changed, failed, status, \
                           actor, created_at, updated_at, finished_at";

impl JobRow {
    fn view(self) -> Result<BulkJob, StoreError> {
        let tags: Vec<String> = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of bulk job {}: {e}", self.id)))?;
        let action = BulkAction::from_stored(&self.action, tags).ok_or_else(|| {
            StoreError::Corrupt(format!("action {:?} of bulk job {}", self.action, self.id))
        })?;
        Ok(BulkJob {
            action,
            selection: serde_json::from_str(&self.selection).unwrap_or(Value::Null),
            id: self.id,
            total: self.total,
            done: self.done,
            changed: self.changed,
            failed: self.failed,
            status: self.status,
            actor: self.actor,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        })
    }
}

/// What starting a job needs.
#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub filter: ListFilter,
    /// Stored with the job to show what was selected.
    pub selection: Value,
    pub action: BulkAction,
    /// The count the admin confirmed; the job starts only if the selection still has it.
    pub expected_count: i64,
    pub idempotency_key: Option<String>,
    pub actor: Actor,
}

/// Whether a step left work behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    More,
    Finished,
    /// Another runner holds the job.
    Held,
}

async fn job_row<C: Conn>(c: &mut C, org_id: &str, id: &str) -> Result<BulkJob, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM bulk_jobs WHERE org_id = $1 AND id = $2");
    c.fetch_optional::<JobRow>(&sql, args![org_id, id])
        .await?
        .ok_or(StoreError::NotFound)?
        .view()
}

/// Applies a tag action to one contact; answers whether it changed.
async fn retag<C: Conn>(
    c: &mut C,
    org_id: &str,
    id: &str,
    action: &BulkAction,
    actor: &Actor,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(row) = contact_by(c, org_id, "id", id).await? else {
        // Deleted or merged away since the job started: nothing to do.
        return Ok(false);
    };
    let mut profile = row.profile()?;
    let before = profile.status();
    let patch = match action {
        BulkAction::AddTags(add) => profile.retag(add, &[])?,
        BulkAction::RemoveTags(remove) => profile.retag(&[], remove)?,
        BulkAction::Delete => return Ok(false),
    };
    let changes = profile.apply_patch(&patch);
    if changes.is_empty() {
        return Ok(false);
    }
    write_profile(c, org_id, id, &profile, now).await?;
    record_changes(
        c,
        org_id,
        id,
        (before, profile.status()),
        &changes,
        actor,
        now,
    )
    .await?;
    Ok(true)
}

impl OrgStore<'_> {
    /// The ids of every contact matching `filter`, now.
    async fn matching_ids(self, filter: &ListFilter) -> Result<Vec<String>, StoreError> {
        if self.store.lists_from_index() {
            let filter = filter.clone();
            return self
                .with_index(move |o| {
                    o.matching(&filter)
                        .iter()
                        .map(|s| o.id(s).to_string())
                        .collect()
                })
                .await;
        }
        let org_id = self.org_id();
        read!(self.store, |c| async {
            let mut q = Sql::default();
            let cond = where_clause(c.dialect(), org_id, filter, TagPlan::Set, &mut q);
            let rows: Vec<(String,)> = c
                .fetch_all(&format!("SELECT c.id FROM contacts c WHERE {cond}"), q.args)
                .await?;
            Ok::<_, StoreError>(rows.into_iter().map(|(id,)| id).collect())
        }
        .await)
    }

    /// Starts a bulk job over every contact matching the request's filter, or answers the
    /// job an earlier request with the same idempotency key started; the flag says which
    /// (only a job started now needs a runner).
    pub async fn start_bulk(self, req: &BulkRequest) -> Result<(BulkJob, bool), StoreError> {
        let org_id = self.org_id();
        if let Some(key) = &req.idempotency_key {
            if let Some(job) = self.bulk_job_by_key(key).await? {
                return Ok((job, false));
            }
        }
        let ids = self.matching_ids(&req.filter).await?;
        if ids.len() as i64 != req.expected_count {
            return Err(StoreError::CountChanged {
                expected: req.expected_count,
                current: ids.len() as i64,
            });
        }
        let id = new_id();
        let tags = serde_json::to_string(req.action.tags()).unwrap_or_else(|_| "[]".into());
        let selection = req.selection.to_string();
        let actor = req.actor.to_string();
        let (id_ref, ids_ref) = (id.as_str(), &ids);
        let inserted = transact!(self.store, |c| async {
            let now = now_ms();
            if let Some(key) = &req.idempotency_key {
                // A concurrent retry may have started it meanwhile.
                let existing: Option<(String,)> = c
                    .fetch_optional(
                        "SELECT id FROM bulk_jobs WHERE org_id = $1 AND idempotency_key = $2",
                        args![org_id, key],
                    )
                    .await?;
                if existing.is_some() {
                    return Ok::<_, StoreError>(false);
                }
            }
            let done_at = ids_ref.is_empty().then_some(now);
            c.execute(
                "INSERT INTO bulk_jobs (org_id, id, idempotency_key, action, tags, selection, \
                 actor, total, done, changed, failed, status, lease_until, created_at, \
                 updated_at, finished_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, 0, $9, NULL, $10, $10, $11)",
                args![
                    org_id,
                    id_ref,
                    req.idempotency_key.clone(),
                    req.action.name(),
                    &tags,
                    &selection,
                    &actor,
                    ids_ref.len() as i64,
                    if ids_ref.is_empty() {
                        "done"
                    } else {
                        "running"
                    },
                    now,
                    done_at
                ],
            )
            .await?;
            for chunk in ids_ref.chunks(300) {
                let mut values = Vec::with_capacity(chunk.len());
                let mut a: Vec<Arg> = args![org_id, id_ref];
                for contact in chunk {
                    a.push(contact.clone().into());
                    values.push(format!("($1, $2, ${})", a.len()));
                }
                c.execute(
                    &format!(
                        "INSERT INTO bulk_job_items (org_id, job_id, contact_id) VALUES {}",
                        values.join(", ")
                    ),
                    a,
                )
                .await?;
            }
            Ok(true)
        }
        .await)?;
        if !inserted {
            if let Some(key) = &req.idempotency_key {
                if let Some(job) = self.bulk_job_by_key(key).await? {
                    return Ok((job, false));
                }
            }
            return Err(StoreError::Raced);
        }
        Ok((self.bulk_job(&id).await?, true))
    }

    /// The job started with this idempotency key, if any.
    pub async fn bulk_job_by_key(self, key: &str) -> Result<Option<BulkJob>, StoreError> {
        let org_id = self.org_id();
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM bulk_jobs WHERE org_id = $1 AND idempotency_key = $2"
        );
        let row: Option<JobRow> = read!(self.store, |c| c
            .fetch_optional(&sql, args![org_id, key])
            .await)?;
        row.map(JobRow::view).transpose()
    }

    /// One job, with its progress.
    pub async fn bulk_job(self, id: &str) -> Result<BulkJob, StoreError> {
        let org_id = self.org_id();
        read!(self.store, |c| job_row(c, org_id, id).await)
    }

    /// The organization's newest jobs.
    pub async fn bulk_jobs(self, limit: i64) -> Result<Vec<BulkJob>, StoreError> {
        let org_id = self.org_id();
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM bulk_jobs WHERE org_id = $1 ORDER BY id DESC LIMIT $2"
        );
        let rows: Vec<JobRow> = read!(self.store, |c| c
            .fetch_all(&sql, args![org_id, limit])
            .await)?;
        rows.into_iter().map(JobRow::view).collect()
    }

    /// Runs one step of a job (up to [`STEP`] contacts, one transaction) under `runner`'s
    /// lease, taking the lease when it is free or expired.
    pub async fn run_bulk_step(self, job_id: &str, runner: &str) -> Result<Step, StoreError> {
        let org_id = self.org_id();
        transact!(self.store, |c| async {
            let now = now_ms();
            let claimed = c
                .execute(
                    "UPDATE bulk_jobs SET lease_until = $4, lease_holder = $3 \
                     WHERE org_id = $1 AND id = $2 AND status = 'running' \
                     AND (lease_until IS NULL OR lease_until < $5 OR lease_holder = $3)",
                    args![org_id, job_id, runner, now + LEASE_MS, now],
                )
                .await?;
            let job = job_row(c, org_id, job_id).await?;
            if job.status != "running" {
                return Ok::<_, StoreError>(Step::Finished);
            }
            if claimed == 0 {
                return Ok(Step::Held);
            }
            let actor = parse_actor(&job.actor).unwrap_or(Actor::System);
            let items: Vec<(String,)> = c
                .fetch_all(
                    "SELECT contact_id FROM bulk_job_items WHERE org_id = $1 AND job_id = $2 \
                     ORDER BY contact_id LIMIT $3",
                    args![org_id, job_id, STEP as i64],
                )
                .await?;
            let (mut changed, mut failed) = (0i64, 0i64);
            for (contact,) in &items {
                let outcome = match &job.action {
                    BulkAction::Delete => {
                        delete_contact_rows(c, org_id, contact, false, &actor, now)
                            .await
                            .map(|d| d.is_some())
                    }
                    action => retag(c, org_id, contact, action, &actor, now).await,
                };
                match outcome {
                    Ok(true) => changed += 1,
                    Ok(false) => {}
                    // A contact the action cannot apply to (a limit) is counted, not fatal.
                    Err(StoreError::Invalid(_)) => failed += 1,
                    Err(e) => return Err(e),
                }
            }
            if let Some((last,)) = items.last() {
                c.execute(
                    "DELETE FROM bulk_job_items WHERE org_id = $1 AND job_id = $2 \
                     AND contact_id <= $3",
                    args![org_id, job_id, last],
                )
                .await?;
            }
            let finished = items.len() < STEP;
            c.execute(
                "UPDATE bulk_jobs SET done = done + $3, changed = changed + $4, \
                 failed = failed + $5, updated_at = $6, status = $7, finished_at = $8, \
                 lease_until = CASE WHEN $9 THEN NULL ELSE lease_until END \
                 WHERE org_id = $1 AND id = $2",
                args![
                    org_id,
                    job_id,
                    items.len() as i64,
                    changed,
                    failed,
                    now,
                    if finished { "done" } else { "running" },
                    finished.then_some(now),
                    finished
                ],
            )
            .await?;
            Ok(if finished { Step::Finished } else { Step::More })
        }
        .await)
    }

    /// Runs a job to its end (or until another runner holds it).
    pub async fn run_bulk(self, job_id: &str, runner: &str) -> Result<(), StoreError> {
        loop {
            match self.run_bulk_step(job_id, runner).await? {
                Step::More => tokio::task::yield_now().await,
                Step::Finished | Step::Held => return Ok(()),
            }
        }
    }
}

impl Store {
    /// Jobs still running whose lease is free or expired, over every organization: what a
    /// starting (or idle) server picks up.
    pub async fn orphaned_bulk_jobs(&self) -> Result<Vec<(OrgId, String)>, StoreError> {
        let now = now_ms();
        let rows: Vec<(String, String)> = read!(self, |c| c
            .fetch_all(
                "SELECT org_id, id FROM bulk_jobs WHERE status = 'running' \
                 AND (lease_until IS NULL OR lease_until < $1) ORDER BY id",
                args![now],
            )
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(org, id)| (OrgId::new(org), id))
            .collect())
    }
}
