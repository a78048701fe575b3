//! The running daemon assembled: store (migrated), SMTP listeners, inbound
//! path, relay worker and (when configured) the admin listener, all under
//! one shutdown token. `serve` and the integration tests start it the same
//! way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::config::Config;
use crate::inbound::Inbound;
use crate::listener::{self, ListenError};
use crate::outbound::handoff::Handoff;
use crate::relay::{self, RelayError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error(transparent)]
    Tls(#[from] listener::tls::TlsError),
    #[error("cannot listen on admin.listen {addr}: {source}")]
    Admin {
        addr: String,
        source: std::io::Error,
    },
}

pub struct Gateway {
    pub store: Store,
    pub smtp_addrs: Vec<SocketAddr>,
    /// Wakes the relay worker (new mail queued in this process).
    pub wake: Arc<Notify>,
    /// The listener's certificate, reloadable (SIGHUP).
    pub tls: Option<Arc<listener::tls::Tls>>,
    /// Where /metrics, /healthz and /readyz answer (`[admin] listen`).
    pub admin_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Stops the admin listener after the drain, so /readyz can say
    /// "shutting down" while sessions finish.
    admin_stop: CancellationToken,
}

impl Gateway {
    /// Connects and migrates the store, binds the listeners, starts the
    /// tasks. Returns once the listeners are bound: mail can be sent.
    pub async fn start(cfg: Config) -> Result<Gateway, StartError> {
        let cfg = Arc::new(cfg);
        let store = Store::connect_with(
            &cfg.database.url,
            cfg.database.max_connections,
            Duration::from_secs(cfg.database.acquire_timeout_secs.max(1)),
        )
        .await?;
        store.migrate().await?;
        let relay_client = Arc::new(relay::RelayClient::new(&cfg.relay, &cfg.smtp.hostname)?);
        let tls = match (&cfg.tls.cert_file, &cfg.tls.key_file) {
            (Some(c), Some(k)) => Some(listener::tls::Tls::new(c, k)?),
            _ => None,
        };
        let listeners = listener::bind(&cfg).await?;
        let smtp_addrs = listener::local_addrs(&listeners);
        let owner = format!(
            "{}:{}:{:08x}",
            cfg.smtp.hostname,
            std::process::id(),
            rand::random::<u32>()
        );
        let (handoff, handed) = Handoff::channel(
            &owner,
            (cfg.relay.lease_secs * 1000) as i64,
            relay::Worker::queue_len(&cfg),
        );
        let wake = handoff.waker();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let inbound = Arc::new(Inbound::new(store.clone(), cfg.clone(), handoff));
        let limits =
            listener::limits::Limits::new(cfg.smtp.max_sessions, cfg.smtp.max_sessions_per_ip);
        // Bound before the SMTP tasks start, so a busy admin port fails the
        // start cleanly.
        let admin_stop = CancellationToken::new();
        let admin_addr = match &cfg.admin.listen {
            Some(addr) => {
                let state = admin::State {
                    cfg: cfg.clone(),
                    store: store.clone(),
                    limits: limits.clone(),
                    shutdown: shutdown.clone(),
                };
                let bound = admin::start(addr, state, relay_client.clone(), admin_stop.clone())
                    .await
                    .map_err(|source| StartError::Admin {
                        addr: addr.clone(),
                        source,
                    })?;
                Some(bound)
            }
            None => None,
        };
        for l in listeners {
            tracker.spawn(listener::serve(
                l,
                tls.clone(),
                cfg.clone(),
                inbound.clone(),
                limits.clone(),
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        let worker = relay::Worker {
            store: store.clone(),
            cfg: cfg.clone(),
            client: relay_client,
            owner,
        };
        tracker.spawn(worker.run(handed, shutdown.clone()));

        tracker.close();
        tracing::info!(
            smtp = ?smtp_addrs,
            admin = ?admin_addr,
            database = %redact(&cfg.database.url),
            "mensageria started"
        );
        Ok(Gateway {
            store,
            smtp_addrs,
            wake,
            tls,
            admin_addr,
            shutdown,
            tracker,
            admin_stop,
        })
    }

    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addrs[0]
    }

    /// A handle that stops the gateway when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets sessions inside DATA and the mail in hand
    /// finish, waiting at most `drain`. True when everything finished.
    pub async fn stop(self, drain: Duration) -> bool {
        self.shutdown.cancel();
        let drained = tokio::time::timeout(drain, self.tracker.wait())
            .await
            .is_ok();
        self.admin_stop.cancel();
        self.store.close().await;
        drained
    }

    /// Waits until the shutdown token is cancelled, then stops.
    pub async fn run_until_stopped(self, drain: Duration) -> bool {
        self.shutdown.cancelled().await;
        self.stop(drain).await
    }
}

/// The database URL without a password, for logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
