//! `mensageria ticket …`: create or update a ticket, show its thread, send
//! a technician's message to the requester, close and reopen it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::output::{cell, table, time};
use crate::address::parse_mailbox;
use crate::config::Config;
use crate::outbound::{self, thread};
use crate::store::Store;
use crate::store::attachments::AttachmentRow;
use crate::store::tickets::TicketFields;

// Parsed once per run of the CLI: the size of the largest variant costs
// nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum TicketCmd {
    /// Create a ticket or update the given fields.
    Upsert(UpsertArgs),
    /// The thread, oldest first.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// A technician's message, rendered with template 417 and queued.
    Reply {
        id: i64,
        #[arg(long)]
        from: String,
        #[arg(
            long,
            conflicts_with = "body_file",
            required_unless_present = "body_file"
        )]
        body: Option<String>,
        #[arg(long)]
        body_file: Option<PathBuf>,
    },
    /// Mark the ticket closed; replies follow `[inbound] closed_ticket`.
    Close { id: i64 },
    /// Mark a closed ticket open again.
    Reopen { id: i64 },
}

#[derive(Args, Debug)]
pub struct UpsertArgs {
    /// IDSOLICITACAOSERVICO.
    pub id: i64,
    #[arg(long)]
    pub requester: Option<String>,
    /// NOMECONTATO
    #[arg(long)]
    pub contact: Option<String>,
    /// REGISTRADOPOR
    #[arg(long)]
    pub registered_by: Option<String>,
    /// DATAHORA
    #[arg(long)]
    pub date_time: Option<String>,
    /// DEMANDA
    #[arg(long)]
    pub demand: Option<String>,
    /// SERVICO
    #[arg(long)]
    pub service: Option<String>,
    /// SERVICORELACIONADO
    #[arg(long)]
    pub related_service: Option<String>,
    /// PORTFOLIO
    #[arg(long)]
    pub portfolio: Option<String>,
    /// CATEGORIA
    #[arg(long)]
    pub category: Option<String>,
    /// TEMPOGASTODATA
    #[arg(long)]
    pub time_spent_date: Option<String>,
    /// TEMPOGASTOHORA
    #[arg(long)]
    pub time_spent_hours: Option<String>,
    /// A technician's address (repeat for several; replaces the list).
    #[arg(long = "technician")]
    pub technicians: Vec<String>,
}

#[derive(Serialize)]
struct ThreadJson {
    id: i64,
    requester: String,
    technicians: Vec<String>,
    messages: Vec<MessageJson>,
}

#[derive(Serialize)]
struct MessageJson {
    /// For `replay ID --message`.
    id: i64,
    direction: String,
    from: String,
    to: Vec<String>,
    subject: String,
    text: String,
    message_id: String,
    at: String,
    /// reply, auto-reply, … (inbound::classify).
    kind: String,
    /// Signals that found the ticket: token, signed-reference, subject,
    /// references (inbound mail only).
    matched_by: String,
    attachments: Vec<AttachmentJson>,
}

#[derive(Serialize)]
struct AttachmentJson {
    name: String,
    #[serde(rename = "type")]
    content_type: String,
    /// Bytes, decoded.
    size: i64,
    inline: bool,
    /// "skipped: over max_attachment_bytes", a TNEF container, …
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl From<AttachmentRow> for AttachmentJson {
    fn from(a: AttachmentRow) -> Self {
        AttachmentJson {
            name: a.filename,
            content_type: a.content_type,
            size: a.size,
            inline: a.is_inline != 0,
            note: a.note,
        }
    }
}

/// 1234 → "1234 B", 52000 → "50.8 KiB".
fn human_size(n: i64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn check_address(what: &str, addr: &str) -> anyhow::Result<()> {
    if parse_mailbox(addr).is_none() {
        bail!("{what}: {addr:?} is not an e-mail address");
    }
    Ok(())
}

pub async fn ticket(store: &Store, cfg: &Config, cmd: TicketCmd) -> anyhow::Result<()> {
    match cmd {
        TicketCmd::Upsert(a) => upsert(store, cfg, a).await,
        TicketCmd::Show { id, json } => show(store, id, json).await,
        TicketCmd::Close { id } => set_status(store, id, "closed").await,
        TicketCmd::Reopen { id } => set_status(store, id, "open").await,
        TicketCmd::Reply {
            id,
            from,
            body,
            body_file,
        } => {
            check_address("--from", &from)?;
            let text = match (body, body_file) {
                (Some(b), _) => b,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                (None, None) => bail!("give --body or --body-file"),
            };
            let q = outbound::technician_reply(store, cfg, id, &from, &text).await?;
            println!("queued {} as outbox {}", q.message_id, q.outbox_id);
            Ok(())
        }
    }
}

async fn set_status(store: &Store, id: i64, status: &str) -> anyhow::Result<()> {
    let t = store
        .ticket_get(id)
        .await?
        .with_context(|| format!("ticket {id} does not exist"))?;
    if t.status == status {
        println!("ticket {id} is already {status}");
        return Ok(());
    }
    if !store.ticket_set_status(id, status).await? {
        bail!("ticket {id} does not exist");
    }
    println!(
        "ticket {id} {}",
        if status == "open" {
            "reopened"
        } else {
            "closed"
        }
    );
    Ok(())
}

async fn upsert(store: &Store, cfg: &Config, a: UpsertArgs) -> anyhow::Result<()> {
    if a.id <= 0 {
        bail!("ticket id must be a positive number");
    }
    if let Some(r) = &a.requester {
        check_address("--requester", r)?;
    }
    for t in &a.technicians {
        check_address("--technician", t)?;
    }
    let exists = store.ticket_get(a.id).await?.is_some();
    if !exists && a.requester.is_none() {
        bail!("ticket {} is new: --requester is required", a.id);
    }
    let f = TicketFields {
        requester: a.requester,
        contact_name: a.contact,
        registered_by: a.registered_by,
        opened_at_text: a.date_time,
        demand: a.demand,
        service: a.service,
        related_service: a.related_service,
        portfolio: a.portfolio,
        category: a.category,
        time_spent_date: a.time_spent_date,
        time_spent_hours: a.time_spent_hours,
        technicians: (!a.technicians.is_empty()).then_some(a.technicians),
    };
    let root = thread::new_thread_root(a.id, &cfg.smtp.hostname);
    let created = store
        .ticket_upsert(a.id, &f, &root, &thread::new_thread_index())
        .await?;
    println!(
        "ticket {} {}",
        a.id,
        if created { "created" } else { "updated" }
    );
    Ok(())
}

async fn show(store: &Store, id: i64, json: bool) -> anyhow::Result<()> {
    let t = store
        .ticket_get(id)
        .await?
        .with_context(|| format!("ticket {id} does not exist"))?;
    let msgs = store.messages_of_ticket(id).await?;
    let mut files: std::collections::HashMap<i64, Vec<AttachmentRow>> = Default::default();
    for a in store.attachments_of_ticket(id).await? {
        files.entry(a.message_id).or_default().push(a);
    }
    if json {
        let out = ThreadJson {
            id,
            requester: t.requester.clone(),
            technicians: t.technician_list(),
            messages: msgs
                .into_iter()
                .map(|m| MessageJson {
                    attachments: files
                        .remove(&m.id)
                        .unwrap_or_default()
                        .into_iter()
                        .map(AttachmentJson::from)
                        .collect(),
                    id: m.id,
                    kind: m.kind.clone(),
                    matched_by: m.matched_by.clone(),
                    direction: m.direction,
                    from: m.author,
                    to: crate::store::split_lines(&m.recipients),
                    subject: m.subject,
                    text: m.body_text,
                    message_id: m.message_id,
                    at: time(m.at),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("ticket {id} · requester {} · {}", t.requester, t.status);
    if !t.technicians.is_empty() {
        println!("technicians: {}", t.technician_list().join(", "));
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for m in &msgs {
        rows.push(vec![
            time(m.at),
            m.direction.clone(),
            cell(&m.author, 30),
            cell(&m.subject, 40),
            cell(&m.body_text, 60),
        ]);
        // Its files under it: name, type, size (and why one was not kept).
        for a in files.get(&m.id).into_iter().flatten() {
            let mut about = format!("{}, {}", a.content_type, human_size(a.size));
            if a.is_inline != 0 {
                about.push_str(", inline");
            }
            if let Some(n) = &a.note {
                about.push_str(&format!(", {n}"));
            }
            rows.push(vec![
                String::new(),
                String::new(),
                "  attachment".into(),
                cell(&a.filename, 40),
                about,
            ]);
        }
    }
    table(&["AT", "DIR", "FROM", "SUBJECT", "TEXT"], &rows);
    Ok(())
}
