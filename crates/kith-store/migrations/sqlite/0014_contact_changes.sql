-- PostgreSQL's 0014 adds the change log that keeps each serving process's contact index
-- exact across processes. A SQLite database has one serving process, whose connections
-- note the contacts each transaction touches in temporary tables instead (src/index/load.rs):
-- nothing changes here.
SELECT 1;
