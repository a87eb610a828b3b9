-- One visitor message of a returning visitor into its conversation, as Kith's
-- `WebsiteStore::visitor_message` ran it on PostgreSQL before 98cadfe (no webhook endpoints,
-- no idempotency key): seven statements in one transaction. Kept unchanged as the yardstick
-- of issue 18's goal 2; message-five.sql and message-now.sql are the later shapes.
-- pgbench -M prepared -n -c 16 -j 2 -T 20 -D pairs=N -f message.sql DB
-- The first SELECT (picking a visitor) is pgbench's own and not part of Kith's transaction.
\set n random(1, :pairs)
SELECT org_id AS o, website_id AS w, visitor_id AS v, contact_id AS c, conversation_id AS cv
  FROM bench_pairs WHERE n = :n \gset
\set now 1800000000000 + random(0, 1000000)
BEGIN;
SELECT id, website_id, contact_id, verified, link_proven, pending_claim, last_seen_at
  FROM visitors WHERE org_id = :o AND id = :v FOR UPDATE;
SELECT cv.id, cv.website_id, w.name AS website_name, cv.contact_id, cv.visitor_id, cv.status,
       cv.message_count, cv.last_message_preview, cv.last_message_at, cv.created_at, cv.updated_at
  FROM conversations cv JOIN websites w ON w.org_id = cv.org_id AND w.id = cv.website_id
  WHERE cv.org_id = :o AND cv.website_id = :w AND cv.contact_id = :c
    AND (cv.visitor_id = :v OR (false AND cv.verified_start)) AND cv.id = :cv;
UPDATE contacts SET message_count = message_count + 1, last_seen_at = :now
  WHERE org_id = :o AND id = :c;
UPDATE visitors SET last_seen_at = :now WHERE org_id = :o AND id = :v;
INSERT INTO messages (org_id, id, conversation_id, author, author_id, body, created_at)
  VALUES (:o, md5(random()::text), :cv, 'visitor', NULL, 'Hello, is anyone there? pgbench', :now);
UPDATE conversations SET message_count = message_count + 1,
       last_message_preview = 'Hello, is anyone there? pgbench', last_message_at = :now,
       updated_at = :now, status = CASE WHEN true AND status = 'resolved' THEN 'open' ELSE status END
  WHERE org_id = :o AND id = :cv;
SELECT cv.id, cv.website_id, w.name AS website_name, cv.contact_id, cv.visitor_id, cv.status,
       cv.message_count, cv.last_message_preview, cv.last_message_at, cv.created_at, cv.updated_at
  FROM conversations cv JOIN websites w ON w.org_id = cv.org_id AND w.id = cv.website_id
  WHERE cv.org_id = :o AND cv.id = :cv;
COMMIT;
