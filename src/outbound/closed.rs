//! A requester's reply to a closed ticket, per `[inbound] closed_ticket`:
//! `reopen` reopens the ticket and notifies the technicians as for any
//! reply; `keep` leaves it closed, notifies nobody and queues one automatic
//! reply telling the sender so. Runs inside the transaction that stores the
//! reply, so the message, the status and the mail commit together. It never
//! decides whether the message belongs to the ticket: inbound did that.

use crate::config::Config;
use crate::store::outbox::NewOutbox;
use crate::store::tickets::Ticket;
use crate::store::{Store, Tx, now_ms};

use super::{Notice, OutboundError, compose, thread};

/// The outbox `kind` of the "this ticket is closed" reply.
pub const KIND: &str = "closed-notice";

/// RFC 3834 3.1.1 asks an automatic responder not to answer the same sender
/// again for some days; one a day per ticket is enough to stop two robots
/// (or a requester's impatient client) from ping-ponging.
const QUIET_MS: i64 = 24 * 3600 * 1000;

/// The reply that arrived, as far as the answer needs it.
pub struct Incoming<'a> {
    /// The envelope sender (RFC 3834 3.1.4: answer the Return-Path).
    pub return_path: &'a str,
    pub message_id: &'a str,
    /// References then In-Reply-To, oldest first.
    pub thread_ids: &'a [String],
}

/// The plain-text answer, in the desk's language and in English.
pub fn notice_text(ticket_id: i64, from_name: &str) -> String {
    format!(
        "Esta solicitação (nº {ticket_id}) está encerrada. Sua mensagem foi registrada nela, \
         mas a solicitação continua encerrada e a equipe não foi avisada. Se precisar de mais \
         ajuda, abra uma nova solicitação.\n\n\
         This request (no. {ticket_id}) is closed. Your message was recorded on it, but the \
         request stays closed and the team was not notified. If you need more help, please open \
         a new request.\n\n-- \n{from_name}\n"
    )
}

/// `closed_ticket = "keep"`: a reply already stored on the closed `ticket`
/// in `tx` is answered once with the closed-ticket notice (the technicians
/// are not told). Returns the outbox row queued, if any. Under "reopen" the
/// inbound path reopens the ticket and queues the usual notification.
pub async fn on_reply(
    tx: &mut Tx,
    cfg: &Config,
    ticket: &Ticket,
    notice: &Notice<'_>,
    incoming: &Incoming<'_>,
) -> Result<Option<i64>, OutboundError> {
    let to = incoming.return_path;
    // Never answer ourselves: that is how an auto-reply loop starts.
    if to.is_empty() || to.eq_ignore_ascii_case(&cfg.mail.from) {
        return Ok(None);
    }
    if Store::outbox_sent_recently(tx, ticket.id, KIND, to, now_ms() - QUIET_MS).await? {
        return Ok(None);
    }
    let topic = if ticket.thread_topic.is_empty() {
        notice.subject
    } else {
        &ticket.thread_topic
    };
    let subject = format!("Re: {topic}");
    // A reply to the reply: its References plus its own Message-ID, trimmed
    // in the middle like every other mail on the thread (RFC 5322 3.6.4).
    let mut references: Vec<String> = incoming.thread_ids.to_vec();
    references.push(incoming.message_id.to_owned());
    // The ticket's root first, as on every mail we send: the requester's
    // client may have dropped it, and the matcher reads it.
    if !references.contains(&ticket.thread_root) {
        references.insert(0, ticket.thread_root.clone());
    }
    let max = thread::MAX_REFERENCES as usize;
    if references.len() > max {
        references.drain(1..references.len() - (max - 1));
    }
    if !super::caps::allow_automatic(tx, cfg, ticket.id, to, KIND).await? {
        return Ok(None);
    }
    let minted = super::token::mint(cfg, &*super::token::key(cfg)?, ticket.id, to);
    let message_id = minted.message_id.clone();
    let rcpt = vec![to.to_owned()];
    let raw = compose::build(&compose::Draft {
        from_name: &cfg.mail.from_name,
        from: &cfg.mail.from,
        reply_to: &minted.reply_to,
        auto: Some("auto-replied"),
        attachments: &[],
        to: &rcpt,
        subject: &subject,
        text: &notice_text(ticket.id, &cfg.mail.from_name),
        html: None,
        message_id: &message_id,
        in_reply_to: Some(incoming.message_id),
        references: &references,
        thread_topic: topic,
        thread_index: &thread::child_thread_index(&ticket.thread_index),
    })?;
    let id = Store::outbox_insert(
        tx,
        &NewOutbox {
            ticket_id: Some(ticket.id),
            kind: KIND,
            message_id: &message_id,
            // RFC 3834 3.3 prefers a null path, but the relay builds its
            // envelope from an address; the VERP one brings bounces back.
            mail_from: &minted.envelope_from,
            rcpt_to: &rcpt,
            raw: &raw,
            raw_codec: None,
        },
    )
    .await?;
    Ok(Some(id))
}
