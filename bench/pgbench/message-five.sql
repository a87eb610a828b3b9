-- A returning visitor's message as Kith ran it at 86d1c74 on PostgreSQL (no idempotency key):
-- the visitor locked by its touch, the conversation checked visible, the contact's counters,
-- the message with its `message.created` enqueue (one statement, the insert a CTE of the
-- enqueue), the conversation's update answering the row. Five statements. Run as message.sql
-- says.
\set n random(1, :pairs)
SELECT org_id AS o, website_id AS w, visitor_id AS v, contact_id AS c, conversation_id AS cv
  FROM bench_pairs WHERE n = :n \gset
\set now 1800000000000 + random(0, 1000000)
\set mid random(1, 1000000000000)
BEGIN;
UPDATE visitors SET last_seen_at = :now WHERE org_id = :o AND id = :v
  RETURNING id, website_id, contact_id, verified, link_proven, pending_claim, last_seen_at;
SELECT cv.id, cv.website_id, w.name AS website_name, cv.contact_id, cv.visitor_id, cv.status,
       cv.message_count, cv.last_message_preview, cv.last_message_at, cv.created_at, cv.updated_at
  FROM conversations cv JOIN websites w ON w.org_id = cv.org_id AND w.id = cv.website_id
  WHERE cv.org_id = :o AND cv.website_id = :w AND cv.contact_id = :c
    AND (cv.visitor_id = :v OR (false AND cv.verified_start)) AND cv.id = :cv;
UPDATE contacts SET message_count = message_count + 1, last_seen_at = :now
  WHERE org_id = :o AND id = :c;
WITH inserted_message AS (INSERT INTO messages (org_id, id, conversation_id, author, author_id, body, created_at)
  VALUES (:o, 'pgb' || :mid, :cv, 'visitor', NULL, 'Hello, is anyone there? pgbench', :now))
INSERT INTO webhook_deliveries (org_id, endpoint_id, seq, id, event_id, event_type, contact_id,
  payload, status, attempts, next_attempt_at, created_at)
  SELECT e.org_id, e.id, nextval('webhook_deliveries_seq'), 'pgb' || :mid || '_' || e.id, 'pgb' || :mid,
         'message.created', :c, '{}', 'pending', 0, :now, :now
  FROM webhook_endpoints e WHERE e.org_id = :o AND e.enabled AND e.events LIKE '%,message.created,%';
UPDATE conversations SET message_count = message_count + 1,
       last_message_preview = 'Hello, is anyone there? pgbench', last_message_at = :now,
       updated_at = :now, status = CASE WHEN true AND status = 'resolved' THEN 'open' ELSE status END
  WHERE org_id = :o AND id = :cv
  RETURNING id, website_id, (SELECT w.name FROM websites w WHERE w.org_id = conversations.org_id
     AND w.id = conversations.website_id) AS website_name,
     contact_id, visitor_id, status, message_count, last_message_preview, last_message_at, created_at, updated_at;
COMMIT;
