-- The contact index on PostgreSQL (kith-store src/index/follow.rs). Every serving process
-- keeps its own copy of the contact index in memory, and several processes may write to one
-- database, so each transaction notes here which contacts it touched. A process brings its
-- index up to date before it answers a list: it takes a snapshot, reads the rows of
-- transactions that committed since its previous snapshot (those at or above its xmax, or in
-- its list of transactions then in progress), and re-reads those contacts. Rows are pruned
-- once every process has had a long time to read them (15 minutes; a process behind by more
-- rebuilds).
-- The transaction id is stored as bigint (xid8 values fit): the planner estimates a range of
-- bigint from its statistics, but takes a third of the table for any range of xid8, and so
-- scanned the whole log to find the few newest rows.
CREATE TABLE contact_changes (
    xid        BIGINT  NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    org_id     TEXT    NOT NULL,
    contact_id TEXT    NOT NULL,
    -- TRUE when the contact's websites may have changed (a conversation began, moved or went).
    sites      BOOLEAN NOT NULL
);
CREATE INDEX contact_changes_xid ON contact_changes (xid);

-- Statement-level triggers with transition tables: one insert per statement, so a bulk load
-- of many rows costs one statement here, not one per row.
CREATE FUNCTION kith_note_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO contact_changes (org_id, contact_id, sites)
        SELECT org_id, id, FALSE FROM old_rows;
    ELSE
        INSERT INTO contact_changes (org_id, contact_id, sites)
        SELECT org_id, id, FALSE FROM new_rows;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER contacts_noted_insert AFTER INSERT ON contacts
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_contacts();
CREATE TRIGGER contacts_noted_update AFTER UPDATE ON contacts
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_contacts();
CREATE TRIGGER contacts_noted_delete AFTER DELETE ON contacts
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_contacts();

CREATE FUNCTION kith_note_contact_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO contact_changes (org_id, contact_id, sites)
        SELECT DISTINCT org_id, contact_id, FALSE FROM old_rows;
    ELSE
        INSERT INTO contact_changes (org_id, contact_id, sites)
        SELECT DISTINCT org_id, contact_id, FALSE FROM new_rows;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER contact_tags_noted_insert AFTER INSERT ON contact_tags
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_contact_tags();
CREATE TRIGGER contact_tags_noted_update AFTER UPDATE ON contact_tags
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_contact_tags();
CREATE TRIGGER contact_tags_noted_delete AFTER DELETE ON contact_tags
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_contact_tags();

CREATE FUNCTION kith_note_conversations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO contact_changes (org_id, contact_id, sites)
        SELECT DISTINCT org_id, contact_id, TRUE FROM old_rows;
    ELSE
        INSERT INTO contact_changes (org_id, contact_id, sites)
        SELECT DISTINCT org_id, contact_id, TRUE FROM new_rows;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER conversations_noted_insert AFTER INSERT ON conversations
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_conversations();
CREATE TRIGGER conversations_noted_delete AFTER DELETE ON conversations
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION kith_note_conversations();

-- Every message updates its conversation; only a move to another contact matters here, so
-- this one is a row trigger whose WHEN skips the rest without calling the function.
CREATE FUNCTION kith_note_conversation_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contact_changes (org_id, contact_id, sites)
    VALUES (OLD.org_id, OLD.contact_id, TRUE), (NEW.org_id, NEW.contact_id, TRUE);
    RETURN NULL;
END;
$$;
CREATE TRIGGER conversations_noted_move AFTER UPDATE OF contact_id ON conversations
FOR EACH ROW WHEN (OLD.contact_id IS DISTINCT FROM NEW.contact_id)
EXECUTE FUNCTION kith_note_conversation_move();
