-- Exact contact counts per organization and status, kept by triggers in the transaction that
-- changes contacts: the built-in lists (all, leads, customers) count in O(1) instead of
-- visiting every contact. PostgreSQL spreads each count over 16 slots so concurrent writers
-- rarely wait on one row; SQLite has one writer and uses slot 0.
CREATE TABLE contact_counts (
    org_id TEXT   NOT NULL,
    status TEXT   NOT NULL,
    slot   BIGINT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (org_id, status, slot),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);

INSERT INTO contact_counts (org_id, status, slot, n)
SELECT org_id, status, 0, count(*) FROM contacts GROUP BY org_id, status;

CREATE TRIGGER contacts_count_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contact_counts (org_id, status, slot, n) VALUES (new.org_id, new.status, 0, 1)
    ON CONFLICT (org_id, status, slot) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER contacts_count_delete AFTER DELETE ON contacts BEGIN
    UPDATE contact_counts SET n = n - 1
    WHERE org_id = old.org_id AND status = old.status AND slot = 0;
END;
CREATE TRIGGER contacts_count_status AFTER UPDATE OF status ON contacts
WHEN old.status <> new.status BEGIN
    UPDATE contact_counts SET n = n - 1
    WHERE org_id = old.org_id AND status = old.status AND slot = 0;
    INSERT INTO contact_counts (org_id, status, slot, n) VALUES (new.org_id, new.status, 0, 1)
    ON CONFLICT (org_id, status, slot) DO UPDATE SET n = n + 1;
END;
