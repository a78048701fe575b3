//! mensageria — the e-mail channel of an IT service desk.
//!
//! Two paths run through the daemon, and the modules follow them:
//!
//! ```text
//! inbound:   listener ──bytes──▶ inbound ──message + notification──▶ store
//! outbound:  cli (ticket reply) ──▶ outbound ──rendered bytes──▶ store (outbox) ──▶ relay ──▶ SMTP relay
//! ```
//!
//! - [`listener`]: the SMTP edge; our tokio accept loop drives mailin's state
//!   machine and holds every limit. Replies 250 only after the commit.
//! - [`inbound`]: parse (mail-parser), classify (person, bounce, auto-reply),
//!   find the ticket (subject, then thread headers), store or quarantine.
//! - [`outbound`]: templates and parameter 417, composition, thread headers.
//! - [`store`]: sqlx over SQLite or PostgreSQL, one file per table.
//! - [`relay`]: drains the outbox through pooled SMTP sessions, with retries.
//! - [`gateway`]: assembles them under one shutdown token; [`runtime`]:
//!   signals, reload, systemd notification and logging; [`admin`]: the
//!   loopback HTTP listener (metrics, health); [`cli`]: the commands of the
//!   binary.

pub mod address;
pub mod admin;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod inbound;
pub mod listener;
pub mod outbound;
pub mod relay;
pub mod runtime;
pub mod store;
