//! Inbound: what a received message means. Given the envelope and the raw
//! bytes, it parses, classifies, finds the ticket (subject first, then the
//! thread headers) and commits the message with the technicians'
//! notification — or quarantines it with the reason. It never speaks SMTP:
//! the listener maps its `Outcome` to a reply.

pub mod classify;
pub mod extract;
pub mod parse;
pub mod subject;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::config::{Strangers, Config, Unmatched};
use crate::outbound::{self, Notice, OutboundError};
use crate::store::messages::{Direction, NewMessage};
use crate::store::quarantine::NewQuarantine;
use crate::store::tickets::Ticket;
use crate::store::{Store, StoreError};
use subject::SubjectMatcher;

/// The SMTP envelope of one transaction.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub peer: SocketAddr,
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// What became of a message. The listener turns it into one SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored {
        ticket: i64,
        message_id: String,
    },
    /// Already on the ticket: acknowledged, not stored again.
    Duplicate {
        ticket: i64,
        message_id: String,
    },
    Quarantined {
        id: i64,
        reason: String,
    },
    Rejected {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
}

/// How the ticket was found, for logs and `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// Sent to the ticket's Reply-To address with the right token.
    Token,
    Subject,
    References,
}

/// True when `addr` is the ticket's requester or one of its technicians.
pub fn is_participant(ticket: &Ticket, addr: &str) -> bool {
    !addr.is_empty()
        && (ticket.requester.eq_ignore_ascii_case(addr)
            || ticket.technician_list().iter().any(|t| t.eq_ignore_ascii_case(addr)))
}

pub struct Inbound {
    store: Store,
    cfg: Arc<Config>,
    /// Wakes the relay worker when a notification is queued.
    wake: Arc<Notify>,
    /// The matcher compiled from template 417's subject, rebuilt when the
    /// subject text changes (the CLI may change it while we run).
    matcher: Mutex<Option<(String, SubjectMatcher)>>,
}

impl Inbound {
    pub fn new(store: Store, cfg: Arc<Config>, wake: Arc<Notify>) -> Inbound {
        Inbound {
            store,
            cfg,
            wake,
            matcher: Mutex::new(None),
        }
    }

    /// The matcher in force: the config override, else one derived from the
    /// subject of template 417, else the built-in fallback.
    pub async fn matcher(&self) -> Result<SubjectMatcher, InboundError> {
        if let Some(p) = &self.cfg.inbound.subject_pattern {
            // validate() already compiled it once.
            return Ok(SubjectMatcher::from_regex(p).unwrap_or_else(|_| SubjectMatcher::fallback()));
        }
        let subject = match outbound::current_template(&self.store).await {
            Ok(t) => t.row.subject,
            Err(OutboundError::Store(e)) => return Err(e.into()),
            Err(_) => String::new(),
        };
        let mut cache = self.matcher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, m)) = cache.as_ref() {
            if *s == subject {
                return Ok(m.clone());
            }
        }
        let m = SubjectMatcher::from_template(&subject).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "template 417 gives no subject pattern; using the built-in one");
            SubjectMatcher::fallback()
        });
        *cache = Some((subject, m.clone()));
        Ok(m)
    }

    /// The ticket a message belongs to, and how it was found.
    pub async fn find_ticket(
        &self,
        p: &parse::Parsed,
    ) -> Result<Option<(i64, MatchedBy)>, InboundError> {
        let matcher = self.matcher().await?;
        if let Some(id) = matcher.find(&p.subject) {
            if self.store.ticket_get(id).await?.is_some() {
                return Ok(Some((id, MatchedBy::Subject)));
            }
        }
        if let Some(id) = self.store.ticket_by_message_ids(&p.thread_ids).await? {
            return Ok(Some((id, MatchedBy::References)));
        }
        if let Some(id) = self.store.ticket_by_thread_root(&p.thread_ids).await? {
            return Ok(Some((id, MatchedBy::References)));
        }
        Ok(None)
    }

    /// Decides and commits. Err only when the store cannot commit: the
    /// client must then be told to try again later.
    pub async fn accept(&self, env: &Envelope, raw: &[u8]) -> Result<Outcome, InboundError> {
        let Some((p, msg)) = parse::parse(raw, &self.cfg.smtp.hostname) else {
            return self
                .unmatched(env, raw, "", "", "the message could not be parsed")
                .await;
        };
        let kind = classify::classify(&env.mail_from, &msg);
        drop(msg);
        if kind != classify::Kind::Person {
            let reason = match kind {
                classify::Kind::Bounce => self.bounce_reason(raw).await?,
                _ => kind.reason().to_owned(),
            };
            // Robots are never rejected: a 550 to an auto-responder or a
            // bounce only makes another bounce.
            return self
                .quarantine(env, raw, &p.subject, &p.message_id, &reason)
                .await;
        }
        let by_token = self.ticket_by_reply_address(env).await?;
        let found = match by_token {
            Some(id) => Some((id, MatchedBy::Token)),
            None => self.find_ticket(&p).await?,
        };
        let Some((ticket_id, by)) = found else {
            let reason = "no ticket matches the subject or the thread headers";
            return self
                .unmatched(env, raw, &p.subject, &p.message_id, reason)
                .await;
        };
        let Some(ticket) = self.store.ticket_get(ticket_id).await? else {
            return self
                .unmatched(env, raw, &p.subject, &p.message_id, "the ticket vanished")
                .await;
        };
        // Knowing a ticket number is not enough to write on it: the sender
        // must take part in the ticket, or answer its Reply-To address.
        let strangers = self.cfg.inbound.strangers;
        if by != MatchedBy::Token
            && strangers == Strangers::Quarantine
            && !is_participant(&ticket, &p.from)
            && !is_participant(&ticket, &env.mail_from)
        {
            let who = if p.from.is_empty() { &env.mail_from } else { &p.from };
            let reason = format!("sender {who} is not a participant of ticket {ticket_id}");
            return self.quarantine(env, raw, &p.subject, &p.message_id, &reason).await;
        }
        self.store_reply(env, raw, p, ticket, Some(by), None).await
    }

    /// The ticket named by a recipient `local+ID.TOKEN@domain`, when the
    /// token is that ticket's.
    pub async fn ticket_by_reply_address(&self, env: &Envelope) -> Result<Option<i64>, InboundError> {
        for rcpt in &env.rcpt_to {
            if let Some((id, token)) = outbound::parse_reply_address(&self.cfg, rcpt) {
                if let Some(t) = self.store.ticket_get(id).await? {
                    if !t.reply_token.is_empty() && t.reply_token == token {
                        return Ok(Some(id));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Why a bounce is held: for mail this gateway sent, which mail and
    /// ticket (found by the Message-ID quoted in the report); else that it
    /// reports on mail we never sent (backscatter).
    pub async fn bounce_reason(&self, raw: &[u8]) -> Result<String, InboundError> {
        let suffix = format!("@{}>", self.cfg.smtp.hostname);
        let text = String::from_utf8_lossy(raw);
        for (end, _) in text.match_indices(&suffix) {
            let Some(start) = text[..end].rfind('<') else { continue };
            // Message-IDs are short; anything longer is not one of ours.
            if end - start > 200 {
                continue;
            }
            let id = &text[start..end + suffix.len()];
            if let Some(row) = self.store.outbox_by_message_id(id).await? {
                let ticket = row.ticket_id.map(|t| format!(" (ticket {t})")).unwrap_or_default();
                return Ok(format!(
                    "a bounce of our mail {id} to {}{ticket}, not a reply",
                    row.rcpt_to.replace('\n', ", ")
                ));
            }
        }
        Ok("a bounce of mail not sent by this gateway, not a reply".into())
    }

    /// Stores `p` on `ticket` with the technicians' notification (or the
    /// closed-ticket policy) in one transaction. `accept` calls it once the
    /// ticket is found; `quarantine release` with the ticket an administrator
    /// chose and the quarantine row to delete in the same commit.
    pub async fn store_reply(
        &self,
        env: &Envelope,
        raw: &[u8],
        p: parse::Parsed,
        ticket: Ticket,
        by: Option<MatchedBy>,
        release: Option<i64>,
    ) -> Result<Outcome, InboundError> {
        let ticket_id = ticket.id;
        let author = if p.from.is_empty() {
            &env.mail_from
        } else {
            &p.from
        };
        let in_reply_to = p.in_reply_to.first().map(String::as_str);
        let refs = p.thread_ids.join(" ");
        let mut tx = self.store.begin().await?;
        let stored = Store::message_insert(
            &mut tx,
            &NewMessage {
                ticket_id,
                direction: Direction::In,
                author,
                recipients: &env.rcpt_to,
                subject: &p.subject,
                body_text: &p.text,
                message_id: &p.message_id,
                in_reply_to,
                refs: Some(&refs),
                raw,
            },
        )
        .await?;
        if stored.is_none() {
            return Ok(Outcome::Duplicate {
                ticket: ticket_id,
                message_id: p.message_id,
            });
        }
        let notice = Notice {
            sender: author,
            subject: &p.subject,
            text: &p.text,
        };
        // Closed-ticket policy (`[inbound] closed_ticket`), see outbound::closed.
        let queued = if ticket.status == "closed" {
            let incoming = outbound::closed::Incoming {
                return_path: &env.mail_from,
                message_id: &p.message_id,
                thread_ids: &p.thread_ids,
            };
            outbound::closed::on_reply(&mut tx, &self.cfg, &ticket, &notice, &incoming).await?
        } else {
            outbound::queue_notification(&mut tx, &self.cfg, &ticket, &notice).await?
        };
        if let Some(q) = release {
            // `quarantine release`: the held copy leaves in the same commit.
            Store::quarantine_delete_tx(&mut tx, q).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        if queued.is_some() {
            self.wake.notify_one();
        }
        tracing::debug!(ticket = ticket_id, matched_by = ?by, "reply threaded");
        Ok(Outcome::Stored {
            ticket: ticket_id,
            message_id: p.message_id,
        })
    }

    async fn unmatched(
        &self,
        env: &Envelope,
        raw: &[u8],
        subject: &str,
        message_id: &str,
        reason: &str,
    ) -> Result<Outcome, InboundError> {
        match self.cfg.inbound.unmatched {
            Unmatched::Reject => Ok(Outcome::Rejected {
                reason: reason.into(),
            }),
            Unmatched::Quarantine => self.quarantine(env, raw, subject, message_id, reason).await,
        }
    }

    async fn quarantine(
        &self,
        env: &Envelope,
        raw: &[u8],
        subject: &str,
        message_id: &str,
        reason: &str,
    ) -> Result<Outcome, InboundError> {
        let id = self
            .store
            .quarantine_add(&NewQuarantine {
                mail_from: &env.mail_from,
                rcpt_to: &env.rcpt_to,
                subject,
                message_id,
                reason,
                raw,
            })
            .await?;
        Ok(Outcome::Quarantined {
            id,
            reason: reason.into(),
        })
    }
}
