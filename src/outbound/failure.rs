//! When the relay refuses a technician's message for good, the technicians
//! are told: a notice threaded on the ticket, with the relay's words. Only
//! mail to requesters gets a notice; a notice about a notice would loop.

use crate::config::Config;
use crate::store::outbox::NewOutbox;
use crate::store::{Store, StoreError};

use super::{OutboundError, compose, thread_headers};

/// The outbox `kind` of a failure notice.
pub const KIND: &str = "failure-notice";

/// Queues the notice for the failed row; None when the ticket has no
/// technicians (the failed row itself still says why).
pub async fn queue_failure_notice(
    store: &Store,
    cfg: &Config,
    ticket_id: i64,
    failed_message_id: &str,
    rcpt: &[String],
    reason: &str,
) -> Result<Option<i64>, OutboundError> {
    let Some(ticket) = store.ticket_get(ticket_id).await? else {
        return Ok(None);
    };
    let to = ticket.technician_list();
    if to.is_empty() {
        return Ok(None);
    }
    // Read and prepared before the write transaction, which on SQLite
    // holds the write lock from its start.
    let th = {
        let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
        thread_headers(&mut conn, &ticket).await?
    };
    let key = super::token::key(cfg)?;
    let subject = format!(
        "Undeliverable: ticket {ticket_id} message to {}",
        rcpt.join(", ")
    );
    let text = format!(
        "Your message on ticket {ticket_id} to {} could not be delivered.\n\n\
         The relay answered: {reason}\n\nMessage-ID: {failed_message_id}\n",
        rcpt.join(", ")
    );
    let mut tx = store.begin().await?;
    let mut last = None;
    for tech in &to {
        if !super::caps::allow_automatic(&mut tx, cfg, ticket_id, tech, KIND).await? {
            continue;
        }
        let minted = super::token::mint(cfg, &key, ticket_id, tech);
        let rcpt_one = std::slice::from_ref(tech);
        let raw = compose::build(&compose::Draft {
            from_name: &cfg.mail.from_name,
            from: &cfg.mail.from,
            reply_to: &minted.reply_to,
            to: rcpt_one,
            subject: &subject,
            text: &text,
            html: None,
            message_id: &minted.message_id,
            in_reply_to: Some(failed_message_id),
            references: &th.references,
            thread_topic: &ticket.thread_topic,
            thread_index: &th.thread_index,
            auto: Some("auto-generated"),
            attachments: &[],
        })?;
        let id = Store::outbox_insert(
            &mut tx,
            &NewOutbox {
                ticket_id: Some(ticket_id),
                kind: KIND,
                message_id: &minted.message_id,
                mail_from: &minted.envelope_from,
                rcpt_to: rcpt_one,
                raw: &raw,
                raw_codec: None,
            },
        )
        .await?;
        last = Some(id);
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(last)
}
