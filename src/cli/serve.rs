//! `mensageria serve`: runs the gateway until SIGTERM/SIGINT, telling the
//! service manager where it stands (sd_notify: READY, STATUS, RELOADING,
//! STOPPING, WATCHDOG) and reloading the configuration on SIGHUP.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::runtime::{reload, systemd};
use crate::store::Store;

/// How often STATUS= is refreshed (only sent when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub async fn serve(cfg: Config, path: &Path) -> anyhow::Result<()> {
    crate::runtime::logging::init(&cfg.log);
    // Before anything slow: SIGHUP's default action ends the process.
    let mut hangups = signal(SignalKind::hangup())?;
    let drain = cfg.drain_timeout();
    let mut running = cfg.clone();
    let gateway = Gateway::start(cfg).await?;
    let stop = gateway.shutdown_token();
    crate::runtime::shutdown::watch(stop.clone())?;
    let listening = listening(&gateway.smtp_addrs);
    // Migrations are applied and every listener is bound: mail can come.
    systemd::ready(&status_line(&gateway.store, &listening).await);
    if let Some(every) = systemd::watchdog_interval() {
        tokio::spawn(watchdog(gateway.store.clone(), every, stop.clone()));
    }
    if systemd::enabled() {
        tokio::spawn(status_updates(
            gateway.store.clone(),
            listening.clone(),
            stop.clone(),
        ));
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = hangups.recv() => {
                systemd::reloading();
                let summary = reload_config(path, &mut running, &gateway);
                let status = status_line(&gateway.store, &listening).await;
                systemd::ready(&format!("{status}; {summary}"));
            }
        }
    }
    systemd::stopping(&format!(
        "draining: sessions inside DATA and mail in hand get {} s",
        drain.as_secs()
    ));
    if !gateway.stop(drain).await {
        tracing::warn!("drain deadline passed; exiting with work unfinished (it stays queued)");
    }
    tracing::info!("mensageria stopped");
    Ok(())
}

/// Re-reads the file and applies what can change live; the running
/// configuration stays whole when the file does not load.
fn reload_config(path: &Path, running: &mut Config, gateway: &Gateway) -> String {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reload: configuration not loaded; the running one stays");
            return format!("reload failed: {e}");
        }
    };
    let mut report = reload::apply(running, &new);
    // The certificate files are read again even when their paths did not
    // change: renewal (certbot and friends) rewrites them in place.
    if let Some(tls) = &gateway.tls {
        match tls.reload() {
            Ok(()) => report.applied.push("tls certificate re-read".into()),
            Err(e) => report.notes.push(format!("tls certificate kept: {e}")),
        }
    }
    let summary = report.summary();
    if report.need_restart.is_empty() && report.notes.is_empty() {
        tracing::info!(summary = %summary, "configuration reloaded");
    } else {
        tracing::warn!(
            summary = %summary,
            "configuration reloaded in part; `systemctl restart mensageria` applies the rest"
        );
    }
    summary
}

fn listening(addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    format!("listening on {}", list.join(", "))
}

/// `listening on 127.0.0.1:2525; outbox 3 queued, 1 failed`.
async fn status_line(store: &Store, listening: &str) -> String {
    match tokio::time::timeout(Duration::from_secs(2), store.outbox_now()).await {
        Ok(Ok(n)) if n.failed > 0 => {
            format!(
                "{listening}; outbox {} queued, {} failed",
                n.queued + n.sending,
                n.failed
            )
        }
        Ok(Ok(n)) => format!("{listening}; outbox {} queued", n.queued + n.sending),
        _ => format!("{listening}; database not answering"),
    }
}

async fn status_updates(store: Store, listening: String, stop: CancellationToken) {
    let mut last = String::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(STATUS_EVERY) => {}
        }
        let now = status_line(&store, &listening).await;
        if now != last {
            systemd::status(&now);
            last = now;
        }
    }
}

/// Pings systemd's watchdog while the process is alive in the ways that
/// matter: the runtime still schedules new tasks, and the database pool
/// hands out a connection that answers a round trip, both within one
/// period. A database that *refuses* (it is down) still counts as
/// answering: the gateway then replies 451 and /readyz says 503, and a
/// restart would only close the SMTP port until the database returns. A
/// pool or runtime that *hangs* misses pings, and systemd restarts us.
async fn watchdog(store: Store, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let check = async {
            tokio::spawn(async {}).await.is_ok()
                && match crate::admin::ping(&store, every).await {
                    Ok(()) => true,
                    Err(crate::admin::PingError::Timeout(_)) => false,
                    Err(e) => {
                        tracing::debug!(error = %e, "watchdog: database refuses; still pinging");
                        true
                    }
                }
        };
        match tokio::time::timeout(every, check).await {
            Ok(true) => systemd::watchdog(),
            _ => tracing::warn!(
                period_ms = every.as_millis() as u64,
                "watchdog: runtime or database pool did not answer in time; not pinging"
            ),
        }
    }
}
