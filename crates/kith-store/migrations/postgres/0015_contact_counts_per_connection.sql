-- contact_counts spread each count over 16 slots, one drawn at random per change. A slot's row
-- stays locked until the transaction commits (its WAL flush included), so two transactions
-- that create contacts at once waited for each other whenever they drew the same slot: under
-- 64 concurrent first messages that was the most common wait of the ingest benchmark
-- (docs/benchmarks.md). Now the slot is the backend's process id modulo 64: a connection
-- keeps to its own slot, and transactions on different connections rarely share one.
-- Readers already sum every slot, so any number of slots reads the same.
CREATE OR REPLACE FUNCTION kith_count_contact(p_org TEXT, p_status TEXT, p_delta BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO contact_counts (org_id, status, slot, n)
    VALUES (p_org, p_status, pg_backend_pid() % 64, p_delta)
    ON CONFLICT (org_id, status, slot) DO UPDATE SET n = contact_counts.n + EXCLUDED.n;
$$;
