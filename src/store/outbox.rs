//! The outbox: one row per outbound mail, its exact bytes to relay beside it
//! in `outbox_mail` (written once; the row itself changes state).
//!
//! A row moves queued → sending (claimed with an owner and a lease) → sent,
//! or back to queued with a later `next_attempt_at`, or to failed with the
//! reason. It leaves `sending` for `sent` only after the relay said 250.

use sqlx::{AssertSqlSafe, FromRow, Row};

use super::exec::{Arg, args};
use super::suppressions::{AutomaticMail, automatic_mail_sql};
use super::{Dialect, Store, StoreError, Tx, now_ms};

/// Sent rows per statement when outcomes are recorded.
const SENT_PER_STATEMENT: usize = 64;

/// Marks up to [`SENT_PER_STATEMENT`] rows ($3…) sent while `$1` holds
/// them, at `$2`.
static MARK_SENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let ids: Vec<String> = (3..3 + SENT_PER_STATEMENT)
        .map(|n| format!("${n}"))
        .collect();
    format!(
        "UPDATE outbox SET state = 'sent', sent_at = $2, last_error = NULL, claimed_by = NULL, \
         lease_until = NULL WHERE claimed_by = $1 AND id IN ({})",
        ids.join(", ")
    )
});

/// A claimed row as the claim's SELECT returns it: id, message_id,
/// mail_from, rcpt_to (one per line), the mail as stored and its codec,
/// attempts, kind, ticket_id.
type ClaimRow = (
    i64,
    String,
    String,
    String,
    Vec<u8>,
    Option<String>,
    i64,
    String,
    Option<i64>,
);

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// The recipient's reason when a bounce came back for this mail.
    pub bounce: Option<String>,
}

/// The claim: up to `limit` due rows and up to `limit` lapsed leases.
/// `limit` is written into the text, not bound: SQLite re-prepares a
/// statement with a bound LIMIT every time it is bound again (the planner
/// uses the value), which cost more than the claim itself.
pub(crate) fn claim_sql(dialect: Dialect, limit: i64) -> String {
    // PostgreSQL: concurrent instances skip each other's locked rows
    // instead of waiting; SQLite has one writer at a time anyway.
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    // SQLite's planner, without statistics, prefers the equality on
    // `state` in outbox_by_state_created and then sorts every queued
    // row; the partial indexes hold exactly the rows wanted, in order.
    let (queued, lapsing) = match dialect {
        Dialect::Postgres => ("", ""),
        Dialect::Sqlite => (" INDEXED BY outbox_queued", " INDEXED BY outbox_lapsing"),
    };
    // Due rows and lapsed leases in two searches, each in its index's
    // order with its own LIMIT: one search with OR read every queued
    // row and sorted them all, for each batch of a long backlog.
    format!(
        "WITH due AS (SELECT id FROM outbox{queued} WHERE state = 'queued' AND next_attempt_at <= $3 \
         ORDER BY next_attempt_at, id LIMIT {limit}{lock}), \
         lapsed AS (SELECT id FROM outbox{lapsing} WHERE state = 'sending' AND lease_until < $3 \
         ORDER BY lease_until LIMIT {limit}{lock}) \
         UPDATE outbox SET state = 'sending', claimed_by = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM due UNION ALL SELECT id FROM lapsed) \
         RETURNING id, message_id, mail_from, rcpt_to, \
         (SELECT raw FROM outbox_mail WHERE outbox_id = outbox.id), \
         (SELECT raw_codec FROM outbox_mail WHERE outbox_id = outbox.id), attempts, kind, ticket_id"
    )
}

/// A row claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    /// Attempts including this one.
    pub attempts: i64,
    /// When the claim runs out (ms since the epoch): another instance may
    /// take the row from then on.
    pub lease_until: i64,
    pub kind: String,
    pub ticket_id: Option<i64>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The relay said 250.
    Sent,
    /// A temporary failure: due again at `at` (Unix ms).
    Retry { at: i64, error: &'a str },
    /// Refused for good, or attempts exhausted.
    Failed { error: &'a str },
}

pub struct NewOutbox<'a> {
    pub ticket_id: Option<i64>,
    pub kind: &'a str,
    pub message_id: &'a str,
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    /// The mail as stored: as composed, or packed (see `store::packed`)
    /// when `raw_codec` names how.
    pub raw: &'a [u8],
    pub raw_codec: Option<&'a str>,
}

const LIST: &str = "SELECT id, ticket_id, kind, message_id, mail_from, rcpt_to, state, attempts, next_attempt_at, \
    last_error, created_at, sent_at, bounce FROM outbox";

/// The columns an outbox insert writes, and their values as
/// [`row_args`] binds them (`$1`–`$11`).
macro_rules! outbox_columns {
    () => {
        "(ticket_id, kind, message_id, mail_from, rcpt_to, state, attempts, next_attempt_at, \
         last_error, created_at, claimed_by, lease_until)"
    };
}
macro_rules! outbox_values {
    () => {
        "$1, $2, $3, $4, $5, $6, $9, $7, $8, $7, $10, $11"
    };
}

/// On PostgreSQL, after `WITH o AS (INSERT INTO outbox … RETURNING id)`:
/// the row's mail (`$12`, its codec `$13`) in the same statement.
macro_rules! outbox_mail_of_o {
    () => {
        "INSERT INTO outbox_mail (outbox_id, raw, raw_codec) SELECT id, $12, $13 FROM o \
         RETURNING outbox_id"
    };
}

/// `$1`–`$11` of an outbox insert (see `outbox_columns`).
fn row_args<'a>(
    o: &NewOutbox<'a>,
    rcpt_to: &'a str,
    state: &'a str,
    now: i64,
    reason: Option<&'a str>,
    lease: Option<NewClaim<'a>>,
) -> Vec<Arg<'a>> {
    args![
        o.ticket_id,
        o.kind,
        o.message_id,
        o.mail_from,
        rcpt_to,
        state,
        now,
        reason,
        lease.is_some() as i64,
        lease.map(|l| l.owner),
        lease.map(|l| l.until)
    ]
}

/// A claim written with the row itself: the mail is handed straight to the
/// writing process's relay worker (see `outbound::handoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewClaim<'a> {
    pub owner: &'a str,
    /// Unix ms; as a claim's, after which any instance may take the row.
    pub until: i64,
}

impl Store {
    /// Queues a mail for the relay worker, due now.
    pub async fn outbox_insert(tx: &mut Tx, o: &NewOutbox<'_>) -> Result<i64, StoreError> {
        Self::outbox_insert_state(tx, o, "queued", None, None).await
    }

    /// Writes a mail already claimed by `lease.owner`, its first attempt
    /// counted, as a claim would leave it.
    pub async fn outbox_insert_claimed(
        tx: &mut Tx,
        o: &NewOutbox<'_>,
        lease: NewClaim<'_>,
    ) -> Result<i64, StoreError> {
        Self::outbox_insert_state(tx, o, "sending", None, Some(lease)).await
    }

    /// Records a mail that cannot be sent (e.g. its template does not
    /// render), so the failure has a row that says why.
    pub async fn outbox_insert_failed(
        tx: &mut Tx,
        o: &NewOutbox<'_>,
        reason: &str,
    ) -> Result<i64, StoreError> {
        Self::outbox_insert_state(tx, o, "failed", Some(reason), None).await
    }

    /// Writes `o`, machine-made mail to `rcpt` (its one recipient) on
    /// `ticket`, unless `rcpt` bounced of late or a loop cap is reached (see
    /// [`AutomaticMail::allows`]); what the caps read, and the row's id when
    /// it was written. `lease`: written claimed, as
    /// [`Self::outbox_insert_claimed`] writes it. On PostgreSQL the read and
    /// both inserts are one statement: one round trip inside the shared
    /// commit instead of two, seeing what the transaction wrote before it as
    /// the read alone would.
    pub async fn outbox_insert_capped(
        tx: &mut Tx,
        o: &NewOutbox<'_>,
        lease: Option<NewClaim<'_>>,
        (rcpt, ticket): (&str, i64),
        since: i64,
        caps: (i64, i64),
    ) -> Result<(AutomaticMail, Option<i64>), StoreError> {
        let state = if lease.is_some() { "sending" } else { "queued" };
        if tx.dialect() == Dialect::Sqlite {
            let read = Self::automatic_mail_state(tx, rcpt, ticket, since, caps).await?;
            if !read.allows(caps) {
                return Ok((read, None));
            }
            let id = Self::outbox_insert_state(tx, o, state, None, lease).await?;
            return Ok((read, Some(id)));
        }
        let now = now_ms();
        let rcpt_to = super::join_lines(o.rcpt_to);
        let mut args = row_args(o, &rcpt_to, state, now, None, lease);
        args.extend(args![o.raw, o.raw_codec, rcpt, since, ticket]);
        let sql = format!(
            concat!(
                "WITH st AS ({read}), o AS (INSERT INTO outbox ",
                outbox_columns!(),
                " SELECT ",
                outbox_values!(),
                " FROM st WHERE st.bounced IS NULL AND st.n_all < {all} AND st.n_ticket < {on_ticket} \
                 RETURNING id), m AS (",
                outbox_mail_of_o!(),
                ") SELECT st.bounced, st.n_all, st.n_ticket, (SELECT outbox_id FROM m) FROM st"
            ),
            read = automatic_mail_sql(caps, ["$14", "$7", "$15", "$16"]),
            all = caps.0,
            on_ticket = caps.1,
        );
        let (bounced_until, all, on_ticket, id) = tx.one(&sql, args).await?;
        let read = AutomaticMail {
            bounced_until,
            all,
            on_ticket,
        };
        Ok((read, id))
    }

    async fn outbox_insert_state(
        tx: &mut Tx,
        o: &NewOutbox<'_>,
        state: &str,
        reason: Option<&str>,
        lease: Option<NewClaim<'_>>,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        let rcpt_to = super::join_lines(o.rcpt_to);
        let mut args = row_args(o, &rcpt_to, state, now, reason, lease);
        macro_rules! row {
            () => {
                concat!(
                    "INSERT INTO outbox ",
                    outbox_columns!(),
                    " VALUES (",
                    outbox_values!(),
                    ") RETURNING id"
                )
            };
        }
        match tx.dialect() {
            // One round trip for the row and its mail ($12).
            Dialect::Postgres => {
                args.push(Arg::Blob(o.raw));
                args.push(o.raw_codec.into());
                tx.one(
                    concat!("WITH o AS (", row!(), ") ", outbox_mail_of_o!()),
                    args,
                )
                .await
            }
            // No statement round trips on SQLite: two statements.
            Dialect::Sqlite => {
                let id = tx.one(row!(), args).await?;
                tx.exec(
                    "INSERT INTO outbox_mail (outbox_id, raw, raw_codec) VALUES ($1, $2, $3)",
                    args![id, o.raw, o.raw_codec],
                )
                .await?;
                Ok(id)
            }
        }
    }

    /// Claims up to `limit` due rows for `owner` until `lease_ms` from now,
    /// and up to `limit` rows whose lease ran out (their instance died).
    pub async fn outbox_claim(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        // In a transaction of its own: the claim's planner setting is
        // LOCAL to one (see outbox_claim_in).
        let mut tx = self.begin().await?;
        let claimed = Self::outbox_claim_in(&mut tx, owner, lease_ms, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// [`Store::outbox_claim`] inside a transaction (the group committer's).
    pub async fn outbox_claim_in(
        tx: &mut Tx,
        owner: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = now_ms();
        let dialect = tx.dialect();
        let sql = claim_sql(dialect, limit);
        // PostgreSQL keeps one plan for the claim, made from the table's
        // statistics at the time. Taken while few rows were queued (a new
        // table, or the usual near-empty queue before a relay outage), that
        // plan collects every due row with a bitmap scan and sorts them all
        // for each batch: a backlog of 60,000 drained at half the speed
        // it drains at otherwise. Without bitmap scans the planner walks
        // outbox_queued in order and stops at the limit, whatever the
        // statistics say. LOCAL, and reset after: the transaction may be
        // shared with other units of work.
        let steer = dialect == Dialect::Postgres;
        if steer {
            tx.exec("SET LOCAL enable_bitmapscan = off", args![])
                .await?;
        }
        let rows: Vec<ClaimRow> = tx.all(&sql, args![owner, now + lease_ms, now]).await?;
        if steer {
            tx.exec("RESET enable_bitmapscan", args![]).await?;
        }
        let mut claimed = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for (id, message_id, mail_from, rcpt_to, raw, codec, attempts, kind, ticket_id) in rows {
            let raw = match super::packed::unpack(raw, codec.as_deref()) {
                Ok(raw) => raw,
                Err(e) => {
                    tracing::error!(outbox_id = id, error = %e, "queued mail unreadable; row failed");
                    unreadable.push((id, e.to_string()));
                    continue;
                }
            };
            claimed.push(Claimed {
                id,
                message_id,
                mail_from,
                rcpt_to: super::split_lines(&rcpt_to),
                raw,
                attempts,
                lease_until: now + lease_ms,
                kind,
                ticket_id,
            });
        }
        // A mail that cannot be read back is not retried: its row fails with
        // the reason, in this transaction, and the claim goes on without it.
        let failed: Vec<_> = unreadable
            .iter()
            .map(|(id, error)| (*id, Outcome::Failed { error }))
            .collect();
        Self::outbox_record_in(tx, owner, &failed).await?;
        Ok(claimed)
    }

    /// The relay accepted the mail.
    pub async fn outbox_sent(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        self.outbox_record(owner, &[(id, Outcome::Sent)]).await
    }

    /// A permanent failure, or attempts exhausted.
    pub async fn outbox_failed(&self, id: i64, owner: &str, error: &str) -> Result<(), StoreError> {
        self.outbox_record(owner, &[(id, Outcome::Failed { error })])
            .await
    }

    /// Records the outcomes of several delivery attempts in one transaction
    /// (one disk sync for a whole batch). A row is updated only while
    /// `owner` still holds it: a row whose lease ran out and that another
    /// instance took over is left to that instance.
    pub async fn outbox_record(
        &self,
        owner: &str,
        outcomes: &[(i64, Outcome<'_>)],
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        Self::outbox_record_in(&mut tx, owner, outcomes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::outbox_record`] inside a transaction (the group committer's).
    pub async fn outbox_record_in(
        tx: &mut Tx,
        owner: &str,
        outcomes: &[(i64, Outcome<'_>)],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        // Sent rows, the common case, many per statement. One text serves
        // every count (a short chunk repeats its first id), so the
        // statement caches hold one statement, not one per count.
        let sent: Vec<i64> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Sent))
            .map(|(id, _)| *id)
            .collect();
        for ids in sent.chunks(SENT_PER_STATEMENT) {
            let mut args = args![owner, now];
            args.extend((0..SENT_PER_STATEMENT).map(|i| Arg::Int(*ids.get(i).unwrap_or(&ids[0]))));
            tx.exec(&MARK_SENT, args).await?;
        }
        // Each statement: the row ($1) while `owner` ($2) holds it, then the
        // outcome's own values.
        for (id, outcome) in outcomes {
            let (sql, args) = match *outcome {
                Outcome::Sent => continue,
                Outcome::Retry { at, error } => (
                    "UPDATE outbox SET state = 'queued', next_attempt_at = $3, last_error = $4, claimed_by = NULL, \
                     lease_until = NULL WHERE id = $1 AND claimed_by = $2",
                    args![*id, owner, at, error],
                ),
                Outcome::Failed { error } => (
                    "UPDATE outbox SET state = 'failed', last_error = $3, claimed_by = NULL, lease_until = NULL \
                     WHERE id = $1 AND claimed_by = $2",
                    args![*id, owner, error],
                ),
            };
            tx.exec(sql, args).await?;
        }
        Ok(())
    }

    pub async fn outbox_list(&self) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!("{LIST} ORDER BY id")))
            .fetch_all(self.pool())
            .await?)
    }

    /// The row whose VERP envelope sender is `mail_from`.
    pub async fn outbox_by_envelope(
        &self,
        mail_from: &str,
    ) -> Result<Option<OutboxRow>, StoreError> {
        Ok(
            sqlx::query_as(AssertSqlSafe(format!("{LIST} WHERE mail_from = $1")))
                .bind(mail_from)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Marks a row bounced; true the first time (so the technician is told once).
    pub async fn outbox_mark_bounced(&self, id: i64, detail: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE outbox SET bounce = $1 WHERE id = $2 AND bounce IS NULL")
            .bind(detail)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The row that sent the mail with this Message-ID, if we sent it.
    pub async fn outbox_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<OutboxRow>, StoreError> {
        Ok(
            sqlx::query_as(AssertSqlSafe(format!("{LIST} WHERE message_id = $1")))
                .bind(message_id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn outbox_get(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        Ok(
            sqlx::query_as(AssertSqlSafe(format!("{LIST} WHERE id = $1")))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The exact bytes queued for a row.
    pub async fn outbox_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>, Option<String>)> =
            sqlx::query_as("SELECT raw, raw_codec FROM outbox_mail WHERE outbox_id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.map(|(raw, codec)| super::packed::unpack(raw, codec.as_deref()))
            .transpose()
    }
}

/// Who holds a row in `sending`, for `queue show` and `queue drop`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lease {
    pub claimed_by: Option<String>,
    pub lease_until: Option<i64>,
}

/// Outbound counts for `stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutboxCounts {
    pub sent: i64,
    pub failed: i64,
}

/// What the outbox holds right now, for `stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutboxNow {
    pub queued: i64,
    pub sending: i64,
    pub failed: i64,
    /// Creation time of the oldest row still waiting (queued or sending).
    pub oldest_waiting_at: Option<i64>,
}

impl Store {
    pub async fn outbox_lease(&self, id: i64) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query("SELECT claimed_by, lease_until FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| Lease {
            claimed_by: r.get(0),
            lease_until: r.get(1),
        }))
    }

    /// Makes a queued or failed row (or one whose sender's lease ran out)
    /// due now; attempts are kept so the relay's give-up count still tells
    /// how often it was tried. False when the row is sent or under a live
    /// lease (the caller explains which).
    pub async fn outbox_requeue(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'queued', next_attempt_at = $1, claimed_by = NULL, lease_until = NULL \
             WHERE id = $2 AND (state IN ('queued', 'failed') OR (state = 'sending' AND lease_until < $1))",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `queue retry --all`: every failed row due now; returns how many.
    pub async fn outbox_requeue_failed(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'queued', next_attempt_at = $1, claimed_by = NULL, lease_until = NULL \
             WHERE state = 'failed'",
        )
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes a row that is queued, failed, or in `sending` under a lease
    /// that ran out (its instance died). Sent rows stay as history, and a
    /// live lease means a relay is sending it right now. True when deleted.
    pub async fn outbox_delete(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE id = $1 AND (state IN ('queued', 'failed') \
             OR (state = 'sending' AND lease_until < $2))",
        )
        .bind(id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether a mail of `kind` went (or is going) to `rcpt` about a ticket
    /// since `since`; the closed-ticket auto-reply sends one a day at most.
    pub async fn outbox_sent_recently(
        tx: &mut Tx,
        ticket_id: i64,
        kind: &str,
        rcpt: &str,
        since: i64,
    ) -> Result<bool, StoreError> {
        let n: i64 = tx
            .one(
                "SELECT COUNT(*) FROM outbox WHERE ticket_id = $1 AND kind = $2 AND rcpt_to = $3 \
                 AND created_at >= $4",
                args![ticket_id, kind, rcpt, since],
            )
            .await?;
        Ok(n > 0)
    }

    /// Sent and failed since `since`. The outbox keeps no failure time: a
    /// failed row's `next_attempt_at` is when its last attempt fell due (or
    /// when it was recorded, for a mail that never rendered), close enough.
    pub async fn outbox_counts_since(&self, since: i64) -> Result<OutboxCounts, StoreError> {
        let sent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND sent_at >= $1",
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        let failed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE state = 'failed' AND next_attempt_at >= $1",
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        Ok(OutboxCounts { sent, failed })
    }

    pub async fn outbox_now(&self) -> Result<OutboxNow, StoreError> {
        let mut now = OutboxNow::default();
        let rows = sqlx::query("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        for r in rows {
            let n: i64 = r.get(1);
            match r.get::<String, _>(0).as_str() {
                "queued" => now.queued = n,
                "sending" => now.sending = n,
                "failed" => now.failed = n,
                _ => {}
            }
        }
        now.oldest_waiting_at = sqlx::query_scalar(
            "SELECT MIN(created_at) FROM outbox WHERE state IN ('queued', 'sending')",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(now)
    }
}
