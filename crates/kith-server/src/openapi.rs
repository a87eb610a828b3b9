//! The OpenAPI 3 document, generated from the handlers' annotations.

use crate::routes::{admin, health, widget};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Kith", description = "Self-hosted live chat whose heart is a contacts CRM. \
        Errors are `{\"error\": {\"code\", \"message\", …}}`."),
    paths(
        widget::session, widget::identify, widget::post_message, widget::conversations,
        widget::messages, widget::escalate, widget::events,
        admin::list_contacts, admin::lists, admin::get_list, admin::create_list,
        admin::update_list, admin::delete_list, admin::get_contact, admin::patch_contact, admin::timeline,
        admin::contact_conversations, admin::get_conversation, admin::conversation_messages,
        admin::reply, admin::escalate, admin::resolve, admin::websites, admin::create_website,
        admin::events,
        health::healthz, health::readyz, health::metrics,
    ),
    modifiers(&Bearer),
    tags((name = "widget", description = "Called by the chat widget: `X-Kith-Website` always, `X-Kith-Visitor` after `session`."),
         (name = "contacts", description = "Admin API: `Authorization: Bearer <api token>`."),
         (name = "lists", description = "Saved segments with exact counts."),
         (name = "conversations"), (name = "websites"), (name = "operations"))
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
