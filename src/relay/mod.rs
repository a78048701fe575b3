//! Relay: takes due outbox rows (claimed with an owner and a lease), sends
//! their exact bytes through the relay client's pooled sessions, and records
//! the outcomes. A row is marked sent only after the relay's 250; temporary
//! failures come back later with exponential back-off; permanent ones fail
//! with the relay's answer as the reason.

pub mod client;
pub mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lettre::address::Envelope;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

pub use client::{RelayClient, SendError};

use crate::config::Config;
use crate::outbound::handoff::Handed;
use crate::store::batch::Work;
use crate::store::outbox::{Claimed, Outcome};
use crate::store::{Store, StoreError, Tx, now_ms};

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
    pub url: url::Url,
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
        Ok(RelayTarget { url: u })
    }
}

/// The worker that drains the outbox until shutdown.
pub struct Worker {
    pub store: Store,
    pub cfg: Arc<Config>,
    pub client: Arc<RelayClient>,
    /// Unique per process, so leases say who holds a row.
    pub owner: String,
}

/// Result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    Retry { at: i64, error: String },
    Failed { error: String },
}

impl Attempt {
    fn name(&self) -> &'static str {
        match self {
            Attempt::Sent => "sent",
            Attempt::Retry { .. } => "retry",
            Attempt::Failed { .. } => "failed",
        }
    }

    fn outcome(&self) -> Outcome<'_> {
        match self {
            Attempt::Sent => Outcome::Sent,
            Attempt::Retry { at, error } => Outcome::Retry { at: *at, error },
            Attempt::Failed { error } => Outcome::Failed { error },
        }
    }
}

/// One finished attempt on its way to the outbox.
struct Done {
    row: Claimed,
    attempt: Attempt,
    took: Duration,
}

impl Worker {
    /// How many rows one claim takes, and the queue to the senders holds:
    /// 32 per pooled session.
    pub fn queue_len(cfg: &Config) -> usize {
        cfg.relay.pool_size.max(1) as usize * 32
    }

    /// Runs until shutdown. `handed`: the queue of rows to send, those this
    /// worker claims and those the inbound path hands over claimed (see
    /// `outbound::handoff`).
    pub async fn run(self, handed: Handed, shutdown: CancellationToken) {
        let lease_ms = (self.cfg.relay.lease_secs * 1000) as i64;
        // As many mails in flight as the pool has sessions: each send
        // waits on the relay's round trips, not on our CPU.
        let parallel = self.cfg.relay.pool_size.max(1) as usize;
        let batch = Self::queue_len(&self.cfg) as i64;
        // Outcomes are written by one recorder, many per transaction, so
        // the senders never wait for a disk sync.
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record(
            self.store.clone(),
            self.cfg.clone(),
            self.owner.clone(),
            done_rx,
        ));
        // Claimed rows wait in the queue, one batch ahead of the senders:
        // the next claim commits while the last batch is being sent,
        // instead of every sender stopping for it. Once the claims stop,
        // the queue is closed: no more rows are handed over, and the
        // senders finish those in it (and those being committed).
        let Handed {
            mut rows,
            claimed,
            wake,
        } = handed;
        let claims_done = CancellationToken::new();
        let mut closing = std::pin::pin!(claims_done.clone().cancelled_owned());
        let mut closed = false;
        let rows = futures_util::stream::poll_fn(move |cx| {
            if !closed && closing.as_mut().poll(cx).is_ready() {
                rows.close();
                closed = true;
            }
            rows.poll_recv(cx)
        });
        tokio::join!(
            async {
                self.claim_all(claimed, &wake, &shutdown, lease_ms, batch)
                    .await;
                claims_done.cancel();
            },
            self.send_all(rows, &done_tx, parallel, lease_ms),
        );
        drop(done_tx);
        let _ = recorder.await;
        self.client.close().await;
    }

    /// Claims due rows, `batch` at a time, into `rows` until shutdown (or
    /// until the senders are gone); between claims it waits for `wake`
    /// (mail queued by this process) or the poll interval.
    async fn claim_all(
        &self,
        rows: mpsc::Sender<Claimed>,
        wake: &Notify,
        shutdown: &CancellationToken,
        lease_ms: i64,
        batch: i64,
    ) {
        let poll = Duration::from_millis(self.cfg.relay.poll_interval_ms.max(10));
        loop {
            // Mail in hand is finished; a stop is honoured between claims,
            // so unclaimed rows stay for the next start or another instance.
            if shutdown.is_cancelled() {
                break;
            }
            match self.claim(lease_ms, batch).await {
                Ok(claimed) if !claimed.is_empty() => {
                    // A short batch took everything due: claiming again at
                    // once would only commit an empty transaction. Mail
                    // queued meanwhile has left a wake-up permit.
                    let more = claimed.len() as i64 >= batch;
                    crate::admin::metrics::RELAY_ROWS.add(&["claimed"], claimed.len() as u64);
                    for row in claimed {
                        if rows.send(row).await.is_err() {
                            return;
                        }
                    }
                    if more {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox claim failed; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Sends claimed rows as they come, `parallel` at a time, and hands
    /// each outcome to the recorder.
    async fn send_all(
        &self,
        rows: impl futures_util::Stream<Item = Claimed>,
        done_tx: &mpsc::UnboundedSender<Done>,
        parallel: usize,
        lease_ms: i64,
    ) {
        // A row is tried only while its lease leaves time for a whole
        // attempt; one claimed too long ago (the relay is slow) is left
        // for whoever claims it once its lease has run out, so that no
        // two instances send it at once.
        let budget_ms = (self.cfg.relay.timeout_secs.max(1) * 1000 * ATTEMPT_STEPS)
            .min(lease_ms as u64 / 2) as i64;
        rows.for_each_concurrent(parallel, |row| async move {
            if now_ms() + budget_ms > row.lease_until {
                tracing::warn!(
                    outbox_id = row.id,
                    "lease too short for another attempt; left for the next claim"
                );
                return;
            }
            let started = Instant::now();
            let attempt = self.attempt(&row).await;
            let took = started.elapsed();
            let _ = done_tx.send(Done { row, attempt, took });
        })
        .await;
    }

    /// Claims due rows through the store's group committer: the relay's
    /// writes share the inbound path's connection and transactions instead
    /// of contending with them for SQLite's one write lock.
    async fn claim(&self, lease_ms: i64, limit: i64) -> Result<Vec<Claimed>, StoreError> {
        let owner = self.owner.clone();
        let work: Work<Vec<Claimed>, StoreError> = Box::new(move |tx: &mut Tx| {
            Box::pin(async move { Store::outbox_claim_in(tx, &owner, lease_ms, limit).await })
        });
        self.store
            .committer(self.cfg.database.max_batch)
            .submit(work)
            .await
    }

    async fn attempt(&self, row: &Claimed) -> Attempt {
        let envelope = match envelope(&row.mail_from, &row.rcpt_to) {
            Ok(e) => e,
            Err(error) => return Attempt::Failed { error },
        };
        match self.client.send(&envelope, &row.raw).await {
            Ok(()) => Attempt::Sent,
            Err(SendError::Permanent(error)) => Attempt::Failed { error },
            Err(SendError::Temporary(error)) => {
                if row.attempts >= self.cfg.relay.max_attempts as i64 {
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

/// Waits one attempt can take, each up to `relay.timeout_secs`: connect
/// and greeting, MAIL/RCPT/DATA, the end of data, and a reset.
const ATTEMPT_STEPS: u64 = 4;

/// Most outcomes recorded in one transaction.
const RECORD_MAX: usize = 256;
/// How long the recorder waits for more outcomes before it commits those
/// it has.
const RECORD_WAIT: Duration = Duration::from_millis(10);

/// Writes outcomes as they come, those of a few milliseconds in one
/// transaction, then logs them and tells the ticket about mail that will
/// never arrive.
async fn record(
    store: Store,
    cfg: Arc<Config>,
    owner: String,
    mut rx: mpsc::UnboundedReceiver<Done>,
) {
    let mut done = Vec::new();
    while rx.recv_many(&mut done, RECORD_MAX).await > 0 {
        // More outcomes arrive while the relay is busy: wait a moment for
        // them, so one commit (one disk sync) records many. A crash in
        // that moment means those mails go again when their lease ends,
        // as for one in the middle of its commit.
        let deadline = tokio::time::Instant::now() + RECORD_WAIT;
        while done.len() < RECORD_MAX {
            let room = RECORD_MAX - done.len();
            let more = rx.recv_many(&mut done, room);
            match tokio::time::timeout_at(deadline, more).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        // Shared with the unit of work rather than copied into it: the same
        // batch serves the fallback and the reports below.
        let batch = Arc::new(std::mem::take(&mut done));
        let (who, rows) = (owner.clone(), batch.clone());
        let work: Work<(), StoreError> = Box::new(move |tx: &mut Tx| {
            Box::pin(async move { Store::outbox_record_in(tx, &who, &outcomes(&rows)).await })
        });
        let mut recorded = store.committer(cfg.database.max_batch).submit(work).await;
        if recorded.is_err() {
            // Its batch failed for another unit's sake, or the committer is
            // stopping: the outcomes still go in, in a transaction of their
            // own, or the rows would be sent again when their lease ends.
            recorded = store.outbox_record(&owner, &outcomes(&batch)).await;
        }
        for d in batch.iter() {
            report(&store, &cfg, d, recorded.as_ref().err()).await;
        }
    }
}

fn outcomes(batch: &[Done]) -> Vec<(i64, Outcome<'_>)> {
    batch
        .iter()
        .map(|d| (d.row.id, d.attempt.outcome()))
        .collect()
}

async fn report(store: &Store, cfg: &Config, d: &Done, unrecorded: Option<&StoreError>) {
    let (row, name) = (&d.row, d.attempt.name());
    crate::admin::metrics::delivery_attempt(name, d.took);
    let error = match &d.attempt {
        Attempt::Sent => "",
        Attempt::Retry { error, .. } | Attempt::Failed { error } => error,
    };
    tracing::info!(
        outbox_id = row.id,
        message_id = %row.message_id,
        rcpt = %row.rcpt_to.join(","),
        attempt = row.attempts,
        outcome = name,
        error,
        duration_ms = d.took.as_millis() as u64,
        "delivery attempt"
    );
    if let Some(e) = unrecorded {
        // The lease runs out and the row is tried again: a duplicate is
        // possible only in this window, with the same Message-ID.
        tracing::error!(outbox_id = row.id, error = %e, "cannot record delivery outcome");
        return;
    }
    if let (Attempt::Failed { error }, "reply", Some(ticket)) =
        (&d.attempt, row.kind.as_str(), row.ticket_id)
    {
        // The technician wrote to the requester and it will never
        // arrive: say so on the ticket's thread.
        if let Err(e) = crate::outbound::failure::queue_failure_notice(
            store,
            cfg,
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
