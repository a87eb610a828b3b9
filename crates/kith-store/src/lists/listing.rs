//! The contact listing: one page in a chosen order plus the exact count, answered by the
//! in-memory contact index when the store keeps one, else by SQL.

use super::cursor::*;
use crate::conn::{args, Conn};
use crate::index::{self, OrgIndex, Position, SortValue};
use crate::model::{ContactRow, CONTACT_COLUMNS};
use crate::query::{where_clause, Sql, TagPlan};
use crate::{read, Contact, OrgStore, Page, StoreError};
use kith_core::filter::{ListFilter, Sort};
use kith_core::limits::PAGE_LIMIT_MAX;
use kith_core::ValidationError;
use serde_json::Value;

/// One page (`limit + 1` rows, to know whether more follow) and the exact count (0 when
/// `with_count` is false: an export pages without it).
async fn page_and_count<C: Conn>(
    c: &mut C,
    org_id: &str,
    filter: &ListFilter,
    sort: &Sort,
    after: Option<&Cursor>,
    (limit, with_count): (i64, bool),
) -> Result<(Vec<ContactRow>, i64), StoreError> {
    let d = c.dialect();
    let col = sort_column(sort.field);
    let (cmp, dir) = if sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };

    // Contacts with the sort value first, in order; then those without, by id. Each part is
    // one range of the (org_id, value, id) index, so a cursor seeks instead of skipping.
    let mut rows: Vec<ContactRow> = Vec::new();
    let in_valued_part = after.is_none_or(|a| a.v.is_some());
    if in_valued_part {
        let mut q = Sql::default();
        let mut w = where_clause(d, org_id, filter, TagPlan::Probe, &mut q);
        w.push_str(&format!(" AND {col} IS NOT NULL"));
        if let Some(a) = after {
            let v = q.arg(value_arg(a.v.as_ref().expect("valued part")));
            let id = q.arg(a.id.clone());
            w.push_str(&format!(" AND ({col}, c.id) {cmp} ({v}, {id})"));
        }
        let lim = q.arg(limit + 1);
        let sql = format!(
            "SELECT {cols} FROM contacts c WHERE {w} ORDER BY {col} {dir}, c.id {dir} LIMIT {lim}",
            cols = prefixed_columns()
        );
        rows = c.fetch_all(&sql, q.args).await?;
    }
    if (rows.len() as i64) <= limit {
        let mut q = Sql::default();
        let mut w = where_clause(d, org_id, filter, TagPlan::Probe, &mut q);
        w.push_str(&format!(" AND {col} IS NULL"));
        if let Some(a) = after.filter(|a| a.v.is_none()) {
            let id = q.arg(a.id.clone());
            w.push_str(&format!(" AND c.id {cmp} {id}"));
        }
        let lim = q.arg(limit + 1 - rows.len() as i64);
        let sql = format!(
            "SELECT {cols} FROM contacts c WHERE {w} ORDER BY c.id {dir} LIMIT {lim}",
            cols = prefixed_columns()
        );
        let more: Vec<ContactRow> = c.fetch_all(&sql, q.args).await?;
        rows.extend(more);
    }
    let total = if with_count {
        count(c, org_id, filter).await?
    } else {
        0
    };
    Ok((rows, total))
}

/// One query for every contact matching `filter` in `sort` order: the order of
/// `page_and_count`'s pages (those with the sort value, then those without by id) in one
/// statement, for an export that streams it (`Store::export_csv` without an index).
pub(crate) fn export_query(
    d: crate::conn::Dialect,
    org_id: &str,
    filter: &ListFilter,
    sort: &Sort,
) -> (String, Vec<crate::conn::Arg>) {
    let col = sort_column(sort.field);
    let dir = if sort.descending { "DESC" } else { "ASC" };
    let mut q = Sql::default();
    let w = where_clause(d, org_id, filter, TagPlan::Probe, &mut q);
    let sql = format!(
        "SELECT {cols} FROM contacts c WHERE {w} ORDER BY ({col} IS NULL), {col} {dir}, c.id {dir}",
        cols = prefixed_columns()
    );
    (sql, q.args)
}

/// The exact number of contacts matching `filter`. Shapes that a small table or one index
/// range answers are counted there; the rest by the general query.
pub(super) async fn count<C: Conn>(
    c: &mut C,
    org_id: &str,
    filter: &ListFilter,
) -> Result<i64, StoreError> {
    let only = |f: ListFilter| *filter == f;
    let tags_only = ListFilter {
        tags_all: filter.tags_all.clone(),
        tags_any: filter.tags_any.clone(),
        tags_none: filter.tags_none.clone(),
        ..ListFilter::default()
    };
    // Every contact, or every contact of one status: the trigger-kept counts.
    if filter.status.len() <= 1
        && only(ListFilter {
            status: filter.status.clone(),
            ..ListFilter::default()
        })
    {
        return status_count(c, org_id, filter.status.first().map(|s| s.as_str())).await;
    }
    if only(tags_only) {
        match (
            &filter.tags_all[..],
            &filter.tags_any[..],
            &filter.tags_none[..],
        ) {
            // One tag: one range of the tag index.
            ([tag], [], []) => return tagged_count(c, org_id, std::slice::from_ref(tag)).await,
            // Any of a few tags: distinct contacts in a few ranges.
            ([], [any], []) => return tagged_count(c, org_id, any).await,
            // None of some tags: everyone minus those carrying any of them.
            ([], [], none) => {
                let all = status_count(c, org_id, None).await?;
                return Ok(all - tagged_count(c, org_id, none).await?);
            }
            _ => {}
        }
    }
    let mut q = Sql::default();
    let w = where_clause(c.dialect(), org_id, filter, TagPlan::Set, &mut q);
    let sql = format!("SELECT count(*) FROM contacts c WHERE {w}");
    let (n,): (i64,) = c.fetch_one(&sql, q.args).await?;
    Ok(n)
}

async fn status_count<C: Conn>(
    c: &mut C,
    org_id: &str,
    status: Option<&str>,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = c
        .fetch_one(
            "SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM contact_counts \
             WHERE org_id = $1 AND ($2 IS NULL OR status = $2)",
            args![org_id, status],
        )
        .await?;
    Ok(n)
}

/// Contacts carrying at least one of `tags` (lower-cased).
async fn tagged_count<C: Conn>(
    c: &mut C,
    org_id: &str,
    tags: &[String],
) -> Result<i64, StoreError> {
    let mut q = Sql::default();
    let org = q.arg(org_id);
    let list: Vec<String> = tags.iter().map(|t| q.arg(t.clone())).collect();
    let what = if tags.len() == 1 {
        "count(*)"
    } else {
        "count(DISTINCT contact_id)"
    };
    let sql = format!(
        "SELECT {what} FROM contact_tags WHERE org_id = {org} AND tag IN ({})",
        list.join(", ")
    );
    let (n,): (i64,) = c.fetch_one(&sql, q.args).await?;
    Ok(n)
}

/// The rows of `ids` (any order; absent ids are skipped).
async fn contacts_by_id<C: Conn>(
    c: &mut C,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<ContactRow>, StoreError> {
    let mut q = Sql::default();
    let org = q.arg(org_id);
    let marks: Vec<String> = ids.iter().map(|id| q.arg(id.clone())).collect();
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = {org} AND id IN ({})",
        marks.join(", ")
    );
    Ok(c.fetch_all(&sql, q.args).await?)
}

fn prefixed_columns() -> String {
    CONTACT_COLUMNS
        .split(", ")
        .map(|col| format!("c.{col}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl OrgStore<'_> {
    /// Contacts matching `filter`, one page in `sort` order after `cursor`, with the exact total.
    pub async fn list_contacts(
        self,
        filter: &ListFilter,
        sort: &Sort,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Contact>, StoreError> {
        if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
            return Err(ValidationError::new(
                "limit",
                format!("must be between 1 and {PAGE_LIMIT_MAX}"),
            )
            .into());
        }
        let after = cursor.map(|c| decode_cursor(c, sort)).transpose()?;
        if self.store.lists_from_index() {
            return self
                .list_contacts_indexed(filter, sort, after, limit as usize)
                .await;
        }
        self.list_contacts_sql(filter, sort, after, limit, true)
            .await
    }

    /// One page of `limit` (any size) for an export: the same order and cursor as
    /// `list_contacts`, without the count (`total` is `None`).
    pub(crate) async fn export_page(
        self,
        filter: &ListFilter,
        sort: &Sort,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Contact>, StoreError> {
        let after = cursor.map(|c| decode_cursor(c, sort)).transpose()?;
        let mut page = if self.store.lists_from_index() {
            self.list_contacts_indexed(filter, sort, after, limit as usize)
                .await?
        } else {
            self.list_contacts_sql(filter, sort, after, limit, false)
                .await?
        };
        page.total = None;
        Ok(page)
    }

    /// `list_contacts` from the in-memory index: the page's ids and the count from bitmaps,
    /// then the page's rows by primary key.
    async fn list_contacts_indexed(
        self,
        filter: &ListFilter,
        sort: &Sort,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<Contact>, StoreError> {
        let org_id = self.org_id();
        let after = after.map(|c| Position {
            value: c.v.map(|v| match v {
                Value::String(s) => SortValue::Text(s),
                // `decode_cursor` admits only strings and integers.
                other => SortValue::Int(other.as_i64().unwrap_or_default()),
            }),
            id: c.id,
        });
        let (ids, next, total) = self
            .with_index({
                let (filter, sort) = (filter.clone(), *sort);
                move |o| {
                    let set = o.matching(&filter);
                    let mut slots = o.page(&set, &sort, after.as_ref(), limit + 1);
                    let more = slots.len() > limit;
                    slots.truncate(limit);
                    let next = slots
                        .last()
                        .filter(|_| more)
                        .map(|s| o.position(sort.field, *s));
                    let ids: Vec<String> = slots.iter().map(|s| o.id(*s).to_string()).collect();
                    (ids, next, set.len() as i64)
                }
            })
            .await?;
        let rows = if ids.is_empty() {
            Vec::new()
        } else {
            read!(self.store, |c| contacts_by_id(c, org_id, &ids).await)?
        };
        // In the index's order; a contact merged away since is left out.
        let mut by_id: std::collections::HashMap<String, ContactRow> =
            rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        let ordered: Vec<ContactRow> = ids.iter().filter_map(|id| by_id.remove(id)).collect();
        Ok(Page {
            items: ordered
                .iter()
                .map(ContactRow::view)
                .collect::<Result<_, _>>()?,
            total: Some(total),
            next_cursor: next.map(|p| {
                let v = p.value.map(|v| match v {
                    SortValue::Int(i) => Value::from(i),
                    SortValue::Text(t) => Value::from(t),
                });
                cursor_after(sort, v, p.id)
            }),
        })
    }

    /// Runs `f` on the organization's index on a blocking thread: a count over a million
    /// contacts takes milliseconds of CPU that should not stall the async workers.
    pub(crate) async fn with_index<T: Send + 'static>(
        self,
        f: impl FnOnce(&OrgIndex) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let org_id = self.org_id();
        let index = self
            .store
            .inner
            .index
            .as_ref()
            .expect("called only on an indexed store");
        index.wait_ready().await?;
        if let Some(pool) = self.store.pg_pool() {
            index.catch_up(pool).await?;
        }
        let org = index.org(org_id);
        Ok(tokio::task::spawn_blocking(move || f(&index::read(&org)))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
    }

    /// `list_contacts` answered by SQL alone: what answers while the index builds, and the
    /// reference the index is tested against.
    #[doc(hidden)]
    pub async fn list_contacts_by_sql(
        self,
        filter: &ListFilter,
        sort: &Sort,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Contact>, StoreError> {
        let after = cursor.map(|c| decode_cursor(c, sort)).transpose()?;
        self.list_contacts_sql(filter, sort, after, limit, true)
            .await
    }

    async fn list_contacts_sql(
        self,
        filter: &ListFilter,
        sort: &Sort,
        after: Option<Cursor>,
        limit: i64,
        with_count: bool,
    ) -> Result<Page<Contact>, StoreError> {
        let org_id = self.org_id();
        let (rows, total) = read!(self.store, |c| page_and_count(
            c,
            org_id,
            filter,
            sort,
            after.as_ref(),
            (limit, with_count)
        )
        .await)?;
        let more = rows.len() as i64 > limit;
        let page: Vec<&ContactRow> = rows.iter().take(limit as usize).collect();
        let next_cursor = if more {
            page.last()
                .map(|r| cursor_after(sort, sort_value(sort.field, r), r.id.clone()))
        } else {
            None
        };
        Ok(Page {
            items: page
                .into_iter()
                .map(ContactRow::view)
                .collect::<Result<_, _>>()?,
            total: Some(total),
            next_cursor,
        })
    }

    /// The exact number of contacts matching `filter`.
    pub async fn count_contacts(self, filter: &ListFilter) -> Result<i64, StoreError> {
        let org_id = self.org_id();
        if self.store.lists_from_index() {
            let filter = filter.clone();
            return self
                .with_index(move |o| o.matching(&filter).len() as i64)
                .await;
        }
        read!(self.store, |c| count(c, org_id, filter).await)
    }

    /// How many contacts contain `term`, found by scanning every row without an index: the
    /// baseline the benchmark compares indexed search with.
    pub async fn count_search_by_scan(self, term: &str) -> Result<i64, StoreError> {
        let org_id = self.org_id();
        read!(self.store, |c| async {
            let mut q = Sql::default();
            let org = q.arg(org_id);
            let cond = crate::dialect::scan_search_condition(c.dialect(), term, &mut q);
            let sql = format!("SELECT count(*) FROM contacts c WHERE c.org_id = {org} AND {cond}");
            let (n,): (i64,) = c.fetch_one(&sql, q.args).await?;
            Ok::<_, StoreError>(n)
        }
        .await)
    }
}
