-- Lists, counts and free-text search on SQLite are answered by the contact index that the
-- serving process keeps in memory (kith-store src/index), refreshed in the transaction that
-- writes a contact. The FTS5 table and the sort and tag indexes served only those queries;
-- they now would cost every write and every bulk load and help no read.
DROP TRIGGER contacts_search_insert;
DROP TRIGGER contacts_search_delete;
DROP TRIGGER contacts_search_update;
DROP TABLE contact_search;
DROP INDEX contacts_last_seen;
DROP INDEX contacts_created;
DROP INDEX contacts_name;
DROP INDEX contacts_status_last_seen;
DROP INDEX contact_tags_tag;
