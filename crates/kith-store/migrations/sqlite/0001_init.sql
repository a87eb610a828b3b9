-- Kith schema, SQLite flavour. The PostgreSQL file of the same name must stay equal in
-- tables, columns and keys (a test compares the two catalogs).
--
-- Every table carries org_id, and org_id leads every primary, unique and foreign key, so the
-- schema can be distributed by org_id (Citus) and no query can cross organizations by
-- accident. Times are unix milliseconds (BIGINT) bound from Rust; JSON is TEXT.

CREATE TABLE organizations (
    org_id     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id)
);

CREATE TABLE admins (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    email         TEXT   NOT NULL,
    email_lower   TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, email_lower),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);

-- Tokens are stored as SHA-256 of the token; the token itself is shown once.
CREATE TABLE api_tokens (
    org_id     TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    token_hash TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, token_hash),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);

CREATE TABLE websites (
    org_id                TEXT    NOT NULL,
    id                    TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    website_key           TEXT    NOT NULL,
    identity_secret       TEXT    NOT NULL,
    -- Signs visitor tokens, so a session call needs no visitor row.
    token_secret          TEXT    NOT NULL,
    verification_required BOOLEAN NOT NULL,
    allowed_origins       TEXT    NOT NULL,
    created_at            BIGINT  NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, website_key),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);

CREATE TABLE contacts (
    org_id             TEXT   NOT NULL,
    id                 TEXT   NOT NULL,
    user_id            TEXT,
    email              TEXT,
    -- Lower-cased email: the case-insensitive unique key, without collations.
    email_lower        TEXT,
    name               TEXT,
    phone              TEXT,
    company            TEXT,
    tags               TEXT   NOT NULL,
    metadata           TEXT   NOT NULL,
    conversation_count BIGINT NOT NULL,
    message_count      BIGINT NOT NULL,
    last_seen_at       BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    -- Derived from user_id (customer exactly while it is set); stored so lists can use an index.
    status             TEXT   NOT NULL,
    -- Lower-cased name: the name sort is case-insensitive.
    name_lower         TEXT,
    -- Lower-cased name, email, phone, company, user_id and metadata values, one per line:
    -- what free-text search matches substrings in.
    search_text        TEXT   NOT NULL,
    -- A number for the search index (SQLite FTS5 keys rows by integer).
    rid                BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, user_id),
    UNIQUE (org_id, email_lower),
    UNIQUE (org_id, rid),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);
-- Sorts, each ascending or (scanned backwards) descending; keyset cursors seek into them.
CREATE INDEX contacts_last_seen ON contacts (org_id, last_seen_at, id);
CREATE INDEX contacts_created ON contacts (org_id, created_at, id);
CREATE INDEX contacts_name ON contacts (org_id, name_lower, id);
CREATE INDEX contacts_status_last_seen ON contacts (org_id, status, last_seen_at, id);

-- Tags, lower-cased, one row each: tag filters and counts read this index.
CREATE TABLE contact_tags (
    org_id     TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (org_id, contact_id, tag),
    FOREIGN KEY (org_id, contact_id) REFERENCES contacts (org_id, id)
);
CREATE INDEX contact_tags_tag ON contact_tags (org_id, tag, contact_id);

-- Where an absorbed contact went, so its id answers 404 `merged` with `merged_into`.
CREATE TABLE contact_merges (
    org_id      TEXT   NOT NULL,
    absorbed_id TEXT   NOT NULL,
    merged_into TEXT   NOT NULL,
    merged_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, absorbed_id),
    FOREIGN KEY (org_id, merged_into) REFERENCES contacts (org_id, id)
);
CREATE INDEX contact_merges_into ON contact_merges (org_id, merged_into);

-- A visitor row exists only once the visitor identifies or writes.
CREATE TABLE visitors (
    org_id        TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    website_id    TEXT    NOT NULL,
    contact_id    TEXT,
    verified      BOOLEAN NOT NULL,
    -- An identity given before the first message (JSON), applied when the visitor writes.
    pending_claim TEXT,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, website_id) REFERENCES websites (org_id, id),
    FOREIGN KEY (org_id, contact_id) REFERENCES contacts (org_id, id)
);
CREATE INDEX visitors_contact ON visitors (org_id, contact_id);

CREATE TABLE conversations (
    org_id               TEXT   NOT NULL,
    id                   TEXT   NOT NULL,
    website_id           TEXT   NOT NULL,
    contact_id           TEXT   NOT NULL,
    -- The visitor that started it: decides what an unverified visitor may see.
    visitor_id           TEXT   NOT NULL,
    status               TEXT   NOT NULL,
    message_count        BIGINT NOT NULL,
    last_message_preview TEXT,
    last_message_at      BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, website_id) REFERENCES websites (org_id, id),
    FOREIGN KEY (org_id, contact_id) REFERENCES contacts (org_id, id),
    FOREIGN KEY (org_id, visitor_id) REFERENCES visitors (org_id, id)
);
CREATE INDEX conversations_contact ON conversations (org_id, contact_id, created_at);
CREATE INDEX conversations_visitor ON conversations (org_id, visitor_id);

CREATE TABLE messages (
    org_id          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    conversation_id TEXT   NOT NULL,
    author          TEXT   NOT NULL,
    author_id       TEXT,
    body            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, conversation_id) REFERENCES conversations (org_id, id)
);
CREATE INDEX messages_conversation ON messages (org_id, conversation_id, id);

CREATE TABLE contact_events (
    org_id     TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    contact_id TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    actor      TEXT   NOT NULL,
    data       TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, contact_id) REFERENCES contacts (org_id, id)
);
CREATE INDEX contact_events_contact ON contact_events (org_id, contact_id, id);

-- Saved segments. The built-ins (all, leads, customers) are not stored.
CREATE TABLE contact_lists (
    org_id     TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    filter     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id) REFERENCES organizations (org_id)
);

-- Free-text search: an FTS5 trigram index over search_text, keyed by rid and kept in step
-- by triggers, so a contact is searchable in the transaction that writes it.
CREATE VIRTUAL TABLE contact_search USING fts5(search_text, tokenize = 'trigram', detail = 'none');

CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contact_search (rowid, search_text) VALUES (new.rid, new.search_text);
END;
CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
    DELETE FROM contact_search WHERE rowid = old.rid;
END;
CREATE TRIGGER contacts_search_update AFTER UPDATE OF search_text ON contacts BEGIN
    DELETE FROM contact_search WHERE rowid = old.rid;
    INSERT INTO contact_search (rowid, search_text) VALUES (new.rid, new.search_text);
END;
