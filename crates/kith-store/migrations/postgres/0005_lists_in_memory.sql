-- SQLite moved lists and search into the serving process's memory (see the SQLite file of
-- this name). PostgreSQL may be shared by several processes, so it keeps answering them
-- with its own indexes (pg_trgm GIN, sort indexes): nothing changes here.
SELECT 1;
