//! Suppressions: mail the gateway chose not to send (a loop cap hit, an
//! address that bounced), one row each with the reason; and the counts the
//! loop caps are judged on.

use super::exec::args;
use super::{Store, StoreError, Tx, now_ms};

/// Until when `rcpt` is not to be mailed because it bounced (`now`: now);
/// both are placeholders.
fn bounced_until_sql(rcpt: &str, now: &str) -> String {
    format!(
        "SELECT MAX(until_at) FROM suppressions WHERE lower(rcpt) = lower({rcpt}) AND until_at > {now}"
    )
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
        tx.exec(
            "INSERT INTO suppressions (ticket_id, rcpt, kind, reason, until_at, at) VALUES ($1, $2, $3, $4, $5, $6)",
            args![ticket_id, rcpt, kind, reason, until_at, now_ms()],
        )
        .await?;
        Ok(())
    }

    /// Until when `rcpt` is not to be mailed because it bounced, if it is.
    pub async fn bounced_until(tx: &mut Tx, rcpt: &str) -> Result<Option<i64>, StoreError> {
        tx.one(&bounced_until_sql("$1", "$2"), args![rcpt, now_ms()])
            .await
    }

    /// Everything the loop caps need about `rcpt`, in one round trip (this
    /// runs inside the shared inbound commit): until when it is suppressed
    /// for a bounce, and the machine-made mails queued to it since `since`,
    /// overall and on `ticket` (technicians' replies by hand do not count).
    /// Each count stops at its cap, which is all the caller needs to know.
    pub async fn automatic_mail_state(
        tx: &mut Tx,
        rcpt: &str,
        ticket: i64,
        since: i64,
        caps: (i64, i64),
    ) -> Result<AutomaticMail, StoreError> {
        let (bounced_until, all, on_ticket) = tx
            .one(
                &automatic_mail_sql(caps, ["$1", "$2", "$3", "$4"]),
                args![rcpt, now_ms(), since, ticket],
            )
            .await?;
        Ok(AutomaticMail {
            bounced_until,
            all,
            on_ticket,
        })
    }
}

/// The query of [`Store::automatic_mail_state`], its columns `bounced`,
/// `n_all` and `n_ticket`; `p` names the placeholders of the recipient, now,
/// the window's start and the ticket. The caps are in the text: a bound
/// LIMIT makes SQLite re-prepare the statement at every bind.
pub(crate) fn automatic_mail_sql((all, on_ticket): (i64, i64), p: [&str; 4]) -> String {
    let [rcpt, now, since, ticket] = p;
    let bounced = bounced_until_sql(rcpt, now);
    format!(
        "SELECT ({bounced}) AS bounced, \
         (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE rcpt_to = {rcpt} AND created_at > {since} \
            AND kind <> 'reply' LIMIT {all}) AS recent) AS n_all, \
         (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE rcpt_to = {rcpt} AND created_at > {since} \
            AND kind <> 'reply' AND ticket_id = {ticket} LIMIT {on_ticket}) AS recent_on_ticket) AS n_ticket"
    )
}

/// What the loop caps know about one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomaticMail {
    pub bounced_until: Option<i64>,
    /// Counts, each at most its cap.
    pub all: i64,
    pub on_ticket: i64,
}

impl AutomaticMail {
    /// Whether one more such mail may go under `caps` (overall, on the
    /// ticket): no recent bounce and both counts under their caps. The
    /// guarded insert of `outbox_insert_capped` tests the same in SQL.
    pub fn allows(&self, (all, on_ticket): (i64, i64)) -> bool {
        self.bounced_until.is_none() && self.all < all && self.on_ticket < on_ticket
    }
}
