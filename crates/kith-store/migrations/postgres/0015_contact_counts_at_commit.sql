-- The contact counters (0003) waited on each other under ingest: a transaction that created
-- or deleted a contact locked one of 16 counter rows at that statement and held the lock until
-- its COMMIT, through every later statement and round trip, so concurrent first messages of
-- new visitors queued on `Lock:transactionid` (docs/benchmarks.md). Now the count runs at
-- commit (a deferred constraint trigger), holding its row only for the commit itself, and over
-- 64 rows, so two committing transactions rarely pick the same one. Readers sum the rows as
-- before; a transaction that reads its own counts before committing would miss its own
-- changes, and none does.
CREATE OR REPLACE FUNCTION kith_count_contact(p_org TEXT, p_status TEXT, p_delta BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO contact_counts (org_id, status, slot, n)
    VALUES (p_org, p_status, floor(random() * 64)::bigint, p_delta)
    ON CONFLICT (org_id, status, slot) DO UPDATE SET n = contact_counts.n + EXCLUDED.n;
$$;

DROP TRIGGER contacts_counted ON contacts;
CREATE CONSTRAINT TRIGGER contacts_counted AFTER INSERT OR DELETE OR UPDATE OF status ON contacts
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION kith_contacts_counted();
