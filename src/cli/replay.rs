//! `mensageria replay`: runs the inbound decision again on a stored raw
//! message (a quarantined one, or one on a thread) and prints every step —
//! parse, classification, subject matcher, thread ids, ticket, verdict — so
//! "why did this reply not land?" takes one command. It only reads: the
//! same public pieces `Inbound::accept` uses, and never its writing half.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mail_parser::{Message, MimeHeaders};
use serde::Serialize;

use super::output::{self, fields, time};
use crate::config::{ClosedTicket, Config, Unmatched};
use crate::inbound::classify::{self, Kind};
use crate::inbound::subject::{SubjectMatcher, strip_reply_prefixes};
use crate::inbound::{Inbound, parse};
use crate::outbound::{self, OutboundError};
use crate::store::Store;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A quarantine row id, or with --message a thread message id.
    pub id: i64,
    /// The id is a quarantine row (the default).
    #[arg(long, conflicts_with = "message")]
    pub quarantine: bool,
    /// The id is a message on a ticket's thread (see `ticket show --json`).
    #[arg(long)]
    pub message: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Explanation {
    source: Source,
    /// Null when the bytes are not a message.
    parse: Option<ParseStep>,
    classification: Option<Classification>,
    matcher: MatcherStep,
    subject: Option<SubjectStep>,
    thread_ids: Vec<ThreadId>,
    ticket: Option<TicketStep>,
    verdict: Verdict,
}

#[derive(Serialize)]
struct Source {
    kind: &'static str,
    id: i64,
    envelope_from: String,
    note: String,
}

#[derive(Serialize)]
struct ParseStep {
    subject: String,
    message_id: String,
    from: String,
    in_reply_to: Vec<String>,
    /// References then In-Reply-To, oldest first: what threading reads.
    thread_ids: Vec<String>,
}

#[derive(Serialize)]
struct Classification {
    kind: &'static str,
    decided_by: String,
}

#[derive(Serialize)]
struct MatcherStep {
    source: String,
    describe: String,
}

#[derive(Serialize)]
struct SubjectStep {
    without_prefixes: String,
    ticket_id: Option<i64>,
    ticket_exists: bool,
}

#[derive(Serialize)]
struct ThreadId {
    id: String,
    message_of_ticket: Option<i64>,
    root_of_ticket: Option<i64>,
}

#[derive(Serialize)]
struct TicketStep {
    id: i64,
    matched_by: String,
    status: String,
    technicians: Vec<String>,
    already_holds_message: bool,
    /// Whether the sender may post: requester, technician, added
    /// participant, trusted domain, or `strangers = "accept"`.
    sender_allowed: bool,
    sender_check: String,
}

#[derive(Serialize)]
struct Verdict {
    /// stored, duplicate, quarantined or rejected.
    outcome: &'static str,
    ticket: Option<i64>,
    detail: String,
}

pub async fn replay(store: &Store, cfg: &Config, a: ReplayArgs) -> anyhow::Result<()> {
    let (kind, envelope_from, note, raw) = if a.message {
        let m = store
            .ticket_message_raw(a.id)
            .await?
            .with_context(|| format!("message {} does not exist", a.id))?;
        let dir = if m.direction == "in" {
            "inbound"
        } else {
            "outbound"
        };
        let note = format!(
            "{dir} message on ticket {}; its envelope sender was not kept, the author stands in",
            m.ticket_id
        );
        ("message", m.author, note, m.raw)
    } else {
        let (row, raw) = super::queue::held(store, a.id).await?;
        let at = time(row.received_at);
        let note = format!("received {at}, held because: {}", row.reason);
        ("quarantine", row.mail_from, note, raw)
    };
    let x = explain(
        store,
        cfg,
        Source {
            kind,
            id: a.id,
            envelope_from,
            note,
        },
        &raw,
    )
    .await?;
    if a.json {
        return output::json(&x);
    }
    print(&x);
    Ok(())
}

async fn explain(
    store: &Store,
    cfg: &Config,
    source: Source,
    raw: &[u8],
) -> anyhow::Result<Explanation> {
    // A private Inbound: its matcher and lookups read, and nothing here
    // calls the methods that write.
    let inbound = Inbound::new(store.clone(), Arc::new(cfg.clone()), Default::default());
    let matcher = MatcherStep {
        source: matcher_source(store, cfg).await?,
        describe: inbound.matcher().await?.describe(),
    };
    let mut x = Explanation {
        source,
        parse: None,
        classification: None,
        matcher,
        subject: None,
        thread_ids: Vec::new(),
        ticket: None,
        verdict: unmatched(cfg, "the message could not be parsed"),
    };
    let Some((p, msg)) = parse::parse(raw, &cfg.smtp.hostname) else {
        return Ok(x);
    };
    let kind = classify::classify(&x.source.envelope_from, &msg);
    x.classification = Some(classification(kind, &x.source.envelope_from, &msg));
    drop(msg);
    // Every matching step is shown even for a robot: "it would have gone
    // to ticket 77 but for its Auto-Submitted header" is the useful answer.
    let subject_id = inbound.matcher().await?.find(&p.subject);
    let exists = match subject_id {
        Some(id) => store.ticket_get(id).await?.is_some(),
        None => false,
    };
    x.subject = Some(SubjectStep {
        without_prefixes: strip_reply_prefixes(&p.subject).to_owned(),
        ticket_id: subject_id,
        ticket_exists: exists,
    });
    for id in &p.thread_ids {
        let one = std::slice::from_ref(id);
        x.thread_ids.push(ThreadId {
            id: id.clone(),
            message_of_ticket: store.ticket_by_message_ids(one).await?,
            root_of_ticket: store.ticket_by_thread_root(one).await?,
        });
    }
    if let Some((id, by)) = inbound.find_ticket(&p).await?
        && let Some(t) = store.ticket_get(id).await?
    {
        x.ticket = Some(TicketStep {
            id,
            matched_by: by.as_str().to_owned(),
            status: t.status.clone(),
            sender_allowed: crate::inbound::sender_allowed(
                cfg,
                &t,
                &p.from,
                &x.source.envelope_from,
            ),
            sender_check: sender_check(cfg, &t, &p.from, &x.source.envelope_from),
            technicians: t.technician_list(),
            already_holds_message: store.ticket_holds_message(id, &p.message_id).await?,
        });
    }
    x.verdict = verdict(cfg, kind, x.ticket.as_ref(), &x.source.envelope_from);
    x.parse = Some(ParseStep {
        subject: p.subject,
        message_id: p.message_id,
        from: p.from,
        in_reply_to: p.in_reply_to,
        thread_ids: p.thread_ids,
    });
    Ok(x)
}

/// Where the matcher in force comes from, in `Inbound::matcher`'s order.
async fn matcher_source(store: &Store, cfg: &Config) -> anyhow::Result<String> {
    if let Some(p) = &cfg.inbound.subject_pattern {
        return Ok(format!("config inbound.subject_pattern {p:?}"));
    }
    Ok(match outbound::current_template(store).await {
        Ok(t) => match SubjectMatcher::from_template(&t.row.subject) {
            Ok(_) => format!(
                "subject of template {} ({:?}), named by parameter 417",
                t.row.id, t.row.subject
            ),
            Err(e) => format!("built-in fallback: template {}: {e}", t.row.id),
        },
        Err(OutboundError::Store(e)) => return Err(e.into()),
        Err(e) => format!("built-in fallback: {e}"),
    })
}

/// The sign `classify` acted on, checked in its order; the kind itself
/// always comes from `classify`, so this can only mislabel, never misjudge.
fn classification(kind: Kind, mail_from: &str, msg: &Message<'_>) -> Classification {
    let raw = |h: &'static str| msg.header_raw(h).map(|v| (h, v.trim()));
    let first = |hs: &[&'static str]| hs.iter().find_map(|h| raw(h));
    let sign = |s: Option<(&str, &str)>| s.map(|(h, v)| format!("{h}: {v}")).unwrap_or_default();
    let is = |v: &str, any: &[&str]| any.iter().any(|p| v.eq_ignore_ascii_case(p));
    let (kind, decided_by) = match kind {
        Kind::Bounce if mail_from.is_empty() => {
            ("bounce", "MAIL FROM:<> (null reverse path)".into())
        }
        Kind::Bounce => ("bounce", "From: MAILER-DAEMON or postmaster".into()),
        Kind::DeliveryReport => (
            "delivery-report",
            "Content-Type: multipart/report; report-type=delivery-status".into(),
        ),
        Kind::FeedbackReport => (
            "feedback-report",
            "Content-Type: multipart/report; report-type=feedback-report".into(),
        ),
        Kind::AutoReply => {
            let submitted = raw("Auto-Submitted").filter(|(_, v)| !is(v, &["no"]));
            let others = [
                "X-Autoreply",
                "X-Autorespond",
                "X-Auto-Response-Suppress",
                "Precedence",
                "Subject",
            ];
            ("auto-reply", sign(submitted.or_else(|| first(&others))))
        }
        Kind::List => {
            let bulk = raw("Precedence").filter(|(_, v)| is(v, &["bulk", "junk", "list"]));
            (
                "list",
                sign(bulk.or_else(|| first(&["List-Id", "List-Unsubscribe"]))),
            )
        }
        Kind::Person => {
            let ct = msg
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                .unwrap_or_else(|| "text/plain".into());
            let why = format!(
                "no robot sign: MAIL FROM not empty, Content-Type {ct}, no Auto-Submitted (other than \"no\"), \
                 X-Autoreply, List-Id or Precedence bulk/junk/list"
            );
            ("person", why)
        }
    };
    Classification { kind, decided_by }
}

fn unmatched(cfg: &Config, reason: &str) -> Verdict {
    let outcome = match cfg.inbound.unmatched {
        Unmatched::Quarantine => "quarantined",
        Unmatched::Reject => "rejected",
    };
    Verdict::new(outcome, None, reason.into())
}

impl Verdict {
    fn new(outcome: &'static str, ticket: Option<i64>, detail: String) -> Verdict {
        Verdict {
            outcome,
            ticket,
            detail,
        }
    }
}

fn sender_check(
    cfg: &Config,
    t: &crate::store::tickets::Ticket,
    from: &str,
    envelope: &str,
) -> String {
    let who = if from.is_empty() { envelope } else { from };
    if t.requester.eq_ignore_ascii_case(who) {
        format!("{who} is the requester")
    } else if t
        .technician_list()
        .iter()
        .any(|a| a.eq_ignore_ascii_case(who))
    {
        format!("{who} is a technician")
    } else if crate::inbound::sender_allowed(cfg, t, from, envelope) {
        format!("{who} is an added participant, in a trusted domain, or strangers are accepted")
    } else {
        format!(
            "{who} is not a participant of ticket {} (a reply to the ticket's Reply-To token address would be)",
            t.id
        )
    }
}

/// `Inbound::accept`'s decision, in its order.
fn verdict(cfg: &Config, kind: Kind, ticket: Option<&TicketStep>, sender: &str) -> Verdict {
    if let (Kind::AutoReply, Some(t)) = (kind, ticket) {
        let d = format!(
            "kept on ticket {} as an auto-reply event: never forwarded, never answered",
            t.id
        );
        return Verdict::new("stored", Some(t.id), d);
    }
    if kind != Kind::Person {
        // Robots are held whatever `unmatched` says (see Inbound::accept).
        let would = ticket.map(|t| format!(" (it would otherwise go to ticket {})", t.id));
        let detail = format!("{}{}", kind.reason(), would.unwrap_or_default());
        return Verdict::new("quarantined", None, detail);
    }
    let Some(t) = ticket else {
        return unmatched(cfg, "no ticket matches the subject or the thread headers");
    };
    if !t.sender_allowed {
        return Verdict::new("quarantined", None, t.sender_check.clone());
    }
    let (id, techs) = (t.id, t.technicians.join(", "));
    let notify = match techs.as_str() {
        "" => "nobody is assigned, so nobody is notified".to_owned(),
        _ => format!("notification to {techs}"),
    };
    let (outcome, detail) = if t.already_holds_message {
        let d =
            format!("ticket {id} already holds this Message-ID: acknowledged, not stored again");
        ("duplicate", d)
    } else if t.status != "closed" {
        ("stored", format!("stored on ticket {id}; {notify}"))
    } else if cfg.inbound.closed_ticket == ClosedTicket::Reopen {
        let d = format!(
            "stored on ticket {id}, which is closed: reopened (closed_ticket = reopen); {notify}"
        );
        ("stored", d)
    } else {
        let d = format!(
            "stored on ticket {id}, which stays closed (closed_ticket = keep): nobody is notified; \
             an automatic reply goes to {sender} (at most one a day)"
        );
        ("stored", d)
    };
    Verdict::new(outcome, Some(id), detail)
}

fn print(x: &Explanation) {
    let none_or = |s: String| if s.is_empty() { "(none)".into() } else { s };
    let s = &x.source;
    let mut rows = vec![
        ("source", format!("{} {} — {}", s.kind, s.id, s.note)),
        ("envelope from", s.envelope_from.clone()),
    ];
    match &x.parse {
        None => rows.push(("parse", "not a message".into())),
        Some(p) => rows.extend([
            ("subject", p.subject.clone()),
            ("message-id", p.message_id.clone()),
            ("from", p.from.clone()),
            ("in-reply-to", none_or(p.in_reply_to.join(" "))),
            ("thread ids", none_or(p.thread_ids.join("\n"))),
        ]),
    }
    if let Some(c) = &x.classification {
        rows.push(("classification", format!("{} ({})", c.kind, c.decided_by)));
    }
    let m = &x.matcher;
    rows.push(("matcher", format!("{}\n{}", m.source, m.describe)));
    if let Some(sj) = &x.subject {
        let found = match sj.ticket_id {
            None => "no ticket id found".into(),
            Some(id) if sj.ticket_exists => format!("ticket id {id}, which exists"),
            Some(id) => format!("ticket id {id}, but ticket {id} does not exist"),
        };
        rows.push((
            "subject match",
            format!("{found} (prefixes stripped: {:?})", sj.without_prefixes),
        ));
    }
    let ids: Vec<String> = x
        .thread_ids
        .iter()
        .map(|t| match (t.message_of_ticket, t.root_of_ticket) {
            (Some(m), _) => format!("{} → a message on ticket {m}", t.id),
            (None, Some(r)) => format!("{} → the thread root of ticket {r}", t.id),
            (None, None) => format!("{} → unknown", t.id),
        })
        .collect();
    if x.parse.is_some() {
        rows.push(("thread match", none_or(ids.join("\n"))));
    }
    let ticket = match &x.ticket {
        None => "none".into(),
        Some(t) => format!("{} (by {}), status {}", t.id, t.matched_by, t.status),
    };
    let v = &x.verdict;
    rows.extend([
        ("ticket", ticket),
        (
            "sender check",
            x.ticket
                .as_ref()
                .map(|t| t.sender_check.clone())
                .unwrap_or_else(|| "(no ticket)".into()),
        ),
        ("verdict", format!("{}: {}", v.outcome, v.detail)),
    ]);
    fields(&rows);
}
