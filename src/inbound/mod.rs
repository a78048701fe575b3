//! Inbound: what a received message means. Given the envelope and the raw
//! bytes, it parses, classifies, finds the ticket (subject first, then the
//! thread headers) and commits the message with the technicians'
//! notification — or quarantines it with the reason. It never speaks SMTP:
//! the listener maps its `Outcome` to a reply.

pub mod attachments;
pub mod bounces;
pub mod classify;
pub mod extract;
pub mod parse;
pub mod signals;
pub mod subject;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a compiled subject matcher is reused before parameter 417 and
/// its template are read again.
const MATCHER_TTL: Duration = Duration::from_secs(2);

use crate::config::{ClosedTicket, Config, Strangers, Unmatched};
use crate::outbound::handoff::{Handoff, Slot};
use crate::outbound::{self, Notice, OutboundError, QueuedCopies};
use crate::store::attachments::{NewAttachment, sha256_hex};
use crate::store::messages::{Direction, NewMessage};
use crate::store::quarantine::NewQuarantine;
use crate::store::tickets::Ticket;
use crate::store::{Store, StoreError, Tx};
use classify::Kind;
pub use signals::MatchedBy;
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
    /// Our own mail came back (a self-loop): acknowledged, logged, not kept.
    Dropped {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error("internal error while deciding on the message (see the log line before)")]
    Internal,
}

pub struct Inbound {
    pub(crate) store: Store,
    pub(crate) cfg: Arc<Config>,
    /// Hands notifications to the relay worker, or wakes it for them.
    pub(crate) handoff: Handoff,
    /// The matcher compiled from template 417's subject, rebuilt when the
    /// subject text changes (the CLI may change it while we run).
    matcher: Mutex<Option<(String, Arc<SubjectMatcher>, Instant)>>,
}

impl Inbound {
    pub fn new(store: Store, cfg: Arc<Config>, handoff: Handoff) -> Inbound {
        Inbound {
            store,
            cfg,
            handoff,
            matcher: Mutex::new(None),
        }
    }

    /// The matcher in force: the config override, else one derived from the
    /// subject of template 417, else the built-in fallback.
    pub async fn matcher(&self) -> Result<Arc<SubjectMatcher>, InboundError> {
        // On the per-message path: reuse the matcher for a moment instead of
        // reading parameter 417 and its template for every message. A
        // template change applies within MATCHER_TTL. Shared, not cloned: a
        // cloned Regex starts with empty caches and rebuilds its automaton.
        {
            let cache = self.matcher.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, m, at)) = cache.as_ref()
                && (self.cfg.inbound.subject_pattern.is_some() || at.elapsed() < MATCHER_TTL)
            {
                return Ok(m.clone());
            }
        }
        if let Some(p) = &self.cfg.inbound.subject_pattern {
            // validate() already compiled it once.
            let m = Arc::new(
                SubjectMatcher::from_regex(p).unwrap_or_else(|_| SubjectMatcher::fallback()),
            );
            *self.matcher.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((p.clone(), m.clone(), Instant::now()));
            return Ok(m);
        }
        let subject = match outbound::current_template(&self.store).await {
            Ok(t) => t.row.subject,
            Err(OutboundError::Store(e)) => return Err(e.into()),
            Err(_) => String::new(),
        };
        let mut cache = self.matcher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, m, at)) = cache.as_mut()
            && *s == subject
        {
            *at = Instant::now();
            return Ok(m.clone());
        }
        let m = Arc::new(SubjectMatcher::from_template(&subject).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "template 417 gives no subject pattern; using the built-in one");
            SubjectMatcher::fallback()
        }));
        *cache = Some((subject, m.clone(), Instant::now()));
        Ok(m)
    }

    /// The ticket a message belongs to by its content alone (no envelope),
    /// and how it was found.
    pub async fn find_ticket(
        &self,
        p: &parse::Parsed,
    ) -> Result<Option<(i64, MatchedBy)>, InboundError> {
        let env = Envelope {
            peer: ([0, 0, 0, 0], 0).into(),
            helo: String::new(),
            mail_from: String::new(),
            rcpt_to: Vec::new(),
        };
        let s = signals::collect(self, &env, p).await?;
        Ok(s.found.first().copied().map(|(by, id)| (id, by)))
    }

    /// Mail from the gateway itself, or carrying one of its own signed
    /// Message-IDs, is a loop: never stored, never answered.
    fn self_loop(&self, p: &parse::Parsed) -> Option<String> {
        let ours = |addr: &str| {
            let (Some((l, d)), Some((ol, od))) =
                (addr.rsplit_once('@'), self.cfg.mail.from.rsplit_once('@'))
            else {
                return false;
            };
            let base = l.split('+').next().unwrap_or(l);
            d.eq_ignore_ascii_case(od) && base.eq_ignore_ascii_case(ol)
        };
        if ours(&p.from) {
            return Some(format!("mail from the gateway's own address {}", p.from));
        }
        if outbound::token::parse_message_id(&p.message_id, &self.cfg.smtp.hostname).is_some() {
            return Some(format!("the gateway's own Message-ID {}", p.message_id));
        }
        None
    }

    /// Whether the sender may post on `ticket` without a token.
    fn trusted(&self, ticket: &Ticket, env: &Envelope, p: &parse::Parsed) -> bool {
        sender_allowed(&self.cfg, ticket, &p.from, &env.mail_from)
    }

    /// Decides and commits. Err only when the store cannot commit: the
    /// client must then be told to try again later.
    pub async fn accept(&self, env: &Envelope, raw: &[u8]) -> Result<Outcome, InboundError> {
        // The committer waits a moment for this message rather than commit
        // another one alone meanwhile (see batch::Coming).
        let coming = self.store.committer(self.cfg.database.max_batch).coming();
        let Some((p, msg)) = parse::parse(raw, &self.cfg.smtp.hostname) else {
            return self
                .unmatched_fields(env, raw, "", "", "the message could not be parsed")
                .await;
        };
        let kind = classify::classify(&env.mail_from, &msg);
        drop(msg);
        if let Some(reason) = self.self_loop(&p) {
            tracing::warn!(mail_from = %env.mail_from, message_id = %p.message_id, %reason, "self-loop dropped");
            return Ok(Outcome::Dropped { reason });
        }
        // Robots are never rejected: a 550 to an auto-responder or a bounce
        // only makes another bounce.
        let to_verp = env
            .rcpt_to
            .iter()
            .any(|r| outbound::token::is_bounce_address(&self.cfg, r));
        if kind.is_bounce() || to_verp {
            let kind = if kind.is_bounce() { kind } else { Kind::Bounce };
            let reason = bounces::handle(self, env, raw).await?;
            return self.quarantine(env, raw, &p, kind, &reason).await;
        }
        if matches!(kind, Kind::List | Kind::FeedbackReport) {
            return self.quarantine(env, raw, &p, kind, kind.reason()).await;
        }
        let signals::Signals { found, tickets } = signals::collect(self, env, &p).await?;
        let Some((ticket_id, agreeing)) = signals::decide(&found) else {
            if kind == Kind::AutoReply {
                return self.quarantine(env, raw, &p, kind, kind.reason()).await;
            }
            let reason = "no ticket matches the subject or the thread headers";
            return self.unmatched(env, raw, &p, reason).await;
        };
        let known = tickets.into_iter().find(|t| t.id == ticket_id);
        let ticket = match known {
            Some(t) => Some(t),
            None => self.store.ticket_get(ticket_id).await?,
        };
        let Some(ticket) = ticket else {
            return self.unmatched(env, raw, &p, "the ticket vanished").await;
        };
        // Knowing a ticket number is not enough to write on it: the sender
        // must take part in the ticket, or answer its Reply-To token address.
        if !agreeing.contains(&MatchedBy::Token) && !self.trusted(&ticket, env, &p) {
            let who = p.author(&env.mail_from);
            let reason = format!("sender {who} is not a participant of ticket {ticket_id}");
            return self.quarantine(env, raw, &p, kind, &reason).await;
        }
        let matched_by: Vec<&str> = agreeing.iter().map(|m| m.as_str()).collect();
        let matched_by = matched_by.join(",");
        self.store_reply(env, raw, p, ticket, &matched_by, kind, None, Some(coming))
            .await
    }

    /// Stores `p` on `ticket` with the technicians' notification (or the
    /// closed-ticket policy) in one transaction. `accept` calls it once the
    /// ticket is found; `quarantine release` with the ticket an administrator
    /// chose and the quarantine row to delete in the same commit. `coming`:
    /// the committer was told of this message (see `batch::Coming`).
    #[allow(clippy::too_many_arguments)]
    pub async fn store_reply(
        &self,
        env: &Envelope,
        raw: &[u8],
        p: parse::Parsed,
        ticket: Ticket,
        matched_by: &str,
        kind: Kind,
        release: Option<i64>,
        coming: Option<crate::store::batch::Coming>,
    ) -> Result<Outcome, InboundError> {
        // The technicians' copies are composed here, in this session's
        // task, so that the shared transaction only decides and writes.
        let reopen = self.cfg.inbound.closed_ticket == ClosedTicket::Reopen;
        let follow_up = if kind == Kind::AutoReply {
            FollowUp::Nothing
        } else if ticket.status == "closed" && !reopen {
            FollowUp::Closed
        } else {
            let forwarded: Vec<_> = p
                .attachments
                .iter()
                .map(attachments::Found::for_compose)
                .collect();
            let notice = Notice {
                sender: p.author(&env.mail_from),
                subject: &p.subject,
                text: &p.text,
                attachments: &forwarded,
            };
            let prepared = outbound::prepare_notification(
                &self.store,
                &self.cfg,
                &ticket,
                &notice,
                &p.message_id,
            )
            .await?;
            // Room in the relay's queue is taken before the commit, so the
            // rows can be written claimed; a copy without room is queued.
            let slots = (0..prepared.copies())
                .map_while(|_| self.handoff.reserve())
                .collect();
            FollowUp::Notify {
                prepared,
                reopen: ticket.status == "closed",
                slots,
            }
        };
        // Hashed here too, not on the committer's one thread.
        let max = self.cfg.inbound.max_attachment_bytes;
        let hashes = p
            .attachments
            .iter()
            .map(|a| (!a.over(max)).then(|| sha256_hex(&a.bytes)))
            .collect();
        // Compressed here too: fewer bytes through the commit's one thread
        // (and, on PostgreSQL, its one backend).
        let (raw, raw_codec) = crate::store::packed::to_stored(raw);
        let job = ReplyJob {
            hashes,
            env: env.clone(),
            raw,
            raw_codec,
            p,
            follow_up,
            ticket,
            matched_by: matched_by.to_owned(),
            kind,
            release,
            cfg: self.cfg.clone(),
        };
        // Group commit: this reply shares a transaction with the others
        // that finished DATA meanwhile; the answer comes after the commit.
        let (outcome, queued) = self
            .store
            .committer(self.cfg.database.max_batch)
            .submit_coming(
                coming,
                Box::new(move |tx: &mut Tx| Box::pin(async move { write_reply(tx, job).await })),
            )
            .await?;
        queued.hand_over(&self.handoff);
        Ok(outcome)
    }

    async fn unmatched(
        &self,
        env: &Envelope,
        raw: &[u8],
        p: &parse::Parsed,
        reason: &str,
    ) -> Result<Outcome, InboundError> {
        self.unmatched_fields(env, raw, &p.subject, &p.message_id, reason)
            .await
    }

    async fn unmatched_fields(
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
            Unmatched::Quarantine => {
                self.hold(env, raw, subject, message_id, Kind::Person, reason)
                    .await
            }
        }
    }

    async fn quarantine(
        &self,
        env: &Envelope,
        raw: &[u8],
        p: &parse::Parsed,
        kind: Kind,
        reason: &str,
    ) -> Result<Outcome, InboundError> {
        self.hold(env, raw, &p.subject, &p.message_id, kind, reason)
            .await
    }

    async fn hold(
        &self,
        env: &Envelope,
        raw: &[u8],
        subject: &str,
        message_id: &str,
        kind: Kind,
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
                kind: kind.as_str(),
            })
            .await?;
        Ok(Outcome::Quarantined {
            id,
            reason: reason.into(),
        })
    }
}

/// Everything one reply's transaction needs, owned, for the committer.
struct ReplyJob {
    env: Envelope,
    /// The mail as the row stores it, with its codec (see `store::packed`).
    raw: Vec<u8>,
    raw_codec: Option<&'static str>,
    p: parse::Parsed,
    follow_up: FollowUp,
    /// SHA-256 of each of `p.attachments` whose bytes are kept.
    hashes: Vec<Option<String>>,
    ticket: Ticket,
    matched_by: String,
    kind: Kind,
    release: Option<i64>,
    cfg: Arc<Config>,
}

/// Whether a sender (From `from`, envelope `envelope`) may post on `ticket`
/// without its Reply-To token: a participant, a trusted domain, or
/// `strangers = "accept"`. `replay` explains the same decision.
pub fn sender_allowed(cfg: &Config, ticket: &Ticket, from: &str, envelope: &str) -> bool {
    let domain_trusted = |a: &str| {
        a.rsplit_once('@').is_some_and(|(_, d)| {
            cfg.inbound
                .trusted_domains
                .iter()
                .any(|t| t.eq_ignore_ascii_case(d))
        })
    };
    cfg.inbound.strangers == Strangers::Accept
        || ticket.is_participant(from)
        || ticket.is_participant(envelope)
        || domain_trusted(from)
}

/// What a stored reply brings about, decided before the commit.
enum FollowUp {
    /// An auto-reply stays on the ticket as an event: never forwarded,
    /// never answered.
    Nothing,
    /// `closed_ticket = "keep"`: the closed-ticket notice (see
    /// outbound::closed), inside the commit.
    Closed,
    /// The technicians' notification, composed before the commit; `reopen`:
    /// the ticket was closed and `closed_ticket = "reopen"` opens it again.
    /// `slots`: room in this process's relay queue, one per copy at most,
    /// for the copies to be handed over claimed.
    Notify {
        prepared: outbound::Prepared,
        reopen: bool,
        slots: Vec<Slot>,
    },
}

/// The writes of one reply inside a (batch) transaction: the message, its
/// attachments, the notification or closed-ticket answer, and the release
/// of a quarantined copy. Returns the outcome and the mail queued.
async fn write_reply(
    tx: &mut Tx,
    mut job: ReplyJob,
) -> Result<(Outcome, QueuedCopies), InboundError> {
    // Taken by value: the composed copies move into the rows handed over.
    let follow_up = std::mem::replace(&mut job.follow_up, FollowUp::Nothing);
    let ReplyJob {
        env,
        raw,
        raw_codec,
        p,
        ticket,
        matched_by,
        kind,
        release,
        ..
    } = &job;
    let (env, raw, matched_by, kind, release) =
        (env, raw.as_slice(), matched_by.as_str(), *kind, *release);
    let ticket_id = ticket.id;
    let author = p.author(&env.mail_from);
    let in_reply_to = p.in_reply_to.first().map(String::as_str);
    let refs = p.thread_ids.join(" ");
    let stored = Store::message_insert(
        &mut *tx,
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
            raw_codec: *raw_codec,
            kind: kind.as_str(),
            matched_by,
        },
    )
    .await?;
    let Some(row_id) = stored else {
        return Ok((
            Outcome::Duplicate {
                ticket: ticket_id,
                message_id: p.message_id.clone(),
            },
            QueuedCopies::default(),
        ));
    };
    // The files were read and hashed with the rest of the message, outside
    // this (shared, serial) transaction; here they are only written, bytes
    // deduplicated by hash.
    let found = &p.attachments;
    let max = job.cfg.inbound.max_attachment_bytes;
    for (a, sha) in found.iter().zip(&job.hashes) {
        let note = a.note(max);
        let new = NewAttachment {
            message_id: row_id,
            filename: &a.name,
            content_type: &a.content_type,
            inline: a.inline,
            content_id: a.content_id.as_deref(),
            bytes: &a.bytes,
            sha256: sha.as_deref(),
            note: note.as_deref(),
        };
        Store::attachment_insert(&mut *tx, &new).await?;
    }
    let queued = match follow_up {
        FollowUp::Nothing => QueuedCopies::default(),
        FollowUp::Notify {
            prepared,
            reopen,
            slots,
        } => {
            if reopen {
                Store::ticket_set_status_tx(&mut *tx, ticket_id, "open").await?;
            }
            outbound::queue_prepared(&mut *tx, &job.cfg, ticket_id, prepared, slots).await?
        }
        FollowUp::Closed => {
            let forwarded: Vec<_> = found.iter().map(attachments::Found::for_compose).collect();
            let notice = Notice {
                sender: author,
                subject: &p.subject,
                text: &p.text,
                attachments: &forwarded,
            };
            let incoming = outbound::closed::Incoming {
                return_path: &env.mail_from,
                message_id: &p.message_id,
                thread_ids: &p.thread_ids,
            };
            let answered =
                outbound::closed::on_reply(&mut *tx, &job.cfg, ticket, &notice, &incoming).await?;
            QueuedCopies {
                for_claim: answered.is_some(),
                ..QueuedCopies::default()
            }
        }
    };
    if let Some(q) = release {
        // `quarantine release`: the held copy leaves in the same commit.
        Store::quarantine_delete_tx(&mut *tx, q).await?;
    }
    tracing::debug!(
        ticket = ticket_id,
        matched_by,
        kind = kind.as_str(),
        "reply threaded"
    );
    Ok((
        Outcome::Stored {
            ticket: ticket_id,
            message_id: p.message_id.clone(),
        },
        queued,
    ))
}
