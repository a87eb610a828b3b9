//! The HTTP routes: the widget API, the admin API (one module per resource) and health.

pub mod admin;
pub mod health;
pub mod widget;

use crate::error::ApiResult;
use crate::extract::QueryMap;
use kith_core::ValidationError;

/// `limit`: 1 to 200, `default` when absent; anything else answers 422 naming `limit`.
pub(crate) fn limit_param(q: &QueryMap, default: i64) -> ApiResult<i64> {
    match q.one("limit") {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                ValidationError::new("limit", "must be a whole number from 1 to 200").into()
            }),
    }
}
