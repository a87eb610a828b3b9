//! The one error type of the HTTP layer. Every failure leaves as
//! `{"error": {"code": "snake_case", "message": "…", …}}` with the status the spec names.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kith_core::ValidationError;
use kith_store::StoreError;
use serde_json::{json, Map, Value};

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
        extra: Map<String, Value>,
    },
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
            StoreError::Conflict { field, contact_id } => {
                let mut extra = Map::new();
                extra.insert("field".into(), json!(field));
                extra.insert("contact_id".into(), json!(contact_id));
                ApiError::Conflict {
                    code: "conflict",
                    message: format!("another contact already has this {field}"),
                    extra,
                }
            }
            StoreError::Invalid(v) => ApiError::Invalid(v),
            StoreError::Builtin => ApiError::Conflict {
                code: "builtin_list",
                message: "built-in lists cannot be changed or deleted".into(),
                extra: Map::new(),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut body = Map::new();
        body.insert("code".into(), json!(code));
        match &self {
            ApiError::Internal(detail) => {
                // The detail goes to the log, not to the client.
                tracing::error!(error = %detail, "internal error");
                body.insert(
                    "message".into(),
                    json!("something went wrong on our side; it was logged"),
                );
            }
            ApiError::Unavailable(detail) => {
                // The detail may carry database or driver text (hosts, SQL): logged, not sent.
                tracing::warn!(error = %detail, "unavailable");
                body.insert(
                    "message".into(),
                    json!("the service is busy or its database is unreachable; retry shortly"),
                );
            }
            ApiError::Invalid(v) => {
                body.insert(
                    "message".into(),
                    json!(format!("{} {}", v.field, v.message)),
                );
                body.insert("field".into(), json!(v.field));
            }
            ApiError::Merged { merged_into } => {
                body.insert("message".into(), json!(self.to_string()));
                body.insert("merged_into".into(), json!(merged_into));
            }
            ApiError::Conflict { extra, .. } => {
                body.insert("message".into(), json!(self.to_string()));
                body.extend(extra.clone());
            }
            _ => {
                body.insert("message".into(), json!(self.to_string()));
            }
        }
        let mut resp = (status, Json(json!({ "error": body }))).into_response();
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
