-- mensageria schema, PostgreSQL dialect. Times are Unix milliseconds (BIGINT).
CREATE TABLE tickets (
    id                 BIGINT PRIMARY KEY,           -- IDSOLICITACAOSERVICO
    requester          TEXT NOT NULL,
    contact_name       TEXT NOT NULL DEFAULT '',     -- NOMECONTATO
    registered_by      TEXT NOT NULL DEFAULT '',     -- REGISTRADOPOR
    opened_at_text     TEXT NOT NULL DEFAULT '',     -- DATAHORA
    demand             TEXT NOT NULL DEFAULT '',     -- DEMANDA
    service            TEXT NOT NULL DEFAULT '',     -- SERVICO
    related_service    TEXT NOT NULL DEFAULT '',     -- SERVICORELACIONADO
    portfolio          TEXT NOT NULL DEFAULT '',     -- PORTFOLIO
    category           TEXT NOT NULL DEFAULT '',     -- CATEGORIA
    time_spent_date    TEXT NOT NULL DEFAULT '',     -- TEMPOGASTODATA
    time_spent_hours   TEXT NOT NULL DEFAULT '',     -- TEMPOGASTOHORA
    technicians        TEXT NOT NULL DEFAULT '',     -- newline-separated addresses
    thread_root        TEXT NOT NULL,                -- stable per-ticket root Message-ID
    thread_index       TEXT NOT NULL,                -- base64 22-byte Outlook Thread-Index head
    thread_topic       TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL DEFAULT 'open',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE UNIQUE INDEX tickets_by_thread_root ON tickets (thread_root);

CREATE TABLE messages (
    id           BIGSERIAL PRIMARY KEY,
    ticket_id    BIGINT NOT NULL REFERENCES tickets(id),
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    author       TEXT NOT NULL,
    recipients   TEXT NOT NULL,                      -- newline-separated
    subject      TEXT NOT NULL,
    body_text    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    in_reply_to  TEXT,
    refs         TEXT,
    raw          BYTEA NOT NULL,
    at           BIGINT NOT NULL,
    UNIQUE (ticket_id, message_id)
);
CREATE INDEX messages_by_message_id ON messages (message_id);

CREATE TABLE templates (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    body_text   TEXT NOT NULL,
    body_html   TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE parameters (
    number      BIGINT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    ticket_id        BIGINT,
    kind             TEXT NOT NULL,                  -- reply | notification
    message_id       TEXT NOT NULL UNIQUE,
    mail_from        TEXT NOT NULL,
    rcpt_to          TEXT NOT NULL,                  -- newline-separated
    raw              BYTEA NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    claimed_by       TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE quarantine (
    id           BIGSERIAL PRIMARY KEY,
    mail_from    TEXT NOT NULL,
    rcpt_to      TEXT NOT NULL,
    subject      TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    raw          BYTEA NOT NULL,
    received_at  BIGINT NOT NULL
);
