//! Bounces of the gateway's own mail. The VERP envelope sender of each
//! outbox row (`local+b.NONCE.SIG@domain`) names the row a bounce is about
//! without guessing; failing that, a Message-ID of ours quoted in the report.
//! The row is marked bounced with the recipient's reason, the technicians
//! are told once, and a permanently failing address is not mailed again for
//! `[loops] bounce_suppress_days`.

use super::{Envelope, Inbound, InboundError};
use crate::outbound::{self, token};
use crate::store::outbox::OutboxRow;
use crate::store::{Store, StoreError, now_ms};

/// The outbox row a bounce is about, if it is about our mail.
async fn row_of(
    inb: &Inbound,
    env: &Envelope,
    raw: &[u8],
) -> Result<Option<OutboxRow>, InboundError> {
    for rcpt in &env.rcpt_to {
        if token::is_bounce_address(&inb.cfg, rcpt)
            && let Some(row) = inb.store.outbox_by_envelope(rcpt).await?
        {
            return Ok(Some(row));
        }
    }
    // No VERP (an old row, or a relay that rewrote the sender): look for a
    // Message-ID of ours quoted in the report.
    let suffix = format!("@{}>", inb.cfg.smtp.hostname);
    let text = String::from_utf8_lossy(raw);
    for (end, _) in text.match_indices(&suffix) {
        let Some(start) = text[..end].rfind('<') else {
            continue;
        };
        if end - start > 200 {
            continue;
        }
        if let Some(row) = inb
            .store
            .outbox_by_message_id(&text[start..end + suffix.len()])
            .await?
        {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// RFC 3464 fields of the report: Status and Diagnostic-Code.
fn report_detail(raw: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(raw);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| match (l.get(..name.len()), l.get(name.len()..)) {
                (Some(head), Some(rest)) if !rest.is_empty() && head.eq_ignore_ascii_case(name) => {
                    Some(rest.trim().to_owned())
                }
                _ => None,
            })
    };
    let status = field("Status:");
    let diag = field("Diagnostic-Code:").unwrap_or_default();
    let detail = match (&status, diag.is_empty()) {
        (Some(s), false) => format!("{s} {diag}"),
        (Some(s), true) => s.clone(),
        (None, false) => diag,
        (None, true) => "no reason given".into(),
    };
    (status, detail)
}

/// Records the bounce and returns the quarantine reason.
pub async fn handle(inb: &Inbound, env: &Envelope, raw: &[u8]) -> Result<String, InboundError> {
    let Some(row) = row_of(inb, env, raw).await? else {
        return Ok("a bounce of mail not sent by this gateway, not a reply".into());
    };
    let (status, detail) = report_detail(raw);
    // A 4.x.x report is a delay notice; anything else is taken as final.
    let permanent = !status.as_deref().is_some_and(|s| s.starts_with('4'));
    let first = inb.store.outbox_mark_bounced(row.id, &detail).await?;
    let rcpt = row.rcpt_to.replace('\n', ", ");
    if first && permanent {
        let until = now_ms() + (inb.cfg.loops.bounce_suppress_days as i64) * 86_400_000;
        let mut tx = inb.store.begin().await?;
        for r in crate::store::split_lines(&row.rcpt_to) {
            let why = format!("bounced: {detail}");
            Store::suppression_add(&mut tx, row.ticket_id, &r, "bounce", &why, Some(until)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        // The technician learns once that the requester never got it.
        if let (Some(ticket), "reply") = (row.ticket_id, row.kind.as_str()) {
            let rcpts = crate::store::split_lines(&row.rcpt_to);
            outbound::failure::queue_failure_notice(
                &inb.store,
                &inb.cfg,
                ticket,
                &row.message_id,
                &rcpts,
                &detail,
            )
            .await?;
            inb.handoff.wake();
        }
    }
    let ticket = row
        .ticket_id
        .map(|t| format!(" (ticket {t})"))
        .unwrap_or_default();
    Ok(format!(
        "a bounce of our mail {} to {rcpt}{ticket}: {detail}",
        row.message_id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_fields_are_read_from_any_text() {
        // A line whose 7th or 16th byte falls inside a character.
        let raw =
            "状态状态状态状态状态\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 no such user\r\n";
        let (status, detail) = report_detail(raw.as_bytes());
        assert_eq!(status.as_deref(), Some("5.1.1"));
        assert!(detail.contains("no such user"), "{detail}");
    }
}
