-- Issue 19: manual merges that can be undone, and notes on contacts.
--
-- One row per manual merge. `snapshot` (JSON) holds what the merge changed, written in the
-- merge's own transaction: the survivor's row before and after, the absorbed contact's row,
-- and the ids of the visitors, conversations, timeline entries, notes and earlier merge
-- records that moved. Undo puts exactly those back. Automatic identity merges (SPEC rule 3)
-- keep no snapshot and cannot be undone. No foreign key to contacts: the absorbed contact
-- does not exist while the merge stands, and the survivor may later be erased.
CREATE TABLE merges (
    org_id      TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    survivor_id TEXT   NOT NULL,
    absorbed_id TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    merged_at   BIGINT NOT NULL,
    snapshot    TEXT   NOT NULL,
    undone_at   BIGINT,
    undone_by   TEXT,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);
CREATE INDEX merges_survivor ON merges (org_id, survivor_id);

-- Notes an admin or API client writes on a contact. Each note is shown in the timeline by
-- one `note` entry (`event_id`), rewritten when the note is edited and removed with it.
-- The author's email is kept as it was when the note was written.
CREATE TABLE contact_notes (
    org_id       TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    contact_id   TEXT   NOT NULL,
    event_id     TEXT   NOT NULL,
    body         TEXT   NOT NULL,
    author_kind  TEXT   NOT NULL,
    author_id    TEXT,
    author_email TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, contact_id) REFERENCES contacts (org_id, id)
);
CREATE INDEX contact_notes_contact ON contact_notes (org_id, contact_id, id);
