-- Whole mails are compressed by the gateway on PostgreSQL too (see
-- src/store/packed.rs): the session that receives or composes a mail packs it
-- with lz4 before the commit, so that the backend of the committer's one
-- connection, which every reply waits on, no longer compresses it. Those
-- bytes do not shrink again, so the columns that hold them are stored out of
-- line without TOAST compression (EXTERNAL) instead of trying (EXTENDED, lz4
-- since migration 0005). Rows stored before keep their compression and a NULL
-- raw_codec, and read as before. No SQLite counterpart: SQLite's rows were
-- packed from migration 0007 on.
ALTER TABLE messages ALTER COLUMN raw SET STORAGE EXTERNAL;
ALTER TABLE outbox_mail ALTER COLUMN raw SET STORAGE EXTERNAL;
