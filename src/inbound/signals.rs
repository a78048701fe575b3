//! The signals that tie a message to a ticket, in the order they decide: a
//! Reply-To token address (HMAC, authorises the sender), the ticket ID in
//! the subject (the requester's own words win over headers, as 4biz does),
//! a signed Message-ID of ours in In-Reply-To/References, and plain
//! References to mail on the thread. Each signal is kept, so the stored
//! message can say which ones found its ticket (`matched_by`).

use super::{Envelope, Inbound, InboundError, parse};
use crate::outbound::token;
use crate::store::tickets::Ticket;

/// How the ticket was found, for logs, `matched_by` and `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// Sent to the ticket's Reply-To address with a valid token.
    Token,
    /// Quotes a Message-ID the gateway signed for this ticket.
    Subject,
    SignedReference,
    References,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Token => "token",
            MatchedBy::SignedReference => "signed-reference",
            MatchedBy::Subject => "subject",
            MatchedBy::References => "references",
        }
    }
}

/// Every signal found, strongest first, each with the ticket it names.
pub async fn collect(
    inb: &Inbound,
    env: &Envelope,
    p: &parse::Parsed,
) -> Result<Signals, InboundError> {
    let cfg = &inb.cfg;
    let mut out = Vec::new();
    // Tickets read while checking signals, so the caller does not read the
    // chosen one again.
    let mut tickets: Vec<Ticket> = Vec::new();
    async fn ticket(
        inb: &Inbound,
        seen: &mut Vec<Ticket>,
        id: i64,
    ) -> Result<Option<Ticket>, InboundError> {
        if let Some(t) = seen.iter().find(|t| t.id == id) {
            return Ok(Some(t.clone()));
        }
        let t = inb.store.ticket_get(id).await?;
        seen.extend(t.clone());
        Ok(t)
    }
    let key = token::key(cfg).map_err(crate::outbound::OutboundError::from)?;
    for rcpt in &env.rcpt_to {
        if let Some((id, tok)) = token::parse_reply_address(cfg, rcpt)
            && let Some(t) = ticket(inb, &mut tickets, id).await?
            && key.check_reply_token(id, tok, &t.recipients()).is_some()
        {
            out.push((MatchedBy::Token, id));
            break;
        }
    }
    let matcher = inb.matcher().await?;
    if let Some(id) = matcher.find(&p.subject)
        && ticket(inb, &mut tickets, id).await?.is_some()
    {
        out.push((MatchedBy::Subject, id));
    }
    for mid in p.thread_ids.iter().rev() {
        if let Some((id, nonce, sig)) = token::parse_message_id(mid, &cfg.smtp.hostname)
            && let Some(t) = ticket(inb, &mut tickets, id).await?
            && t.recipients()
                .iter()
                .any(|r| key.message_id_sig(id, r, nonce) == sig)
        {
            out.push((MatchedBy::SignedReference, id));
            break;
        }
    }
    let by_refs = match inb.store.ticket_by_message_ids(&p.thread_ids).await? {
        Some(id) => Some(id),
        None => inb.store.ticket_by_thread_root(&p.thread_ids).await?,
    };
    if let Some(id) = by_refs {
        out.push((MatchedBy::References, id));
    }
    Ok(Signals {
        found: out,
        tickets,
    })
}

/// Every signal found, strongest first, each with the ticket it names, and
/// the tickets already read on the way.
pub struct Signals {
    pub found: Vec<(MatchedBy, i64)>,
    pub tickets: Vec<Ticket>,
}

/// The ticket the strongest signal names, and every signal that agrees.
pub fn decide(signals: &[(MatchedBy, i64)]) -> Option<(i64, Vec<MatchedBy>)> {
    let (_, ticket) = *signals.first()?;
    let agreeing = signals
        .iter()
        .filter(|(_, t)| *t == ticket)
        .map(|(s, _)| *s)
        .collect();
    Some((ticket, agreeing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongest_signal_decides_and_agreeing_ones_are_kept() {
        let s = [
            (MatchedBy::Token, 5),
            (MatchedBy::Subject, 9),
            (MatchedBy::References, 5),
        ];
        assert_eq!(
            decide(&s),
            Some((5, vec![MatchedBy::Token, MatchedBy::References]))
        );
        assert_eq!(decide(&[]), None);
    }
}
