-- Whole mails may be stored compressed by the gateway (see
-- src/store/packed.rs): the codec of each row's raw bytes, NULL for the bytes
-- as they are. On PostgreSQL the gateway leaves compression to TOAST (lz4,
-- migration 0005), so its rows keep NULL; the column is there so that both
-- dialects read rows the same way.
ALTER TABLE messages ADD COLUMN raw_codec TEXT;
ALTER TABLE outbox_mail ADD COLUMN raw_codec TEXT;
