-- Indexes for the per-message checks that run inside the inbound commit.
-- The loop caps count a recipient's recent automatic mail: with kind and
-- ticket in the index, the count never reads the outbox rows (which hold
-- whole mails).
CREATE INDEX outbox_auto_by_rcpt ON outbox (rcpt_to, created_at, kind, ticket_id);
DROP INDEX outbox_by_rcpt;
-- Bounce suppression is looked up case-insensitively; without this index
-- every notification scanned the whole suppressions table, which grows by
-- one row per suppressed mail.
CREATE INDEX suppressions_by_lower_rcpt ON suppressions (lower(rcpt), until_at);
-- A row of messages or outbox holds the whole mail, and the columns after
-- it (at, created_at) can only be read by walking the mail's overflow
-- pages. These covering indexes answer the per-message thread lookup (the
-- ticket's latest Message-IDs), `stats` and the oldest-queued gauge without
-- touching the rows.
CREATE INDEX messages_by_ticket_at ON messages (ticket_id, at, message_id);
CREATE INDEX messages_by_at ON messages (at, direction);
CREATE INDEX outbox_by_state_created ON outbox (state, created_at);
-- Indexes nothing reads, kept up to date on every insert inside the shared
-- commit: suppressions are looked up by lower(rcpt) (above), and no query
-- selects attachments by blob (blobs are never deleted).
DROP INDEX suppressions_by_rcpt;
DROP INDEX attachments_by_blob;
