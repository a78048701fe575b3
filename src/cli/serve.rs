//! `mensageria serve`: runs the gateway until SIGTERM/SIGINT.

use crate::config::Config;
use crate::gateway::Gateway;

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    crate::runtime::logging::init(&cfg.log);
    let drain = cfg.drain_timeout();
    let gateway = Gateway::start(cfg).await?;
    crate::runtime::shutdown::watch(gateway.shutdown_token())?;
    if !gateway.run_until_stopped(drain).await {
        tracing::warn!("drain deadline passed; exiting with work unfinished (it stays queued)");
    }
    tracing::info!("mensageria stopped");
    Ok(())
}
