//! Contacts: the filtered, paged listing, one contact, its edit, timeline and conversations.

use super::conversations::ConversationList;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, JsonBody, QueryMap};
use crate::routes::{limit_param, Patch};
use crate::state::AppState;
use crate::views::{self, Contact, TimelineEvent};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use kith_core::contact::ProfilePatch;
use kith_core::filter::{search_term, tag_key, ListFilter, Sort};
use kith_core::{ContactId, ListId, Status, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list_contacts))
        .route(
            "/contacts/{id}",
            get(get_contact).patch(patch_contact).delete(delete_contact),
        )
        .route("/contacts/{id}/export", get(export_contact))
        .route("/contacts/export", get(export_contacts))
        .route("/contacts/{id}/timeline", get(timeline))
        .route("/contacts/{id}/conversations", get(contact_conversations))
}

#[derive(Serialize, ToSchema)]
pub struct ContactPage {
    pub items: Vec<Contact>,
    /// Exact number of contacts matching.
    pub total: i64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What `GET /api/v1/contacts` reads from its query string, apart from `list` (a stored
/// filter, looked up by the handler) and `cursor` (decoded by the store).
pub struct ContactQuery {
    /// The ad-hoc conditions: `status`, every `tag`, `q` and `filter`, combined with AND.
    pub filter: ListFilter,
    pub sort: Sort,
    pub limit: i64,
}

/// Turns the query pairs of `GET /api/v1/contacts` into a filter, an order and a page size,
/// or the 422 naming the bad parameter. Pure, so it is fuzzed as it is (fuzz/).
pub fn filter_from_query(q: &QueryMap) -> ApiResult<ContactQuery> {
    let limit = limit_param(q)?;
    let sort = match q.one("sort") {
        Some(s) => Sort::parse(s)?,
        None => Sort::default(),
    };
    let mut adhoc = ListFilter::default();
    if let Some(s) = q.one("status") {
        adhoc.status.push(
            Status::parse(s.trim())
                .ok_or_else(|| ValidationError::new("status", "must be lead or customer"))?,
        );
    }
    let tags = q.all("tag");
    if tags.len() > kith_core::limits::TAGS_MAX {
        return Err(ValidationError::new("tag", "at most 100 tags").into());
    }
    for t in tags {
        adhoc.tags_all.push(tag_key("tag", t)?);
    }
    if let Some(text) = q.one("q") {
        adhoc.q.extend(search_term("q", text)?);
    }
    if let Some(raw) = q.one("filter") {
        let v: Value = serde_json::from_str(raw)
            .map_err(|_| ValidationError::new("filter", "must be a JSON object"))?;
        adhoc = adhoc.and(ListFilter::parse(&v)?);
    }
    Ok(ContactQuery {
        filter: adhoc,
        sort,
        limit,
    })
}

/// Contacts of a list and/or matching ad-hoc filters, one page in the chosen order, with the
/// exact total. All given parameters combine with AND.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts",
    params(("list" = Option<String>, Query, description = "a list id: all, leads, customers or a custom list"),
           ("status" = Option<String>, Query, description = "lead or customer"),
           ("tag" = Option<Vec<String>>, Query, description = "may repeat: contacts with all of them"),
           ("q" = Option<String>, Query, description = "case-insensitive substring of name, email, phone, company, user_id or a metadata value"),
           ("filter" = Option<String>, Query, description = "a full filter as JSON (the lists' filter shape)"),
           ("sort" = Option<String>, Query, description = "last_seen_at, created_at or name; leading - for descending; default -last_seen_at"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50"),
           ("cursor" = Option<String>, Query, description = "from next_cursor")),
    responses((status = 200, body = ContactPage), (status = 400, description = "undecodable cursor"),
              (status = 404, description = "unknown list"),
              (status = 422, description = "invalid parameter, naming it")),
    security(("bearer" = [])))]
async fn list_contacts(
    State(state): State<AppState>,
    admin: Admin,
    q: QueryMap,
) -> ApiResult<Json<ContactPage>> {
    let ContactQuery {
        filter: adhoc,
        sort,
        limit,
    } = filter_from_query(&q)?;
    let filter = match q.one("list") {
        Some(id) => admin
            .org(&state)
            .list_filter(&ListId::new(id.trim()))
            .await
            .map_err(ApiError::not_found_as("list"))?,
        None => ListFilter::default(),
    }
    .and(adhoc);
    let page = admin
        .org(&state)
        .list_contacts(&filter, &sort, q.one("cursor"), limit)
        .await?;
    Ok(Json(ContactPage {
        items: views::all(&page.items),
        total: page.total.unwrap_or(0),
        next_cursor: page.next_cursor,
    }))
}

/// The contacts of a list and/or ad-hoc filters as CSV (the same parameters and order as
/// `GET /api/v1/contacts`, every page), streamed page by page so memory stays flat.
#[utoipa::path(get, path = "/api/v1/contacts/export", tag = "contacts",
    params(("list" = Option<String>, Query, description = "a list id: all, leads, customers or a custom list"),
           ("status" = Option<String>, Query, description = "lead or customer"),
           ("tag" = Option<Vec<String>>, Query, description = "may repeat: contacts with all of them"),
           ("q" = Option<String>, Query, description = "case-insensitive substring, as in GET /api/v1/contacts"),
           ("filter" = Option<String>, Query, description = "a full filter as JSON (the lists' filter shape)"),
           ("sort" = Option<String>, Query, description = "as in GET /api/v1/contacts; default -last_seen_at")),
    responses((status = 200, content_type = "text/csv",
               description = "`attachment`; columns id, user_id, email, name, phone, company, tags, metadata, status, created_at, updated_at, last_seen_at, conversation_count, message_count (what import reads back). Cells starting with = + - @ are prefixed with ' (CSV injection). A failure midway cuts the download short."),
              (status = 404, description = "unknown list"),
              (status = 422, description = "invalid parameter, naming it")),
    security(("bearer" = [])))]
async fn export_contacts(
    State(state): State<AppState>,
    admin: Admin,
    q: QueryMap,
) -> ApiResult<axum::response::Response> {
    use axum::http::header;
    use futures::StreamExt;
    let ContactQuery {
        filter: adhoc,
        sort,
        ..
    } = filter_from_query(&q)?;
    let filter = match q.one("list") {
        Some(id) => admin
            .org(&state)
            .list_filter(&ListId::new(id.trim()))
            .await
            .map_err(ApiError::not_found_as("list"))?,
        None => ListFilter::default(),
    }
    .and(adhoc);
    let body = state
        .store
        .export_csv(admin.org_id.clone(), filter, sort)
        .map(|chunk| {
            chunk.map(axum::body::Bytes::from).map_err(|e| {
                // Headers are gone by now: the download is cut short instead.
                tracing::error!(error = %e, "contact export failed midway");
                std::io::Error::other(e.to_string())
            })
        });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"contacts.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// One contact with its stats. A merged id answers 404 `merged` with `merged_into`.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path)),
    responses((status = 200, body = Contact), (status = 404, description = "`not_found`, or `merged` with `merged_into`")),
    security(("bearer" = [])))]
async fn get_contact(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
) -> ApiResult<Json<Contact>> {
    let contact = admin
        .org(&state)
        .contact(&id)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok(Json(Contact::from(&contact)))
}

/// An admin's edit. Text is trimmed; `null` or empty clears; other fields (`id`, stats,
/// `status`, times) are ignored. `ProfilePatch::parse` turns it into the domain patch.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct ContactPatchRequest {
    /// `null` clears. Setting one makes the contact a customer; clearing makes it a lead.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub user_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<String>, max_length = 255, format = Email)]
    pub email: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub name: Patch<String>,
    /// E.164, e.g. +14155550100 (spaces, dashes, dots and parentheses are dropped).
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub phone: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub company: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(schema_with = crate::openapi::tags_schema)]
    pub tags: Patch<Vec<String>>,
    /// Merges keys; a `null` value deletes the key.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(schema_with = crate::openapi::metadata_schema)]
    pub metadata: Patch<Value>,
}

/// Edit a contact. Never merges: an email or user_id another contact holds answers 409.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path)), request_body = ContactPatchRequest,
    responses((status = 200, body = Contact),
              (status = 409, description = "`conflict` with `field` and `contact_id` of the holder"),
              (status = 422, description = "invalid value, naming the field")),
    security(("bearer" = [])))]
async fn patch_contact(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
    JsonBody(body): JsonBody<ContactPatchRequest>,
) -> ApiResult<Json<Contact>> {
    // The domain parser reads the edit as JSON, where absent and `null` differ.
    let json = serde_json::to_value(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let patch = ProfilePatch::parse(&json)?;
    let contact = admin
        .org(&state)
        .patch_contact(&id, &patch, &admin.actor)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok(Json(Contact::from(&contact)))
}

#[derive(Serialize, ToSchema)]
pub struct TimelinePage {
    pub items: Vec<TimelineEvent>,
    pub next_cursor: Option<String>,
}

/// A contact's activity, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", tag = "contacts",
    params(("id" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = TimelinePage)),
    security(("bearer" = [])))]
async fn timeline(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
    q: QueryMap,
) -> ApiResult<Json<TimelinePage>> {
    let limit = limit_param(&q)?;
    let page = admin
        .org(&state)
        .timeline(&id, q.one("cursor"), limit)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok(Json(TimelinePage {
        items: views::all(&page.items),
        next_cursor: page.next_cursor,
    }))
}

/// The contact's conversations across the organization's websites, newest activity first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/conversations", tag = "contacts",
    params(("id" = String, Path),
           ("cursor" = Option<String>, Query, description = "from next_cursor"),
           ("limit" = Option<i64>, Query, description = "1–200, default 50")),
    responses((status = 200, body = ConversationList), (status = 400, description = "undecodable cursor"),
              (status = 404, description = "`not_found`, or `merged` with `merged_into`"),
              (status = 422, description = "invalid limit")),
    security(("bearer" = [])))]
async fn contact_conversations(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
    q: QueryMap,
) -> ApiResult<Json<ConversationList>> {
    let limit = limit_param(&q)?;
    let page = admin
        .org(&state)
        .contact_conversations(&id, q.one("cursor"), limit)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok(Json(ConversationList {
        items: views::all(&page.items),
        next_cursor: page.next_cursor,
    }))
}

/// Deletes a contact with everything that belongs to it: its conversations and their
/// messages, its visitors, tags and timeline. With `erase=true` the delete is recorded as an
/// erasure (GDPR) and earlier audit entries about the contact go too. Either way the audit
/// log keeps one entry without personal data (`contact.deleted` / `contact.erased`, the
/// contact's id and counts), and the contact leaves every list, count and search at once.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path),
           ("erase" = Option<bool>, Query, description = "true: an erasure (GDPR); default false")),
    responses((status = 200, body = views::DeletedContact),
              (status = 404, description = "`not_found`, or `merged` with `merged_into`"),
              (status = 422, description = "`erase` is not true or false")),
    security(("bearer" = [])))]
async fn delete_contact(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
    q: QueryMap,
) -> ApiResult<Json<views::DeletedContact>> {
    let erase = match q.one("erase").map(str::trim) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ValidationError::new("erase", "must be true or false").into()),
    };
    let deleted = admin
        .org(&state)
        .delete_contact(&id, erase, &admin.actor)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    Ok(Json(views::DeletedContact::from(&deleted)))
}

/// Everything the organization holds about one contact, as one JSON document: the profile,
/// every timeline entry, every conversation with all of its messages, its visitors and the
/// ids merged into it (a data subject's access request).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/export", tag = "contacts",
    params(("id" = String, Path)),
    responses((status = 200, body = views::ContactExport),
              (status = 404, description = "`not_found`, or `merged` with `merged_into`")),
    security(("bearer" = [])))]
async fn export_contact(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ContactId>,
) -> ApiResult<impl axum::response::IntoResponse> {
    let export = admin
        .org(&state)
        .export_contact(&id)
        .await
        .map_err(ApiError::not_found_as("contact"))?;
    let disposition = format!("attachment; filename=\"contact-{}.json\"", id.as_str());
    Ok((
        [(axum::http::header::CONTENT_DISPOSITION, disposition)],
        Json(views::ContactExport::from(&export)),
    ))
}
