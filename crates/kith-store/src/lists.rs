//! Saved segments and the contact listing: built-in lists (`all`, `leads`, `customers`),
//! custom lists with a filter, and `list_contacts` — one page in a chosen order plus the exact
//! count, paged with keyset cursors.

use crate::conn::{args, Arg, Conn};
use crate::ids::{new_id, now_ms};
use crate::index::{self, OrgIndex, Position, SortValue};
use crate::model::{ContactRow, CONTACT_COLUMNS};
use crate::query::{where_clause, Sql, TagPlan};
use crate::{read, transact, Contact, Page, Store, StoreError};
use kith_core::filter::{ListFilter, Sort, SortField};
use kith_core::{Status, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

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

const BUILTINS: [(&str, &str); 3] = [
    ("all", "All contacts"),
    ("leads", "Leads"),
    ("customers", "Customers"),
];

fn builtin_filter(id: &str) -> Option<ListFilter> {
    let mut f = ListFilter::default();
    match id {
        "all" => {}
        "leads" => f.status.push(Status::Lead),
        "customers" => f.status.push(Status::Customer),
        _ => return None,
    }
    Some(f)
}

fn check_name(name: &str) -> Result<String, ValidationError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 255 {
        return Err(ValidationError::new("name", "must be 1 to 255 characters"));
    }
    Ok(n.to_string())
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: String,
    name: String,
    filter: String,
}

impl ListRow {
    fn filter(&self) -> Result<ListFilter, ValidationError> {
        let v: Value = serde_json::from_str(&self.filter).map_err(|_| {
            ValidationError::new(
                "list",
                "this list's stored filter is not valid JSON; replace it",
            )
        })?;
        ListFilter::parse(&v).map_err(|e| {
            ValidationError::new(
                "list",
                format!("this list's stored filter is no longer valid ({e}); replace it"),
            )
        })
    }
}

/// The JSON a filter is stored as, refused unless it reads back as the same filter: a saved
/// list must never hold what its own parser rejects.
fn stored_filter(filter: &ListFilter) -> Result<String, ValidationError> {
    let json = filter.to_json();
    match ListFilter::parse(&json) {
        Ok(back) if back.to_json() == json => Ok(json.to_string()),
        Ok(_) | Err(_) => Err(ValidationError::new(
            "filter",
            "cannot be stored as given (it would not read back the same); simplify it",
        )),
    }
}

/// Where a page starts: after the row with this sort value and id, in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    s: String,
    v: Option<Value>,
    id: String,
}

fn encode_cursor(c: &Cursor) -> String {
    hex::encode(serde_json::to_vec(c).unwrap_or_default())
}

/// The cursor of the page that follows the contact with sort value `v` and id `id`.
fn cursor_after(sort: &Sort, v: Option<Value>, id: String) -> String {
    encode_cursor(&Cursor {
        s: sort.as_str(),
        v,
        id,
    })
}

fn decode_cursor(raw: &str, sort: &Sort) -> Result<Cursor, StoreError> {
    let bytes = hex::decode(raw).map_err(|_| StoreError::BadCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    // A cursor belongs to the order it was made for.
    if c.s != sort.as_str() || c.id.is_empty() {
        return Err(StoreError::BadCursor);
    }
    let value_ok = match (&sort.field, &c.v) {
        (_, None) => true,
        (SortField::Name, Some(v)) => v.is_string(),
        (_, Some(v)) => v.is_i64(),
    };
    if !value_ok {
        return Err(StoreError::BadCursor);
    }
    Ok(c)
}

fn sort_column(f: SortField) -> &'static str {
    match f {
        SortField::LastSeenAt => "c.last_seen_at",
        SortField::CreatedAt => "c.created_at",
        SortField::Name => "c.name_lower",
    }
}

fn sort_value(f: SortField, row: &ContactRow) -> Option<Value> {
    match f {
        SortField::LastSeenAt => row.last_seen_at.map(Value::from),
        SortField::CreatedAt => Some(Value::from(row.created_at)),
        SortField::Name => row.name.as_ref().map(|n| Value::from(n.to_lowercase())),
    }
}

fn value_arg(v: &Value) -> Arg {
    match v {
        Value::String(s) => Arg::Text(Some(s.clone())),
        other => Arg::Int(other.as_i64()),
    }
}

/// One page (`limit + 1` rows, to know whether more follow) and the exact count.
async fn page_and_count<C: Conn>(
    c: &mut C,
    org_id: &str,
    filter: &ListFilter,
    sort: &Sort,
    after: Option<&Cursor>,
    limit: i64,
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
    let total = count(c, org_id, filter).await?;
    Ok((rows, total))
}

/// The exact number of contacts matching `filter`. Shapes that a small table or one index
/// range answers are counted there; the rest by the general query.
async fn count<C: Conn>(c: &mut C, org_id: &str, filter: &ListFilter) -> Result<i64, StoreError> {
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

impl Store {
    /// The filter of a list (`all`, `leads`, `customers` or a custom list's id).
    pub async fn list_filter(&self, org_id: &str, list_id: &str) -> Result<ListFilter, StoreError> {
        if let Some(f) = builtin_filter(list_id) {
            return Ok(f);
        }
        let row: Option<ListRow> = read!(self, |c| c
            .fetch_optional(
                "SELECT id, name, filter FROM contact_lists WHERE org_id = $1 AND id = $2",
                args![org_id, list_id],
            )
            .await)?;
        Ok(row.ok_or(StoreError::NotFound)?.filter()?)
    }

    /// Contacts matching `filter`, one page in `sort` order after `cursor`, with the exact total.
    pub async fn list_contacts(
        &self,
        org_id: &str,
        filter: &ListFilter,
        sort: &Sort,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Contact>, StoreError> {
        if !(1..=200).contains(&limit) {
            return Err(ValidationError::new("limit", "must be between 1 and 200").into());
        }
        let after = cursor.map(|c| decode_cursor(c, sort)).transpose()?;
        if self.inner.index.is_some() {
            return self
                .list_contacts_indexed(org_id, filter, sort, after, limit as usize)
                .await;
        }
        self.list_contacts_sql(org_id, filter, sort, after, limit)
            .await
    }

    /// `list_contacts` from the in-memory index: the page's ids and the count from bitmaps,
    /// then the page's rows by primary key.
    async fn list_contacts_indexed(
        &self,
        org_id: &str,
        filter: &ListFilter,
        sort: &Sort,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<Contact>, StoreError> {
        let after = after.map(|c| Position {
            value: c.v.map(|v| match v {
                Value::String(s) => SortValue::Text(s),
                // `decode_cursor` admits only strings and integers.
                other => SortValue::Int(other.as_i64().unwrap_or_default()),
            }),
            id: c.id,
        });
        let (ids, next, total) = self
            .with_index(org_id, {
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
            read!(self, |c| contacts_by_id(c, org_id, &ids).await)?
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
    async fn with_index<T: Send + 'static>(
        &self,
        org_id: &str,
        f: impl FnOnce(&OrgIndex) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let index = self
            .inner
            .index
            .as_ref()
            .expect("called only on an indexed store");
        index.wait_ready().await?;
        let org = index.org(org_id);
        Ok(tokio::task::spawn_blocking(move || f(&index::read(&org)))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
    }

    /// `list_contacts` answered by SQL alone: PostgreSQL always; on SQLite the reference the
    /// index is tested against.
    #[doc(hidden)]
    pub async fn list_contacts_by_sql(
        &self,
        org_id: &str,
        filter: &ListFilter,
        sort: &Sort,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Contact>, StoreError> {
        let after = cursor.map(|c| decode_cursor(c, sort)).transpose()?;
        self.list_contacts_sql(org_id, filter, sort, after, limit)
            .await
    }

    async fn list_contacts_sql(
        &self,
        org_id: &str,
        filter: &ListFilter,
        sort: &Sort,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<Page<Contact>, StoreError> {
        let (rows, total) = read!(self, |c| page_and_count(
            c,
            org_id,
            filter,
            sort,
            after.as_ref(),
            limit
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
    pub async fn count_contacts(
        &self,
        org_id: &str,
        filter: &ListFilter,
    ) -> Result<i64, StoreError> {
        if self.inner.index.is_some() {
            let filter = filter.clone();
            return self
                .with_index(org_id, move |o| o.matching(&filter).len() as i64)
                .await;
        }
        read!(self, |c| count(c, org_id, filter).await)
    }

    /// How many contacts contain `term`, found by scanning every row without an index: the
    /// baseline the benchmark compares indexed search with.
    pub async fn count_search_by_scan(&self, org_id: &str, term: &str) -> Result<i64, StoreError> {
        read!(self, |c| async {
            let mut q = Sql::default();
            let org = q.arg(org_id);
            let cond = crate::dialect::scan_search_condition(c.dialect(), term, &mut q);
            let sql = format!("SELECT count(*) FROM contacts c WHERE c.org_id = {org} AND {cond}");
            let (n,): (i64,) = c.fetch_one(&sql, q.args).await?;
            Ok::<_, StoreError>(n)
        }
        .await)
    }

    /// Built-in lists first, then custom ones by creation, each with its exact count.
    pub async fn lists(&self, org_id: &str) -> Result<Vec<ContactList>, StoreError> {
        let rows: Vec<ListRow> = read!(self, |c| c
            .fetch_all(
                "SELECT id, name, filter FROM contact_lists WHERE org_id = $1 ORDER BY id",
                args![org_id],
            )
            .await)?;
        let mut lists: Vec<ListRow> = BUILTINS
            .iter()
            .map(|(id, name)| ListRow {
                id: id.to_string(),
                name: name.to_string(),
                filter: String::new(),
            })
            .collect();
        lists.extend(rows);
        self.with_counts(org_id, lists).await
    }

    /// One list with its exact count (only its own).
    pub async fn list(&self, org_id: &str, id: &str) -> Result<ContactList, StoreError> {
        let row = match BUILTINS.iter().find(|(b, _)| *b == id) {
            Some((id, name)) => ListRow {
                id: id.to_string(),
                name: name.to_string(),
                filter: String::new(),
            },
            None => read!(self, |c| c
                .fetch_optional::<ListRow>(
                    "SELECT id, name, filter FROM contact_lists WHERE org_id = $1 AND id = $2",
                    args![org_id, id],
                )
                .await)?
            .ok_or(StoreError::NotFound)?,
        };
        let mut out = self.with_counts(org_id, vec![row]).await?;
        Ok(out.remove(0))
    }

    /// Counts each list's members. A custom list whose stored filter no longer parses is
    /// answered with its `error` and a zero count instead of failing every list of the
    /// organization.
    async fn with_counts(
        &self,
        org_id: &str,
        rows: Vec<ListRow>,
    ) -> Result<Vec<ContactList>, StoreError> {
        let parsed: Vec<(ListRow, bool, Result<ListFilter, ValidationError>)> = rows
            .into_iter()
            .map(|r| match builtin_filter(&r.id) {
                Some(f) => (r, true, Ok(f)),
                None => {
                    let f = r.filter();
                    if let Err(e) = &f {
                        tracing::warn!(list_id = %r.id, error = %e, "saved list has an unreadable filter");
                    }
                    (r, false, f)
                }
            })
            .collect();
        let filters: Vec<ListFilter> = parsed
            .iter()
            .filter_map(|(_, _, f)| f.as_ref().ok().cloned())
            .collect();
        let counts: Vec<i64> = if self.inner.index.is_some() {
            self.with_index(org_id, move |o| {
                filters.iter().map(|f| o.matching(f).len() as i64).collect()
            })
            .await?
        } else {
            read!(self, |c| async {
                let mut out = Vec::with_capacity(filters.len());
                for f in &filters {
                    out.push(count(c, org_id, f).await?);
                }
                Ok::<_, StoreError>(out)
            }
            .await)?
        };
        let mut counts = counts.into_iter();
        Ok(parsed
            .into_iter()
            .map(|(r, builtin, f)| match f {
                Ok(f) => ContactList {
                    id: r.id,
                    name: r.name,
                    builtin,
                    filter: f.to_json(),
                    count: counts.next().unwrap_or(0),
                    error: None,
                },
                Err(e) => ContactList {
                    filter: serde_json::from_str(&r.filter).unwrap_or(Value::Null),
                    id: r.id,
                    name: r.name,
                    builtin,
                    count: 0,
                    error: Some(e.message),
                },
            })
            .collect())
    }

    pub async fn create_list(
        &self,
        org_id: &str,
        name: &str,
        filter: &ListFilter,
    ) -> Result<ContactList, StoreError> {
        let name = check_name(name)?;
        let id = new_id();
        let now = now_ms();
        let stored = stored_filter(filter)?;
        transact!(self, |c| c
            .execute(
                "INSERT INTO contact_lists (org_id, id, name, filter, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
                args![org_id, &id, &name, &stored, now],
            )
            .await)?;
        self.list(org_id, &id).await
    }

    /// Renames and/or re-filters a custom list. Built-ins answer `Builtin`.
    pub async fn update_list(
        &self,
        org_id: &str,
        id: &str,
        name: Option<&str>,
        filter: Option<&ListFilter>,
    ) -> Result<ContactList, StoreError> {
        if builtin_filter(id).is_some() {
            return Err(StoreError::Builtin);
        }
        let name = name.map(check_name).transpose()?;
        let stored = filter.map(stored_filter).transpose()?;
        let n = transact!(self, |c| {
            c
            .execute(
                "UPDATE contact_lists SET name = coalesce($3, name), filter = coalesce($4, filter), \
                 updated_at = $5 WHERE org_id = $1 AND id = $2",
                args![org_id, id, name.clone(), stored.clone(), now_ms()],
            )
            .await
        })?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.list(org_id, id).await
    }

    pub async fn delete_list(&self, org_id: &str, id: &str) -> Result<(), StoreError> {
        if builtin_filter(id).is_some() {
            return Err(StoreError::Builtin);
        }
        let n = transact!(self, |c| c
            .execute(
                "DELETE FROM contact_lists WHERE org_id = $1 AND id = $2",
                args![org_id, id],
            )
            .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_belong_to_their_sort() {
        let sort = Sort::parse("-last_seen_at").unwrap();
        let c = Cursor {
            s: sort.as_str(),
            v: Some(Value::from(42)),
            id: "01x".into(),
        };
        let raw = encode_cursor(&c);
        assert_eq!(decode_cursor(&raw, &sort).unwrap(), c);
        assert!(matches!(
            decode_cursor(&raw, &Sort::parse("name").unwrap()),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor("zz", &sort),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor(&hex::encode("{}"), &sort),
            Err(StoreError::BadCursor)
        ));
        let wrong = Cursor {
            v: Some(Value::from("text")),
            ..c
        };
        assert!(matches!(
            decode_cursor(&encode_cursor(&wrong), &sort),
            Err(StoreError::BadCursor)
        ));
    }
}
