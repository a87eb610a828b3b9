-- PostgreSQL drops its last-seen sort indexes here; SQLite dropped them in 0005. Nothing to
-- change: the file keeps the two trees' migration names equal.
SELECT 1;
