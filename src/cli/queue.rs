//! `mensageria queue …` and `mensageria quarantine …`.

use clap::Subcommand;

use super::output::{cell, table, time};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// Outbound mail with its state, attempts and last error.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// Inbound mail held with the reason.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn queue(store: &Store, cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List { json } => {
            let rows = store.outbox_list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
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
        }
    }
    Ok(())
}

pub async fn quarantine(store: &Store, cmd: QuarantineCmd) -> anyhow::Result<()> {
    match cmd {
        QuarantineCmd::List { json } => {
            let rows = store.quarantine_list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
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
    }
    Ok(())
}
