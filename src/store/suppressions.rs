//! Suppressions: mail the gateway chose not to send (a loop cap hit, an
//! address that bounced), one row each with the reason; and the counts the
//! loop caps are judged on.

use sqlx::FromRow;

use super::{Store, StoreError, Tx, now_ms};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct SuppressionRow {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub rcpt: String,
    pub kind: String,
    pub reason: String,
    pub until_at: Option<i64>,
    pub at: i64,
}

impl Store {
    pub async fn suppression_add(
        tx: &mut Tx,
        ticket_id: Option<i64>,
        rcpt: &str,
        kind: &str,
        reason: &str,
        until_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO suppressions (ticket_id, rcpt, kind, reason, until_at, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ticket_id)
        .bind(rcpt)
        .bind(kind)
        .bind(reason)
        .bind(until_at)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Until when `rcpt` is not to be mailed because it bounced, if it is.
    pub async fn bounced_until(tx: &mut Tx, rcpt: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(until_at) FROM suppressions WHERE lower(rcpt) = lower($1) AND until_at > $2",
        )
        .bind(rcpt)
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await?)
    }

    /// Machine-made mails queued to `rcpt` since `since`, overall and on
    /// `ticket` (technicians' replies by hand do not count); each count
    /// stops at its cap, which is all the caller needs to know.
    pub async fn automatic_mail_counts(
        tx: &mut Tx,
        rcpt: &str,
        ticket: i64,
        since: i64,
        caps: (i64, i64),
    ) -> Result<(i64, i64), StoreError> {
        let all: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE rcpt_to = $1 AND created_at > $2 \
             AND kind <> 'reply' LIMIT $3) AS recent",
        )
        .bind(rcpt)
        .bind(since)
        .bind(caps.0)
        .fetch_one(&mut **tx)
        .await?;
        let on_ticket: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE rcpt_to = $1 AND created_at > $2 \
             AND kind <> 'reply' AND ticket_id = $3 LIMIT $4) AS recent",
        )
        .bind(rcpt)
        .bind(since)
        .bind(ticket)
        .bind(caps.1)
        .fetch_one(&mut **tx)
        .await?;
        Ok((all, on_ticket))
    }

    pub async fn suppressions_list(&self) -> Result<Vec<SuppressionRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, ticket_id, rcpt, kind, reason, until_at, at FROM suppressions ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?)
    }
}
