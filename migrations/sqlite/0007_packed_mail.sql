-- Whole mails may be stored compressed (see src/store/packed.rs): the codec
-- of each row's raw bytes, NULL for the bytes as they are. Rows already
-- stored keep them as they are.
ALTER TABLE messages ADD COLUMN raw_codec TEXT;
ALTER TABLE outbox_mail ADD COLUMN raw_codec TEXT;
