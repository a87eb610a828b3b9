//! Organizations, websites, admins and API tokens.

use crate::conn::{args, Conn};
use crate::contacts::Page;
use crate::ids::{new_id, now_ms, random_hex, sha256_hex};
use crate::model::{AuditEntry, AuditRow, Website, WebsiteRow, REDACTED};
use crate::{read, read_point, transact, OrgStore, Store, StoreError};
use kith_core::verify::VerificationMode;
use kith_core::{OrgId, WebsiteId};
use serde::Serialize;

/// What `kith org create` prints: everything needed to sign in, call the API and install the
/// widget. Secrets appear here once; the token is stored only as a hash.
#[derive(Clone, Serialize)]
pub struct Credentials {
    pub org_id: OrgId,
    pub api_token: String,
    pub website_key: String,
    pub identity_secret: String,
    pub admin_email: String,
    pub admin_password: String,
}

/// Secrets are printed on purpose (`kith org create`), never by accident through `{:?}`.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("org_id", &self.org_id)
            .field("api_token", &REDACTED)
            .field("website_key", &self.website_key)
            .field("identity_secret", &REDACTED)
            .field("admin_email", &self.admin_email)
            .field("admin_password", &REDACTED)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct NewOrg {
    pub name: String,
    pub admin_email: String,
    pub website_name: String,
}

const WEBSITE_COLUMNS: &str = "org_id, id, name, website_key, identity_secret, \
     previous_identity_secret, token_secret, identity_verification, allowed_origins, created_at";

/// The organization a public key or token names. Keys carry it (`wk_<org>_…`, `kt_<org>_…`)
/// so every lookup is scoped by organization, as a sharded database needs.
pub(crate) fn org_of(key: &str, prefix: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?;
    let (org, secret) = rest.split_once('_')?;
    (!org.is_empty()
        && !secret.is_empty()
        && org.len() <= 64
        && org.chars().all(|c| c.is_ascii_alphanumeric()))
    .then(|| org.to_string())
}

pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(StoreError::PasswordHash)
}

impl Store {
    /// Creates an organization with one website (identity verification on), one admin with a
    /// random password and one API token.
    pub async fn create_org(&self, new: &NewOrg) -> Result<Credentials, StoreError> {
        let name = kith_core::validate::required_name("name", &new.name)?;
        let name = name.as_str();
        let org_id = new_id();
        let admin_password = random_hex(12);
        let password = admin_password.clone();
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(StoreError::PasswordHashTask)??;
        let api_token = format!("kt_{org_id}_{}", random_hex(24));
        let website_key = format!("wk_{org_id}_{}", random_hex(8));
        let identity_secret = random_hex(32);
        let now = now_ms();
        let admin_email = new.admin_email.trim().to_string();
        transact!(self, |c| async {
            c.execute(
                "INSERT INTO organizations (org_id, name, created_at) VALUES ($1, $2, $3)",
                args![&org_id, name, now],
            )
            .await?;
            c.execute(
                "INSERT INTO admins (org_id, id, email, email_lower, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                args![
                    &org_id,
                    new_id(),
                    &admin_email,
                    admin_email.to_lowercase(),
                    &password_hash,
                    now
                ],
            )
            .await?;
            c.execute(
                "INSERT INTO api_tokens (org_id, id, name, token_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                args![&org_id, new_id(), "default", sha256_hex(&api_token), now],
            )
            .await?;
            insert_website(
                c,
                &org_id,
                &new.website_name,
                &website_key,
                &identity_secret,
                now,
            )
            .await?;
            Ok::<_, StoreError>(())
        }
        .await)?;
        Ok(Credentials {
            org_id: OrgId::new(org_id),
            api_token,
            website_key,
            identity_secret,
            admin_email,
            admin_password,
        })
    }

    pub async fn count_orgs(&self) -> Result<i64, StoreError> {
        read!(self, |c| c
            .fetch_one::<(i64,)>("SELECT count(*) FROM organizations", vec![])
            .await
            .map(|r| r.0))
    }

    /// The organization an API token belongs to, or `None` for an unknown token.
    pub async fn org_for_token(&self, token: &str) -> Result<Option<OrgId>, StoreError> {
        let Some(org_id) = org_of(token, "kt_") else {
            return Ok(None);
        };
        let hash = sha256_hex(token);
        let row: Option<(String,)> = read!(self, |c| c
            .fetch_optional(
                "SELECT org_id FROM api_tokens WHERE org_id = $1 AND token_hash = $2",
                args![&org_id, &hash],
            )
            .await)?;
        Ok(row.map(|r| OrgId::new(r.0)))
    }

    /// The first website of the first organization: what `/demo` shows. A query across
    /// organizations on purpose, and the only one: the demo belongs to whoever set up this
    /// server (the organization `kith serve` created on an empty database).
    pub async fn default_website(&self) -> Result<Option<Website>, StoreError> {
        let sql = format!(
            "SELECT {} FROM websites w JOIN organizations o ON o.org_id = w.org_id \
             ORDER BY o.created_at, o.org_id, w.created_at, w.id LIMIT 1",
            WEBSITE_COLUMNS
                .split(", ")
                .map(|c| format!("w.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let row: Option<WebsiteRow> = read!(self, |c| c.fetch_optional(&sql, vec![]).await)?;
        Ok(row.map(Website::from))
    }

    /// The website a widget names by its public key.
    pub async fn website_by_key(&self, key: &str) -> Result<Option<Website>, StoreError> {
        let Some(org_id) = org_of(key, "wk_") else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {WEBSITE_COLUMNS} FROM websites WHERE org_id = $1 AND website_key = $2"
        );
        // Every widget call asks: a point read on the calling thread.
        let row: Option<WebsiteRow> =
            read_point!(self, |c| c.fetch_optional(&sql, args![&org_id, key]).await)?;
        Ok(row.map(Website::from))
    }
}

impl OrgStore<'_> {
    pub async fn websites(self) -> Result<Vec<Website>, StoreError> {
        let org_id = self.org_id();
        let sql = format!("SELECT {WEBSITE_COLUMNS} FROM websites WHERE org_id = $1 ORDER BY id");
        let rows: Vec<WebsiteRow> = read!(self.store, |c| c.fetch_all(&sql, args![org_id]).await)?;
        Ok(rows.into_iter().map(Website::from).collect())
    }

    /// One website of the organization.
    pub async fn website(self, id: &WebsiteId) -> Result<Website, StoreError> {
        let org_id = self.org_id();
        let sql = format!("SELECT {WEBSITE_COLUMNS} FROM websites WHERE org_id = $1 AND id = $2");
        let row: Option<WebsiteRow> = read!(self.store, |c| c
            .fetch_optional(&sql, args![org_id, id.as_str()])
            .await)?;
        row.map(Website::from).ok_or(StoreError::NotFound)
    }

    /// Adds a website with the given identity verification mode.
    pub async fn create_website(
        self,
        name: &str,
        verification: VerificationMode,
        allowed_origins: &[String],
    ) -> Result<Website, StoreError> {
        let name = website_name(name)?;
        let org_id = self.org_id();
        let key = format!("wk_{org_id}_{}", random_hex(8));
        let secret = random_hex(32);
        let now = now_ms();
        let origins = serde_json::to_string(allowed_origins).unwrap_or_else(|_| "[]".into());
        let id = transact!(self.store, |c| async {
            let id = insert_website(c, org_id, &name, &key, &secret, now).await?;
            c.execute(
                "UPDATE websites SET verification_required = $3, identity_verification = $4, \
                 allowed_origins = $5 WHERE org_id = $1 AND id = $2",
                args![
                    org_id,
                    &id,
                    verification != VerificationMode::Off,
                    verification.as_str(),
                    &origins
                ],
            )
            .await?;
            Ok::<_, StoreError>(id)
        }
        .await)?;
        self.website(&WebsiteId::new(id)).await
    }

    /// Changes a website's name, verification mode or allowed origins (each when given).
    /// A change of mode writes an audit entry.
    pub async fn update_website(
        self,
        id: &WebsiteId,
        name: Option<&str>,
        verification: Option<VerificationMode>,
        allowed_origins: Option<&[String]>,
        actor: &str,
    ) -> Result<Website, StoreError> {
        let name = name.map(website_name).transpose()?;
        let origins =
            allowed_origins.map(|o| serde_json::to_string(o).unwrap_or_else(|_| "[]".into()));
        let org_id = self.org_id();
        let now = now_ms();
        transact!(self.store, |c| async {
            let sql =
                format!("SELECT {WEBSITE_COLUMNS} FROM websites WHERE org_id = $1 AND id = $2");
            let before: WebsiteRow = c
                .fetch_optional(&sql, args![org_id, id.as_str()])
                .await?
                .ok_or(StoreError::NotFound)?;
            c.execute(
                "UPDATE websites SET name = coalesce($3, name), \
                 allowed_origins = coalesce($4, allowed_origins) \
                 WHERE org_id = $1 AND id = $2",
                args![org_id, id.as_str(), name.as_deref(), origins.as_deref()],
            )
            .await?;
            if let Some(mode) = verification {
                c.execute(
                    "UPDATE websites SET identity_verification = $3, verification_required = $4 \
                     WHERE org_id = $1 AND id = $2",
                    args![
                        org_id,
                        id.as_str(),
                        mode.as_str(),
                        mode != VerificationMode::Off
                    ],
                )
                .await?;
            }
            if let Some(mode) = verification.filter(|m| m.as_str() != before.identity_verification)
            {
                insert_audit(
                    c,
                    org_id,
                    now,
                    actor,
                    "website.identity_verification_changed",
                    id,
                    serde_json::json!({"old": before.identity_verification, "new": mode.as_str()}),
                )
                .await?;
            }
            Ok::<_, StoreError>(())
        }
        .await)?;
        self.website(id).await
    }

    /// Makes a new identity secret current and keeps the old one as the previous secret (it
    /// still verifies until [`OrgStore::retire_previous_secret`]); a previous secret from an
    /// earlier rotation is dropped. Writes an audit entry (without any secret).
    pub async fn rotate_identity_secret(
        self,
        id: &WebsiteId,
        actor: &str,
    ) -> Result<Website, StoreError> {
        let org_id = self.org_id();
        let secret = random_hex(32);
        let now = now_ms();
        transact!(self.store, |c| async {
            let changed = c
                .execute(
                    "UPDATE websites SET previous_identity_secret = identity_secret, \
                     identity_secret = $3 WHERE org_id = $1 AND id = $2",
                    args![org_id, id.as_str(), &secret],
                )
                .await?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit(
                c,
                org_id,
                now,
                actor,
                "website.identity_secret_rotated",
                id,
                serde_json::json!({"previous_secret": "kept until retired"}),
            )
            .await?;
            Ok::<_, StoreError>(())
        }
        .await)?;
        self.website(id).await
    }

    /// Ends the previous identity secret: from now on only the current one verifies. Writes
    /// an audit entry when there was one to retire.
    pub async fn retire_previous_secret(
        self,
        id: &WebsiteId,
        actor: &str,
    ) -> Result<Website, StoreError> {
        let org_id = self.org_id();
        let now = now_ms();
        transact!(self.store, |c| async {
            let sql =
                format!("SELECT {WEBSITE_COLUMNS} FROM websites WHERE org_id = $1 AND id = $2");
            let before: WebsiteRow = c
                .fetch_optional(&sql, args![org_id, id.as_str()])
                .await?
                .ok_or(StoreError::NotFound)?;
            if before.previous_identity_secret.is_some() {
                c.execute(
                    "UPDATE websites SET previous_identity_secret = NULL \
                     WHERE org_id = $1 AND id = $2",
                    args![org_id, id.as_str()],
                )
                .await?;
                insert_audit(
                    c,
                    org_id,
                    now,
                    actor,
                    "website.previous_identity_secret_retired",
                    id,
                    serde_json::json!({}),
                )
                .await?;
            }
            Ok::<_, StoreError>(())
        }
        .await)?;
        self.website(id).await
    }

    /// The organization's audit log, newest first, paged by entry id.
    pub async fn audit_log(
        self,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<AuditEntry>, StoreError> {
        if let Some(cur) = cursor {
            if cur.is_empty() || cur.len() > 64 || !cur.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(StoreError::BadCursor);
            }
        }
        let org_id = self.org_id();
        let rows: Vec<AuditRow> = read!(self.store, |c| c
            .fetch_all(
                "SELECT id, at, actor, action, subject, data FROM audit_log \
                 WHERE org_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                args![org_id, cursor, limit + 1],
            )
            .await)?;
        let more = rows.len() as i64 > limit;
        let items: Vec<AuditEntry> = rows
            .into_iter()
            .take(limit as usize)
            .map(AuditEntry::from)
            .collect();
        Ok(Page {
            next_cursor: if more {
                items.last().map(|e| e.id.clone())
            } else {
                None
            },
            items,
            total: None,
        })
    }
}

fn website_name(name: &str) -> Result<String, StoreError> {
    Ok(kith_core::validate::required_name("name", name)?)
}

async fn insert_audit<C: Conn>(
    c: &mut C,
    org_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    website: &WebsiteId,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO audit_log (org_id, id, at, actor, action, subject, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            org_id,
            new_id(),
            at,
            actor,
            action,
            format!("website:{}", website.as_str()),
            data.to_string()
        ],
    )
    .await?;
    Ok(())
}

async fn insert_website<C: Conn>(
    c: &mut C,
    org_id: &str,
    name: &str,
    key: &str,
    identity_secret: &str,
    now: i64,
) -> Result<String, StoreError> {
    let id = new_id();
    c.execute(
        "INSERT INTO websites (org_id, id, name, website_key, identity_secret, token_secret, \
         verification_required, allowed_origins, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            org_id,
            &id,
            name,
            key,
            identity_secret,
            random_hex(32),
            true,
            "[]",
            now
        ],
    )
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::org_of;
    use kith_core::OrgId;

    #[test]
    fn keys_name_their_organization() {
        assert_eq!(org_of("kt_01abc_ff00", "kt_").as_deref(), Some("01abc"));
        assert_eq!(org_of("kt_01abc_", "kt_"), None);
        assert_eq!(org_of("wk_01abc_ff", "kt_"), None);
        assert_eq!(org_of("kt_x'y_ff", "kt_"), None);
        assert_eq!(org_of("", "kt_"), None);
    }

    #[test]
    fn debug_never_prints_secrets() {
        // The admin API's view of a website is checked in kith-server (views.rs).
        use crate::model::{Website, WebsiteRow};
        let creds = super::Credentials {
            org_id: OrgId::new("01org"),
            api_token: "kt_01org_TOKENSECRET".into(),
            website_key: "wk_01org_public".into(),
            identity_secret: "IDENTITYSECRET".into(),
            admin_email: "admin@acme.test".into(),
            admin_password: "PASSWORDSECRET".into(),
        };
        let row = WebsiteRow {
            org_id: "01org".into(),
            id: "01site".into(),
            name: "Shop".into(),
            website_key: "wk_01org_public".into(),
            identity_secret: "IDENTITYSECRET".into(),
            previous_identity_secret: Some("PREVIOUSSECRET".into()),
            token_secret: "TOKENSECRET".into(),
            identity_verification: "jwt-only".into(),
            allowed_origins: "[]".into(),
            created_at: 0,
        };
        let website = Website::from(row.clone());
        for printed in [
            format!("{creds:?}"),
            format!("{creds:#?}"),
            format!("{row:?}"),
            format!("{website:?}"),
        ] {
            for secret in [
                "TOKENSECRET",
                "IDENTITYSECRET",
                "PASSWORDSECRET",
                "PREVIOUSSECRET",
            ] {
                assert!(!printed.contains(secret), "{printed}");
            }
            assert!(printed.contains("<redacted>"), "{printed}");
            // What is not secret still helps debugging.
            assert!(
                printed.contains("01org") || printed.contains("01site"),
                "{printed}"
            );
        }
    }

    #[test]
    fn unreadable_allowed_origins_refuse_every_origin() {
        use crate::model::{Website, WebsiteRow};
        let site = |origins: &str| {
            Website::from(WebsiteRow {
                org_id: "o".into(),
                id: "s".into(),
                name: "n".into(),
                website_key: "k".into(),
                identity_secret: "i".into(),
                previous_identity_secret: None,
                token_secret: "t".into(),
                identity_verification: "hmac-or-jwt".into(),
                allowed_origins: origins.into(),
                created_at: 0,
            })
        };
        assert!(site("[]").allows_origin("https://any.example"));
        assert!(site(r#"["https://a.example"]"#).allows_origin("https://a.example"));
        assert!(!site(r#"["https://a.example"]"#).allows_origin("https://b.example"));
        for corrupt in ["", "not json", "{\"a\": 1}", "[1, 2]", "null"] {
            let w = site(corrupt);
            assert!(w.allowed_origins_unreadable, "{corrupt:?}");
            assert!(!w.allows_origin("https://any.example"), "{corrupt:?}");
        }
    }
}
