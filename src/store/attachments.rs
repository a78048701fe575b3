//! Attachments of stored messages, and the content-addressed blobs that hold
//! their bytes: the same file sent twice (a requester re-attaching the same
//! screenshot to every reply) is kept once, under its SHA-256.

use ring::digest::{SHA256, digest};
use sqlx::FromRow;

use super::exec::args;
use super::{Store, StoreError, Tx};

/// One attachment as listed with its message.
#[derive(Debug, Clone, FromRow)]
pub struct AttachmentRow {
    pub id: i64,
    /// messages.id, not the Message-ID header.
    pub message_id: i64,
    /// None when the bytes were not stored (over the size limit).
    pub blob_sha256: Option<String>,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// 1 for a part shown inside the body by its Content-ID.
    pub is_inline: i64,
    pub content_id: Option<String>,
    pub note: Option<String>,
}

pub struct NewAttachment<'a> {
    pub message_id: i64,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub inline: bool,
    pub content_id: Option<&'a str>,
    pub bytes: &'a [u8],
    /// The bytes' SHA-256 ([`sha256_hex`]) when they are kept; None lists
    /// the file with its size only (over the limit). Computed by the caller,
    /// outside the shared commit.
    pub sha256: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// Lowercase hex SHA-256, the blobs key.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = digest(&SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Lists the attachment on its message and, when its bytes are kept,
    /// stores them unless a blob with the same hash is already there.
    pub async fn attachment_insert(tx: &mut Tx, a: &NewAttachment<'_>) -> Result<i64, StoreError> {
        if let Some(sha) = a.sha256 {
            // Two instances may store the same file at once: the loser's
            // insert does nothing, and both rows point at the winner's blob.
            tx.exec(
                "INSERT INTO blobs (sha256, bytes, size) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
                args![sha, a.bytes, a.bytes.len() as i64],
            )
            .await?;
        }
        tx.one(
            "INSERT INTO attachments (message_id, blob_sha256, filename, content_type, size, is_inline, content_id, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            args![
                a.message_id,
                a.sha256,
                a.filename,
                a.content_type,
                a.bytes.len() as i64,
                i64::from(a.inline),
                a.content_id,
                a.note,
            ],
        )
        .await
    }

    /// Every attachment on a ticket's thread, by message then arrival order.
    pub async fn attachments_of_ticket(
        &self,
        ticket_id: i64,
    ) -> Result<Vec<AttachmentRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.message_id, a.blob_sha256, a.filename, a.content_type, a.size, a.is_inline, \
             a.content_id, a.note FROM attachments a JOIN messages m ON m.id = a.message_id \
             WHERE m.ticket_id = $1 ORDER BY a.message_id, a.id",
        )
        .bind(ticket_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The bytes stored under a hash.
    pub async fn blob_get(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT bytes FROM blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// How many distinct contents are stored (for tests and stats).
    pub async fn blob_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
            .fetch_one(self.pool())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
