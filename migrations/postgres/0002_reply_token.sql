-- A per-ticket secret in the Reply-To address (chamados+ID.TOKEN@domain):
-- a reply sent to it is trusted even from an address the ticket does not know.
ALTER TABLE tickets ADD COLUMN reply_token TEXT NOT NULL DEFAULT '';
UPDATE tickets SET reply_token = substr(md5(random()::text || id::text), 1, 12) WHERE reply_token = '';
