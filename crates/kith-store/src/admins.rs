//! Admins of an organization and their admin-panel sessions: password sign-in, sessions
//! that expire (idle and absolute), adding an admin, changing one's own password.
//!
//! A session cookie is `ks_<org_id>_<secret>`: the organization it names scopes the look-up
//! (as API tokens do), and only SHA-256 of the whole value is stored.

use crate::conn::{args, Conn};
use crate::ids::{new_id, now_ms, random_hex, sha256_hex};
use crate::orgs::{hash_password, org_of};
use crate::{read, transact, OrgStore, Store, StoreError};
use kith_core::{Email, OrgId, ValidationError};
use std::sync::LazyLock;

/// How long a session lives: `idle_ms` after its last use, and never past `absolute_ms` after
/// sign-in.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl Default for SessionPolicy {
    /// 12 hours idle, 7 days at most.
    fn default() -> Self {
        SessionPolicy {
            idle_ms: 12 * 3600 * 1000,
            absolute_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// A new random secret (32 bytes from the OS, hex), e.g. a form's anti-forgery token.
pub fn new_secret() -> String {
    random_hex(32)
}

/// `last_seen_at` is written at most this often, so browsing does not write on every page.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A new admin's password: at least this many characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longer passwords are refused (argon2 work grows with the input; nobody types more).
pub const PASSWORD_MAX_CHARS: usize = 256;

/// A signed-in admin, as every panel page and cookie-authenticated API call sees them.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub org_id: OrgId,
    pub org_name: String,
    pub admin_id: String,
    pub email: String,
    pub session_id: String,
    /// Sent back by the panel on every state-changing request.
    pub csrf_token: String,
}

/// A session just created: the cookie value (shown to the browser once, stored hashed).
pub struct NewSession {
    pub cookie: String,
    pub session: AdminSession,
}

/// Never prints the cookie.
impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("cookie", &crate::model::REDACTED)
            .field("session", &self.session)
            .finish()
    }
}

/// Why adding an admin or changing a password did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("an admin with this email already exists in this organization")]
    EmailTaken,
    #[error("the current password is not right")]
    WrongPassword,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a correct email and password belong to.
#[derive(Debug, Clone)]
pub struct VerifiedAdmin {
    pub org_id: OrgId,
    pub admin_id: String,
}

/// A hash no password matches, verified when the email is unknown so that an unknown email
/// costs as much time as a wrong password (no hint whether the email exists).
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| hash_password(&random_hex(16)).ok());

fn password_matches(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Argon2 on a blocking thread: it takes tens of milliseconds of CPU.
async fn verify_blocking(password: &str, hashes: Vec<String>) -> Result<Option<usize>, StoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        // The dummy hash is made by the first verification of any kind, so an unknown email
        // never pays for it alone.
        LazyLock::force(&DUMMY_HASH);
        if hashes.is_empty() {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                password_matches(&password, dummy);
            }
            return None;
        }
        // Every candidate is verified (no early exit), so timing says little about which.
        let mut found = None;
        for (i, h) in hashes.iter().enumerate() {
            if password_matches(&password, h) && found.is_none() {
                found = Some(i);
            }
        }
        found
    })
    .await
    .map_err(StoreError::PasswordHashTask)
}

async fn hash_blocking(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(StoreError::PasswordHashTask)?
}

fn check_new_password(field: &str, password: &str) -> Result<(), ValidationError> {
    let n = password.chars().count();
    if n < PASSWORD_MIN_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    if n > PASSWORD_MAX_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

type SessionRow = (String, String, String, String, String, String, i64, i64);

impl Store {
    /// The admin an email and password sign in, or `None`. An email may be an admin of
    /// several organizations; the first (oldest) whose password matches wins.
    pub async fn verify_admin_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<VerifiedAdmin>, StoreError> {
        let email_lower = email.trim().to_lowercase();
        let rows: Vec<(String, String, String)> =
            if email_lower.is_empty() || password.chars().count() > PASSWORD_MAX_CHARS {
                vec![]
            } else {
                read!(self, |c| c
                    .fetch_all(
                        "SELECT org_id, id, password_hash FROM admins WHERE email_lower = $1 \
                     ORDER BY created_at, org_id",
                        args![&email_lower],
                    )
                    .await)?
            };
        let hashes = rows.iter().map(|r| r.2.clone()).collect();
        Ok(verify_blocking(password, hashes)
            .await?
            .map(|i| VerifiedAdmin {
                org_id: OrgId::new(rows[i].0.clone()),
                admin_id: rows[i].1.clone(),
            }))
    }

    /// Starts a session for an admin (after `verify_admin_password`).
    pub async fn create_admin_session(
        &self,
        org_id: &OrgId,
        admin_id: &str,
        policy: SessionPolicy,
    ) -> Result<NewSession, StoreError> {
        let cookie = format!("ks_{org_id}_{}", random_hex(32));
        let csrf = random_hex(32);
        let id = new_id();
        let now = now_ms();
        transact!(self, |c| async {
            c.execute(
                "INSERT INTO admin_sessions (org_id, id, admin_id, token_hash, csrf_token, \
                 created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
                args![
                    org_id,
                    &id,
                    admin_id,
                    sha256_hex(&cookie),
                    &csrf,
                    now,
                    now + policy.absolute_ms
                ],
            )
            .await?;
            Ok::<_, StoreError>(())
        }
        .await)?;
        let session = self
            .admin_session_at(&cookie, now, policy)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(NewSession { cookie, session })
    }

    /// The live session a cookie names, or `None` (unknown, ended or expired).
    pub async fn admin_session(
        &self,
        cookie: &str,
        policy: SessionPolicy,
    ) -> Result<Option<AdminSession>, StoreError> {
        self.admin_session_at(cookie, now_ms(), policy).await
    }

    /// `admin_session` as seen at `now` (unix ms): expiry is testable without waiting. An
    /// expired session is deleted; a live one has `last_seen_at` moved to `now` when it is
    /// more than a minute old.
    pub async fn admin_session_at(
        &self,
        cookie: &str,
        now: i64,
        policy: SessionPolicy,
    ) -> Result<Option<AdminSession>, StoreError> {
        let Some(org_id) = org_of(cookie, "ks_") else {
            return Ok(None);
        };
        let hash = sha256_hex(cookie);
        let row: Option<SessionRow> = read!(self, |c| c
            .fetch_optional(
                "SELECT s.id, s.admin_id, s.csrf_token, a.email, o.name, o.org_id, \
                        s.last_seen_at, s.expires_at \
                 FROM admin_sessions s \
                 JOIN admins a ON a.org_id = s.org_id AND a.id = s.admin_id \
                 JOIN organizations o ON o.org_id = s.org_id \
                 WHERE s.org_id = $1 AND s.token_hash = $2",
                args![&org_id, &hash],
            )
            .await)?;
        let Some((id, admin_id, csrf_token, email, org_name, org_id, last_seen, expires)) = row
        else {
            return Ok(None);
        };
        if now >= expires || now - last_seen >= policy.idle_ms {
            self.delete_session_row(&org_id, &id).await?;
            return Ok(None);
        }
        if now - last_seen >= TOUCH_EVERY_MS {
            transact!(self, |c| async {
                c.execute(
                    "UPDATE admin_sessions SET last_seen_at = $3 \
                     WHERE org_id = $1 AND id = $2 AND last_seen_at < $3",
                    args![&org_id, &id, now],
                )
                .await?;
                Ok::<_, StoreError>(())
            }
            .await)?;
        }
        Ok(Some(AdminSession {
            org_id: OrgId::new(org_id),
            org_name,
            admin_id,
            email,
            session_id: id,
            csrf_token,
        }))
    }

    /// Ends the session a cookie names (sign-out). Unknown cookies are fine.
    pub async fn end_admin_session(&self, cookie: &str) -> Result<(), StoreError> {
        let Some(org_id) = org_of(cookie, "ks_") else {
            return Ok(());
        };
        let hash = sha256_hex(cookie);
        transact!(self, |c| async {
            c.execute(
                "DELETE FROM admin_sessions WHERE org_id = $1 AND token_hash = $2",
                args![&org_id, &hash],
            )
            .await?;
            Ok::<_, StoreError>(())
        }
        .await)
    }

    async fn delete_session_row(&self, org_id: &str, id: &str) -> Result<(), StoreError> {
        transact!(self, |c| async {
            c.execute(
                "DELETE FROM admin_sessions WHERE org_id = $1 AND id = $2",
                args![org_id, id],
            )
            .await?;
            Ok::<_, StoreError>(())
        }
        .await)
    }
}

impl OrgStore<'_> {
    /// Every admin of the organization as (id, email), for naming who did what (the table
    /// holds a handful of rows per organization).
    pub async fn admin_emails(self) -> Result<Vec<(String, String)>, StoreError> {
        let org_id = self.org_id();
        read!(self.store, |c| c
            .fetch_all(
                "SELECT id, email FROM admins WHERE org_id = $1 ORDER BY created_at, id",
                args![org_id],
            )
            .await)
    }

    /// Adds an admin to an organization. The email is unique per organization (compared
    /// case-insensitively); the password has at least `PASSWORD_MIN_CHARS` characters.
    /// Answers the new admin's id.
    pub async fn add_admin(self, email: &str, password: &str) -> Result<String, AdminError> {
        let org_id = self.org_id();
        let email = Email::parse("email", email)?
            .ok_or_else(|| ValidationError::new("email", "is required"))?;
        check_new_password("password", password)?;
        let email_lower = email.as_str().to_lowercase();
        let taken: Option<(String,)> = read!(self.store, |c| c
            .fetch_optional(
                "SELECT id FROM admins WHERE org_id = $1 AND email_lower = $2",
                args![org_id, &email_lower],
            )
            .await)?;
        if taken.is_some() {
            return Err(AdminError::EmailTaken);
        }
        let hash = hash_blocking(password).await?;
        let id = new_id();
        let inserted = transact!(self.store, |c| async {
            // A concurrent add of the same email loses on the unique key, and finds it taken
            // when the transaction is retried.
            let n = c
                .execute(
                    "INSERT INTO admins (org_id, id, email, email_lower, password_hash, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (org_id, email_lower) DO NOTHING",
                    args![org_id, &id, email.as_str(), &email_lower, &hash, now_ms()],
                )
                .await?;
            Ok::<_, StoreError>(n)
        }
        .await)?;
        if inserted == 0 {
            return Err(AdminError::EmailTaken);
        }
        Ok(id)
    }

    /// Changes an admin's own password, given the current one. Every other session of that
    /// admin ends (`keep_session_id`, the one making the change, stays).
    pub async fn change_admin_password(
        self,
        admin_id: &str,
        keep_session_id: &str,
        current: &str,
        new: &str,
    ) -> Result<(), AdminError> {
        let org_id = self.org_id();
        let row: Option<(String,)> = read!(self.store, |c| c
            .fetch_optional(
                "SELECT password_hash FROM admins WHERE org_id = $1 AND id = $2",
                args![org_id, admin_id],
            )
            .await)?;
        let Some((hash,)) = row else {
            return Err(StoreError::NotFound.into());
        };
        if current.chars().count() > PASSWORD_MAX_CHARS
            || verify_blocking(current, vec![hash]).await?.is_none()
        {
            return Err(AdminError::WrongPassword);
        }
        check_new_password("new_password", new)?;
        let new_hash = hash_blocking(new).await?;
        transact!(self.store, |c| async {
            c.execute(
                "UPDATE admins SET password_hash = $3 WHERE org_id = $1 AND id = $2",
                args![org_id, admin_id, &new_hash],
            )
            .await?;
            c.execute(
                "DELETE FROM admin_sessions WHERE org_id = $1 AND admin_id = $2 AND id <> $3",
                args![org_id, admin_id, keep_session_id],
            )
            .await?;
            Ok::<_, StoreError>(())
        }
        .await)?;
        Ok(())
    }
}
