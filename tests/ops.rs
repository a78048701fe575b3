//! Running as a service: the built binary under a fake service manager
//! (a NOTIFY_SOCKET the test listens on, a watchdog, SIGHUP and SIGTERM as
//! systemd sends them), journal-style log lines, and the admin listener
//! (/metrics parsed as Prometheus text, /healthz, /readyz through a database
//! outage and a relay outage). The tests live in `tests/ops/`.

mod support;

#[path = "ops/admin.rs"]
mod admin;
#[path = "ops/notify.rs"]
mod notify;
#[path = "ops/scrape.rs"]
mod scrape;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use mensageria::config::{Config, Listen};
use support::TestDb;
use support::daemon::Daemon;
use support::sink::free_port;
use tokio::io::AsyncReadExt;

pub fn spawn(config: &Path, addr: SocketAddr, env: &[(&str, &str)]) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mensageria"));
    cmd.arg("--config").arg(config).arg("serve");
    cmd.env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM");
    cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon {
        child: cmd.spawn().expect("spawn mensageria serve"),
        addr,
    }
}

/// A config whose SMTP and admin ports are known before the daemon starts.
pub fn daemon_config(
    tdb: &TestDb,
    relay_port: u16,
    admin: bool,
) -> (Config, SocketAddr, Option<SocketAddr>) {
    let mut c = support::config(&tdb.url, relay_port);
    let smtp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    c.smtp.listen = Listen::One(smtp.to_string());
    c.log.filter = "warn".into();
    let admin = admin.then(|| format!("127.0.0.1:{}", free_port()).parse().unwrap());
    c.admin.listen = admin.map(|a: SocketAddr| a.to_string());
    (c, smtp, admin)
}

pub async fn greets(addr: SocketAddr) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).await.is_ok() && &buf == b"220"
}

pub fn unmatched_mail(id: &str) -> Vec<u8> {
    format!("Subject: no ticket here\r\nMessage-ID: <{id}@cliente.example>\r\n\r\nhello\r\n")
        .into_bytes()
}

/// The packaged config is the shipped one with its state under
/// /var/lib/mensageria: the two must not drift apart.
#[test]
fn packaged_config_is_the_shipped_one_with_system_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join("config/mensageria.toml")).unwrap();
    let packaged = std::fs::read_to_string(root.join("packaging/mensageria.toml")).unwrap();
    let a = Config::parse(&shipped).unwrap();
    let b = Config::parse(&packaged).unwrap();
    assert_eq!(b.database.url, "sqlite:///var/lib/mensageria/mensageria.db");
    assert!(b.validate().is_empty(), "{:?}", b.validate());
    let mut b2 = b.clone();
    b2.database.url = a.database.url.clone();
    assert_eq!(
        b.security.key_file,
        Path::new("/var/lib/mensageria/mensageria.key")
    );
    b2.security.key_file = a.security.key_file.clone();
    assert_eq!(
        toml::to_string(&a).unwrap(),
        toml::to_string(&b2).unwrap(),
        "packaging/mensageria.toml differs from config/mensageria.toml beyond database.url and security.key_file"
    );
}
