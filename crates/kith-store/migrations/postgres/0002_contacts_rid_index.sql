-- Same file name as the SQLite migration. PostgreSQL numbers contacts with a sequence
-- (contacts_rid_seq) and needs no index for it.
SELECT 1;
