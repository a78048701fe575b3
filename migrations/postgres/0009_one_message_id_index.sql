-- One index on Message-IDs instead of two (as SQLite's 0009). Every stored
-- message wrote an entry in UNIQUE (ticket_id, message_id), which refuses a
-- duplicate delivery, and in messages_by_message_id, which finds the ticket
-- a reply's thread headers name; Message-IDs are random, so each entry
-- dirtied a page of its own inside the commit every session waits on.
-- UNIQUE (message_id, ticket_id) does both jobs: ON CONFLICT (ticket_id,
-- message_id) infers an arbiter index from the set of columns, and a lookup
-- by Message-ID alone is an index-only scan. The new index is built before
-- the old ones go, so uniqueness holds throughout.
CREATE UNIQUE INDEX messages_by_message_id_ticket ON messages (message_id, ticket_id);
ALTER TABLE messages DROP CONSTRAINT messages_ticket_id_message_id_key;
DROP INDEX messages_by_message_id;
ALTER INDEX messages_by_message_id_ticket RENAME TO messages_by_message_id;
