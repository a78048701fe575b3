//! The commands of the `mensageria` binary, one file per command group.
//! Each returns `anyhow::Result`; `main` turns an error into one stderr line
//! and an exit code (see [`exit_code`]).

pub mod check;
pub mod output;
pub mod queue;
pub mod replay;
pub mod serve;
pub mod stats;
pub mod template;
pub mod ticket;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::store::Store;

/// Exit status for an invalid configuration (sysexits' EX_CONFIG), shared by
/// `check-config` and `serve` so systemd can stop restarting on it.
pub const EXIT_CONFIG: i32 = 78;

#[derive(Parser, Debug)]
#[command(
    name = "mensageria",
    version,
    about = "E-mail channel of an IT service desk"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "MENSAGERIA_CONFIG",
        default_value = "config/mensageria.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway: SMTP listener and relay worker.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Parse and validate the configuration, open the database.
    CheckConfig {
        /// Also connect to the relay and speak EHLO.
        #[arg(long)]
        probe_relay: bool,
    },
    /// Numbered parameters (417 = id of the technician mail template).
    #[command(subcommand)]
    Param(template::ParamCmd),
    /// E-mail templates.
    #[command(subcommand)]
    Template(template::TemplateCmd),
    /// Tickets and their threads.
    #[command(subcommand)]
    Ticket(ticket::TicketCmd),
    /// The outbound queue.
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// Inbound mail that found no ticket.
    #[command(subcommand)]
    Quarantine(queue::QuarantineCmd),
    /// Inbound and outbound counts over the last hour and day.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Explain the inbound decision on a stored message, writing nothing.
    Replay(replay::ReplayArgs),
}

/// Exit code for an error: configuration problems get [`EXIT_CONFIG`].
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if let Some(r) = e.downcast_ref::<check::Reported>() {
        return if r.config { EXIT_CONFIG } else { 1 };
    }
    if e.downcast_ref::<ConfigError>().is_some() {
        EXIT_CONFIG
    } else {
        1
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::CheckConfig { probe_relay } = cli.command {
        return check::check(&cli.config, probe_relay).await;
    }
    let cfg = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve => serve::serve(cfg, &cli.config).await,
        Command::Migrate => {
            let store = open(&cfg).await?;
            store.migrate().await?;
            println!(
                "migrations applied to {}",
                crate::gateway::redact(&cfg.database.url)
            );
            Ok(())
        }
        Command::CheckConfig { .. } => Ok(()),
        Command::Param(c) => template::param(&open_migrated(&cfg).await?, c).await,
        Command::Template(c) => template::template(&open_migrated(&cfg).await?, &cfg, c).await,
        Command::Ticket(c) => ticket::ticket(&open_migrated(&cfg).await?, &cfg, c).await,
        Command::Queue(c) => queue::queue(&open_migrated(&cfg).await?, c).await,
        Command::Quarantine(c) => queue::quarantine(&open_migrated(&cfg).await?, &cfg, c).await,
        Command::Stats { json } => stats::stats(&open_migrated(&cfg).await?, json).await,
        Command::Replay(a) => replay::replay(&open_migrated(&cfg).await?, &cfg, a).await,
    }
}

async fn open(cfg: &Config) -> anyhow::Result<Store> {
    Ok(Store::connect(&cfg.database.url, 2).await?)
}

/// Admin commands work on a fresh database too: migrations are idempotent.
async fn open_migrated(cfg: &Config) -> anyhow::Result<Store> {
    let store = open(cfg).await?;
    store.migrate().await?;
    Ok(store)
}
