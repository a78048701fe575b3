//! sd_notify as systemd sees it: READY=1 after the bind, WATCHDOG=1 at half
//! WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP,
//! STOPPING=1 and exit 0 on SIGTERM; an abstract socket; journal lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;

use crate::support::client::deliver;
use crate::support::daemon::Daemon;
use crate::support::sink::free_port;
use crate::support::{self, Db, GATEWAY, TestDb, wait_until};
use crate::{daemon_config, greets, spawn, unmatched_mail};

/// What the fake service manager received, in order.
struct Manager {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        Manager {
            sock: UnixDatagram::bind(path).expect("bind notify socket"),
            seen: Vec::new(),
        }
    }

    /// The next datagram with a line equal to `line` (or starting with it,
    /// for `KEY=`), failing after `timeout`.
    async fn expect(&mut self, line: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = match tokio::time::timeout(left, self.sock.recv(&mut buf)).await {
                Ok(r) => r.expect("recv"),
                Err(_) => panic!("no {line:?} within {timeout:?}; got {:?}", self.seen),
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(msg.clone());
            if msg
                .lines()
                .any(|l| l == line || (line.ends_with('=') && l.starts_with(line)))
            {
                return msg;
            }
        }
    }
}

fn value<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_lifecycle_watchdog_reload_and_stop() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let (mut cfg, smtp, _) = daemon_config(&tdb, free_port(), false);
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let sock = tdb.dir.path().join("notify.sock");
    let mut mgr = Manager::bind(&sock);
    let mut d = spawn(
        &conf,
        smtp,
        &[
            ("NOTIFY_SOCKET", sock.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );

    let ready = mgr.expect("READY=1", Duration::from_secs(20)).await;
    // READY=1 comes after the bind: the port greets at once, no retry.
    assert!(greets(smtp).await, "READY=1 before the listener accepted");
    let status = value(&ready, "STATUS").expect("READY=1 carries STATUS=");
    assert!(
        status.starts_with(&format!("listening on {smtp}; outbox 0 queued")),
        "{status}"
    );

    // Half of WATCHDOG_USEC: about every 100 ms.
    let started = Instant::now();
    for _ in 0..5 {
        mgr.expect("WATCHDOG=1", Duration::from_secs(2)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(3));

    // A reload: log.filter applies live, smtp.max_recipients needs a restart.
    cfg.log.filter = "error".into();
    cfg.smtp.max_recipients = 7;
    support::write_config(tdb.dir.path(), &cfg);
    let before = mensageria::runtime::systemd::monotonic_usec();
    d.signal("HUP");
    let reloading = mgr.expect("RELOADING=1", Duration::from_secs(5)).await;
    let stamp: u64 = value(&reloading, "MONOTONIC_USEC")
        .expect("RELOADING=1 carries MONOTONIC_USEC=")
        .parse()
        .expect("MONOTONIC_USEC is a number");
    let after = mensageria::runtime::systemd::monotonic_usec();
    assert!(
        before <= stamp && stamp <= after,
        "{before} <= {stamp} <= {after}"
    );
    let ready = mgr.expect("READY=1", Duration::from_secs(5)).await;
    let status = value(&ready, "STATUS").unwrap();
    assert!(status.contains("applied log.filter"), "{status}");
    assert!(
        status.contains("restart needed for smtp.max_recipients"),
        "{status}"
    );

    // A file that does not load changes nothing, and says so.
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, "[smtp]\nlisne = 1\n").unwrap();
    d.signal("HUP");
    mgr.expect("RELOADING=1", Duration::from_secs(5)).await;
    let ready = mgr.expect("READY=1", Duration::from_secs(5)).await;
    let status = value(&ready, "STATUS").unwrap();
    assert!(
        status.contains("reload failed") && status.contains("lisne"),
        "{status}"
    );
    std::fs::write(&conf, good).unwrap();

    // Still serving, and still watched.
    let r = deliver(
        smtp,
        "ana@cliente.example",
        &[GATEWAY],
        &unmatched_mail("after-hup"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    mgr.expect("WATCHDOG=1", Duration::from_secs(2)).await;

    d.signal("TERM");
    let stopping = mgr.expect("STOPPING=1", Duration::from_secs(5)).await;
    assert!(
        value(&stopping, "STATUS").is_some_and(|s| s.starts_with("draining")),
        "{stopping}"
    );
    let st = d.wait(Duration::from_secs(15)).await;
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abstract_notify_socket() {
    use std::os::linux::net::SocketAddrExt;
    let tdb = TestDb::new(Db::Sqlite).await;
    let (cfg, smtp, _) = daemon_config(&tdb, free_port(), false);
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let name = format!(
        "mensageria-test-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let std_sock = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
    std_sock.set_nonblocking(true).unwrap();
    let mut mgr = Manager {
        sock: UnixDatagram::from_std(std_sock).unwrap(),
        seen: Vec::new(),
    };
    let mut d = spawn(&conf, smtp, &[("NOTIFY_SOCKET", &format!("@{name}"))]);
    mgr.expect("READY=1", Duration::from_secs(20)).await;
    d.signal("TERM");
    mgr.expect("STOPPING=1", Duration::from_secs(5)).await;
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
    assert!(
        !mgr.seen.iter().any(|m| m.contains("WATCHDOG=1")),
        "no WATCHDOG_USEC, no pings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_lines_carry_a_priority_and_no_timestamp() {
    use std::os::unix::fs::MetadataExt;
    let tdb = TestDb::new(Db::Sqlite).await;
    let (mut cfg, smtp, _) = daemon_config(&tdb, free_port(), false);
    cfg.log.filter = "info".into();
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let log: PathBuf = tdb.dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mensageria"));
    cmd.arg("--config")
        .arg(&conf)
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", &stream);
    let child = cmd.stdout(Stdio::null()).stderr(file).spawn().unwrap();
    let mut d = Daemon { child, addr: smtp };
    wait_until("the start line", Duration::from_secs(20), || async {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("mensageria started")
            .then_some(())
    })
    .await;
    let r = deliver(
        smtp,
        "ana@cliente.example",
        &[GATEWAY],
        &unmatched_mail("journal"),
    )
    .await;
    assert_eq!(r.code, 250);
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let started = text
        .lines()
        .find(|l| l.contains("mensageria started"))
        .unwrap();
    assert!(started.starts_with("<6>"), "{started}");
    // The journal stamps lines itself: no date where fmt would put one.
    assert!(!started[3..].trim_start().starts_with("20"), "{started}");
    let txn = text
        .lines()
        .find(|l| l.contains("smtp transaction"))
        .expect("the transaction line");
    for field in [
        "peer=",
        "mail_from=",
        "rcpt=",
        "outcome=",
        "code=",
        "duration_ms=",
    ] {
        assert!(txn.contains(field), "{field} missing: {txn}");
    }
    for line in text.lines().filter(|l| !l.is_empty()) {
        let p = line.as_bytes();
        assert!(
            p[0] == b'<' && p[1].is_ascii_digit() && p[2] == b'>',
            "no priority: {line}"
        );
    }
}
