//! Saved lists: the built-in ones and custom lists with a stored filter, each answered with
//! its exact count.

use super::listing::count;
use crate::conn::{args, Conn};
use crate::ids::{new_id, now_ms};
use crate::{read, transact, OrgStore, StoreError};
use kith_core::filter::ListFilter;
use kith_core::{ListId, Status, ValidationError};
use serde_json::Value;

/// A list with its count.
#[derive(Debug, Clone)]
pub struct ContactList {
    /// `all`, `leads`, `customers`, or the id of a custom list.
    pub id: ListId,
    pub name: String,
    pub builtin: bool,
    pub filter: Value,
    /// Exact number of contacts in the list now (0 when `error` is set).
    pub count: i64,
    /// Set only when the stored filter can no longer be read (e.g. written by an older
    /// version with looser rules): the list answers nothing until its filter is replaced
    /// with `PATCH`, and every other list keeps working.
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
    kith_core::validate::required_name("name", name)
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: String,
    name: String,
    filter: String,
}
crate::lite::lite_row!(ListRow { id, name, filter });

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

impl OrgStore<'_> {
    /// The filter of a list (`all`, `leads`, `customers` or a custom list's id).
    pub async fn list_filter(self, list_id: &ListId) -> Result<ListFilter, StoreError> {
        let (org_id, list_id) = (self.org_id(), list_id.as_str());
        if let Some(f) = builtin_filter(list_id) {
            return Ok(f);
        }
        let row: Option<ListRow> = read!(self.store, |c| c
            .fetch_optional(
                "SELECT id, name, filter FROM contact_lists WHERE org_id = $1 AND id = $2",
                args![org_id, list_id],
            )
            .await)?;
        Ok(row.ok_or(StoreError::NotFound)?.filter()?)
    }

    /// Built-in lists first, then custom ones by creation, each with its exact count.
    pub async fn lists(self) -> Result<Vec<ContactList>, StoreError> {
        let org_id = self.org_id();
        let rows: Vec<ListRow> = read!(self.store, |c| c
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
        self.with_counts(lists).await
    }

    /// One list with its exact count (only its own).
    pub async fn list(self, id: &ListId) -> Result<ContactList, StoreError> {
        let (org_id, id) = (self.org_id(), id.as_str());
        let row = match BUILTINS.iter().find(|(b, _)| *b == id) {
            Some((id, name)) => ListRow {
                id: id.to_string(),
                name: name.to_string(),
                filter: String::new(),
            },
            None => read!(self.store, |c| c
                .fetch_optional::<ListRow>(
                    "SELECT id, name, filter FROM contact_lists WHERE org_id = $1 AND id = $2",
                    args![org_id, id],
                )
                .await)?
            .ok_or(StoreError::NotFound)?,
        };
        let mut out = self.with_counts(vec![row]).await?;
        Ok(out.remove(0))
    }

    /// Counts each list's members. A custom list whose stored filter no longer parses is
    /// answered with its `error` and a zero count instead of failing every list of the
    /// organization.
    async fn with_counts(self, rows: Vec<ListRow>) -> Result<Vec<ContactList>, StoreError> {
        let org_id = self.org_id();
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
        let counts: Vec<i64> = if self.store.lists_from_index() {
            self.with_index(move |o| filters.iter().map(|f| o.matching(f).len() as i64).collect())
                .await?
        } else {
            read!(self.store, |c| async {
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
                    id: ListId::new(r.id),
                    name: r.name,
                    builtin,
                    filter: f.to_json(),
                    count: counts.next().unwrap_or(0),
                    error: None,
                },
                Err(e) => ContactList {
                    filter: serde_json::from_str(&r.filter).unwrap_or(Value::Null),
                    id: ListId::new(r.id),
                    name: r.name,
                    builtin,
                    count: 0,
                    error: Some(e.message),
                },
            })
            .collect())
    }

    pub async fn create_list(
        self,
        name: &str,
        filter: &ListFilter,
    ) -> Result<ContactList, StoreError> {
        let org_id = self.org_id();
        let name = check_name(name)?;
        let id = new_id();
        let now = now_ms();
        let stored = stored_filter(filter)?;
        transact!(self.store, |c| c
            .execute(
                "INSERT INTO contact_lists (org_id, id, name, filter, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
                args![org_id, &id, &name, &stored, now],
            )
            .await)?;
        self.list(&ListId::new(id)).await
    }

    /// Renames and/or re-filters a custom list. Built-ins answer `Builtin`.
    pub async fn update_list(
        self,
        list_id: &ListId,
        name: Option<&str>,
        filter: Option<&ListFilter>,
    ) -> Result<ContactList, StoreError> {
        let (org_id, id) = (self.org_id(), list_id.as_str());
        if builtin_filter(id).is_some() {
            return Err(StoreError::Builtin);
        }
        let name = name.map(check_name).transpose()?;
        let stored = filter.map(stored_filter).transpose()?;
        let n = transact!(self.store, |c| {
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
        self.list(list_id).await
    }

    pub async fn delete_list(self, id: &ListId) -> Result<(), StoreError> {
        let (org_id, id) = (self.org_id(), id.as_str());
        if builtin_filter(id).is_some() {
            return Err(StoreError::Builtin);
        }
        let n = transact!(self.store, |c| c
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
