//! Tickets: the public ID (`IDSOLICITACAOSERVICO`), one column per template
//! key, the requester, the technicians, and the per-ticket thread identity
//! (root Message-ID, Outlook Thread-Index head and Thread-Topic).

use sqlx::FromRow;
use sqlx::any::AnyRow;

use super::exec::{Decode, args, next};
use super::{Store, StoreError, Tx, now_ms};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Ticket {
    pub id: i64,
    pub requester: String,
    pub contact_name: String,
    pub registered_by: String,
    pub opened_at_text: String,
    pub demand: String,
    pub service: String,
    pub related_service: String,
    pub portfolio: String,
    pub category: String,
    pub time_spent_date: String,
    pub time_spent_hours: String,
    pub technicians: String,
    pub thread_root: String,
    pub thread_index: String,
    pub thread_topic: String,
    pub status: String,
    /// Addresses allowed to post besides requester and technicians
    /// (newline-separated; added by `quarantine release --add-participant`).
    pub participants: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Ticket {
    pub fn technician_list(&self) -> Vec<String> {
        super::split_lines(&self.technicians)
    }

    /// Everyone the gateway mails about this ticket: requester, technicians.
    pub fn recipients(&self) -> Vec<String> {
        let mut v = vec![self.requester.clone()];
        v.extend(self.technician_list());
        v
    }

    /// True when `addr` may post on the ticket: requester, a technician,
    /// or an added participant (case-insensitive).
    pub fn is_participant(&self, addr: &str) -> bool {
        !addr.is_empty()
            && (self
                .recipients()
                .iter()
                .any(|a| a.eq_ignore_ascii_case(addr))
                || super::split_lines(&self.participants)
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(addr)))
    }
}

/// Fields of `ticket upsert`; None leaves a stored value as it is.
#[derive(Debug, Clone, Default)]
pub struct TicketFields {
    pub requester: Option<String>,
    pub contact_name: Option<String>,
    pub registered_by: Option<String>,
    pub opened_at_text: Option<String>,
    pub demand: Option<String>,
    pub service: Option<String>,
    pub related_service: Option<String>,
    pub portfolio: Option<String>,
    pub category: Option<String>,
    pub time_spent_date: Option<String>,
    pub time_spent_hours: Option<String>,
    /// Replaces the technician list when Some.
    pub technicians: Option<Vec<String>>,
}

const SELECT_BY_ID: &str = "SELECT id, requester, contact_name, registered_by, opened_at_text, \
    demand, service, related_service, portfolio, category, time_spent_date, time_spent_hours, \
    technicians, thread_root, thread_index, thread_topic, status, created_at, updated_at, \
    participants FROM tickets WHERE id = $1";

/// A ticket row in `SELECT_BY_ID`'s column order, from either driver.
impl Decode for Ticket {
    fn from_sqlx(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ticket::from_row(row)
    }

    fn from_direct(row: Vec<rusqlite::types::Value>) -> Result<Self, StoreError> {
        let mut c = row.into_iter();
        Ok(Ticket {
            id: next(&mut c)?,
            requester: next(&mut c)?,
            contact_name: next(&mut c)?,
            registered_by: next(&mut c)?,
            opened_at_text: next(&mut c)?,
            demand: next(&mut c)?,
            service: next(&mut c)?,
            related_service: next(&mut c)?,
            portfolio: next(&mut c)?,
            category: next(&mut c)?,
            time_spent_date: next(&mut c)?,
            time_spent_hours: next(&mut c)?,
            technicians: next(&mut c)?,
            thread_root: next(&mut c)?,
            thread_index: next(&mut c)?,
            thread_topic: next(&mut c)?,
            status: next(&mut c)?,
            created_at: next(&mut c)?,
            updated_at: next(&mut c)?,
            participants: next(&mut c)?,
        })
    }
}

impl Store {
    /// On the per-message path (see `Store::reader`).
    pub async fn ticket_get(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        self.reader()
            .await?
            .tx()
            .optional(SELECT_BY_ID, args![id])
            .await
    }

    /// Creates the ticket or updates the given fields. A new ticket gets its
    /// thread identity here, once, so every later mail threads under it.
    /// Returns true when the ticket was created.
    pub async fn ticket_upsert(
        &self,
        id: i64,
        f: &TicketFields,
        thread_root: &str,
        thread_index: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let existing: Option<Ticket> = sqlx::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let now = now_ms();
        let created = existing.is_none();
        let base = existing.unwrap_or_else(|| Ticket {
            id,
            requester: String::new(),
            contact_name: String::new(),
            registered_by: String::new(),
            opened_at_text: String::new(),
            demand: String::new(),
            service: String::new(),
            related_service: String::new(),
            portfolio: String::new(),
            category: String::new(),
            time_spent_date: String::new(),
            time_spent_hours: String::new(),
            technicians: String::new(),
            thread_root: thread_root.to_owned(),
            thread_index: thread_index.to_owned(),
            thread_topic: String::new(),
            status: "open".into(),
            participants: String::new(),
            created_at: now,
            updated_at: now,
        });
        let pick = |new: &Option<String>, old: String| new.clone().unwrap_or(old);
        let t = Ticket {
            requester: pick(&f.requester, base.requester),
            contact_name: pick(&f.contact_name, base.contact_name),
            registered_by: pick(&f.registered_by, base.registered_by),
            opened_at_text: pick(&f.opened_at_text, base.opened_at_text),
            demand: pick(&f.demand, base.demand),
            service: pick(&f.service, base.service),
            related_service: pick(&f.related_service, base.related_service),
            portfolio: pick(&f.portfolio, base.portfolio),
            category: pick(&f.category, base.category),
            time_spent_date: pick(&f.time_spent_date, base.time_spent_date),
            time_spent_hours: pick(&f.time_spent_hours, base.time_spent_hours),
            technicians: f
                .technicians
                .as_ref()
                .map(|v| super::join_lines(v))
                .unwrap_or(base.technicians),
            updated_at: now,
            ..base
        };
        sqlx::query(
            "INSERT INTO tickets (id, requester, contact_name, registered_by, opened_at_text, demand, service, \
             related_service, portfolio, category, time_spent_date, time_spent_hours, technicians, \
             thread_root, thread_index, thread_topic, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             ON CONFLICT (id) DO UPDATE SET requester = excluded.requester, contact_name = excluded.contact_name, \
             registered_by = excluded.registered_by, opened_at_text = excluded.opened_at_text, \
             demand = excluded.demand, service = excluded.service, related_service = excluded.related_service, \
             portfolio = excluded.portfolio, category = excluded.category, \
             time_spent_date = excluded.time_spent_date, time_spent_hours = excluded.time_spent_hours, \
             technicians = excluded.technicians, updated_at = excluded.updated_at",
        )
        .bind(t.id)
        .bind(&t.requester)
        .bind(&t.contact_name)
        .bind(&t.registered_by)
        .bind(&t.opened_at_text)
        .bind(&t.demand)
        .bind(&t.service)
        .bind(&t.related_service)
        .bind(&t.portfolio)
        .bind(&t.category)
        .bind(&t.time_spent_date)
        .bind(&t.time_spent_hours)
        .bind(&t.technicians)
        .bind(&t.thread_root)
        .bind(&t.thread_index)
        .bind(&t.thread_topic)
        .bind(&t.status)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Records the Thread-Topic the first time a mail goes out on the ticket,
    /// so later mails keep the same topic even if ticket fields change.
    pub async fn ticket_set_topic_once(
        tx: &mut Tx,
        id: i64,
        topic: &str,
    ) -> Result<String, StoreError> {
        tx.exec(
            "UPDATE tickets SET thread_topic = $1 WHERE id = $2 AND thread_topic = ''",
            args![topic, id],
        )
        .await?;
        tx.one("SELECT thread_topic FROM tickets WHERE id = $1", args![id])
            .await
    }

    /// Lets `addr` post on the ticket from now on.
    pub async fn ticket_add_participant(
        tx: &mut Tx,
        id: i64,
        addr: &str,
    ) -> Result<(), StoreError> {
        let current: String = tx
            .one("SELECT participants FROM tickets WHERE id = $1", args![id])
            .await?;
        let mut list = super::split_lines(&current);
        if !list.iter().any(|a| a.eq_ignore_ascii_case(addr)) {
            list.push(addr.to_owned());
        }
        let list = super::join_lines(&list);
        tx.exec(
            "UPDATE tickets SET participants = $1 WHERE id = $2",
            args![&list, id],
        )
        .await?;
        Ok(())
    }

    /// The ticket whose thread root is one of `ids`, if any.
    pub async fn ticket_by_thread_root(&self, ids: &[String]) -> Result<Option<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let mut r = self.reader().await?;
        for id in ids {
            let found: Option<i64> = r
                .tx()
                .optional("SELECT id FROM tickets WHERE thread_root = $1", args![id])
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

/// A stored thread message with its raw bytes, for `replay --message`.
#[derive(Debug, Clone)]
pub struct ThreadRaw {
    pub id: i64,
    pub ticket_id: i64,
    pub direction: String,
    pub author: String,
    pub recipients: String,
    pub raw: Vec<u8>,
}

/// [`ThreadRaw`] as the query returns it: the mail as stored, and its codec.
type ThreadRawRow = (i64, i64, String, String, String, Vec<u8>, Option<String>);

impl Store {
    /// Sets `open` or `closed`; false when the ticket does not exist.
    pub async fn ticket_set_status(&self, id: i64, status: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let found = Self::ticket_set_status_tx(&mut tx, id, status).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// The same inside a transaction (a reply reopening its ticket).
    pub async fn ticket_set_status_tx(
        tx: &mut Tx,
        id: i64,
        status: &str,
    ) -> Result<bool, StoreError> {
        let done = tx
            .exec(
                "UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3",
                args![status, now_ms(), id],
            )
            .await?;
        Ok(done == 1)
    }

    /// Whether the ticket's thread already holds this Message-ID (a new
    /// copy would be acknowledged as a duplicate).
    pub async fn ticket_holds_message(
        &self,
        ticket_id: i64,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE ticket_id = $1 AND message_id = $2",
        )
        .bind(ticket_id)
        .bind(message_id)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// One thread message (by its row id) with the bytes as received or sent.
    pub async fn ticket_message_raw(&self, id: i64) -> Result<Option<ThreadRaw>, StoreError> {
        let row: Option<ThreadRawRow> =
            sqlx::query_as(
                "SELECT id, ticket_id, direction, author, recipients, raw, raw_codec FROM messages WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(
            |(id, ticket_id, direction, author, recipients, raw, codec)| {
                Ok(ThreadRaw {
                    id,
                    ticket_id,
                    direction,
                    author,
                    recipients,
                    raw: super::packed::unpack(raw, codec.as_deref())?,
                })
            },
        )
        .transpose()
    }

    /// Inbound messages stored on any ticket since `since`, for `stats`.
    pub async fn tickets_inbound_since(&self, since: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND at >= $1")
                .bind(since)
                .fetch_one(self.pool())
                .await?,
        )
    }
}
