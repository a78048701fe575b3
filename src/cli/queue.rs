//! `mensageria queue …` and `mensageria quarantine …`: look at the outbox and
//! the quarantine, retry or drop outbound mail, release or drop held mail.
//! Everything goes through the database, so it works whether or not a
//! daemon is running; a running relay picks retried rows up at its next poll.

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::inbound::classify::Kind;
use serde::Serialize;

use super::output::{self, cell, fields, header_fields, table, time};
use crate::config::Config;
use crate::inbound::{Envelope, Inbound, Outcome, parse};
use crate::store::outbox::{Lease, OutboxRow};
use crate::store::quarantine::QuarantineRow;
use crate::store::{Store, split_lines};

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// Outbound mail with its state, attempts and last error.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One row: its state, last error, lease, and the mail's headers.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Make a queued or failed row due now (attempts are kept).
    Retry {
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        /// Every failed row.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Delete a row that was not sent (and is not being sent right now).
    Drop { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// Inbound mail held with the reason.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One held mail: the row, its decoded subject and sender, and the
    /// first lines of its text.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Store the held mail on a ticket as a requester's reply (technicians
    /// notified as usual) and remove it from the quarantine.
    Release {
        id: i64,
        #[arg(long)]
        ticket: i64,
        /// Let the sender post on the ticket from now on.
        #[arg(long)]
        add_participant: bool,
    },
    /// Delete a held mail.
    Drop { id: i64 },
}

/// Lines of the text body `quarantine show` prints.
const SHOW_LINES: usize = 40;

#[derive(Serialize)]
struct OutboxShow {
    #[serde(flatten)]
    row: OutboxRow,
    #[serde(flatten)]
    lease: Lease,
    /// The mail's size as the relay sends it (uncompressed).
    bytes: usize,
    headers: Vec<Header>,
}

#[derive(Serialize)]
struct Header {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct QuarantineShow {
    #[serde(flatten)]
    row: QuarantineRow,
    /// Decoded; empty when the mail cannot be parsed.
    decoded_subject: String,
    from: String,
    text: String,
    text_truncated: bool,
}

pub async fn queue(store: &Store, cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List { json } => list(store, json).await?,
        QueueCmd::Show { id, json } => show(store, id, json).await?,
        QueueCmd::Retry { all: true, .. } => {
            let n = store.outbox_requeue_failed().await?;
            println!("{n} failed row(s) queued, due now");
        }
        QueueCmd::Retry { id, .. } => {
            let id = id.context("give an outbox row id or --all")?;
            if !store.outbox_requeue(id).await? {
                bail!("{}", refusal(store, id, "retried").await?);
            }
            let row = outbox_row(store, id).await?;
            println!(
                "outbox row {id} queued, due now ({} attempt(s) so far)",
                row.attempts
            );
        }
        QueueCmd::Drop { id } => {
            if !store.outbox_delete(id).await? {
                bail!("{}", refusal(store, id, "dropped").await?);
            }
            println!("outbox row {id} dropped");
        }
    }
    Ok(())
}

async fn outbox_row(store: &Store, id: i64) -> anyhow::Result<OutboxRow> {
    store
        .outbox_get(id)
        .await?
        .with_context(|| format!("outbox row {id} does not exist"))
}

/// Why a row could not be retried or dropped, read after the refusal so it
/// describes the state that refused (the relay may have moved it since).
async fn refusal(store: &Store, id: i64, verb: &str) -> anyhow::Result<String> {
    let row = outbox_row(store, id).await?;
    let lease = store.outbox_lease(id).await?;
    Ok(match row.state.as_str() {
        "sent" => format!(
            "outbox row {id} was sent at {}; sent mail cannot be {verb}",
            row.sent_at.map(time).unwrap_or_default()
        ),
        "sending" => {
            let (by, until) = lease
                .map(|l| (l.claimed_by.unwrap_or_default(), l.lease_until.unwrap_or(0)))
                .unwrap_or_default();
            format!(
                "outbox row {id} is being sent by {by} (lease until {}); it cannot be {verb} until that attempt ends",
                time(until)
            )
        }
        s => format!("outbox row {id} is {s}; it cannot be {verb}"),
    })
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let rows = store.outbox_list().await?;
    if json {
        return output::json(&rows);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
                r.kind.clone(),
                r.state.clone(),
                r.attempts.to_string(),
                cell(&r.rcpt_to, 40),
                if r.state == "queued" {
                    time(r.next_attempt_at)
                } else {
                    String::new()
                },
                cell(r.last_error.as_deref().unwrap_or(""), 70),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "TICKET",
            "KIND",
            "STATE",
            "TRIES",
            "TO",
            "NEXT",
            "LAST ERROR",
        ],
        &cells,
    );
    Ok(())
}

async fn show(store: &Store, id: i64, json: bool) -> anyhow::Result<()> {
    let row = outbox_row(store, id).await?;
    let lease = store.outbox_lease(id).await?.unwrap_or(Lease {
        claimed_by: None,
        lease_until: None,
    });
    let raw = store.outbox_raw(id).await?.unwrap_or_default();
    let headers: Vec<Header> = header_fields(&raw)
        .into_iter()
        .map(|(name, value)| Header { name, value })
        .collect();
    if json {
        return output::json(&OutboxShow {
            row,
            lease,
            bytes: raw.len(),
            headers,
        });
    }
    let opt = |t: Option<i64>| t.map(time).unwrap_or_else(|| "-".into());
    let mut rows = vec![
        ("id", row.id.to_string()),
        (
            "ticket",
            row.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
        ),
        ("kind", row.kind.clone()),
        ("state", row.state.clone()),
        ("attempts", row.attempts.to_string()),
        ("message-id", row.message_id.clone()),
        ("from", row.mail_from.clone()),
        ("to", split_lines(&row.rcpt_to).join(", ")),
        ("bytes", raw.len().to_string()),
        ("created", time(row.created_at)),
        ("next attempt", time(row.next_attempt_at)),
        ("sent", opt(row.sent_at)),
        (
            "last error",
            row.last_error.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    if row.state == "sending" {
        rows.push(("claimed by", lease.claimed_by.unwrap_or_default()));
        rows.push(("lease until", opt(lease.lease_until)));
    }
    fields(&rows);
    println!();
    if headers.is_empty() {
        println!("(no message: it was never rendered)");
    }
    for h in headers {
        println!("{}: {}", h.name, h.value);
    }
    Ok(())
}

pub async fn quarantine(store: &Store, cfg: &Config, cmd: QuarantineCmd) -> anyhow::Result<()> {
    match cmd {
        QuarantineCmd::List { json } => {
            let rows = store.quarantine_list().await?;
            if json {
                return output::json(&rows);
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        time(r.received_at),
                        cell(&r.mail_from, 30),
                        cell(&r.subject, 40),
                        cell(&r.reason, 60),
                    ]
                })
                .collect();
            table(&["ID", "RECEIVED", "FROM", "SUBJECT", "REASON"], &cells);
        }
        QuarantineCmd::Show { id, json } => quarantine_show(store, cfg, id, json).await?,
        QuarantineCmd::Release {
            id,
            ticket,
            add_participant,
        } => release(store, cfg, id, ticket, add_participant).await?,
        QuarantineCmd::Drop { id } => {
            if !store.quarantine_delete(id).await? {
                bail!("quarantine row {id} does not exist");
            }
            println!("quarantine row {id} dropped");
        }
    }
    Ok(())
}

/// The held row and its bytes; an unknown id is the user's error.
pub async fn held(store: &Store, id: i64) -> anyhow::Result<(QuarantineRow, Vec<u8>)> {
    let row = store
        .quarantine_get(id)
        .await?
        .with_context(|| format!("quarantine row {id} does not exist"))?;
    let raw = store.quarantine_raw(id).await?.unwrap_or_default();
    Ok((row, raw))
}

async fn quarantine_show(store: &Store, cfg: &Config, id: i64, json: bool) -> anyhow::Result<()> {
    let (row, raw) = held(store, id).await?;
    let (subject, from, text) = match parse::parse(&raw, &cfg.smtp.hostname) {
        Some((p, msg)) => {
            // The display name too: "who wrote this" is the first question.
            let from = msg
                .from()
                .and_then(|a| a.first())
                .map(|a| match (a.name(), a.address()) {
                    (Some(n), Some(addr)) => format!("{n} <{addr}>"),
                    (_, addr) => addr.unwrap_or_default().to_owned(),
                })
                .unwrap_or_default();
            (p.subject, from, p.text)
        }
        None => (String::new(), String::new(), String::new()),
    };
    let lines: Vec<&str> = text.lines().collect();
    let shown = lines[..lines.len().min(SHOW_LINES)].join("\n");
    let out = QuarantineShow {
        row,
        decoded_subject: subject,
        from,
        text: shown,
        text_truncated: lines.len() > SHOW_LINES,
    };
    if json {
        return output::json(&out);
    }
    fields(&[
        ("id", out.row.id.to_string()),
        ("received", time(out.row.received_at)),
        ("mail from", out.row.mail_from.clone()),
        ("rcpt to", split_lines(&out.row.rcpt_to).join(", ")),
        ("message-id", out.row.message_id.clone()),
        ("reason", out.row.reason.clone()),
        ("from", out.from.clone()),
        ("subject", out.decoded_subject.clone()),
    ]);
    println!();
    println!("{}", out.text);
    if out.text_truncated {
        println!("[… {} more line(s)]", lines.len() - SHOW_LINES);
    }
    Ok(())
}

/// Stores the held mail through the inbound path itself, so the message,
/// the technicians' notification (or the closed-ticket policy) and the
/// removal from quarantine commit together or not at all.
async fn release(
    store: &Store,
    cfg: &Config,
    id: i64,
    ticket_id: i64,
    add_participant: bool,
) -> anyhow::Result<()> {
    let (row, raw) = held(store, id).await?;
    let ticket = store
        .ticket_get(ticket_id)
        .await?
        .with_context(|| format!("ticket {ticket_id} does not exist"))?;
    let Some((p, _)) = parse::parse(&raw, &cfg.smtp.hostname) else {
        bail!("quarantine row {id} is not a readable message; it cannot be released");
    };
    if add_participant {
        let who = p.author(&row.mail_from).to_owned();
        let mut tx = store.begin().await?;
        Store::ticket_add_participant(&mut tx, ticket_id, &who).await?;
        tx.commit().await?;
        println!("{who} may now post on ticket {ticket_id}");
    }
    let env = Envelope {
        peer: ([0, 0, 0, 0], 0).into(),
        helo: String::new(),
        mail_from: row.mail_from.clone(),
        rcpt_to: split_lines(&row.rcpt_to),
    };
    // A relay in another process finds the notification at its next poll.
    let inbound = Inbound::new(store.clone(), Arc::new(cfg.clone()), Default::default());
    match inbound
        .store_reply(
            &env,
            &raw,
            p,
            ticket,
            "released",
            Kind::Person,
            Some(id),
            None,
        )
        .await?
    {
        Outcome::Stored { ticket, message_id } => {
            println!("quarantine row {id} released to ticket {ticket} as {message_id}");
            Ok(())
        }
        Outcome::Duplicate { ticket, message_id } => bail!(
            "message {message_id} is already on ticket {ticket}; `quarantine drop {id}` removes the held copy"
        ),
        other => bail!("quarantine row {id} was not released: {other:?}"),
    }
}
