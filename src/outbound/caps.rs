//! Loop caps and bounce suppression for the gateway's own mail. A mail
//! that may not go leaves a suppression row that says why, never nothing.

use crate::config::Config;
use crate::store::outbox::{NewClaim, NewOutbox};
use crate::store::suppressions::AutomaticMail;
use crate::store::{Store, StoreError, Tx, now_ms};

/// Whether machine-made mail of `kind` may go to `rcpt` about `ticket`.
pub async fn allow_automatic(
    tx: &mut Tx,
    cfg: &Config,
    ticket: i64,
    rcpt: &str,
    kind: &str,
) -> Result<bool, StoreError> {
    let (since, caps) = limits(cfg);
    let state = Store::automatic_mail_state(tx, rcpt, ticket, since, caps).await?;
    if state.allows(caps) {
        return Ok(true);
    }
    suppress(tx, cfg, (rcpt, ticket), kind, &state).await?;
    Ok(false)
}

/// Queues `o`, machine-made mail whose one recipient is `rcpt`, on
/// `ticket`, unless the caps stop it, which leaves a suppression row
/// instead; the row's id when it was queued. The caps' read and the insert
/// are one round trip on PostgreSQL (`Store::outbox_insert_capped`): this
/// runs once per technician of every reply, inside the shared commit.
pub async fn queue_automatic(
    tx: &mut Tx,
    cfg: &Config,
    (rcpt, ticket): (&str, i64),
    o: &NewOutbox<'_>,
    lease: Option<NewClaim<'_>>,
) -> Result<Option<i64>, StoreError> {
    debug_assert_eq!(o.rcpt_to, [rcpt]);
    let (since, caps) = limits(cfg);
    let (state, id) =
        Store::outbox_insert_capped(tx, o, lease, (rcpt, ticket), since, caps).await?;
    if id.is_none() {
        suppress(tx, cfg, (rcpt, ticket), o.kind, &state).await?;
    }
    Ok(id)
}

/// The window's start and the caps (overall, on one ticket) of `cfg`.
fn limits(cfg: &Config) -> (i64, (i64, i64)) {
    let since = now_ms() - (cfg.loops.window_secs as i64) * 1000;
    (
        since,
        (cfg.loops.per_recipient, cfg.loops.per_ticket_recipient),
    )
}

/// The suppression row of a mail to `rcpt` on `ticket` that `state` does
/// not allow, with the reason: the bounce, or the cap that was reached (a
/// loop cap is also logged).
async fn suppress(
    tx: &mut Tx,
    cfg: &Config,
    (rcpt, ticket): (&str, i64),
    kind: &str,
    state: &AutomaticMail,
) -> Result<(), StoreError> {
    let reason = match state.bounced_until {
        Some(until) => bounce_reason(rcpt, until),
        None => {
            let minutes = cfg.loops.window_secs / 60;
            let reason = if state.on_ticket >= cfg.loops.per_ticket_recipient {
                let n = state.on_ticket;
                format!(
                    "loop cap: {n} automatic mails to {rcpt} on ticket {ticket} in {minutes} min"
                )
            } else {
                let n = state.all;
                format!("loop cap: {n} automatic mails to {rcpt} in {minutes} min")
            };
            tracing::warn!(ticket, rcpt, kind, %reason, "mail suppressed");
            reason
        }
    };
    Store::suppression_add(tx, Some(ticket), rcpt, kind, &reason, None).await
}

/// Why `rcpt` is not mailed now, when it bounced permanently of late.
pub async fn bounced(tx: &mut Tx, rcpt: &str) -> Result<Option<String>, StoreError> {
    Ok(Store::bounced_until(tx, rcpt)
        .await?
        .map(|until| bounce_reason(rcpt, until)))
}

fn bounce_reason(rcpt: &str, until: i64) -> String {
    format!(
        "{rcpt} bounced permanently; not mailed until {}",
        crate::cli::output::time(until)
    )
}
