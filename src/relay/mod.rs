//! Relay: takes due outbox rows (claimed with an owner and a lease), sends
//! their exact bytes through lettre's pooled SMTP transport, and records the
//! outcome. A row is marked sent only after the relay's 250; temporary
//! failures come back later with exponential back-off; permanent ones fail
//! with the relay's answer as the reason.

pub mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RelayConfig};
use crate::store::outbox::Claimed;
use crate::store::{Store, StoreError, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    Url(String),
    #[error("cannot read relay.password_file {path}: {source}")]
    Password {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checked `[relay] url`.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    pub url: String,
}

impl RelayTarget {
    /// Accepts `smtp://host[:port]` (plain; `?tls=required` for STARTTLS,
    /// `?tls=opportunistic`) and `smtps://host[:port]` (implicit TLS).
    pub fn parse(url: &str) -> Result<RelayTarget, String> {
        let u = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        if !matches!(u.scheme(), "smtp" | "smtps") {
            return Err(format!("{url:?}: scheme must be smtp or smtps"));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(format!("{url:?}: no host"));
        }
        if !u.password().unwrap_or("").is_empty() {
            return Err(format!(
                "{url:?}: put the password in relay.password_file, not in the url"
            ));
        }
        Ok(RelayTarget {
            url: url.to_owned(),
        })
    }
}

/// Builds the pooled transport from config.
pub fn transport(
    cfg: &RelayConfig,
    hello: &str,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, RelayError> {
    RelayTarget::parse(&cfg.url).map_err(RelayError::Url)?;
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.url)
        .map_err(|e| RelayError::Url(format!("relay.url: {e}")))?
        .timeout(Some(Duration::from_secs(cfg.timeout_secs)))
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            hello.to_owned(),
        ))
        .pool_config(PoolConfig::new().max_size(cfg.pool_size.max(1)));
    if let (Some(user), Some(file)) = (&cfg.username, &cfg.password_file) {
        let password = std::fs::read_to_string(file).map_err(|source| RelayError::Password {
            path: file.display().to_string(),
            source,
        })?;
        b = b.credentials(Credentials::new(
            user.clone(),
            password.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    Ok(b.build())
}

/// The worker that drains the outbox until shutdown.
pub struct Worker {
    pub store: Store,
    pub cfg: Arc<Config>,
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Unique per process, so leases say who holds a row.
    pub owner: String,
    /// Woken when new mail is queued in this process.
    pub wake: Arc<Notify>,
}

/// Result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    Retry { at: i64, error: String },
    Failed { error: String },
}

impl Worker {
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.relay.poll_interval_ms.max(10));
        let lease_ms = (self.cfg.relay.lease_secs * 1000) as i64;
        // As many mails in flight as the pool has connections: each send
        // waits on the relay's round trips, not on our CPU.
        let parallel = self.cfg.relay.pool_size.max(1) as usize;
        let batch = (parallel * 8) as i64;
        loop {
            // Mail in hand is finished; a stop is honoured between batches,
            // so unclaimed rows stay for the next start or another instance.
            if shutdown.is_cancelled() {
                break;
            }
            match self.store.outbox_claim(&self.owner, lease_ms, batch).await {
                Ok(rows) if !rows.is_empty() => {
                    use futures_util::StreamExt;
                    futures_util::stream::iter(rows)
                        .for_each_concurrent(parallel, |row| self.deliver(row))
                        .await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox claim failed; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn deliver(&self, row: Claimed) {
        let started = Instant::now();
        let outcome = self.attempt(&row).await;
        let ms = started.elapsed().as_millis() as u64;
        let recorded = match &outcome {
            Attempt::Sent => self.store.outbox_sent(row.id, &self.owner).await,
            Attempt::Retry { at, error } => {
                self.store
                    .outbox_retry(row.id, &self.owner, *at, error)
                    .await
            }
            Attempt::Failed { error } => self.store.outbox_failed(row.id, &self.owner, error).await,
        };
        let outcome_name = match &outcome {
            Attempt::Sent => "sent",
            Attempt::Retry { .. } => "retry",
            Attempt::Failed { .. } => "failed",
        };
        crate::admin::metrics::delivery_attempt(outcome_name, Duration::from_millis(ms));
        let error = match &outcome {
            Attempt::Sent => "",
            Attempt::Retry { error, .. } | Attempt::Failed { error } => error,
        };
        tracing::info!(
            outbox_id = row.id,
            message_id = %row.message_id,
            rcpt = %row.rcpt_to.join(","),
            attempt = row.attempts,
            outcome = outcome_name,
            error,
            duration_ms = ms,
            "delivery attempt"
        );
        if let (Attempt::Failed { error }, "reply", Some(ticket)) =
            (&outcome, row.kind.as_str(), row.ticket_id)
        {
            // The technician wrote to the requester and it will never
            // arrive: say so on the ticket's thread.
            if let Err(e) = crate::outbound::failure::queue_failure_notice(
                &self.store,
                &self.cfg,
                ticket,
                &row.message_id,
                &row.rcpt_to,
                error,
            )
            .await
            {
                tracing::error!(outbox_id = row.id, error = %e, "cannot queue the failure notice");
            }
        }
        if let Err(e) = recorded {
            // The lease runs out and the row is tried again: a duplicate is
            // possible only in this window, with the same Message-ID.
            tracing::error!(outbox_id = row.id, error = %e, "cannot record delivery outcome");
        }
    }

    async fn attempt(&self, row: &Claimed) -> Attempt {
        let envelope = match envelope(&row.mail_from, &row.rcpt_to) {
            Ok(e) => e,
            Err(error) => return Attempt::Failed { error },
        };
        match self.transport.send_raw(&envelope, &row.raw).await {
            Ok(_) => Attempt::Sent,
            Err(e) => {
                let error = describe(&e);
                if e.is_permanent() {
                    Attempt::Failed { error }
                } else if row.attempts >= self.cfg.relay.max_attempts as i64 {
                    Attempt::Failed {
                        error: format!("gave up after {} attempts: {error}", row.attempts),
                    }
                } else {
                    let delay = retry::backoff(&self.cfg.relay, row.attempts as u32);
                    Attempt::Retry {
                        at: now_ms() + delay.as_millis() as i64,
                        error,
                    }
                }
            }
        }
    }
}

fn envelope(from: &str, to: &[String]) -> Result<Envelope, String> {
    let from = from
        .parse()
        .map_err(|_| format!("bad sender address {from:?}"))?;
    let to = to
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|_| format!("bad recipient address {t:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to).map_err(|e| e.to_string())
}

/// The relay's own words where it gave a reply, else lettre's description.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
