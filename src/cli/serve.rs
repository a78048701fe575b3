//! `mensageria serve`: runs the gateway until SIGTERM/SIGINT.

use std::time::Duration;

use crate::config::Config;
use crate::gateway::Gateway;

/// How long a stop waits for sessions in DATA and mail in hand.
const DRAIN: Duration = Duration::from_secs(30);

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    crate::runtime::logging::init(&cfg.log);
    let gateway = Gateway::start(cfg).await?;
    crate::runtime::shutdown::watch(gateway.shutdown_token())?;
    if !gateway.run_until_stopped(DRAIN).await {
        tracing::warn!("drain deadline passed; exiting with work unfinished (it stays queued)");
    }
    tracing::info!("mensageria stopped");
    Ok(())
}
