-- PostgreSQL only (lz4 compression of the mail columns); SQLite stores
-- values uncompressed. Kept so both dialects number their migrations alike.
SELECT 1;
