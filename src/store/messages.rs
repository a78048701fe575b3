//! Messages on a ticket's thread, inbound and outbound, raw bytes kept whole.

use sqlx::FromRow;

use super::exec::args;
use super::{Store, StoreError, Tx, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// A stored message without its raw bytes (they are fetched on demand).
#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub ticket_id: i64,
    pub direction: String,
    pub author: String,
    pub recipients: String,
    pub subject: String,
    pub body_text: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub refs: Option<String>,
    pub at: i64,
    /// reply, auto-reply, … (see inbound::classify).
    pub kind: String,
    /// Signals that found the ticket, comma-separated (inbound only).
    pub matched_by: String,
}

pub struct NewMessage<'a> {
    pub ticket_id: i64,
    pub direction: Direction,
    pub author: &'a str,
    pub recipients: &'a [String],
    pub subject: &'a str,
    pub body_text: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub refs: Option<&'a str>,
    /// The mail as stored: as received or composed, or packed (see
    /// `store::packed`) when `raw_codec` names how.
    pub raw: &'a [u8],
    pub raw_codec: Option<&'a str>,
    pub kind: &'a str,
    pub matched_by: &'a str,
}

impl Store {
    /// Inserts the message; None when the ticket already holds this
    /// Message-ID (a duplicate delivery), which is not an error.
    pub async fn message_insert(
        tx: &mut Tx,
        m: &NewMessage<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let recipients = super::join_lines(m.recipients);
        tx.optional(
            "INSERT INTO messages (ticket_id, direction, author, recipients, subject, body_text, message_id, \
             in_reply_to, refs, raw, at, kind, matched_by, raw_codec) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (ticket_id, message_id) DO NOTHING RETURNING id",
            args![
                m.ticket_id,
                m.direction.as_str(),
                m.author,
                &recipients,
                m.subject,
                m.body_text,
                m.message_id,
                m.in_reply_to,
                m.refs,
                m.raw,
                now_ms(),
                m.kind,
                m.matched_by,
                m.raw_codec,
            ],
        )
        .await
    }

    /// The thread, oldest first.
    pub async fn messages_of_ticket(&self, ticket_id: i64) -> Result<Vec<MessageRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, ticket_id, direction, author, recipients, subject, body_text, message_id, in_reply_to, \
             refs, at, kind, matched_by FROM messages WHERE ticket_id = $1 ORDER BY at, id",
        )
        .bind(ticket_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Message-IDs of the thread, oldest first, at most `limit` newest ones.
    pub async fn thread_ids(
        conn: &mut Tx,
        ticket_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = conn.all(&thread_ids_sql(limit), args![ticket_id]).await?;
        ids.reverse();
        Ok(ids)
    }

    /// The ticket of the first of `ids` that names a message the gateway
    /// sent (or stored), newest reference first as RFC 5322 3.6.4 orders them.
    pub async fn ticket_by_message_ids(&self, ids: &[String]) -> Result<Option<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let mut r = self.reader().await?;
        for id in ids.iter().rev() {
            let found: Option<i64> = r
                .tx()
                .optional(
                    "SELECT ticket_id FROM messages WHERE message_id = $1 LIMIT 1",
                    args![id],
                )
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

/// The newest `limit` Message-IDs of a ticket. The limit is in the text:
/// a bound LIMIT makes SQLite re-prepare the statement at every bind.
pub(crate) fn thread_ids_sql(limit: i64) -> String {
    format!(
        "SELECT message_id FROM messages WHERE ticket_id = $1 ORDER BY at DESC, id DESC LIMIT {limit}"
    )
}
