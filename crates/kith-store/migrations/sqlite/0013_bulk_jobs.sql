-- Bulk actions over a list or filter (add tags, remove tags, delete). A job keeps the exact
-- set of contacts selected when it started, one row each, and removes rows as it works
-- through them: progress survives a restart, and a step is done wholly or not at all.
CREATE TABLE bulk_jobs (
    org_id          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    -- A retried request with the same key answers this job instead of starting another.
    idempotency_key TEXT,
    action          TEXT   NOT NULL,
    tags            TEXT   NOT NULL,
    selection       TEXT   NOT NULL,
    actor           TEXT   NOT NULL,
    total           BIGINT NOT NULL,
    done            BIGINT NOT NULL,
    changed         BIGINT NOT NULL,
    failed          BIGINT NOT NULL,
    status          TEXT   NOT NULL,
    -- The runner holding the job, until when: one runner at a time, across processes.
    lease_holder    TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);
CREATE UNIQUE INDEX bulk_jobs_key ON bulk_jobs (org_id, idempotency_key);
CREATE INDEX bulk_jobs_running ON bulk_jobs (status, lease_until);

CREATE TABLE bulk_job_items (
    org_id     TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (org_id, job_id, contact_id)
);
