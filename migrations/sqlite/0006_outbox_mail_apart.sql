-- The bytes of a queued mail move out of the outbox row into a table of
-- their own. An outbox row changes two or more times on its way to the
-- relay (claimed, then sent, or queued again); with the mail inline, every
-- change rewrote the whole record with its overflow pages: about 6 KB of
-- WAL per change for a 5 KB mail, twice per mail relayed. The mail itself
-- is written once and read when the row is claimed.
CREATE TABLE outbox_mail (
    outbox_id  INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    raw        BLOB NOT NULL
);
INSERT INTO outbox_mail (outbox_id, raw) SELECT id, raw FROM outbox;
ALTER TABLE outbox DROP COLUMN raw;
