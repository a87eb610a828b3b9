-- Whose contact is it? A visitor's link to its contact is "proven" when the visitor created the
-- contact with its first message or a verified identify put it there; a link made by
-- following an unverified email is not. Conversations remember whether they were started by
-- a visitor verified for their contact: only those are shown to the contact's other verified
-- visitors.
ALTER TABLE visitors ADD COLUMN link_proven BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE conversations ADD COLUMN verified_start BOOLEAN NOT NULL DEFAULT FALSE;
