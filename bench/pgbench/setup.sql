-- pgbench's side of issue 18 goal 2: the newest conversations of returning visitors, numbered
-- for pgbench. Run after one `kith bench ingest` on the database: they are the ones its
-- warm-up and run wrote, so pgbench's messages go to a set of contacts of the same size.
DROP TABLE IF EXISTS bench_pairs;
CREATE TABLE bench_pairs AS
SELECT row_number() OVER () AS n, p.* FROM (
    SELECT cv.org_id, cv.website_id, cv.visitor_id, cv.contact_id, cv.id AS conversation_id
    FROM conversations cv JOIN visitors v ON v.org_id = cv.org_id AND v.id = cv.visitor_id
    WHERE v.contact_id = cv.contact_id
    ORDER BY cv.created_at DESC LIMIT 5000
) p;
CREATE UNIQUE INDEX bench_pairs_n ON bench_pairs (n);
ANALYZE bench_pairs;
SELECT count(*) AS pairs FROM bench_pairs;
