//! Notifications: the technicians' copies of a requester's reply. They are
//! composed before the commit that stores the reply (composing is costly and
//! the commit is the inbound path's one serial step) and queued inside it,
//! where the loop caps decide which of them may go.

use super::handoff::{Handoff, Slot};
use super::{OutboundError, ThreadHeaders, caps, compose, thread_headers_after, token};
use crate::config::Config;
use crate::store::outbox::{Claimed, NewOutbox};
use crate::store::tickets::Ticket;
use crate::store::{Store, Tx, packed};

/// What a notification to the technicians says about one inbound reply.
///
/// Notifications are text only by design: `text` is what inbound extracted
/// as plain text, and the requester's HTML is never passed on as HTML, so
/// nothing in it (scripts, tracking pixels, forms) reaches a technician's
/// mail client. Its inline images come along as attachments.
pub struct Notice<'a> {
    pub sender: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// The reply's files, forwarded up to `[inbound] max_attachment_bytes`
    /// each; a bigger one is named in the text instead.
    pub attachments: &'a [compose::Attachment<'a>],
}

/// One composed copy per technician, waiting for the commit.
#[derive(Debug, Default)]
pub struct Prepared {
    mails: Vec<PreparedMail>,
}

#[derive(Debug)]
struct PreparedMail {
    to: String,
    message_id: String,
    envelope_from: String,
    raw: Vec<u8>,
    /// What the row stores instead of `raw`, compressed here rather than
    /// in the commit (see `store::packed`); the relay is handed `raw`.
    packed: Option<Vec<u8>>,
}

/// Composes the notification of the reply `message_id` on `ticket`, threaded
/// under it as if it were stored already; reads the thread outside any
/// transaction. Nothing is queued yet.
pub async fn prepare_notification(
    store: &Store,
    cfg: &Config,
    ticket: &Ticket,
    n: &Notice<'_>,
    message_id: &str,
) -> Result<Prepared, OutboundError> {
    if ticket.technician_list().is_empty() {
        return Ok(Prepared::default());
    }
    let mut conn = store.reader().await?;
    let th = thread_headers_after(conn.tx(), ticket, Some(message_id)).await?;
    drop(conn);
    compose_all(cfg, ticket, n, &th)
}

/// Queues what [`prepare_notification`] composed, inside the transaction
/// that stores the reply; a copy the loop caps stop leaves a suppression
/// row instead. A copy for which `slots` has room is written claimed, to be
/// handed to this process's relay worker once the transaction commits; the
/// others are queued for the worker's next claim.
pub async fn queue_prepared(
    tx: &mut Tx,
    cfg: &Config,
    ticket_id: i64,
    prepared: Prepared,
    mut slots: Vec<Slot>,
) -> Result<QueuedCopies, OutboundError> {
    let mut queued = QueuedCopies::default();
    for m in prepared.mails {
        let (raw, raw_codec) = packed::as_stored(&m.raw, m.packed.as_deref());
        let new = NewOutbox {
            ticket_id: Some(ticket_id),
            kind: "notification",
            message_id: &m.message_id,
            mail_from: &m.envelope_from,
            rcpt_to: std::slice::from_ref(&m.to),
            raw,
            raw_codec,
        };
        // Written claimed when the worker's queue has room for it.
        let slot = slots.pop();
        let lease = slot.as_ref().map(Slot::lease);
        let written = caps::queue_automatic(tx, cfg, (&m.to, ticket_id), &new, lease).await?;
        let lease_until = lease.map_or(0, |l| l.until);
        match (written, slot) {
            (Some(id), Some(slot)) => {
                let row = Claimed {
                    id,
                    message_id: m.message_id,
                    mail_from: m.envelope_from,
                    rcpt_to: vec![m.to],
                    raw: m.raw,
                    attempts: 1,
                    lease_until,
                    kind: "notification".to_owned(),
                    ticket_id: Some(ticket_id),
                };
                queued.handed.push((slot, row));
            }
            (Some(_), None) => queued.for_claim = true,
            // Stopped by the caps: the room is the next copy's.
            (None, Some(slot)) => slots.push(slot),
            (None, None) => {}
        }
    }
    Ok(queued)
}

/// What [`queue_prepared`] wrote.
#[derive(Default)]
pub struct QueuedCopies {
    /// Rows written claimed, with the room each takes in the worker's queue:
    /// handed over after the commit.
    pub handed: Vec<(Slot, Claimed)>,
    /// Some row waits for the worker's claim: wake it after the commit.
    pub for_claim: bool,
}

impl QueuedCopies {
    /// After the commit: the claimed rows go to the worker, and it is woken
    /// for the others.
    pub fn hand_over(self, handoff: &Handoff) {
        for (slot, row) in self.handed {
            slot.send(row);
        }
        if self.for_claim {
            handoff.wake();
        }
    }
}

impl Prepared {
    /// How many copies are waiting (one per technician).
    pub fn copies(&self) -> usize {
        self.mails.len()
    }
}

fn compose_all(
    cfg: &Config,
    ticket: &Ticket,
    n: &Notice<'_>,
    th: &ThreadHeaders,
) -> Result<Prepared, OutboundError> {
    let technicians = ticket.technician_list();
    let key = token::key(cfg)?;
    let topic = if ticket.thread_topic.is_empty() {
        n.subject
    } else {
        &ticket.thread_topic
    };
    // The new text first: a technician reads the answer in the first lines.
    let mut text = String::with_capacity(n.text.len() + 256);
    text.push_str(n.text.trim_end());
    // Above the "-- " line: clients fold what follows it as a signature.
    let max = cfg.inbound.max_attachment_bytes;
    let (attachments, too_big): (Vec<compose::Attachment<'_>>, Vec<_>) = n
        .attachments
        .iter()
        .copied()
        .partition(|a| a.body.len() <= max);
    if !too_big.is_empty() {
        text.push('\n');
    }
    for a in &too_big {
        text.push_str(&format!(
            "\n[Attachment not forwarded ({} bytes, over max_attachment_bytes): {}]",
            a.body.len(),
            a.filename
        ));
    }
    text.push_str("\n\n-- \n");
    text.push_str(&format!("Ticket {} · from {}\n", ticket.id, n.sender));
    for (label, v) in [
        ("Service", &ticket.service),
        ("Category", &ticket.category),
        ("Contact", &ticket.contact_name),
    ] {
        if !v.is_empty() {
            text.push_str(&format!("{label}: {v}\n"));
        }
    }
    let mut mails = Vec::with_capacity(technicians.len());
    for tech in technicians {
        // A technician who wrote the mail is not told about it.
        if tech.eq_ignore_ascii_case(n.sender) {
            continue;
        }
        let minted = token::mint(cfg, &key, ticket.id, &tech);
        let raw = compose::build(&compose::Draft {
            from_name: &cfg.mail.from_name,
            from: &cfg.mail.from,
            reply_to: &minted.reply_to,
            to: std::slice::from_ref(&tech),
            subject: n.subject,
            text: &text,
            html: None,
            message_id: &minted.message_id,
            in_reply_to: Some(&th.in_reply_to),
            references: &th.references,
            thread_topic: topic,
            thread_index: &th.thread_index,
            auto: Some("auto-generated"),
            attachments: &attachments,
        })?;
        mails.push(PreparedMail {
            to: tech,
            message_id: minted.message_id,
            envelope_from: minted.envelope_from,
            packed: packed::pack(&raw),
            raw,
        });
    }
    Ok(Prepared { mails })
}
