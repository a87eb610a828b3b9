//! `/settings`: add an admin to the organization, change one's own password.

use super::auth::{CsrfForm, PanelSession};
use super::{render, Chrome, ErrorPage};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kith_store::{AdminError, AdminSession};

/// One form's outcome: a success or an error message, and what to fill back in.
#[derive(Default)]
pub struct FormState {
    pub ok: Option<String>,
    pub error: Option<String>,
    pub email: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    add: FormState,
    password: FormState,
}

fn page(
    status: StatusCode,
    session: &AdminSession,
    add: FormState,
    password: FormState,
) -> Response {
    render(
        status,
        &SettingsPage {
            chrome: Chrome::new(session, "settings"),
            add,
            password,
        },
    )
}

/// `GET /settings`
pub async fn show(PanelSession(session): PanelSession) -> Response {
    page(
        StatusCode::OK,
        &session,
        FormState::default(),
        FormState::default(),
    )
}

/// A field name as the form labels it.
fn label(field: &str) -> &str {
    match field {
        "email" => "Email",
        "password" => "Password",
        "new_password" => "New password",
        other => other,
    }
}

/// `POST /settings/admins`: email and password of the new admin.
pub async fn add_admin(State(state): State<AppState>, form: CsrfForm) -> Response {
    let email = form.field("email").trim().to_string();
    let s = &form.session;
    let (status, outcome) = match state
        .store
        .org(&s.org_id)
        .add_admin(&email, form.field("password"))
        .await
    {
        Ok(_) => (
            StatusCode::OK,
            FormState {
                ok: Some(format!("{email} is now an admin and can sign in.")),
                ..Default::default()
            },
        ),
        Err(e) => {
            let (status, message) = match e {
                AdminError::EmailTaken => (
                    StatusCode::CONFLICT,
                    format!("{email} is already an admin of this organization."),
                ),
                AdminError::Invalid(v) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{} {}.", label(&v.field), v.message),
                ),
                AdminError::WrongPassword => unreachable!("adding an admin checks no password"),
                AdminError::Store(e) => return ErrorPage::from_api(e.into()).into_response(),
            };
            (
                status,
                FormState {
                    error: Some(message),
                    email,
                    ..Default::default()
                },
            )
        }
    };
    page(status, s, outcome, FormState::default())
}

/// `POST /settings/password`: current and new password. The admin's other sessions end.
pub async fn change_password(State(state): State<AppState>, form: CsrfForm) -> Response {
    let s = &form.session;
    let result = state
        .store
        .org(&s.org_id)
        .change_admin_password(
            &s.admin_id,
            &s.session_id,
            form.field("current_password"),
            form.field("new_password"),
        )
        .await;
    let (status, outcome) = match result {
        Ok(()) => (
            StatusCode::OK,
            FormState {
                ok: Some("Your password was changed. Your other sessions were signed out.".into()),
                ..Default::default()
            },
        ),
        Err(e) => {
            let (status, message) = match e {
                AdminError::WrongPassword => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The current password is not right.".to_string(),
                ),
                AdminError::Invalid(v) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{} {}.", label(&v.field), v.message),
                ),
                AdminError::EmailTaken => unreachable!("changing a password adds no email"),
                AdminError::Store(e) => return ErrorPage::from_api(e.into()).into_response(),
            };
            (
                status,
                FormState {
                    error: Some(message),
                    ..Default::default()
                },
            )
        }
    };
    page(status, s, FormState::default(), outcome)
}
