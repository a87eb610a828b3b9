-- Every visitor message moves its contact's `last_seen_at`. While that column was indexed
-- (for the last-seen sorts of the SQL list path), the update could never be HOT: each message
-- wrote a new entry into all nine of `contacts`' indexes, the trigram index included. Lists
-- are answered by the contact index each serving process keeps in memory (0005 on SQLite;
-- on PostgreSQL since the index follows the database's changes, 0014), so SQL sorts by last
-- seen only while that index builds at start (or rebuilds after falling behind): a scan and
-- a top-N sort instead of an index range, as on SQLite since 0005. Exports without the index
-- sort the whole table in one query either way.
DROP INDEX IF EXISTS contacts_last_seen;
DROP INDEX IF EXISTS contacts_status_last_seen;
