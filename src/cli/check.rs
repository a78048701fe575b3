//! `mensageria check-config`: like `nginx -t`. Parses and validates every
//! key, opens the database, loads the TLS certificate and the signing key,
//! and with `--probe-relay` connects to the relay and speaks EHLO. Prints
//! what it checked, one line per problem, and exits non-zero on any.

use std::path::Path;

use crate::config::{Config, ConfigError};
use crate::store::Store;

/// The problems were printed, one line each; only the exit code is left:
/// 78 for configuration errors, 1 when something is unreachable.
#[derive(Debug, thiserror::Error)]
#[error("{problems} problem(s) found")]
pub struct Reported {
    pub problems: usize,
    pub config: bool,
}

pub async fn check(path: &Path, probe_relay: bool) -> anyhow::Result<()> {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(ConfigError::Invalid { path, problems }) => {
            for p in &problems {
                eprintln!("mensageria: {}: {p}", path.display());
            }
            return Err(Reported {
                problems: problems.len(),
                config: true,
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    println!("ok: {} parses and every key is valid", path.display());
    let mut problems = 0;
    let mut fail = |what: String| {
        eprintln!("mensageria: {what}");
        problems += 1;
    };
    let db = crate::gateway::redact(&cfg.database.url);
    match Store::connect(&cfg.database.url, 1).await {
        Ok(s) => {
            println!("ok: database {db} reachable");
            s.close().await;
        }
        Err(e) => fail(format!("database {db}: {e}")),
    }
    if let (Some(c), Some(k)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
        match crate::listener::tls::Tls::new(c, k) {
            Ok(_) => println!("ok: TLS certificate {} and key load", c.display()),
            Err(e) => fail(format!("tls: {e}")),
        }
    }
    // Never create the key here: run as root, it would belong to root and
    // the service could not read it. The service creates it on first start.
    let key = &cfg.security.key_file;
    if key.exists() {
        match crate::outbound::token::key(&cfg) {
            Ok(_) => println!("ok: signing key {}", key.display()),
            Err(e) => fail(format!("security.key_file: {e}")),
        }
    } else {
        println!(
            "ok: signing key {} will be created on first start",
            key.display()
        );
    }
    if probe_relay {
        match crate::relay::RelayClient::new(&cfg.relay, &cfg.smtp.hostname) {
            Ok(client) => match client.probe().await {
                Ok(()) => println!("ok: relay {} answers EHLO", cfg.relay.url),
                Err(e) => fail(format!("relay {}: {e}", cfg.relay.url)),
            },
            Err(e) => fail(format!("relay: {e}")),
        }
    }
    if problems > 0 {
        return Err(Reported {
            problems,
            config: false,
        }
        .into());
    }
    Ok(())
}
