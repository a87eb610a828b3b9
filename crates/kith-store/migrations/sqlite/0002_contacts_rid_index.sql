-- New contacts take the next search-index number, max(rid) + 1 (dialect::next_rid): an
-- index on rid alone makes that a single lookup instead of a scan of every contact.
CREATE INDEX contacts_rid ON contacts (rid);
