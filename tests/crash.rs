//! The crash test: clients send replies while the daemon is killed with
//! SIGKILL several times and restarted each time on the same port and
//! database; the clients reconnect and keep sending new messages. Every
//! message that got its 250 must be stored exactly once afterwards (250 is
//! said only after the commit). Meanwhile technician replies are queued
//! before and between the kills, with the relay pointed at a loopback sink
//! and a one-second lease: after the last restart every outbox row must end
//! `sent` and have reached the sink, and a mail the sink got twice must be
//! the same mail (the documented window: the relay said 250, the process
//! died before the row was marked sent). Run on SQLite (WAL,
//! synchronous=FULL) and PostgreSQL.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mensageria::outbound;
use mensageria::store::Store;
use support::daemon::Daemon;
use support::sink::Sink;
use support::{Db, GATEWAY, REQUESTER, TestDb};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const KILLS: usize = 3;
const CLIENTS: usize = 8;
/// Acknowledged messages between two kills (and after the last restart).
const STEP: usize = 500;
/// Technician replies queued while the daemon is up, just before each kill
/// (so the relay is likely mid-delivery when it dies), and while it is down.
const REPLIES_UP: usize = 3;
const REPLIES_DOWN: usize = 2;

/// A small SMTP client that treats a dead server as an ordinary outcome
/// (`None`), where `support::client` panics on a failed write or connect:
/// here the server is expected to vanish mid-command, several times.
struct Smtp {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Smtp {
    /// Connects, reads the 220 and says EHLO; None while nobody listens.
    async fn connect(addr: SocketAddr) -> Option<Smtp> {
        let s = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .ok()?
            .ok()?;
        let (r, w) = s.into_split();
        let mut c = Smtp {
            r: BufReader::new(r),
            w,
        };
        (c.reply().await? == 220).then_some(())?;
        (c.cmd(b"EHLO crash.example\r\n").await? == 250).then_some(c)
    }

    /// The code of a whole (multi-line) reply; None on EOF, error or a
    /// server silent for 10 s.
    async fn reply(&mut self) -> Option<u16> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = tokio::time::timeout(Duration::from_secs(10), self.r.read_line(&mut line))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            let code: u16 = line.get(..3)?.parse().ok()?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(code);
            }
        }
    }

    async fn cmd(&mut self, bytes: &[u8]) -> Option<u16> {
        self.w.write_all(bytes).await.ok()?;
        self.reply().await
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Messages whose end of data was written.
    sent: AtomicUsize,
    /// Message-IDs that got 250 to end of data.
    acked: Mutex<Vec<String>>,
}

impl Shared {
    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
}

/// Sends new messages, one after another, until told to stop; reconnects
/// whenever the server goes away. A message without its 250 is never sent
/// again: the next one has a new Message-ID.
async fn client(addr: SocketAddr, n: usize, st: Arc<Shared>) {
    let mut i = 0usize;
    while !st.stop.load(Ordering::SeqCst) {
        let Some(mut c) = Smtp::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        while !st.stop.load(Ordering::SeqCst) {
            let id = format!("<crash-{n}-{i}@c>");
            i += 1;
            let raw = format!(
                "From: {REQUESTER}\r\nTo: {GATEWAY}\r\nSubject: [HD #77] carga {n}/{i}\r\n\
                 Message-ID: {id}\r\n\r\ntexto {i}\r\n.\r\n"
            );
            if c.cmd(format!("MAIL FROM:<{REQUESTER}>\r\n").as_bytes())
                .await
                != Some(250)
                || c.cmd(format!("RCPT TO:<{GATEWAY}>\r\n").as_bytes()).await != Some(250)
                || c.cmd(b"DATA\r\n").await != Some(354)
            {
                break;
            }
            st.sent.fetch_add(1, Ordering::SeqCst);
            match c.cmd(raw.as_bytes()).await {
                Some(250) => st.acked.lock().unwrap().push(id),
                _ => break,
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), c.cmd(b"QUIT\r\n")).await;
    }
}

/// The Message-ID header of a mail as the sink received it.
fn message_id_of(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_owned())
        })
}

async fn queue_replies(store: &Store, cfg: &mensageria::config::Config, n: usize, phase: usize) {
    for k in 0..n {
        let text = format!("Resposta {phase}.{k} do técnico");
        outbound::technician_reply(store, cfg, 77, "tec@suporte.example", &text)
            .await
            .expect("queue a technician reply");
    }
}

async fn crash(db: Db) {
    let started = Instant::now();
    let tdb = TestDb::new(db).await;
    let sink = Sink::start().await;
    let port = support::sink::free_port();
    let mut cfg = support::config(&tdb.url, sink.addr.port());
    cfg.smtp.listen = mensageria::config::Listen::One(format!("127.0.0.1:{port}"));
    // A row left `sending` by a killed instance is due again after a second.
    cfg.relay.lease_secs = 1;
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let store = Store::connect(&tdb.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    support::seed(&store, "[HD #${IDSOLICITACAOSERVICO}]", 77, &[]).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Replies queued before the first start.
    queue_replies(&store, &cfg, REPLIES_DOWN, 0).await;
    let mut d = Daemon::spawn(&conf, addr).await;
    let st = Arc::new(Shared::default());
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(addr, n, st.clone())))
        .collect();

    let mut mark = 0;
    for kill in 1..=KILLS {
        // Kill once more mail has been acknowledged, not on a timer.
        support::wait_until("acknowledged mail", Duration::from_secs(30), || async {
            (st.acked() >= mark + STEP).then_some(())
        })
        .await;
        queue_replies(&store, &cfg, REPLIES_UP, kill * 10).await;
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..60))).await;
        d.signal("KILL");
        d.wait(Duration::from_secs(10)).await;
        // While it is down: clients fail to connect; more replies queue up.
        queue_replies(&store, &cfg, REPLIES_DOWN, kill * 10 + 1).await;
        d = Daemon::spawn(&conf, addr).await;
        mark = st.acked();
    }
    support::wait_until(
        "mail after the last restart",
        Duration::from_secs(30),
        || async { (st.acked() >= mark + STEP).then_some(()) },
    )
    .await;
    st.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("client task");
    }

    // Inbound: every acknowledged message stored, none twice.
    let acked: Vec<String> = st.acked.lock().unwrap().clone();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT message_id, COUNT(*) FROM messages WHERE message_id LIKE '<crash-%' GROUP BY message_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let found: HashMap<String, i64> = rows.into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !found.contains_key(*id)).collect();
    let twice: Vec<(&String, &i64)> = found.iter().filter(|(_, n)| **n != 1).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let sent = st.sent.load(Ordering::SeqCst);
    assert!(found.len() <= sent, "found {} of {sent} sent", found.len());
    assert_eq!(
        acked.iter().collect::<HashSet<_>>().len(),
        acked.len(),
        "a Message-ID acknowledged twice"
    );

    // Outbound: every row ends sent; each reached the sink; duplicates are
    // the same mail again.
    let expected = (KILLS + 1) * REPLIES_DOWN + KILLS * REPLIES_UP;
    let outbox = support::wait_until("every outbox row sent", Duration::from_secs(20), || async {
        let rows = store.outbox_list().await.unwrap();
        if let Some(r) = rows.iter().find(|r| r.state == "failed") {
            panic!("outbox row failed: {r:?}");
        }
        rows.iter().all(|r| r.state == "sent").then_some(rows)
    })
    .await;
    assert_eq!(outbox.len(), expected, "outbox rows: {outbox:?}");
    let mut at_sink: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for m in sink.messages() {
        let id = message_id_of(&m.data).expect("Message-ID in relayed mail");
        at_sink.entry(id).or_default().push(m.data);
    }
    let ours: HashSet<&str> = outbox.iter().map(|r| r.message_id.as_str()).collect();
    let strangers: Vec<&String> = at_sink
        .keys()
        .filter(|id| !ours.contains(id.as_str()))
        .collect();
    assert!(
        strangers.is_empty(),
        "the sink got mail no outbox row has: {strangers:?}"
    );
    let undelivered: Vec<&str> = ours
        .iter()
        .copied()
        .filter(|id| !at_sink.contains_key(*id))
        .collect();
    assert!(
        undelivered.is_empty(),
        "marked sent, never relayed: {undelivered:?}"
    );
    let mut duplicates = 0;
    for (id, copies) in &at_sink {
        duplicates += copies.len() - 1;
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "{id} relayed twice with different bytes"
        );
    }
    drop(d);

    eprintln!(
        "crash: kills {KILLS}, sent {sent}, acknowledged {}, found {}, lost {}, outbound rows {} delivered {} (duplicates {duplicates}) [{db:?}, {:.1} s]",
        acked.len(),
        found.len(),
        lost.len(),
        outbox.len(),
        ours.len() - undelivered.len(),
        started.elapsed().as_secs_f64(),
    );
}

both_databases!(crash);
