-- The bytes of a queued mail move out of the outbox row into a table of
-- their own. An outbox row changes two or more times on its way to the
-- relay (claimed, then sent, or queued again), and each change writes a
-- new version of the row: with the mail inline (compressed, often small
-- enough to stay in the row rather than in TOAST), each version carried a
-- copy of it. The mail itself is written once and read when the row is
-- claimed.
CREATE TABLE outbox_mail (
    outbox_id  BIGINT PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    raw        BYTEA NOT NULL
);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE outbox_mail ALTER COLUMN raw SET COMPRESSION lz4;
    END IF;
END
$$;
INSERT INTO outbox_mail (outbox_id, raw) SELECT id, raw FROM outbox;
ALTER TABLE outbox DROP COLUMN raw;

-- The relay's two searches (due rows, lapsed leases) on indexes that hold
-- only the rows each looks for, in the order it takes them. The index on
-- (state, next_attempt_at) held every row ever sent as well; on PostgreSQL
-- a claim walked past the entries its own earlier claims had left behind
-- (an update that changes an indexed column writes new index entries), and
-- the backend spent about three times the CPU it spends with these.
CREATE INDEX outbox_queued ON outbox (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX outbox_lapsing ON outbox (lease_until) WHERE state = 'sending';
DROP INDEX outbox_due;
