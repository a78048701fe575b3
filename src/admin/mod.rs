//! The loopback admin listener (off unless `[admin] listen` is set):
//! `/metrics` for Prometheus, `/healthz` (the process runs) and `/readyz`
//! (the database answers, the SMTP listener serves, the relay was reachable
//! lately). It only reads: nothing here changes mail, and it has no
//! authentication, so it belongs on 127.0.0.1 or a management network.

pub mod http;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::Connection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::listener::limits::Limits;
use crate::relay::RelayClient;
use crate::store::{Store, now_ms};

/// What the handlers read. Cloned per connection.
#[derive(Clone)]
pub struct State {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub limits: Arc<Limits>,
    /// Cancelled when the gateway stops: the listener no longer accepts.
    pub shutdown: CancellationToken,
}

/// Binds `addr` and serves the admin endpoints until `stop`; also starts
/// the relay probe that keeps `/readyz`'s view of the relay fresh.
pub async fn start(
    addr: &str,
    state: State,
    relay: Arc<RelayClient>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let window = Duration::from_secs(state.cfg.admin.relay_reachable_minutes * 60);
    tokio::spawn(probe_relay(relay, window, state.shutdown.clone()));
    tokio::spawn(http::serve(listener, state, stop));
    Ok(bound)
}

/// How long a health check may wait on the database before it counts as
/// not answering; below the pool's own wait so /readyz answers promptly.
const DB_CHECK: Duration = Duration::from_secs(3);

impl State {
    /// None when ready, else the one-line reason `/readyz` gives with 503.
    pub async fn not_ready(&self) -> Option<String> {
        if self.shutdown.is_cancelled() {
            return Some("shutting down: the SMTP listener no longer accepts".into());
        }
        if let Err(e) = ping(&self.store, DB_CHECK).await {
            return Some(format!("database not answering: {e}"));
        }
        let window = Duration::from_secs(self.cfg.admin.relay_reachable_minutes * 60);
        if !relay_reachable(now_ms(), window) {
            return Some(format!(
                "relay {} unreachable: no delivery or probe succeeded in the last {} minutes",
                self.cfg.relay.url, self.cfg.admin.relay_reachable_minutes
            ));
        }
        None
    }

    /// The store and listener values sampled at scrape time. A database
    /// that does not answer leaves the outbox gauges out (the scrape still
    /// succeeds; `/readyz` says why).
    pub async fn sample(&self) -> metrics::Sampled {
        let mut s = metrics::Sampled {
            sessions_open: Some(self.limits.open()),
            ..Default::default()
        };
        match tokio::time::timeout(DB_CHECK, self.store.outbox_now()).await {
            Ok(Ok(now)) => {
                s.outbox = Some(vec![
                    ("queued", now.queued),
                    ("sending", now.sending),
                    ("failed", now.failed),
                ]);
                let age = now
                    .oldest_waiting_at
                    .map(|t| (now_ms() - t).max(0) as f64 / 1000.0)
                    .unwrap_or(0.0);
                s.oldest_queued_seconds = Some(age);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "metrics: outbox not readable"),
            Err(_) => tracing::debug!("metrics: outbox read timed out"),
        }
        s
    }
}

/// Why the database check failed: a hang and a refusal mean different
/// things to the watchdog.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("{0}")]
    Refused(String),
}

/// A connection from the pool and a round trip on it, within `bound`.
pub async fn ping(store: &Store, bound: Duration) -> Result<(), PingError> {
    let check = async {
        let mut conn = store.pool().acquire().await?;
        conn.ping().await
    };
    match tokio::time::timeout(bound, check).await {
        Ok(r) => r.map_err(|e| PingError::Refused(e.to_string())),
        Err(_) => Err(PingError::Timeout(bound)),
    }
}

/// A fresh start counts as reachable until the first failure; after one,
/// a delivery or probe must have worked within `window`.
pub fn relay_reachable(now: i64, window: Duration) -> bool {
    let ok = metrics::RELAY_LAST_OK_MS.load(Ordering::Relaxed);
    let fail = metrics::RELAY_LAST_FAIL_MS.load(Ordering::Relaxed);
    fail == 0 || (ok > 0 && now - ok <= window.as_millis() as i64)
}

/// Keeps the relay's reachability fresh when little mail flows: an EHLO
/// (a new session: greeting, EHLO, QUIT) whenever no
/// success is newer than half the window, or the last event was a failure.
pub async fn probe_relay(relay: Arc<RelayClient>, window: Duration, shutdown: CancellationToken) {
    // Often enough to turn ready within a minute of the relay's return.
    let every = (window / 4).clamp(Duration::from_secs(5), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let ok = metrics::RELAY_LAST_OK_MS.load(Ordering::Relaxed);
        let fail = metrics::RELAY_LAST_FAIL_MS.load(Ordering::Relaxed);
        let stale = now_ms() - ok.max(0) > (window / 2).as_millis() as i64;
        if !(stale || fail > ok) {
            continue;
        }
        let reached = relay.probe().await.is_ok();
        metrics::relay_reached(reached);
        tracing::debug!(reached, "relay probe");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachability_window() {
        // The statics are shared by this test binary: one test touches them.
        let w = Duration::from_secs(600);
        assert!(relay_reachable(now_ms(), w), "fresh start");
        metrics::relay_reached(false);
        assert!(!relay_reachable(now_ms(), w), "failed, never succeeded");
        metrics::relay_reached(true);
        assert!(relay_reachable(now_ms(), w), "succeeded just now");
        assert!(!relay_reachable(now_ms() + 601_000, w), "success too old");
    }
}
