-- Exact contact counts per organization and status, kept by a trigger in the transaction that
-- changes contacts: the built-in lists (all, leads, customers) count in O(1) instead of
-- visiting every contact. Each count is spread over 16 slots (a random one per change) so
-- concurrent writers of one organization rarely wait on the same row; readers sum the slots.
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

CREATE FUNCTION kith_count_contact(p_org TEXT, p_status TEXT, p_delta BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO contact_counts (org_id, status, slot, n)
    VALUES (p_org, p_status, floor(random() * 16)::bigint, p_delta)
    ON CONFLICT (org_id, status, slot) DO UPDATE SET n = contact_counts.n + EXCLUDED.n;
$$;

CREATE FUNCTION kith_contacts_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM kith_count_contact(NEW.org_id, NEW.status, 1);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM kith_count_contact(OLD.org_id, OLD.status, -1);
    ELSIF OLD.status <> NEW.status THEN
        PERFORM kith_count_contact(OLD.org_id, OLD.status, -1);
        PERFORM kith_count_contact(NEW.org_id, NEW.status, 1);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER contacts_counted AFTER INSERT OR DELETE OR UPDATE OF status ON contacts
FOR EACH ROW EXECUTE FUNCTION kith_contacts_counted();
