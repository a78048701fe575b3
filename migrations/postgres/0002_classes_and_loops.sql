-- Message classes and the signals that found the ticket; extra participants;
-- bounces of our own mail; and the rows that say why mail was suppressed.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'reply';
ALTER TABLE messages ADD COLUMN matched_by TEXT NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN kind TEXT NOT NULL DEFAULT 'reply';
ALTER TABLE tickets ADD COLUMN participants TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN bounce TEXT;

CREATE TABLE suppressions (
    id          BIGSERIAL PRIMARY KEY,
    ticket_id   BIGINT,
    rcpt        TEXT NOT NULL,
    kind        TEXT NOT NULL,                      -- what was not sent
    reason      TEXT NOT NULL,
    until_at    BIGINT,                             -- set for a bounced address
    at          BIGINT NOT NULL
);
CREATE INDEX suppressions_by_rcpt ON suppressions (rcpt, at);
CREATE INDEX outbox_by_rcpt ON outbox (rcpt_to, created_at);
CREATE INDEX outbox_by_mail_from ON outbox (mail_from);
