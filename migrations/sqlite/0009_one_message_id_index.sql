-- no-transaction
-- One index on Message-IDs instead of two. Every stored message wrote an
-- entry in UNIQUE (ticket_id, message_id), which refuses a duplicate
-- delivery, and in messages_by_message_id, which finds the ticket a
-- reply's thread headers name; Message-IDs are random, so each entry landed
-- on a page of its own and each reply wrote two such pages into the WAL
-- inside the commit every session waits on. UNIQUE (message_id, ticket_id)
-- does both jobs: ON CONFLICT (ticket_id, message_id) names the same set of
-- columns, and a lookup by Message-ID alone reads the index only.
--
-- SQLite cannot drop a constraint written in CREATE TABLE, so the table is
-- rebuilt as the SQLite documentation's ALTER TABLE procedure describes: a
-- copy of every row, which needs free space for a second copy of the table
-- while it runs, and the foreign keys off meanwhile (hence no transaction of
-- the migrator's own: the pragma has no effect inside one; the copy runs in
-- a transaction of its own below). AUTOINCREMENT's high-water mark is
-- carried over, so no id is ever handed out twice.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE messages_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    author       TEXT NOT NULL,
    recipients   TEXT NOT NULL,                      -- newline-separated
    subject      TEXT NOT NULL,
    body_text    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    in_reply_to  TEXT,
    refs         TEXT,
    raw          BLOB NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL DEFAULT 'reply',
    matched_by   TEXT NOT NULL DEFAULT '',
    raw_codec    TEXT
);
INSERT INTO messages_new (id, ticket_id, direction, author, recipients, subject, body_text,
                          message_id, in_reply_to, refs, raw, at, kind, matched_by, raw_codec)
    SELECT id, ticket_id, direction, author, recipients, subject, body_text,
           message_id, in_reply_to, refs, raw, at, kind, matched_by, raw_codec
    FROM messages ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'messages_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'messages_new', seq FROM sqlite_sequence WHERE name = 'messages';
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE UNIQUE INDEX messages_by_message_id ON messages (message_id, ticket_id);
CREATE INDEX messages_by_ticket_at ON messages (ticket_id, at, message_id);
CREATE INDEX messages_by_at ON messages (at, direction);
COMMIT;
PRAGMA foreign_keys = ON;
