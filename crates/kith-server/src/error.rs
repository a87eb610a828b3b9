//! The one error type of the HTTP layer. Every failure leaves as
//! `{"error": {"code": "snake_case", "message": "…", …}}` with the status the spec names.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kith_core::ValidationError;
use kith_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("this contact was merged into {merged_into}")]
    Merged { merged_into: String },
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        /// The field whose value another contact holds, and that contact.
        holder: Option<(String, String)>,
    },
    /// An undo refused because a contact changed since the merge; `changed` names what.
    #[error("the contacts changed since the merge ({}); it can no longer be undone", changed.join(", "))]
    MergeChanged { changed: Vec<String> },
    #[error("this method is not allowed on this route; see /api/openapi.json")]
    MethodNotAllowed,
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// Names whose cap was reached: `visitor`, `address` or `token`.
    #[error("too many open event streams for this {0}; close one first")]
    TooManyStreams(&'static str),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    /// Maps a store error of a look-up by id: `NotFound` names what was looked up
    /// (`.map_err(ApiError::not_found_as("contact"))`); every other error maps as usual.
    pub fn not_found_as(what: &'static str) -> impl Fn(StoreError) -> ApiError {
        move |e| match e {
            StoreError::NotFound => ApiError::not_found(what),
            e => e.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Merged { .. } => (StatusCode::NOT_FOUND, "merged"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::MergeChanged { .. } => (StatusCode::CONFLICT, "merge_changed"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Invalid(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Merged { merged_into } => ApiError::Merged { merged_into },
            StoreError::Conflict { field, contact_id } => ApiError::Conflict {
                code: "conflict",
                message: format!("another contact already has this {field}"),
                holder: Some((field.to_string(), contact_id)),
            },
            StoreError::Invalid(v) => ApiError::Invalid(v),
            StoreError::MergeRefused(kith_core::merge::MergeRefusal::SameContact) => {
                ApiError::Invalid(ValidationError::new(
                    "other_id",
                    "must be another contact than the one merged into",
                ))
            }
            StoreError::MergeRefused(kith_core::merge::MergeRefusal::UserIdConflict) => {
                ApiError::Conflict {
                    code: "user_id_conflict",
                    message: "both contacts have a user_id and they differ: two people are \
                              never merged"
                        .into(),
                    holder: None,
                }
            }
            StoreError::MergeChanged { changed } => ApiError::MergeChanged { changed },
            StoreError::AlreadyUndone => ApiError::Conflict {
                code: "already_undone",
                message: "this merge was already undone".into(),
                holder: None,
            },
            StoreError::Builtin => ApiError::Conflict {
                code: "builtin_list",
                message: "built-in lists cannot be changed or deleted".into(),
                holder: None,
            },
            e @ StoreError::CountChanged { .. } => ApiError::Conflict {
                code: "count_changed",
                message: e.to_string(),
                holder: None,
            },
            StoreError::BadCursor => {
                ApiError::BadRequest("the cursor is not one this server handed out".into())
            }
            StoreError::Raced => {
                ApiError::Unavailable("too many concurrent changes to the same data; retry".into())
            }
            e if e.is_unavailable() => {
                ApiError::Unavailable(format!("the database is unavailable: {e}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

// What `ApiError` leaves as, and its OpenAPI schema: one type for both.
/// Every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `code` is stable and snake_case; some codes carry more fields.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// e.g. `invalid`, `not_found`, `merged`, `conflict`, `unauthorized`, `rate_limited`.
    #[schema(value_type = String)]
    pub code: &'static str,
    /// For a person.
    pub message: String,
    /// `invalid` and `conflict`: the field at fault (`metadata.plan`, `filter.tags.all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `merged`: the contact that absorbed this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// `conflict`: the contact holding the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// `merge_changed`: what changed since the merge, e.g. `survivor.fields`,
    /// `survivor.conversations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut detail = ErrorDetail {
            code,
            message: self.to_string(),
            field: None,
            merged_into: None,
            contact_id: None,
            changed: None,
        };
        match &self {
            ApiError::Internal(cause) => {
                // The cause goes to the log, not to the client.
                tracing::error!(error = %cause, "internal error");
                detail.message = "something went wrong on our side; it was logged".into();
            }
            ApiError::Unavailable(cause) => {
                // The cause may carry database or driver text (hosts, SQL): logged, not sent.
                tracing::warn!(error = %cause, "unavailable");
                detail.message =
                    "the service is busy or its database is unreachable; retry shortly".into();
            }
            ApiError::Invalid(v) => {
                detail.message = format!("{} {}", v.field, v.message);
                detail.field = Some(v.field.clone());
            }
            ApiError::Merged { merged_into } => {
                detail.merged_into = Some(merged_into.clone());
            }
            ApiError::MergeChanged { changed } => {
                detail.changed = Some(changed.clone());
            }
            ApiError::Conflict {
                holder: Some((field, contact_id)),
                ..
            } => {
                detail.field = Some(field.clone());
                detail.contact_id = Some(contact_id.clone());
            }
            _ => {}
        }
        let mut resp = (status, Json(ErrorBody { error: detail })).into_response();
        match self {
            ApiError::RateLimited { retry_after } => {
                crate::metrics::rate_limited("requests");
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::TooManyStreams(_) => {
                crate::metrics::rate_limited("event_streams");
                // A slot frees when one of the caller's streams closes; this is only a hint.
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::Unavailable(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
