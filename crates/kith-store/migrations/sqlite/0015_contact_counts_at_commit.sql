-- Same file name as the PostgreSQL migration, which moves its counter trigger to commit time
-- so concurrent writers do not hold a counter row through their transaction. SQLite has one
-- writer, so its counters never wait on another transaction: nothing to change.
SELECT 1;
