//! The OpenAPI 3 document, generated from the handlers' annotations. A modifier adds what
//! every operation shares (credentials and the error answers the extractors and the error
//! type give), so the document says what the server really answers without repeating it on
//! each handler. `scripts/schemathesis.sh` checks the document against the running server.

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{admin, health, widget};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Kith", description = "Self-hosted live chat whose heart is a contacts CRM. \
        Errors are `{\"error\": {\"code\", \"message\", …}}`."),
    paths(
        widget::session, widget::identify, widget::post_message, widget::conversations,
        widget::messages, widget::escalate, widget::events,
        admin::contacts::list_contacts, admin::contacts::get_contact,
        admin::contacts::patch_contact, admin::contacts::timeline,
        admin::contacts::contact_conversations,
        admin::contacts::delete_contact, admin::contacts::export_contact,
        admin::bulk::preview, admin::bulk::start, admin::bulk::one, admin::bulk::recent,
        admin::lists::lists, admin::lists::get_list, admin::lists::create_list,
        admin::lists::update_list, admin::lists::delete_list,
        admin::conversations::get_conversation, admin::conversations::conversation_messages,
        admin::conversations::reply, admin::conversations::escalate,
        admin::conversations::resolve, admin::conversations::reopen,
        admin::websites::websites, admin::websites::create_website,
        admin::websites::update_website, admin::websites::rotate_secret,
        admin::websites::retire_previous_secret, admin::websites::audit,
        admin::events::events,
        admin::merges::merge_contact, admin::merges::get_merge, admin::merges::undo_merge,
        admin::notes::list_notes, admin::notes::add_note, admin::notes::edit_note,
        admin::notes::delete_note,
        admin::contacts::export_contacts,
        admin::webhooks::list_webhooks, admin::webhooks::create_webhook,
        admin::webhooks::get_webhook, admin::webhooks::update_webhook,
        admin::webhooks::delete_webhook, admin::webhooks::deliveries,
        admin::webhooks::retry_delivery,
        health::healthz, health::readyz, health::metrics,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Conventions),
    tags((name = "widget", description = "Called by the chat widget: `X-Kith-Website` always, `X-Kith-Visitor` after `session`."),
         (name = "contacts", description = "Admin API: `Authorization: Bearer <api token>`."),
         (name = "lists", description = "Saved segments with exact counts."),
         (name = "bulk", description = "Bulk actions over every contact of a list or filter: preview the count, confirm it, follow the progress."),
         (name = "conversations"), (name = "websites"),
         (name = "webhooks", description = "Signed event deliveries to your endpoints, with a delivery log (docs/webhooks.md)."),
         (name = "operations"))
)]
pub struct ApiDoc;

/// Credentials and shared error answers for every operation.
struct Conventions;

const ADMIN: &str = "bearer";
const WEBSITE: &str = "website_key";
const VISITOR: &str = "visitor_token";
/// The admin panel's session cookie, the other admin credential; with it, state-changing
/// calls also need the session's CSRF token.
const SESSION: &str = "session_cookie";
const CSRF: &str = "csrf_token";

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            WEBSITE,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Kith-Website"))),
        );
        components.add_security_scheme(
            VISITOR,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Kith-Visitor"))),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "kith_session",
                "The admin panel's session cookie (set by signing in at /signin).",
            ))),
        );
        components.add_security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token (<meta name=\"csrf-token\"> of any panel page); \
                 needed with the session cookie on POST, PUT, PATCH and DELETE.",
            ))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (writes, op) in [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.put),
                (true, &mut item.patch),
                (true, &mut item.delete),
            ] {
                let Some(op) = op else { continue };
                conventions(path, op);
                if path.starts_with("/api/v1/") {
                    session_alternative(op, writes);
                }
            }
        }
        add_links(openapi);
    }
}

/// An admin operation also accepts the panel's session cookie; a state-changing one then
/// needs the CSRF token too, and answers 403 `csrf` without it.
fn session_alternative(op: &mut Operation, writes: bool) {
    let none: [&str; 0] = [];
    let mut cookie = SecurityRequirement::new(SESSION, none);
    if writes {
        cookie = cookie.add(CSRF, none);
        op.responses
            .responses
            .entry("403".to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(
                        "`csrf`: called with the session cookie but without its CSRF token",
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build()
                    .into()
            });
    }
    op.security.get_or_insert_with(Vec::new).push(cookie);
}

fn operation_mut<'a>(
    openapi: &'a mut utoipa::openapi::OpenApi,
    method: &str,
    path: &str,
) -> Option<&'a mut Operation> {
    let item = openapi.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

const CONVERSATION_OPS: &[(&str, &str)] = &[
    ("get", "/api/widget/v1/conversations/{id}/messages"),
    ("post", "/api/widget/v1/conversations/{id}/escalate"),
    ("get", "/api/v1/conversations/{id}"),
    ("get", "/api/v1/conversations/{id}/messages"),
    ("post", "/api/v1/conversations/{id}/messages"),
    ("post", "/api/v1/conversations/{id}/escalate"),
    ("post", "/api/v1/conversations/{id}/resolve"),
    ("post", "/api/v1/conversations/{id}/reopen"),
];
const CONTACT_OPS: &[(&str, &str)] = &[
    ("get", "/api/v1/contacts/{id}"),
    ("patch", "/api/v1/contacts/{id}"),
    ("get", "/api/v1/contacts/{id}/timeline"),
    ("get", "/api/v1/contacts/{id}/conversations"),
];
const LIST_OPS: &[(&str, &str)] = &[
    ("get", "/api/v1/lists/{id}"),
    ("patch", "/api/v1/lists/{id}"),
    ("delete", "/api/v1/lists/{id}"),
];

/// An answer that carries an id other operations take as `{id}`.
struct IdLink {
    method: &'static str,
    path: &'static str,
    status: &'static str,
    /// JSON pointer into the answer.
    pointer: &'static str,
    /// The operations the id opens.
    targets: &'static [(&'static str, &'static str)],
}

const fn link(
    method: &'static str,
    path: &'static str,
    status: &'static str,
    pointer: &'static str,
    targets: &'static [(&'static str, &'static str)],
) -> IdLink {
    IdLink {
        method,
        path,
        status,
        pointer,
        targets,
    }
}

const LINKS: &[IdLink] = &[
    link(
        "post",
        "/api/widget/v1/messages",
        "201",
        "/conversation_id",
        CONVERSATION_OPS,
    ),
    link(
        "post",
        "/api/widget/v1/messages",
        "201",
        "/contact_id",
        CONTACT_OPS,
    ),
    link(
        "post",
        "/api/v1/conversations/{id}/messages",
        "201",
        "/conversation_id",
        CONVERSATION_OPS,
    ),
    link(
        "post",
        "/api/v1/conversations/{id}/escalate",
        "200",
        "/contact_id",
        CONTACT_OPS,
    ),
    link("get", "/api/v1/contacts", "200", "/items/0/id", CONTACT_OPS),
    link("post", "/api/v1/lists", "201", "/id", LIST_OPS),
];

/// OpenAPI links from answers to the operations their ids open, so clients (and stateful
/// API testing) can follow them. Operation ids are made unique first: the widget's and the
/// admin API's handlers share names (`escalate`, `messages`).
fn add_links(openapi: &mut utoipa::openapi::OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        if path.starts_with("/api/widget/") {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                if let Some(id) = &op.operation_id {
                    if !id.starts_with("widget_") {
                        op.operation_id = Some(format!("widget_{id}"));
                    }
                }
            }
        }
    }
    for l in LINKS {
        let mut links = vec![];
        for &(t_method, t_path) in l.targets {
            let Some(target) = operation_mut(openapi, t_method, t_path) else {
                continue;
            };
            let Some(id) = target.operation_id.clone() else {
                continue;
            };
            // utoipa 5.5 serializes `Link::operation_id` as `operation_id`, not OpenAPI's
            // `operationId`; the flattened extensions map writes the right key.
            let field =
                utoipa::openapi::extensions::Extensions::from_iter([("operationId", id.clone())]);
            links.push((
                id,
                utoipa::openapi::link::LinkBuilder::new()
                    .parameter("id", format!("$response.body#{}", l.pointer))
                    .extensions(Some(field))
                    .build(),
            ));
        }
        let Some(source) = operation_mut(openapi, l.method, l.path) else {
            continue;
        };
        if let Some(RefOr::T(response)) = source.responses.responses.get_mut(l.status) {
            for (name, link) in links {
                response.links.insert(name, RefOr::T(link));
            }
        }
    }
}

fn conventions(path: &str, op: &mut Operation) {
    let widget = path.starts_with("/api/widget/");
    let admin = path.starts_with("/api/v1/");
    if widget && op.security.is_none() {
        // `session` needs only the website; every other widget call a visitor too.
        let mut schemes = vec![WEBSITE];
        if !path.ends_with("/session") {
            schemes.push(VISITOR);
        }
        let none: [&str; 0] = [];
        op.security = Some(vec![schemes
            .iter()
            .fold(SecurityRequirement::default(), |req, s| req.add(*s, none))]);
    }
    let has_body = op.request_body.is_some();
    let has_query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    let pages = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.name == "cursor" || p.name == "before");
    // `limit` is 1 to PAGE_LIMIT_MAX everywhere (SPEC); outside that the answer is 422.
    for p in op.parameters.iter_mut().flatten() {
        if p.name == "limit" {
            p.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(kith_core::limits::PAGE_LIMIT_MAX as f64))
                    .into(),
            );
        }
    }
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .build()
                    .into()
            });
    };
    if has_body || pages {
        add(
            "400",
            "`bad_request`: the body is not a JSON object, or the cursor is not one this server gave",
        );
    }
    if widget || admin {
        add("401", "`unauthorized`, `website_required`, `unknown_website` or `visitor_required`: missing or bad credentials");
        add("429", "`rate_limited`; `Retry-After` says when to retry");
        add(
            "503",
            "`unavailable`: the database does not answer, or too many concurrent changes; retry",
        );
    }
    if widget {
        add(
            "403",
            "`origin_not_allowed`: the website does not allow this `Origin`",
        );
    }
    if path.contains('{') {
        add("404", "`not_found`: no such resource in this organization");
    }
    if has_body {
        add(
            "413",
            "`payload_too_large`: the body is over the server's limit",
        );
    }
    if has_body || has_query {
        add("422", "`invalid`: a value is invalid; `field` names it");
    }
    // Every error answer has the one error shape.
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let is_error = status.starts_with('4') || status.starts_with('5');
        if is_error && response.content.is_empty() {
            response.content.insert(
                "application/json".into(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
        }
        if status == "429" && !response.headers.contains_key("Retry-After") {
            response.headers.insert(
                "Retry-After".into(),
                HeaderBuilder::new()
                    .schema(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::Integer),
                    )
                    .description(Some("seconds to wait"))
                    .build(),
            );
        }
    }
}

// Field shapes shared by the request bodies, as the parsers in kith-core accept them (limits
// from `kith_core::limits`). Text is trimmed first and empty counts as absent; control
// characters are refused.

use kith_core::limits::{
    FIELD_MAX_CHARS, METADATA_KEY_MAX_CHARS, METADATA_MAX_KEYS, METADATA_VALUE_MAX_CHARS, TAGS_MAX,
    TAG_MAX_CHARS,
};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};

fn nullable(t: Type) -> SchemaType {
    SchemaType::from_iter([t, Type::Null])
}

fn string(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max))
}

fn closed(o: ObjectBuilder) -> ObjectBuilder {
    o.additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

fn tag_array(description: &str) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(string(TAG_MAX_CHARS).min_length(Some(1)))
        .max_items(Some(TAGS_MAX))
        .description(Some(description))
}

/// `tags` of a contact edit: the new set (`null` clears it).
pub fn tags_schema() -> impl Into<RefOr<Schema>> {
    tag_array("Replaces the set: at most 100 tags of 1 to 64 characters; `null` clears it.")
        .schema_type(nullable(Type::Array))
}

fn metadata_value() -> Schema {
    OneOfBuilder::new()
        .item(string(METADATA_VALUE_MAX_CHARS))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// `metadata` of a contact edit or an identify: a flat object, merged key by key.
pub fn metadata_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Object))
        .max_properties(Some(METADATA_MAX_KEYS))
        .property_names(Some(string(METADATA_KEY_MAX_CHARS).min_length(Some(1))))
        .additional_properties(Some(metadata_value()))
        .description(Some(
            "Flat object: keys of 1 to 64 characters, values a string (≤ 1,000 characters), \
             number, boolean or `null` (deletes the key); at most 100 keys on a contact.",
        ))
}

/// A list's filter as `ListFilter::parse` reads it: unknown keys are refused.
pub fn filter_schema() -> impl Into<RefOr<Schema>> {
    let time_range = || {
        closed(ObjectBuilder::new().schema_type(nullable(Type::Object)))
            .property(
                "after",
                ObjectBuilder::new()
                    .schema_type(nullable(Type::String))
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::DateTime,
                    ))),
            )
            .property(
                "before",
                ObjectBuilder::new()
                    .schema_type(nullable(Type::String))
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::DateTime,
                    ))),
            )
    };
    let count_range = || {
        let bound = || {
            ObjectBuilder::new()
                .schema_type(nullable(Type::Integer))
                .minimum(Some(0))
        };
        closed(ObjectBuilder::new().schema_type(nullable(Type::Object)))
            .property("min", bound())
            .property("max", bound())
    };
    let condition = closed(ObjectBuilder::new().schema_type(Type::Object))
        .min_properties(Some(1))
        .property(
            "eq",
            OneOfBuilder::new()
                .item(string(METADATA_VALUE_MAX_CHARS))
                .item(ObjectBuilder::new().schema_type(Type::Number))
                .item(ObjectBuilder::new().schema_type(Type::Boolean)),
        )
        .property("exists", ObjectBuilder::new().schema_type(Type::Boolean));
    closed(ObjectBuilder::new().schema_type(nullable(Type::Object)))
        .description(Some(
            "Every key optional, all given keys ANDed; unknown keys answer 422 naming them.",
        ))
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(nullable(Type::String))
                .enum_values(Some(["lead", "customer"])),
        )
        .property(
            "tags",
            closed(ObjectBuilder::new().schema_type(nullable(Type::Object)))
                .property("all", tag_array("Contacts with every one of these tags."))
                .property(
                    "any",
                    tag_array("Contacts with at least one of these tags."),
                )
                .property("none", tag_array("Contacts with none of these tags.")),
        )
        .property(
            "q",
            string(FIELD_MAX_CHARS)
                .schema_type(nullable(Type::String))
                .description(Some("Case-insensitive substring, one line.")),
        )
        .property(
            "metadata",
            ObjectBuilder::new()
                .schema_type(nullable(Type::Object))
                .max_properties(Some(METADATA_MAX_KEYS))
                .property_names(Some(string(METADATA_KEY_MAX_CHARS).min_length(Some(1))))
                .additional_properties(Some(condition)),
        )
        .property("last_seen_at", time_range())
        .property("created_at", time_range())
        .property("message_count", count_range())
        .property("conversation_count", count_range())
        .property(
            "website_id",
            ObjectBuilder::new()
                .schema_type(nullable(Type::String))
                .min_length(Some(1)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Links are matched by path and status: a renamed route must not drop them silently.
    #[test]
    fn every_link_is_in_the_document() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for l in LINKS {
            let links = &doc["paths"][l.path][l.method]["responses"][l.status]["links"];
            for (method, path) in l.targets {
                let id = doc["paths"][path][method]["operationId"].as_str();
                let id = id.unwrap_or_else(|| panic!("{method} {path} is not documented"));
                assert_eq!(
                    links[id]["operationId"], id,
                    "{} {} {} has no link to {id}",
                    l.method, l.path, l.status
                );
            }
        }
        // Operation ids are unique, as links need.
        let mut ids = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(id) = op["operationId"].as_str() {
                    assert!(ids.insert(id.to_string()), "operationId {id} twice");
                }
            }
        }
    }
}
