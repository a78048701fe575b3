-- mensageria schema, SQLite dialect. Times are Unix milliseconds (INTEGER).
CREATE TABLE tickets (
    id                 INTEGER PRIMARY KEY,          -- IDSOLICITACAOSERVICO
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
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE UNIQUE INDEX tickets_by_thread_root ON tickets (thread_root);

CREATE TABLE messages (
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
    UNIQUE (ticket_id, message_id)
);
CREATE INDEX messages_by_message_id ON messages (message_id);

CREATE TABLE templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    body_text   TEXT NOT NULL,
    body_html   TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE parameters (
    number      INTEGER PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id        INTEGER,
    kind             TEXT NOT NULL,                  -- reply | notification
    message_id       TEXT NOT NULL UNIQUE,
    mail_from        TEXT NOT NULL,
    rcpt_to          TEXT NOT NULL,                  -- newline-separated
    raw              BLOB NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    claimed_by       TEXT,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mail_from    TEXT NOT NULL,
    rcpt_to      TEXT NOT NULL,
    subject      TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    raw          BLOB NOT NULL,
    received_at  INTEGER NOT NULL
);
