-- What "many messages per statement" could give on PostgreSQL (docs/benchmarks.md, Next
-- steps): sixteen returning visitors' messages written together, each table once, in one
-- transaction — the visitors' touch, the contacts' counters, the messages, their enqueue and
-- the conversations' update checked by the visibility rule, as message-now.sql writes one.
-- Messages per second = tps × 16. Each client takes sixteen pairs from a slice of its own
-- (pairs=5000 and -c 16 give 312 each), so rounds never share a row: an upper bound that
-- leaves out what a real writer would add (ordering rows so rounds cannot deadlock, summing
-- repeated contacts, falling back per message). Run as message.sql says, with the same -c.
\set s :client_id * 312 + random(1, 296)
\set now 1800000000000 + random(0, 1000000)
\set mid random(1, 1000000000000)
BEGIN;
WITH b AS (SELECT * FROM bench_pairs WHERE n BETWEEN :s AND :s + 15),
v AS (UPDATE visitors vi SET last_seen_at = :now FROM b
  WHERE vi.org_id = b.org_id AND vi.id = b.visitor_id RETURNING 1),
s0 AS (UPDATE contacts c SET message_count = c.message_count + 1, last_seen_at = :now FROM b
  WHERE c.org_id = b.org_id AND c.id = b.contact_id RETURNING 1),
s1 AS (INSERT INTO messages (org_id, id, conversation_id, author, author_id, body, created_at)
  SELECT b.org_id, 'pgb' || :mid || '_' || b.n, b.conversation_id, 'visitor', NULL,
         'Hello, is anyone there? pgbench', :now FROM b RETURNING 1),
s2 AS (INSERT INTO webhook_deliveries (org_id, endpoint_id, seq, id, event_id, event_type, contact_id,
  payload, status, attempts, next_attempt_at, created_at)
  SELECT e.org_id, e.id, nextval('webhook_deliveries_seq'), 'pgb' || :mid || '_' || b.n || '_' || e.id,
         'pgb' || :mid || '_' || b.n, 'message.created', b.contact_id, '{}', 'pending', 0, :now, :now
  FROM b JOIN webhook_endpoints e ON e.org_id = b.org_id
  WHERE e.enabled AND e.events LIKE '%,message.created,%' RETURNING 1)
UPDATE conversations cv SET message_count = cv.message_count + 1,
       last_message_preview = 'Hello, is anyone there? pgbench', last_message_at = :now,
       updated_at = :now, status = CASE WHEN cv.status = 'resolved' THEN 'open' ELSE cv.status END
  FROM b
  WHERE cv.org_id = b.org_id AND cv.id = b.conversation_id AND cv.website_id = b.website_id
    AND cv.contact_id = b.contact_id AND (cv.visitor_id = b.visitor_id OR (false AND cv.verified_start))
    AND (SELECT count(*) FROM v) + (SELECT count(*) FROM s0) + (SELECT count(*) FROM s1)
        + (SELECT count(*) FROM s2) >= 0
  RETURNING cv.id, cv.website_id, cv.contact_id, cv.visitor_id, cv.status, cv.message_count,
     cv.last_message_preview, cv.last_message_at, cv.created_at, cv.updated_at;
COMMIT;
