-- Webhooks (issue 19): endpoints, the durable outbox of deliveries, and each attempt.
CREATE TABLE webhook_endpoints (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    url TEXT NOT NULL,
    -- Shown to the organization's admins (they configure receivers with it); signs bodies.
    secret TEXT NOT NULL,
    -- The subscribed event types, each between commas (",contact.created,message.created,"),
    -- so the enqueue statement tests a subscription with one LIKE.
    events TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- The outbox: one row per (event, subscribed endpoint), written in the transaction of the
-- change. `seq` orders an endpoint's deliveries as their transactions committed (see
-- dialect::next_delivery_seq); a delivery is due only when no earlier one of the same
-- endpoint and contact is still pending. `lease_until`: a deliverer's claim, expiring so a
-- crashed process's claims go back to the others.
CREATE TABLE webhook_deliveries (
    org_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, endpoint_id, seq),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, endpoint_id) REFERENCES webhook_endpoints (org_id, id) ON DELETE CASCADE
);
-- The deliverer's scan (every organization): pending rows by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
-- "No earlier pending delivery for this endpoint and contact".
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (org_id, endpoint_id, contact_id, seq);
-- A merge moves the absorbed contact's pending deliveries to the survivor; filling in the
-- contact of an event's deliveries.
CREATE INDEX webhook_deliveries_contact ON webhook_deliveries (org_id, contact_id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (org_id, event_id);

-- Every attempt of a delivery, for the delivery log.
CREATE TABLE webhook_attempts (
    org_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, delivery_id, attempt),
    FOREIGN KEY (org_id, delivery_id) REFERENCES webhook_deliveries (org_id, id) ON DELETE CASCADE
);
