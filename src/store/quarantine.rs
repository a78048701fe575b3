//! Quarantine: inbound mail that found no ticket, kept whole with the reason.

use sqlx::{FromRow, Row};

use super::exec::args;
use super::{Store, StoreError, Tx, now_ms};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct QuarantineRow {
    pub id: i64,
    pub mail_from: String,
    pub rcpt_to: String,
    pub subject: String,
    pub message_id: String,
    pub reason: String,
    pub received_at: i64,
    /// reply, auto-reply, list, bounce, … (see inbound::classify).
    pub kind: String,
}

/// What is written for one quarantined mail.
pub struct NewQuarantine<'a> {
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub subject: &'a str,
    pub message_id: &'a str,
    pub reason: &'a str,
    pub raw: &'a [u8],
    pub kind: &'a str,
}

impl Store {
    pub async fn quarantine_add(&self, q: &NewQuarantine<'_>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO quarantine (mail_from, rcpt_to, subject, message_id, reason, raw, received_at, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(q.mail_from)
        .bind(super::join_lines(q.rcpt_to))
        .bind(q.subject)
        .bind(q.message_id)
        .bind(q.reason)
        .bind(q.raw)
        .bind(now_ms())
        .bind(q.kind)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn quarantine_list(&self) -> Result<Vec<QuarantineRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, mail_from, rcpt_to, subject, message_id, reason, received_at, kind FROM quarantine ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?)
    }
}

impl Store {
    pub async fn quarantine_get(&self, id: i64) -> Result<Option<QuarantineRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, mail_from, rcpt_to, subject, message_id, reason, received_at, kind FROM quarantine WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The message exactly as it was received.
    pub async fn quarantine_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT raw FROM quarantine WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// True when the row existed.
    pub async fn quarantine_delete(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM quarantine WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The same, inside the transaction that stores the released message.
    pub async fn quarantine_delete_tx(tx: &mut Tx, id: i64) -> Result<bool, StoreError> {
        let done = tx
            .exec("DELETE FROM quarantine WHERE id = $1", args![id])
            .await?;
        Ok(done == 1)
    }

    /// Quarantined since `since`, counted by reason, most frequent first.
    pub async fn quarantine_reasons_since(
        &self,
        since: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT reason, COUNT(*) AS n FROM quarantine WHERE received_at >= $1 \
             GROUP BY reason ORDER BY n DESC, reason",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
