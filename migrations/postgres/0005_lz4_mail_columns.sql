-- The columns that hold whole mails are compressed with lz4 instead of
-- PostgreSQL's default pglz where the server has it (PostgreSQL 14 and
-- later, built with lz4, as Debian's, Ubuntu's and PGDG's packages are).
-- pglz made the INSERT of one 2-50 KB reply cost about 0.8 ms of the
-- backend's CPU inside the shared inbound commit; lz4 compresses mail text
-- about as well at a fraction of the cost. Rows already stored keep their
-- compression; a server without lz4 keeps pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE messages ALTER COLUMN raw SET COMPRESSION lz4,
                             ALTER COLUMN body_text SET COMPRESSION lz4;
        ALTER TABLE outbox ALTER COLUMN raw SET COMPRESSION lz4;
        ALTER TABLE quarantine ALTER COLUMN raw SET COMPRESSION lz4;
        ALTER TABLE blobs ALTER COLUMN bytes SET COMPRESSION lz4;
    END IF;
END
$$;
