-- Admin panel sessions. The cookie carries `ks_<org_id>_<secret>`; only SHA-256 of the whole
-- cookie value is stored, so a copy of the database signs nobody in. `csrf_token` is sent back
-- by the panel on every state-changing request (it is not a secret from the session's own
-- pages, only from other sites). Times are unix milliseconds: a session ends at
-- `expires_at` (absolute) or after an idle period counted from `last_seen_at`.
CREATE TABLE admin_sessions (
    org_id       TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    admin_id     TEXT   NOT NULL,
    token_hash   TEXT   NOT NULL,
    csrf_token   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, token_hash),
    FOREIGN KEY (org_id, admin_id) REFERENCES admins (org_id, id)
);

-- Ending every session of one admin (password change) and finding them.
CREATE INDEX admin_sessions_admin ON admin_sessions (org_id, admin_id);

-- Sign-in names an email, not an organization: finding its admins needs this one index that
-- does not start with org_id (the admins table is small; a sharded deployment would keep a
-- directory of emails instead).
CREATE INDEX admins_email ON admins (email_lower);
