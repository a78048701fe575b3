//! The SMTP listener: our own tokio accept loop around mailin's protocol
//! state machine. Here live the limits mailin-embedded lacks: a session cap
//! answered inline with 421 (the accept loop never blocks), bounded lines and
//! messages, timeouts, and a stop signal every session hears.

pub mod framing;
pub mod limits;
pub mod policy;
pub mod reply;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::Config;
use crate::inbound::Inbound;
use session::SessionCtx;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// A bound listener and whether its port speaks TLS from the first byte.
pub struct Bound {
    pub listener: TcpListener,
    pub implicit_tls: bool,
}

/// Binds every `[smtp] listen` address and every `[tls] implicit_listen`
/// one; fails before anything is served.
pub async fn bind(cfg: &Config) -> Result<Vec<Bound>, ListenError> {
    let mut out = Vec::new();
    let plain = cfg.smtp.listen.addresses().into_iter().map(|a| (a, false));
    let implicit = cfg.tls.implicit_listen.iter().cloned().map(|a| (a, true));
    for (addr, implicit_tls) in plain.chain(implicit) {
        let l = listen(&addr, cfg.smtp.listen_backlog).map_err(|source| ListenError::Bind {
            addr: addr.clone(),
            source,
        })?;
        out.push(Bound {
            listener: l,
            implicit_tls,
        });
    }
    Ok(out)
}

/// A listening socket on `addr` (IP:port, validated with the config), set
/// up as tokio's own `bind` does (SO_REUSEADDR, so a restart does not wait
/// out TIME_WAIT) but with our backlog instead of its fixed 128: that drops
/// SYNs from a burst of a few hundred clients, and each dropped SYN costs
/// its client a one-second retransmit.
fn listen(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves one listener until `shutdown`; sessions are tracked by `tracker`
/// so the caller can wait for them to drain.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    bound: Bound,
    tls: Option<Arc<tls::Tls>>,
    cfg: Arc<Config>,
    inbound: Arc<Inbound>,
    limits: Arc<limits::Limits>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let Bound {
        listener,
        implicit_tls,
    } = bound;
    let ctx = Arc::new(SessionCtx {
        cfg,
        inbound,
        shutdown: shutdown.clone(),
        tls,
    });
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: log, pause briefly, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = match limits.enter(peer.ip()) {
            Ok(p) => p,
            Err((code, text)) => {
                crate::admin::metrics::session_refused(code, text);
                tracker.spawn(async move {
                    let _ = stream.write_all(&reply::line(code, text)).await;
                    let _ = stream.shutdown().await;
                    tracing::warn!(peer = %peer, code, reason = text, "session refused");
                });
                continue;
            }
        };
        let ctx = ctx.clone();
        let span = tracing::info_span!("smtp", peer = %peer);
        tracker.spawn(
            async move {
                let io: Box<dyn session::Io> = match (&ctx.tls, implicit_tls) {
                    (Some(tls), true) => {
                        let hs = tokio::time::timeout(
                            ctx.cfg.idle_timeout(),
                            Box::pin(tls.acceptor().accept(stream)),
                        );
                        match hs.await {
                            Ok(Ok(s)) => Box::new(s),
                            _ => return,
                        }
                    }
                    _ => Box::new(stream),
                };
                if let Err(e) = session::run(io, peer, &ctx, implicit_tls).await {
                    tracing::debug!(error = %e, "session ended by i/o error");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Addresses actually bound (port 0 resolved), for logs and tests.
pub fn local_addrs(listeners: &[Bound]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|b| b.listener.local_addr().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections that complete their handshake within a short deadline,
    /// with nobody accepting: the kernel queues backlog + 1 and drops the
    /// SYNs of the rest.
    async fn queued(backlog: u32, clients: usize) -> usize {
        let l = listen("127.0.0.1:0", backlog).unwrap();
        let addr = l.local_addr().unwrap();
        let mut open = Vec::new();
        for _ in 0..clients {
            let c = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(s)) = tokio::time::timeout(std::time::Duration::from_millis(300), c).await
            {
                open.push(s);
            }
        }
        open.len()
    }

    #[tokio::test]
    async fn the_configured_backlog_is_the_one_listened_with() {
        // tokio's `bind` (backlog 128) would queue all eight.
        assert!(queued(2, 8).await < 8);
        assert_eq!(queued(64, 8).await, 8);
    }

    #[test]
    fn a_bad_address_is_an_error_not_a_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(async { listen("nowhere", 8).map(|_| ()) });
        assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    }
}
