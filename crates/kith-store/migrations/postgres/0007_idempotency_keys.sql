-- A visitor's message retried with the same Idempotency-Key within 24 hours answers the first
-- message again and writes nothing (SPEC, widget API): the widget retries unsent messages
-- after a network loss without ever duplicating one. One row per (visitor, key); a row older
-- than 24 hours is replaced by the next message that uses its key.
CREATE TABLE idempotency_keys (
    org_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, visitor_id, key)
);
