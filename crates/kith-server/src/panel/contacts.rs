//! `/`: the contacts page. A sidebar of lists (All contacts, Leads, Customers and the custom
//! ones, each with its exact count), a filter form (status; tags all / any / none; search),
//! and one page of the table with the exact total, sorted by a column and paged with the
//! store's cursors. Every part of the view is in the URL, so a view can be bookmarked and the
//! back button works; typing in the search box swaps the results only (htmx, debounced, an
//! older request cancelled by a newer one so results never arrive out of order).
//!
//! The data comes from the same store calls as `GET /api/v1/contacts` and `/api/v1/lists`.
//! Saving, renaming and deleting lists are form posts with the CSRF token.

use super::auth::{CsrfForm, PanelSession};
use super::{is_htmx, render, Chrome, ErrorPage};
use crate::error::ApiError;
use crate::extract::QueryMap;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kith_core::filter::{search_term, tag_key, ListFilter, Sort, SortField};
use kith_core::limits::PAGE_LIMIT_DEFAULT;
use kith_core::{ListId, Status, Timestamp, ValidationError};
use kith_store::{AdminSession, Contact, ContactList, OrgStore, StoreError};
use serde_json::{json, Map, Value};

/// The view's state, as the URL holds it.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub list: String,
    pub q: String,
    pub status: String,
    /// Comma-separated tags: contacts with all of them, one of them, none of them.
    pub tags: String,
    pub any: String,
    pub none: String,
    /// A metadata key: with `meta_value`, it must hold that text; alone, it must be present.
    pub meta_key: String,
    pub meta_value: String,
    /// Whole numbers: at least this many messages / conversations.
    pub min_messages: String,
    pub min_conversations: String,
    /// Dates (`YYYY-MM-DD`, UTC days): last seen / created on or after, before.
    pub seen_after: String,
    pub seen_before: String,
    pub created_after: String,
    pub created_before: String,
    /// A website id: the contact has a conversation there.
    pub website: String,
    pub sort: String,
    pub cursor: String,
}

/// The filter form's fields beyond status, tags and search, by URL key.
const EXTRA: [&str; 9] = [
    "meta_key",
    "meta_value",
    "min_messages",
    "min_conversations",
    "seen_after",
    "seen_before",
    "created_after",
    "created_before",
    "website",
];

impl View {
    pub(super) fn from_pairs(get: impl Fn(&str) -> Option<String>) -> View {
        let v = |k: &str| get(k).unwrap_or_default();
        View {
            list: match v("list") {
                l if l.trim().is_empty() => "all".into(),
                l => l.trim().to_string(),
            },
            q: v("q"),
            status: v("status"),
            tags: v("tags"),
            any: v("any"),
            none: v("none"),
            meta_key: v("meta_key"),
            meta_value: v("meta_value"),
            min_messages: v("min_messages"),
            min_conversations: v("min_conversations"),
            seen_after: v("seen_after"),
            seen_before: v("seen_before"),
            created_after: v("created_after"),
            created_before: v("created_before"),
            website: v("website"),
            sort: match v("sort") {
                s if s.trim().is_empty() => "-last_seen_at".into(),
                s => s.trim().to_string(),
            },
            cursor: v("cursor"),
        }
    }

    /// This view's URL with `change` applied (and the cursor dropped unless set again).
    fn url(&self, change: impl FnOnce(&mut View)) -> String {
        let mut next = View {
            cursor: String::new(),
            ..self.clone()
        };
        change(&mut next);
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v, default) in [
            ("list", &next.list, "all"),
            ("q", &next.q, ""),
            ("status", &next.status, ""),
            ("tags", &next.tags, ""),
            ("any", &next.any, ""),
            ("none", &next.none, ""),
            ("meta_key", &next.meta_key, ""),
            ("meta_value", &next.meta_value, ""),
            ("min_messages", &next.min_messages, ""),
            ("min_conversations", &next.min_conversations, ""),
            ("seen_after", &next.seen_after, ""),
            ("seen_before", &next.seen_before, ""),
            ("created_after", &next.created_after, ""),
            ("created_before", &next.created_before, ""),
            ("website", &next.website, ""),
            ("sort", &next.sort, "-last_seen_at"),
            ("cursor", &next.cursor, ""),
        ] {
            if !v.trim().is_empty() && v.trim() != default {
                q.append_pair(k, v.trim());
            }
        }
        let q = q.finish();
        if q.is_empty() {
            "/".into()
        } else {
            format!("/?{q}")
        }
    }

    /// The view's non-empty fields but the cursor, by URL key: what a form carries to keep
    /// the view (the bulk actions' hidden inputs).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("list", self.list.clone()),
            ("q", self.q.clone()),
            ("status", self.status.clone()),
            ("tags", self.tags.clone()),
            ("any", self.any.clone()),
            ("none", self.none.clone()),
        ];
        out.extend(EXTRA.iter().map(|k| (*k, self.extra(k).clone())));
        out.retain(|(_, v)| !v.trim().is_empty());
        out
    }

    /// This view's own URL.
    pub fn url_of(&self) -> String {
        self.url(|_| {})
    }

    /// The ad-hoc conditions of the filter form, validated as the API validates them.
    pub(super) fn filter(&self) -> Result<ListFilter, ValidationError> {
        let mut f = ListFilter::default();
        if !self.status.trim().is_empty() {
            f.status.push(
                Status::parse(self.status.trim())
                    .ok_or_else(|| ValidationError::new("status", "must be lead or customer"))?,
            );
        }
        for t in split(&self.tags) {
            f.tags_all.push(tag_key("tags", t)?);
        }
        let any: Vec<String> = split(&self.any)
            .map(|t| tag_key("any", t))
            .collect::<Result<_, _>>()?;
        if !any.is_empty() {
            f.tags_any.push(any);
        }
        for t in split(&self.none) {
            f.tags_none.push(tag_key("none", t)?);
        }
        f.q.extend(search_term("q", &self.q)?);
        Ok(f.and(ListFilter::parse(&self.extra_json()?)?))
    }

    /// The extra fields as the API's JSON filter (so the domain validates them, and a saved
    /// list holds exactly what the API would store).
    fn extra_json(&self) -> Result<Value, ValidationError> {
        let mut j = Map::new();
        let key = self.meta_key.trim();
        if !key.is_empty() {
            let cond = match self.meta_value.trim() {
                "" => json!({"exists": true}),
                v => json!({"eq": v}),
            };
            j.insert("metadata".into(), json!({ key: cond }));
        } else if !self.meta_value.trim().is_empty() {
            return Err(ValidationError::new(
                "meta_key",
                "is needed for a metadata value",
            ));
        }
        for (field, raw, name) in [
            ("message_count", &self.min_messages, "min_messages"),
            (
                "conversation_count",
                &self.min_conversations,
                "min_conversations",
            ),
        ] {
            if !raw.trim().is_empty() {
                let n: i64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| ValidationError::new(name, "must be a whole number"))?;
                j.insert(field.into(), json!({ "min": n }));
            }
        }
        for (field, after, before) in [
            ("last_seen_at", &self.seen_after, &self.seen_before),
            ("created_at", &self.created_after, &self.created_before),
        ] {
            let mut range = Map::new();
            for (bound, raw) in [("after", after), ("before", before)] {
                let d = raw.trim();
                if d.is_empty() {
                    continue;
                }
                if !(d.len() == 10 && d.chars().all(|c| c.is_ascii_digit() || c == '-')) {
                    return Err(ValidationError::new(field, "dates are YYYY-MM-DD"));
                }
                range.insert(bound.into(), json!(format!("{d}T00:00:00Z")));
            }
            if !range.is_empty() {
                j.insert(field.into(), Value::Object(range));
            }
        }
        if !self.website.trim().is_empty() {
            j.insert("website_id".into(), json!(self.website.trim()));
        }
        Ok(Value::Object(j))
    }

    fn has_filter(&self) -> bool {
        [&self.q, &self.status, &self.tags, &self.any, &self.none]
            .into_iter()
            .chain(EXTRA.iter().map(|k| self.extra(k)))
            .any(|v| !v.trim().is_empty())
    }

    /// An extra field by its URL key (for the save form's hidden copies).
    pub fn extra(&self, key: &str) -> &String {
        match key {
            "meta_key" => &self.meta_key,
            "meta_value" => &self.meta_value,
            "min_messages" => &self.min_messages,
            "min_conversations" => &self.min_conversations,
            "seen_after" => &self.seen_after,
            "seen_before" => &self.seen_before,
            "created_after" => &self.created_after,
            "created_before" => &self.created_before,
            _ => &self.website,
        }
    }

    /// Whether the form has conditions beyond search, so the builder opens.
    fn builder_open(&self) -> bool {
        self.has_filter() && self.q.trim().is_empty()
    }
}

fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// A list in the sidebar.
pub struct ListLink {
    pub id: String,
    pub name: String,
    pub count: i64,
    pub builtin: bool,
    pub current: bool,
    pub href: String,
}

/// One row of the table.
pub struct Row {
    pub href: String,
    pub name: String,
    pub anonymous: bool,
    pub email: String,
    pub company: String,
    pub status: &'static str,
    pub tags: Vec<String>,
    pub last_seen: String,
    pub messages: i64,
}

/// A sortable column header.
pub struct SortHeader {
    pub label: &'static str,
    pub href: String,
    /// `ascending`, `descending` or `none` (aria-sort).
    pub aria_sort: &'static str,
}

/// What the search swaps: the count, the table and the pager.
pub struct Results {
    pub total: i64,
    pub rows: Vec<Row>,
    pub error: Option<String>,
    pub name_header: SortHeader,
    pub seen_header: SortHeader,
    pub created_header: SortHeader,
    pub next_href: Option<String>,
    pub first_href: Option<String>,
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ContactsPage {
    chrome: Chrome,
    view: View,
    lists: Vec<ListLink>,
    current: ListLink,
    results: Results,
    /// The organization has no contacts at all: teach how to get the first.
    empty_org: bool,
    website_key: String,
    base_url: String,
    /// (id, name) of the organization's websites, for the filter builder.
    websites: Vec<(String, String)>,
    extra_keys: [&'static str; 9],
    save_error: Option<String>,
    rename_error: Option<String>,
    /// The CSV export of the list and filters shown (the admin API, with the session cookie).
    export_href: String,
}

#[derive(Template)]
#[template(path = "contacts_results.html")]
struct ResultsPartial {
    results: Results,
}

fn when(t: Option<Timestamp>) -> String {
    match t {
        // 2026-11-30T06:30:00.000Z → 2026-11-30 06:30 (UTC)
        Some(t) => t.to_rfc3339().get(..16).unwrap_or("").replace('T', " "),
        None => "—".into(),
    }
}

fn row(c: &Contact) -> Row {
    let (name, anonymous) = match (&c.name, &c.email) {
        (Some(n), _) => (n.clone(), false),
        (None, Some(e)) => (e.clone(), false),
        (None, None) => ("Anonymous visitor".to_string(), true),
    };
    Row {
        href: format!("/contacts/{}", c.id),
        name,
        anonymous,
        email: c.email.clone().unwrap_or_default(),
        company: c.company.clone().unwrap_or_default(),
        status: c.status.as_str(),
        tags: c.tags.clone(),
        last_seen: when(c.last_seen_at),
        messages: c.message_count,
    }
}

fn header_for(view: &View, sort: &Sort, field: SortField, label: &'static str) -> SortHeader {
    let name = match field {
        SortField::Name => "name",
        SortField::LastSeenAt => "last_seen_at",
        SortField::CreatedAt => "created_at",
    };
    let (aria_sort, next) = if sort.field == field {
        if sort.descending {
            ("descending", name.to_string())
        } else {
            ("ascending", format!("-{name}"))
        }
    } else {
        // Names read best A→Z first, times newest first.
        (
            "none",
            match field {
                SortField::Name => name.to_string(),
                _ => format!("-{name}"),
            },
        )
    };
    SortHeader {
        label,
        href: view.url(|v| v.sort = next),
        aria_sort,
    }
}

/// Loads the view; a problem with the view itself (a bad filter, a stale cursor) is shown
/// on the page rather than failing it.
async fn results(org: OrgStore<'_>, view: &View, list_filter: &ListFilter) -> Results {
    let sort = Sort::parse(&view.sort).unwrap_or_default();
    let headers = (
        header_for(view, &sort, SortField::Name, "Name"),
        header_for(view, &sort, SortField::LastSeenAt, "Last seen"),
        header_for(view, &sort, SortField::CreatedAt, "Created"),
    );
    let empty = |error: String, (name_header, seen_header, created_header)| Results {
        total: 0,
        rows: vec![],
        error: Some(error),
        name_header,
        seen_header,
        created_header,
        next_href: None,
        first_href: None,
    };
    let filter = match view.filter() {
        Ok(f) => list_filter.clone().and(f),
        Err(e) => return empty(format!("{} {}", e.field, e.message), headers),
    };
    let cursor = Some(view.cursor.as_str()).filter(|c| !c.is_empty());
    match org
        .list_contacts(&filter, &sort, cursor, PAGE_LIMIT_DEFAULT)
        .await
    {
        Ok(page) => Results {
            total: page.total.unwrap_or(0),
            rows: page.items.iter().map(row).collect(),
            error: None,
            name_header: headers.0,
            seen_header: headers.1,
            created_header: headers.2,
            next_href: page.next_cursor.map(|c| view.url(|v| v.cursor = c)),
            first_href: cursor.map(|_| view.url(|_| {})),
        },
        Err(StoreError::BadCursor) => empty(
            "That page no longer exists; start from the first page.".into(),
            headers,
        ),
        Err(StoreError::Invalid(e)) => empty(format!("{} {}", e.field, e.message), headers),
        Err(e) => {
            tracing::warn!(error = %e, "contacts page");
            empty(
                "The contacts could not be loaded; retry shortly.".into(),
                headers,
            )
        }
    }
}

fn link(l: &ContactList, current: &str) -> ListLink {
    ListLink {
        href: if l.id == "all" {
            "/".into()
        } else {
            format!(
                "/?list={}",
                form_urlencoded::byte_serialize(l.id.as_str().as_bytes()).collect::<String>()
            )
        },
        current: l.id == current,
        id: l.id.to_string(),
        name: l.name.clone(),
        count: l.count,
        builtin: l.builtin,
    }
}

struct Notes {
    save_error: Option<String>,
    rename_error: Option<String>,
}

async fn page(
    state: &AppState,
    session: &AdminSession,
    headers: &HeaderMap,
    view: View,
    status: StatusCode,
    notes: Notes,
) -> Response {
    let org = state.store.org(&session.org_id);
    let list_id = ListId::new(view.list.clone());
    let list_filter = match org.list_filter(&list_id).await {
        Ok(f) => f,
        Err(StoreError::NotFound) => {
            return ErrorPage::new(
                StatusCode::NOT_FOUND,
                "No such list",
                "This list does not exist (it may have been deleted).",
            )
            .into_response()
        }
        Err(e) => return ErrorPage::from_api(ApiError::from(e)).into_response(),
    };
    let results = results(org, &view, &list_filter).await;
    if is_htmx(headers) {
        // The address bar gets the view's own short URL, not htmx's echo of every field.
        let mut resp = render(StatusCode::OK, &ResultsPartial { results });
        if let Ok(url) = HeaderValue::from_str(&view.url(|_| {})) {
            resp.headers_mut().insert("hx-push-url", url);
        }
        return resp;
    }
    let lists = match org.lists().await {
        Ok(l) => l,
        Err(e) => return ErrorPage::from_api(ApiError::from(e)).into_response(),
    };
    let links: Vec<ListLink> = lists.iter().map(|l| link(l, &view.list)).collect();
    let current = lists
        .iter()
        .find(|l| l.id == view.list.as_str())
        .map(|l| link(l, &view.list))
        .unwrap_or_else(|| ListLink {
            id: view.list.clone(),
            name: view.list.clone(),
            count: results.total,
            builtin: false,
            current: true,
            href: String::new(),
        });
    let all_count = lists.iter().find(|l| l.id == "all").map_or(0, |l| l.count);
    // The snippet is shown only to an organization without contacts: no query otherwise.
    let websites = org.websites().await.unwrap_or_default();
    let website_key = match all_count {
        0 => websites
            .first()
            .map(|w| w.website_key.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let websites = websites
        .iter()
        .map(|w| (w.id.to_string(), w.name.clone()))
        .collect();
    let export_href = export_href(&view);
    let base_url = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    render(
        status,
        &ContactsPage {
            chrome: Chrome::new(session, "contacts"),
            view,
            lists: links,
            current,
            results,
            empty_org: all_count == 0,
            website_key,
            base_url,
            websites,
            extra_keys: EXTRA,
            save_error: notes.save_error,
            rename_error: notes.rename_error,
            export_href,
        },
    )
}

/// `GET /api/v1/contacts/export` for what the page shows: the list, the form's filter as
/// the API's JSON filter, and the order.
fn export_href(view: &View) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("list", &view.list);
    if let Ok(f) = view.filter() {
        if f != ListFilter::default() {
            q.append_pair("filter", &f.to_json().to_string());
        }
    }
    q.append_pair("sort", &view.sort);
    format!("/api/v1/contacts/export?{}", q.finish())
}

/// `GET /`
pub async fn show(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    headers: HeaderMap,
    q: QueryMap,
) -> Response {
    let view = View::from_pairs(|k| q.one(k).map(str::to_string));
    page(
        &state,
        &session,
        &headers,
        view,
        StatusCode::OK,
        Notes {
            save_error: None,
            rename_error: None,
        },
    )
    .await
}

fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `POST /lists`: the current view (its list's filter and the form's conditions) saved as a
/// new custom list.
pub async fn save(State(state): State<AppState>, form: CsrfForm) -> Response {
    let view = View::from_pairs(|k| form.fields.get(k).cloned());
    let org = state.store.org(&form.session.org_id);
    let saved = async {
        let base = org.list_filter(&ListId::new(view.list.clone())).await?;
        let filter = base.and(view.filter()?);
        org.create_list(form.field("name"), &filter).await
    }
    .await;
    match saved {
        Ok(list) => see_other(&format!(
            "/?list={}",
            form_urlencoded::byte_serialize(list.id.as_str().as_bytes()).collect::<String>()
        )),
        Err(e) => {
            let message = list_problem(e, "saved");
            page(
                &state,
                &form.session,
                &HeaderMap::new(),
                view,
                StatusCode::UNPROCESSABLE_ENTITY,
                Notes {
                    save_error: Some(message),
                    rename_error: None,
                },
            )
            .await
        }
    }
}

/// What a person reads when a list could not be `done` ("saved", "renamed").
fn list_problem(e: StoreError, done: &str) -> String {
    match e {
        StoreError::Invalid(v) => {
            let field = if v.field == "name" {
                "The list name"
            } else {
                v.field.as_str()
            };
            format!("{field} {}", v.message)
        }
        StoreError::Builtin => format!("Built-in lists cannot be {done}."),
        StoreError::NotFound => "This list no longer exists.".into(),
        other => {
            tracing::warn!(error = %other, "a list could not be {done}");
            format!("The list could not be {done}; retry shortly.")
        }
    }
}

/// `POST /lists/{id}/rename`
pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<ListId>,
    form: CsrfForm,
) -> Response {
    let org = state.store.org(&form.session.org_id);
    match org.update_list(&id, Some(form.field("name")), None).await {
        Ok(_) => see_other(&View::default().url(|v| v.list = id.to_string())),
        Err(e) => {
            let message = list_problem(e, "renamed");
            let view = View::from_pairs(|k| (k == "list").then(|| id.to_string()));
            page(
                &state,
                &form.session,
                &HeaderMap::new(),
                view,
                StatusCode::UNPROCESSABLE_ENTITY,
                Notes {
                    save_error: None,
                    rename_error: Some(message),
                },
            )
            .await
        }
    }
}

/// `POST /lists/{id}/delete`: back to All contacts.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<ListId>,
    form: CsrfForm,
) -> Response {
    let org = state.store.org(&form.session.org_id);
    match org.delete_list(&id).await {
        Ok(()) | Err(StoreError::NotFound) => see_other("/"),
        Err(StoreError::Builtin) => ErrorPage::new(
            StatusCode::CONFLICT,
            "Built-in list",
            "Built-in lists cannot be deleted.",
        )
        .into_response(),
        Err(e) => ErrorPage::from_api(ApiError::from(e)).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_holds_the_view_and_drops_defaults() {
        let v = View::from_pairs(|k| match k {
            "list" => Some("vip".into()),
            "q" => Some("ada & co".into()),
            "cursor" => Some("abc".into()),
            _ => None,
        });
        assert_eq!(v.url(|_| {}), "/?list=vip&q=ada+%26+co");
        assert_eq!(
            v.url(|v| v.sort = "name".into()),
            "/?list=vip&q=ada+%26+co&sort=name"
        );
        assert_eq!(View::from_pairs(|_| None).url(|_| {}), "/");
        assert!(v.has_filter());
    }

    #[test]
    fn the_filter_form_is_validated_like_the_api() {
        let v = View::from_pairs(|k| match k {
            "status" => Some("customer".into()),
            "tags" => Some("VIP, beta".into()),
            "any" => Some("a,b".into()),
            "none" => Some("churned".into()),
            "q" => Some("Ada".into()),
            _ => None,
        });
        let f = v.filter().unwrap();
        assert_eq!(f.status, vec![Status::Customer]);
        assert_eq!(f.tags_all, vec!["vip", "beta"]);
        assert_eq!(f.tags_any, vec![vec!["a".to_string(), "b".to_string()]]);
        assert_eq!(f.tags_none, vec!["churned"]);
        assert_eq!(f.q, vec!["ada"]);
        let bad = View::from_pairs(|k| (k == "status").then(|| "vip".into()));
        assert_eq!(bad.filter().unwrap_err().field, "status");
    }

    #[test]
    fn the_filter_builder_covers_the_other_filter_keys() {
        let v = View::from_pairs(|k| {
            Some(
                match k {
                    "meta_key" => "plan",
                    "meta_value" => "pro",
                    "min_messages" => "3",
                    "min_conversations" => "1",
                    "seen_after" => "2026-01-01",
                    "created_before" => "2026-11-01",
                    "website" => "w1",
                    _ => return None,
                }
                .to_string(),
            )
        });
        assert!(v.has_filter() && v.builder_open());
        let f = v.filter().unwrap();
        assert_eq!(
            f.metadata,
            vec![kith_core::filter::MetaCond::Eq("plan".into(), json!("pro"))]
        );
        assert_eq!(f.message_count.min, Some(3));
        assert_eq!(f.conversation_count.min, Some(1));
        assert!(f.last_seen_at.min.is_some() && f.last_seen_at.max.is_none());
        assert!(f.created_at.max.is_some() && f.created_at.min.is_none());
        assert_eq!(f.website_ids, vec!["w1"]);
        let url = v.url(|_| {});
        assert!(
            url.contains("meta_key=plan") && url.contains("seen_after=2026-01-01"),
            "{url}"
        );
        // A key alone: present with any value.
        let exists = View::from_pairs(|k| (k == "meta_key").then(|| "beta".into()));
        assert_eq!(
            exists.filter().unwrap().metadata,
            vec![kith_core::filter::MetaCond::Exists("beta".into(), true)]
        );
        for (k, bad) in [("min_messages", "many"), ("seen_after", "yesterday")] {
            let v = View::from_pairs(|f| (f == k).then(|| bad.to_string()));
            assert!(v.filter().is_err(), "{k}={bad}");
        }
    }
}
