//! Running as a service: the built binary under a fake service manager
//! (a NOTIFY_SOCKET the test listens on, a watchdog, SIGHUP and SIGTERM as
//! systemd sends them), journal-style log lines, and the admin listener
//! (/metrics parsed as Prometheus text, /healthz, /readyz through a database
//! outage and a relay outage).

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mensageria::config::{Config, Listen};
use mensageria::store::Store;
use mensageria::store::tickets::TicketFields;
use support::client::deliver;
use support::daemon::Daemon;
use support::sink::{Sink, free_port};
use support::{Db, GATEWAY, TestDb, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixDatagram;

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
            if msg.lines().any(|l| l == line || (line.ends_with('=') && l.starts_with(line))) {
                return msg;
            }
        }
    }
}

fn value<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn spawn(config: &Path, addr: SocketAddr, env: &[(&str, &str)]) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mensageria"));
    cmd.arg("--config").arg(config).arg("serve");
    cmd.env_remove("RUST_LOG").env_remove("NOTIFY_SOCKET").env_remove("JOURNAL_STREAM");
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
fn daemon_config(tdb: &TestDb, relay_port: u16, admin: bool) -> (Config, SocketAddr, Option<SocketAddr>) {
    let mut c = support::config(&tdb.url, relay_port);
    let smtp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    c.smtp.listen = Listen::One(smtp.to_string());
    c.log.filter = "warn".into();
    let admin = admin.then(|| format!("127.0.0.1:{}", free_port()).parse().unwrap());
    c.admin.listen = admin.map(|a: SocketAddr| a.to_string());
    (c, smtp, admin)
}

async fn greets(addr: SocketAddr) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).await.is_ok() && &buf == b"220"
}

fn unmatched_mail(id: &str) -> Vec<u8> {
    format!("Subject: no ticket here\r\nMessage-ID: <{id}@cliente.example>\r\n\r\nhello\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_lifecycle_watchdog_reload_and_stop() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let (mut cfg, smtp, _) = daemon_config(&tdb, free_port(), false);
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let sock = tdb.dir.path().join("notify.sock");
    let mut mgr = Manager::bind(&sock);
    let mut d = spawn(&conf, smtp, &[("NOTIFY_SOCKET", sock.to_str().unwrap()), ("WATCHDOG_USEC", "200000")]);

    let ready = mgr.expect("READY=1", Duration::from_secs(20)).await;
    // READY=1 comes after the bind: the port greets at once, no retry.
    assert!(greets(smtp).await, "READY=1 before the listener accepted");
    let status = value(&ready, "STATUS").expect("READY=1 carries STATUS=");
    assert!(status.starts_with(&format!("listening on {smtp}; outbox 0 queued")), "{status}");

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
    assert!(before <= stamp && stamp <= after, "{before} <= {stamp} <= {after}");
    let ready = mgr.expect("READY=1", Duration::from_secs(5)).await;
    let status = value(&ready, "STATUS").unwrap();
    assert!(status.contains("applied log.filter"), "{status}");
    assert!(status.contains("restart needed for smtp.max_recipients"), "{status}");

    // Still serving, and still watched.
    let r = deliver(smtp, "ana@cliente.example", &[GATEWAY], &unmatched_mail("after-hup")).await;
    assert_eq!(r.code, 250, "{r:?}");
    mgr.expect("WATCHDOG=1", Duration::from_secs(2)).await;

    d.signal("TERM");
    let stopping = mgr.expect("STOPPING=1", Duration::from_secs(5)).await;
    assert!(value(&stopping, "STATUS").is_some_and(|s| s.starts_with("draining")), "{stopping}");
    let st = d.wait(Duration::from_secs(15)).await;
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abstract_notify_socket() {
    use std::os::linux::net::SocketAddrExt;
    let tdb = TestDb::new(Db::Sqlite).await;
    let (cfg, smtp, _) = daemon_config(&tdb, free_port(), false);
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let name = format!("mensageria-test-{}-{}", std::process::id(), rand::random::<u32>());
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
    assert!(!mgr.seen.iter().any(|m| m.contains("WATCHDOG=1")), "no WATCHDOG_USEC, no pings");
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
    cmd.arg("--config").arg(&conf).arg("serve").env_remove("RUST_LOG").env("JOURNAL_STREAM", &stream);
    let child = cmd.stdout(Stdio::null()).stderr(file).spawn().unwrap();
    let mut d = Daemon { child, addr: smtp };
    wait_until("the start line", Duration::from_secs(20), || async {
        std::fs::read_to_string(&log).unwrap().contains("mensageria started").then_some(())
    })
    .await;
    let r = deliver(smtp, "ana@cliente.example", &[GATEWAY], &unmatched_mail("journal")).await;
    assert_eq!(r.code, 250);
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let started = text.lines().find(|l| l.contains("mensageria started")).unwrap();
    assert!(started.starts_with("<6>"), "{started}");
    // The journal stamps lines itself: no date where fmt would put one.
    assert!(!started[3..].trim_start().starts_with("20"), "{started}");
    let txn = text.lines().find(|l| l.contains("smtp transaction")).expect("the transaction line");
    for field in ["peer=", "mail_from=", "rcpt=", "outcome=", "code=", "duration_ms="] {
        assert!(txn.contains(field), "{field} missing: {txn}");
    }
    for line in text.lines().filter(|l| !l.is_empty()) {
        let p = line.as_bytes();
        assert!(p[0] == b'<' && p[1].is_ascii_digit() && p[2] == b'>', "no priority: {line}");
    }
}

/// One sample of the text format: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format strictly enough to catch a bad line:
/// `# HELP name text`, `# TYPE name kind`, or `name{k="v",...} value [ts]`.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix("# ") {
            let mut w = c.splitn(3, ' ');
            let (kind, name) = (w.next().unwrap(), w.next().expect("metric name in comment"));
            assert!(valid_name(name), "{line}");
            match kind {
                "TYPE" => {
                    let t = w.next().unwrap_or("");
                    assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&t), "{line}");
                }
                _ => assert_eq!(kind, "HELP", "{line}"),
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "{line}");
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(body) => parse_labels(body, line),
            None => (BTreeMap::new(), line[name_end..].to_owned()),
        };
        assert!(rest.starts_with(' '), "no space before the value: {line}");
        let mut parts = rest.split_whitespace();
        let v = parts.next().unwrap_or_else(|| panic!("no value: {line}"));
        let value = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value {v:?}: {line}")),
        };
        assert!(parts.next().is_none_or(|ts| ts.parse::<i64>().is_ok()), "{line}");
        assert!(parts.next().is_none(), "{line}");
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    out
}

/// `k="v",...}` and what follows the closing brace.
fn parse_labels(body: &str, line: &str) -> (BTreeMap<String, String>, String) {
    let b: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut labels = BTreeMap::new();
    loop {
        if b.get(i) == Some(&'}') {
            return (labels, b[i + 1..].iter().collect());
        }
        let start = i;
        while b.get(i).is_some_and(|c| *c != '=') {
            i += 1;
        }
        let key: String = b[start..i].iter().collect();
        assert!(valid_name(&key) && b.get(i + 1) == Some(&'"'), "bad label: {line}");
        i += 2;
        let mut val = String::new();
        loop {
            match b.get(i) {
                Some('\\') => {
                    val.push(match b.get(i + 1) {
                        Some('n') => '\n',
                        Some(c @ ('\\' | '"')) => *c,
                        _ => panic!("bad escape: {line}"),
                    });
                    i += 2;
                }
                Some('"') => {
                    i += 1;
                    break;
                }
                Some(c) => {
                    val.push(*c);
                    i += 1;
                }
                None => panic!("unterminated label value: {line}"),
            }
        }
        assert!(labels.insert(key, val).is_none(), "repeated label: {line}");
        match b.get(i) {
            Some(',') => i += 1,
            Some('}') => {}
            _ => panic!("bad label list: {line}"),
        }
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Sum of the samples of `name` whose labels include `with`.
fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

/// A GET over a fresh connection: status and body.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

async fn metrics(admin: SocketAddr) -> Vec<Sample> {
    let (status, body) = get(admin, "/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    parse_metrics(&body)
}

async fn seed(url: &str) -> Store {
    let store = Store::connect(url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let id = store
        .template_add("t", "Chamado ${IDSOLICITACAOSERVICO}", "${MENSAGEM}", None)
        .await
        .unwrap()
        .unwrap();
    store.param_set(417, &id.to_string()).await.unwrap();
    let f = TicketFields {
        requester: Some("ana@cliente.example".into()),
        ..Default::default()
    };
    store.ticket_upsert(5, &f, "<ticket.5.x@gw.test>", "AQ==").await.unwrap();
    store
}

/// Waits until `/readyz` answers `status`; returns its body.
async fn readyz(admin: SocketAddr, status: u16, timeout: Duration) -> String {
    wait_until(&format!("/readyz {status}"), timeout, || async {
        get(admin, "/readyz").await.filter(|(s, _)| *s == status).map(|(_, b)| b)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_over_http() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let sink = Sink::start().await;
    let (cfg, smtp, admin) = daemon_config(&tdb, sink.addr.port(), true);
    let admin = admin.unwrap();
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let mut d = spawn(&conf, smtp, &[]);
    wait_until("SMTP greeting", Duration::from_secs(20), || async { greets(smtp).await.then_some(()) }).await;
    assert_eq!(get(admin, "/healthz").await, Some((200, "ok\n".into())));
    assert_eq!(readyz(admin, 200, Duration::from_secs(5)).await, "ready\n");
    assert_eq!(get(admin, "/nowhere").await.map(|r| r.0), Some(404));

    let before = metrics(admin).await;
    for name in [
        "mensageria_inbound_bytes_total",
        "mensageria_smtp_sessions_open",
        "mensageria_outbox_oldest_queued_seconds",
        "mensageria_relay_latency_seconds_count",
        "mensageria_db_commit_seconds_count",
    ] {
        assert!(before.iter().any(|s| s.name == name), "{name} missing");
    }
    assert_eq!(total(&before, "mensageria_outbox", &[("state", "queued")]), 0.0);
    let inbound = |m: &[Sample]| total(m, "mensageria_inbound_total", &[("outcome", "quarantined")]);
    assert_eq!(inbound(&before), 0.0);

    let r = deliver(smtp, "ana@cliente.example", &[GATEWAY], &unmatched_mail("metrics")).await;
    assert_eq!(r.code, 250, "{r:?}");
    let store = seed(&tdb.url).await;
    mensageria::outbound::technician_reply(&store, &cfg, 5, "tec@suporte.example", "Olá").await.unwrap();
    let after = wait_until("counters to move", Duration::from_secs(10), || async {
        let m = metrics(admin).await;
        (total(&m, "mensageria_delivery_attempts_total", &[("outcome", "sent")]) >= 1.0).then_some(m)
    })
    .await;
    assert_eq!(inbound(&after), 1.0);
    assert!(total(&after, "mensageria_inbound_bytes_total", &[]) > 0.0);
    assert_eq!(total(&after, "mensageria_db_commit_seconds_count", &[]), 1.0);
    assert_eq!(total(&after, "mensageria_db_commit_seconds_bucket", &[("le", "+Inf")]), 1.0);
    assert_eq!(total(&after, "mensageria_relay_latency_seconds_count", &[]), 1.0);
    assert!(total(&after, "mensageria_relay_last_success_timestamp_seconds", &[]) > 1e9);
    store.close().await;

    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_relay() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let relay_port = free_port();
    let (cfg, smtp, admin) = daemon_config(&tdb, relay_port, true);
    let admin = admin.unwrap();
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let mut d = spawn(&conf, smtp, &[]);
    // A fresh start counts as reachable, though nothing listens there yet.
    readyz(admin, 200, Duration::from_secs(20)).await;
    let store = seed(&tdb.url).await;
    mensageria::outbound::technician_reply(&store, &cfg, 5, "tec@suporte.example", "Olá").await.unwrap();
    let why = readyz(admin, 503, Duration::from_secs(10)).await;
    assert!(why.starts_with(&format!("relay smtp://127.0.0.1:{relay_port} unreachable")), "{why}");
    let m = metrics(admin).await;
    assert!(total(&m, "mensageria_delivery_attempts_total", &[("outcome", "retry")]) >= 1.0);
    let _sink = Sink::start_on(relay_port, None).await;
    readyz(admin, 200, Duration::from_secs(15)).await;
    store.close().await;
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database() {
    let tdb = TestDb::new(Db::Postgres).await;
    let (mut cfg, smtp, admin) = daemon_config(&tdb, free_port(), true);
    cfg.database.acquire_timeout_secs = 1;
    let admin = admin.unwrap();
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let mut d = spawn(&conf, smtp, &[]);
    readyz(admin, 200, Duration::from_secs(20)).await;

    let name = url::Url::parse(&tdb.url).unwrap().path().trim_start_matches('/').to_owned();
    let mut a = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&support::pg_admin_url()).await.unwrap()
    };
    let run = |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    run(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).execute(&mut a).await.unwrap();
    run(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        .execute(&mut a)
        .await
        .unwrap();
    let why = readyz(admin, 503, Duration::from_secs(15)).await;
    assert!(why.starts_with("database not answering"), "{why}");
    assert_eq!(why.lines().count(), 1, "{why}");
    // The process itself is fine, and says so.
    assert_eq!(get(admin, "/healthz").await.map(|r| r.0), Some(200));
    assert!(metrics(admin).await.iter().all(|s| s.name != "mensageria_outbox"));

    run(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).execute(&mut a).await.unwrap();
    readyz(admin, 200, Duration::from_secs(20)).await;
    assert!(metrics(admin).await.iter().any(|s| s.name == "mensageria_outbox"));
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
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
        toml::to_string(&a).unwrap(),
        toml::to_string(&b2).unwrap(),
        "packaging/mensageria.toml differs from config/mensageria.toml beyond database.url"
    );
}
