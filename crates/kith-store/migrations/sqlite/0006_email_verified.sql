-- Whether a contact's email is proven: a verified identify's hash covered it, or an admin set
-- it. An email filled in by an unverified claim is not, and a visitor that later proves that
-- address must not inherit whatever else the contact holds (issue 14: proof is about one
-- contact). Existing emails start unproven: the safe side.
ALTER TABLE contacts ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
