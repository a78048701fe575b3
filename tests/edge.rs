//! The SMTP edge under hostile clients and faults: session caps answered
//! inline while others are served, timeouts, error limits, memory bounded
//! on endless lines, SIGTERM inside DATA, and a database outage (451, then
//! recovery).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mensageria::config::Config;
use mensageria::gateway::Gateway;
use mensageria::store::Store;
use support::client::{Client, deliver};
use support::daemon::Daemon;
use support::{Db, GATEWAY, TestDb};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

async fn gateway(tdb: &TestDb, tune: impl FnOnce(&mut Config)) -> Gateway {
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    tune(&mut cfg);
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    seed(&gw.store).await;
    gw
}

async fn seed(store: &Store) {
    support::seed(store, "[HD #${IDSOLICITACAOSERVICO}]", 77, &[]).await;
}

/// Connects from a chosen loopback source address and reads the first reply.
async fn greet_from(src: &str, addr: SocketAddr) -> (TcpStream, String) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf))
        .await
        .expect("an answer within a second")
        .unwrap();
    (s, String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_cap_refuses_inline_and_serves_others() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let gw = gateway(&tdb, |c| c.smtp.max_sessions_per_ip = 2).await;
    let (_a, g1) = greet_from("127.0.0.1", gw.smtp_addr()).await;
    let (_b, g2) = greet_from("127.0.0.1", gw.smtp_addr()).await;
    assert!(g1.starts_with("220") && g2.starts_with("220"));
    let (_c, g3) = greet_from("127.0.0.1", gw.smtp_addr()).await;
    assert!(
        g3.starts_with("421 4.7.0 Too many connections from your address"),
        "{g3}"
    );
    // Another address is still served, within a second.
    let (_d, g4) = greet_from("127.0.0.2", gw.smtp_addr()).await;
    assert!(g4.starts_with("220"), "{g4}");
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overall_cap_refuses_inline() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let gw = gateway(&tdb, |c| c.smtp.max_sessions = 3).await;
    let mut open = Vec::new();
    for i in 0..3 {
        let (s, g) = greet_from(&format!("127.0.0.{}", i + 1), gw.smtp_addr()).await;
        assert!(g.starts_with("220"));
        open.push(s);
    }
    let (_s, g) = greet_from("127.0.0.9", gw.smtp_addr()).await;
    assert!(g.starts_with("421 4.7.0 Too many connections"), "{g}");
    drop(open.pop());
    // A freed slot is usable again (the permit is returned when the session ends).
    let r = support::wait_until("a free slot", Duration::from_secs(5), || async {
        let (_s, g) = greet_from("127.0.0.9", gw.smtp_addr()).await;
        g.starts_with("220").then_some(g)
    })
    .await;
    assert!(r.starts_with("220"));
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_idle_sessions_do_not_delay_a_new_client() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let gw = gateway(&tdb, |c| {
        c.smtp.max_sessions_per_ip = 2000;
        c.smtp.max_sessions = 2000;
    })
    .await;
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut s = TcpStream::connect(gw.smtp_addr()).await.unwrap();
        let mut b = [0u8; 64];
        let _ = s.read(&mut b).await.unwrap();
        idle.push(s);
    }
    let started = Instant::now();
    let (mut c, g) = Client::connect(gw.smtp_addr()).await;
    let waited = started.elapsed();
    assert_eq!(g.code, 220);
    assert_eq!(c.cmd("EHLO x").await.code, 250);
    eprintln!(
        "greeting with 1000 idle sessions open: {:.2} ms",
        waited.as_secs_f64() * 1000.0
    );
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    drop(idle);
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_is_timed_out() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let gw = gateway(&tdb, |c| c.smtp.idle_timeout_secs = 1).await;
    let (mut c, _) = Client::connect(gw.smtp_addr()).await;
    let r = c.reply().await.expect("a 421 before the close");
    assert_eq!(r.code, 421);
    assert!(r.text.contains("Timeout"), "{r:?}");
    assert!(c.reply().await.is_none(), "connection closed");
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_data_hits_the_data_deadline() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let gw = gateway(&tdb, |c| {
        c.smtp.idle_timeout_secs = 10;
        c.smtp.data_timeout_secs = 1;
    })
    .await;
    let (mut c, _) = Client::connect(gw.smtp_addr()).await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<a@cliente.example>").await;
    c.cmd(&format!("RCPT TO:<{GATEWAY}>")).await;
    assert_eq!(c.cmd("DATA").await.code, 354);
    let started = Instant::now();
    // A line every 200 ms keeps the idle timer (10 s) happy; the DATA
    // deadline (1 s) must still end it.
    for _ in 0..4 {
        c.send(b"x\r\n").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = c.reply().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut by the deadline, not the idle timer"
    );
    let r = r.expect("a reply");
    assert_eq!(r.code, 421, "{r:?}");
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_errors_hang_up() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let gw = gateway(&tdb, |c| c.smtp.max_errors = 3).await;
    let (mut c, _) = Client::connect(gw.smtp_addr()).await;
    assert_eq!(c.cmd("FOO").await.code, 500);
    assert_eq!(c.cmd("BAR").await.code, 500);
    assert_eq!(c.cmd("BAZ").await.code, 500);
    let r = c.reply().await.expect("421");
    assert_eq!(r.code, 421, "{r:?}");
    assert!(c.reply().await.is_none());
    gw.stop(Duration::from_secs(5)).await;
}

/// Sends `mb` MiB of one line with no end, then the end; returns the reply.
async fn endless_line(addr: SocketAddr, in_data: bool, mb: usize) -> u16 {
    let (mut c, _) = Client::connect(addr).await;
    if in_data {
        c.cmd("EHLO x").await;
        c.cmd("MAIL FROM:<a@cliente.example>").await;
        c.cmd(&format!("RCPT TO:<{GATEWAY}>")).await;
        assert_eq!(c.cmd("DATA").await.code, 354);
        c.send(b"Subject: [HD #77]\r\n\r\n").await;
    }
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..mb {
        c.send(&chunk).await;
    }
    c.send(if in_data {
        &b"\r\n.\r\n"[..]
    } else {
        &b"\r\n"[..]
    })
    .await;
    c.reply().await.expect("a reply").code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_lines_keep_memory_bounded() {
    let mb: usize = std::env::var("MENSAGERIA_LONG_LINE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let tdb = TestDb::new(Db::Sqlite).await;
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    let port = support::sink::free_port();
    cfg.smtp.listen = mensageria::config::Listen::One(format!("127.0.0.1:{port}"));
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let d = Daemon::spawn(&conf, format!("127.0.0.1:{port}").parse().unwrap()).await;
    let before = d.rss_kb();
    assert_eq!(endless_line(d.addr, false, mb).await, 500);
    assert_eq!(endless_line(d.addr, true, mb).await, 552);
    // Still serving.
    let r = deliver(
        d.addr,
        "a@cliente.example",
        &[GATEWAY],
        b"Subject: [HD #77] ok\r\n\r\nok\r\n",
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let peak = d.peak_rss_kb();
    eprintln!("long lines of {mb} MiB: RSS {before} KiB before, peak {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_inside_data_commits_and_exits_zero() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    let port = support::sink::free_port();
    cfg.smtp.listen = mensageria::config::Listen::One(format!("127.0.0.1:{port}"));
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let store = Store::connect(&tdb.url, 1).await.unwrap();
    store.migrate().await.unwrap();
    seed(&store).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut d = Daemon::spawn(&conf, addr).await;
    let (mut c, _) = Client::connect(addr).await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<ana@cliente.example>").await;
    c.cmd(&format!("RCPT TO:<{GATEWAY}>")).await;
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send(b"Subject: [HD #77] no meio do DATA\r\nMessage-ID: <term@c>\r\n\r\nprimeira parte\r\n")
        .await;
    // An idle session sees the stop at once.
    let (mut idle, _) = Client::connect(addr).await;
    d.signal("TERM");
    let r = idle.reply().await.expect("421 to the idle session");
    assert_eq!(r.code, 421, "{r:?}");
    // The stop is under way; the message in DATA still completes.
    c.send(b"segunda parte\r\n.\r\n").await;
    let r = c.reply().await.expect("reply to end of data");
    assert_eq!(r.code, 250, "{r:?}");
    let status = d.wait(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0));
    let msgs = store.messages_of_ticket(77).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].message_id, "<term@c>");
    assert!(msgs[0].body_text.contains("segunda parte"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_gives_451_then_recovers() {
    let tdb = TestDb::new(Db::Postgres).await;
    let gw = gateway(&tdb, |c| c.database.acquire_timeout_secs = 1).await;
    tdb.set_available(false).await;
    let m =
        |id: &str| format!("Subject: [HD #77] x\r\nMessage-ID: <{id}@c>\r\n\r\nx\r\n").into_bytes();
    let r = deliver(
        gw.smtp_addr(),
        "ana@cliente.example",
        &[GATEWAY],
        &m("down"),
    )
    .await;
    assert_eq!(r.code, 451, "{r:?}");
    tdb.set_available(true).await;
    let r = support::wait_until("recovery", Duration::from_secs(20), || async {
        let r = deliver(gw.smtp_addr(), "ana@cliente.example", &[GATEWAY], &m("up")).await;
        (r.code == 250).then_some(r)
    })
    .await;
    assert_eq!(r.code, 250);
    let ids: Vec<String> = support::thread_ids(&gw.store, 77).await;
    assert_eq!(ids, vec!["<up@c>"]);
    gw.stop(Duration::from_secs(5)).await;
}
