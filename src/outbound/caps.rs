//! Loop caps and bounce suppression for the gateway's own mail. A mail
//! that may not go leaves a suppression row that says why, never nothing.

use crate::config::Config;
use crate::store::{Store, StoreError, Tx, now_ms};

/// Whether machine-made mail of `kind` may go to `rcpt` about `ticket`.
pub async fn allow_automatic(
    tx: &mut Tx,
    cfg: &Config,
    ticket: i64,
    rcpt: &str,
    kind: &str,
) -> Result<bool, StoreError> {
    let since = now_ms() - (cfg.loops.window_secs as i64) * 1000;
    let caps = (cfg.loops.per_recipient, cfg.loops.per_ticket_recipient);
    let state = Store::automatic_mail_state(tx, rcpt, ticket, since, caps).await?;
    if let Some(until) = state.bounced_until {
        let reason = bounce_reason(rcpt, until);
        Store::suppression_add(tx, Some(ticket), rcpt, kind, &reason, None).await?;
        return Ok(false);
    }
    let (all, on_ticket) = (state.all, state.on_ticket);
    let minutes = cfg.loops.window_secs / 60;
    let reason = if on_ticket >= cfg.loops.per_ticket_recipient {
        format!(
            "loop cap: {on_ticket} automatic mails to {rcpt} on ticket {ticket} in {minutes} min"
        )
    } else if all >= cfg.loops.per_recipient {
        format!("loop cap: {all} automatic mails to {rcpt} in {minutes} min")
    } else {
        return Ok(true);
    };
    tracing::warn!(ticket, rcpt, kind, %reason, "mail suppressed");
    Store::suppression_add(tx, Some(ticket), rcpt, kind, &reason, None).await?;
    Ok(false)
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
