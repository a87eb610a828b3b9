//! Request extractors: credentials (admin token, website key, visitor token), the client IP,
//! and a JSON body whose every failure is a JSON error of the spec's shape.

use crate::error::ApiError;
use crate::state::AppState;
use crate::token;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use kith_core::timeline::Actor;
use kith_core::{OrgId, ValidationError, VisitorId};
use kith_store::{OrgStore, Website};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A JSON request body of type `T`: 413 past the size limit, 400 when it is not JSON or not
/// an object, 422 naming the field when a value has the wrong type. An empty body reads as
/// `{}`. Unknown fields are ignored (SPEC: fields a client may not set are ignored), so no
/// body type denies them.
pub struct JsonBody<T = Value>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(state.config.limits.max_body_bytes)
            } else {
                ApiError::BadRequest(format!("could not read the request body: {rej}"))
            }
        })?;
        let value = if bytes.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?
        };
        if !value.is_object() {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        }
        // Read from the parsed value, so a syntax error (400) is told apart from a value of
        // the wrong type (422).
        let body = serde_path_to_error::deserialize(value).map_err(wrong_type)?;
        Ok(JsonBody(body))
    }
}

/// The 422 of a body value of the wrong type. The field is named as the parsers name it:
/// object keys joined by dots, an array by its own name (`tags`, not `tags[0]`).
fn wrong_type(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let field = e
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".");
    let field = if field.is_empty() {
        "body".into()
    } else {
        field
    };
    // serde says "invalid type: integer `3`, expected a string"; a person needs the second half.
    let detail = e.into_inner().to_string();
    let message = match detail.split_once(", expected ") {
        Some((_, expected)) => format!("must be {expected}"),
        None => detail,
    };
    ApiError::Invalid(ValidationError::new(field, message))
}

/// An authenticated admin-API caller, scoped to its organization.
#[derive(Debug, Clone)]
pub struct Admin {
    pub org_id: OrgId,
    pub actor: Actor,
    /// Names the verified credential (`token:<sha256 of the token>`), never the secret: what
    /// per-caller limits are keyed by.
    pub credential: String,
}

impl Admin {
    /// The store as this caller's organization sees it: every admin query goes through here.
    pub fn org<'a>(&'a self, state: &'a AppState) -> OrgStore<'a> {
        state.store.org(&self.org_id)
    }

    /// Who to name as a message author or in logs.
    pub fn author_id(&self) -> String {
        self.actor.to_string()
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |message: &str| ApiError::Unauthorized {
            code: "unauthorized",
            message: message.into(),
        };
        // An IP that keeps sending bad tokens is refused before its token is looked up.
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        admit(state, ip)?;
        // The admin panel's session cookie is a credential too (with its CSRF token on
        // state-changing calls); a bearer token wins when both are sent.
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            if let Some(cookie) =
                crate::panel::cookies::get(&parts.headers, crate::panel::cookies::SESSION)
            {
                return crate::panel::auth::admin_from_session(parts, state, ip, &cookie).await;
            }
        }
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("send Authorization: Bearer <api token>"))?;
        let token = auth
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("send Authorization: Bearer <api token>"))?;
        let Some(org_id) = state.store.org_for_token(token).await? else {
            return Err(failed(
                state,
                ip,
                unauthorized("the API token is not valid"),
            ));
        };
        // Keyed by the verified token only: made-up tokens cannot add keys to this limiter.
        let credential = format!("token:{}", hex::encode(Sha256::digest(token.as_bytes())));
        state
            .limiters
            .per_admin
            .check(&credential)
            .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
        Ok(Admin {
            org_id,
            actor: Actor::Api,
            credential,
        })
    }
}

/// 429 while `ip` is over its budget of failed authentications.
fn admit(state: &AppState, ip: IpAddr) -> Result<(), ApiError> {
    state
        .limiters
        .failed_auth
        .admit(ip)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

/// Counts a failed authentication of `ip`: answers `rejection`, or 429 once over the budget.
pub(crate) fn failed(state: &AppState, ip: IpAddr, rejection: ApiError) -> ApiError {
    crate::metrics::auth_failure();
    match state.limiters.failed_auth.failed(ip) {
        Ok(()) => rejection,
        Err(retry_after) => ApiError::RateLimited { retry_after },
    }
}

/// The website key a widget call names (`X-Kith-Website`, or `website_key` in the query).
pub fn website_key(parts: &Parts) -> Option<String> {
    header_or_query(parts, "x-kith-website", "website_key")
}

fn header_or_query(parts: &Parts, header: &str, query_key: &str) -> Option<String> {
    if let Some(v) = parts.headers.get(header).and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    // EventSource cannot send headers, so the event stream also takes them as query parameters.
    let q = parts.uri.query()?;
    url_param(q, query_key)
}

fn url_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// The website a widget call names with `X-Kith-Website`. When the website lists allowed
/// origins, a browser call from any other origin is refused.
#[derive(Clone)]
pub struct WidgetSite(pub Arc<Website>);

impl FromRequestParts<AppState> for WidgetSite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = website_key(parts).ok_or_else(|| ApiError::Unauthorized {
            code: "website_required",
            message: "send the website key in X-Kith-Website".into(),
        })?;
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        admit(state, ip)?;
        let Some(website) = state.store.website_by_key(key.trim()).await? else {
            return Err(failed(
                state,
                ip,
                ApiError::Unauthorized {
                    code: "unknown_website",
                    message: "no website has this key".into(),
                },
            ));
        };
        // An Origin that is not text matches no listed origin (it is never "absent").
        if let Some(origin) = parts
            .headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or(""))
        {
            if !website.allows_origin(origin) {
                return Err(ApiError::Forbidden {
                    code: "origin_not_allowed",
                    message: format!("origin {origin} is not allowed for this website"),
                });
            }
        }
        Ok(WidgetSite(Arc::new(website)))
    }
}

/// A widget call from a known visitor (valid `X-Kith-Visitor` token).
pub struct VisitorAuth {
    pub website: Arc<Website>,
    pub visitor_id: VisitorId,
}

impl FromRequestParts<AppState> for VisitorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let WidgetSite(website) = WidgetSite::from_request_parts(parts, state).await?;
        let token = header_or_query(parts, "x-kith-visitor", "visitor_token").ok_or_else(|| {
            ApiError::Unauthorized {
                code: "visitor_required",
                message: "call session first and send its visitor_token in X-Kith-Visitor".into(),
            }
        })?;
        let Some(visitor_id) =
            token::verify(&website.token_secret, website.id.as_str(), token.trim())
        else {
            let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
            return Err(failed(
                state,
                ip,
                ApiError::Unauthorized {
                    code: "visitor_required",
                    message: "the visitor token is not valid for this website; call session again"
                        .into(),
                },
            ));
        };
        state
            .limiters
            .per_visitor
            .check(&visitor_id)
            .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
        Ok(VisitorAuth {
            website,
            visitor_id: VisitorId::new(visitor_id),
        })
    }
}

/// The client's address: the connection's peer, or the last untrusted hop of
/// `X-Forwarded-For` when the peer is a trusted proxy.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let trusted = &state.config.trusted_proxies;
        if !trusted.contains(&peer) {
            return Ok(ClientIp(peer));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        // Walk from the nearest hop back; the first address that is not one of our proxies is
        // the client.
        let client = forwarded
            .iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .copied()
            .unwrap_or(peer);
        Ok(ClientIp(client))
    }
}

/// Query parameters as decoded pairs (a key may repeat). Never rejects: malformed pairs are
/// decoded leniently, and each handler validates the values it reads.
pub struct QueryMap(pub Vec<(String, String)>);

impl QueryMap {
    /// Decodes a query string (without the `?`) the way every handler receives it.
    pub fn parse(query: &str) -> QueryMap {
        QueryMap(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(QueryMap::parse(parts.uri.query().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::url_param;

    #[test]
    fn query_params() {
        assert_eq!(url_param("a=1&b=2", "b").as_deref(), Some("2"));
        assert_eq!(url_param("a=1", "b"), None);
    }
}
