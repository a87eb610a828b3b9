-- Issue 20: identity tokens, secret rotation and an audit log.
--
-- How a website verifies identify calls: 'off' (every identify counts as verified),
-- 'hmac-or-jwt' (the default: a user_hash or an identity token), 'hmac' (user_hash only) or
-- 'jwt-only' (identity tokens only). Existing websites keep their meaning: verification on
-- becomes 'hmac-or-jwt', off stays 'off'. `verification_required` is kept and written as
-- `identity_verification <> 'off'` so older readers of the row are not misled.
ALTER TABLE websites ADD COLUMN identity_verification TEXT NOT NULL DEFAULT 'hmac-or-jwt';
UPDATE websites SET identity_verification = 'off' WHERE NOT verification_required;

-- The secret before the last rotation: it still verifies hashes and tokens until retired, so
-- the customer's servers can switch over without a moment where identifies fail.
ALTER TABLE websites ADD COLUMN previous_identity_secret TEXT;

-- Who did what to the organization's settings (secret rotations so far). Never holds secrets.
CREATE TABLE audit_log (
    org_id  TEXT   NOT NULL,
    id      TEXT   NOT NULL,
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    subject TEXT   NOT NULL,
    data    TEXT   NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);
