//! `/contacts/import`: the panel's CSV upload. The file is streamed to a temporary file (up to
//! [`UPLOAD_MAX_BYTES`], more than the API's 1 MiB body limit), imported by the store as the
//! CLI imports it (timeline actor: the admin), and the summary shown with the rejected rows.

use super::auth::PanelSession;
use super::{csrf, render, Chrome, ErrorPage};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kith_core::timeline::Actor;
use kith_store::{ImportError, ImportOptions, ImportSummary};
use std::io::Write;

/// The largest upload: 50 MiB is ~250,000 typical rows; bigger files go through
/// `kith import contacts`, which streams any size.
pub const UPLOAD_MAX_BYTES: usize = 50 * 1024 * 1024;
/// Rejected rows listed on the page (all of them are in the errors file's download).
const SHOWN_REJECTS: usize = 100;

/// One rejected row as the page lists it.
pub struct Reject {
    pub cells: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    chrome: Chrome,
    summary: Option<ImportSummary>,
    error: Option<String>,
    rejects: Vec<Reject>,
    more_rejects: u64,
}

fn page(status: StatusCode, session: &kith_store::AdminSession, p: ImportOutcome) -> Response {
    render(
        status,
        &ImportPage {
            chrome: Chrome::new(session, "contacts"),
            summary: p.summary,
            error: p.error,
            rejects: p.rejects,
            more_rejects: p.more_rejects,
        },
    )
}

#[derive(Default)]
struct ImportOutcome {
    summary: Option<ImportSummary>,
    error: Option<String>,
    rejects: Vec<Reject>,
    more_rejects: u64,
}

/// `GET /contacts/import`: the upload form.
pub async fn show(PanelSession(session): PanelSession) -> Response {
    page(StatusCode::OK, &session, ImportOutcome::default())
}

fn problem(session: &kith_store::AdminSession, status: StatusCode, message: String) -> Response {
    page(
        status,
        session,
        ImportOutcome {
            error: Some(message),
            ..Default::default()
        },
    )
}

/// `POST /contacts/import` (multipart: `csrf_token`, `file`).
pub async fn upload(
    State(state): State<AppState>,
    PanelSession(session): PanelSession,
    mut form: Multipart,
) -> Response {
    let dir = std::env::temp_dir().join(format!("kith-upload-{}", kith_store::new_id()));
    let done = receive_and_import(&state, &session, &mut form, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    done
}

async fn receive_and_import(
    state: &AppState,
    session: &kith_store::AdminSession,
    form: &mut Multipart,
    dir: &std::path::Path,
) -> Response {
    let mut token = None;
    let mut got_file = false;
    let file_path = dir.join("upload.csv");
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                let status = e.status();
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!(
                        "The file is larger than {} MiB; import it with `kith import contacts`.",
                        UPLOAD_MAX_BYTES >> 20
                    )
                } else {
                    format!("The upload could not be read: {}", e.body_text())
                };
                return problem(session, status, message);
            }
        };
        match field.name() {
            Some(csrf::FIELD) => token = field.text().await.ok(),
            Some("file") => {
                got_file = true;
                if let Err(r) = save(session, field, dir, &file_path).await {
                    return r;
                }
            }
            _ => {}
        }
    }
    if !csrf::matches(&session.csrf_token, token.as_deref()) {
        return ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's security token is missing or stale; reload the page and try again.",
        )
        .into_response();
    }
    if !got_file {
        return problem(
            session,
            StatusCode::BAD_REQUEST,
            "Choose a CSV file to import.".into(),
        );
    }
    let errors_path = dir.join("errors.csv");
    let opts = ImportOptions {
        actor: Actor::Admin(session.admin_id.clone()),
        errors_path: errors_path.clone(),
        start_line: 0,
        stop: None,
    };
    let outcome = state
        .store
        .org(&session.org_id)
        .import_csv(&file_path, &opts, &mut |_| {})
        .await;
    match outcome {
        Ok(summary) => {
            let (rejects, more_rejects) = read_rejects(&errors_path, summary.rejected);
            page(
                StatusCode::OK,
                session,
                ImportOutcome {
                    summary: Some(ImportSummary {
                        // The file is deleted with the upload: the page lists the rows instead.
                        errors_file: None,
                        ..summary
                    }),
                    error: None,
                    rejects,
                    more_rejects,
                },
            )
        }
        Err(ImportError::Refused(m)) => problem(
            session,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("The file was not imported: {m}."),
        ),
        Err(e @ ImportError::Stopped { .. }) => {
            tracing::warn!(error = %e, "panel import stopped");
            problem(
                session,
                StatusCode::SERVICE_UNAVAILABLE,
                // The CLI's "--start-line" advice applies to the panel as a re-upload: rows
                // already imported come back unchanged.
                format!("{e}. Uploading the same file again is safe: imported rows come back as unchanged."),
            )
        }
    }
}

/// Streams the `file` field to `path`.
async fn save(
    session: &kith_store::AdminSession,
    mut field: axum::extract::multipart::Field<'_>,
    dir: &std::path::Path,
    path: &std::path::Path,
) -> Result<(), Response> {
    let failed = |e: std::io::Error| {
        tracing::error!(error = %e, "saving an upload");
        problem(
            session,
            StatusCode::INTERNAL_SERVER_ERROR,
            "The upload could not be stored on the server.".into(),
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(failed)?);
    loop {
        match field.chunk().await {
            Ok(Some(bytes)) => out.write_all(&bytes).map_err(failed)?,
            Ok(None) => break,
            Err(e) => {
                let status = e.status();
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!(
                        "The file is larger than {} MiB; import it with `kith import contacts`.",
                        UPLOAD_MAX_BYTES >> 20
                    )
                } else {
                    format!("The upload could not be read: {}", e.body_text())
                };
                return Err(problem(session, status, message));
            }
        }
    }
    out.flush().map_err(failed)
}

/// The first rejected rows of the errors file, and how many more there are.
fn read_rejects(path: &std::path::Path, total: u64) -> (Vec<Reject>, u64) {
    let Ok(mut r) = csv::ReaderBuilder::new().flexible(true).from_path(path) else {
        return (Vec::new(), 0);
    };
    let rows: Vec<Reject> = r
        .records()
        .take(SHOWN_REJECTS)
        .filter_map(Result::ok)
        .map(|rec| {
            let n = rec.len();
            Reject {
                cells: rec
                    .iter()
                    .take(n.saturating_sub(1))
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: rec.get(n.saturating_sub(1)).unwrap_or_default().to_string(),
            }
        })
        .collect();
    let more = total.saturating_sub(rows.len() as u64);
    (rows, more)
}
