-- Files that came with a message, content-addressed: one blobs row per
-- distinct content (SHA-256, hex), however many messages carry it. An
-- attachment over [inbound] max_attachment_bytes is listed without a blob.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,                    -- lowercase hex
    bytes       BLOB NOT NULL,
    size        INTEGER NOT NULL
);

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    blob_sha256   TEXT REFERENCES blobs(sha256),     -- NULL when not stored
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    is_inline     INTEGER NOT NULL DEFAULT 0,        -- 1: shown in the body (cid:)
    content_id    TEXT,
    note          TEXT                               -- why skipped, or what it is
);
CREATE INDEX attachments_by_message ON attachments (message_id);
CREATE INDEX attachments_by_blob ON attachments (blob_sha256);
