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

-- The relay's two searches (due rows, lapsed leases) on indexes that hold
-- only the rows each looks for, in the order it takes them. The index on
-- (state, next_attempt_at) held every row ever sent as well; on PostgreSQL
-- a claim walked past the entries its own earlier claims had left behind
-- (an update that changes an indexed column writes new index entries), and
-- the backend spent about three times the CPU it spends with these.
CREATE INDEX outbox_queued ON outbox (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX outbox_lapsing ON outbox (lease_until) WHERE state = 'sending';
DROP INDEX outbox_due;
