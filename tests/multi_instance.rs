//! Three `serve` processes on one PostgreSQL database, one of them killed
//! with SIGKILL mid-run. Replies go to all three listeners (a client whose
//! instance died fails over to another, as an MTA retries); technicians'
//! messages are queued meanwhile. Afterwards every reply is threaded exactly
//! once, and every outbound mail reached the relay exactly once, by
//! Message-ID. The one allowed exception is the documented crash window: a
//! mail the killed instance had claimed, handed to the relay, and not yet
//! marked sent goes out again, with the same Message-ID, once its lease runs
//! out. This rests on the outbox claim (`FOR UPDATE SKIP LOCKED`, leases).

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mensageria::config::{Config, Listen};
use mensageria::outbound;
use mensageria::store::Store;
use mensageria::store::tickets::TicketFields;
use support::daemon::Daemon;
use support::sink::{Sink, free_port};
use support::{Db, GATEWAY, TestDb, wait_until};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const INSTANCES: usize = 3;
const TICKETS: i64 = 8;
const REQUESTER: &str = "ana@cliente.example";
/// Replies per listener and round (two rounds: before and after the kill).
const REPLIES: usize = 20;
/// Technicians' messages per burst (two bursts).
const BURST: usize = 20;

/// One message over a fresh connection; the code of the last reply read,
/// or an error when the instance is gone.
async fn smtp_once(addr: SocketAddr, data: &str) -> std::io::Result<u16> {
    async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<u16> {
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let code = line.get(..3).and_then(|c| c.parse().ok());
            let code = code.ok_or_else(|| std::io::Error::other(format!("bad reply {line:?}")))?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(code);
            }
        }
    }
    let run = async {
        let (r, mut w) = TcpStream::connect(addr).await?.into_split();
        let mut r = BufReader::new(r);
        reply(&mut r).await?;
        let envelope = [
            "EHLO mta.cliente.example".to_owned(),
            format!("MAIL FROM:<{REQUESTER}>"),
            format!("RCPT TO:<{GATEWAY}>"),
            "DATA".to_owned(),
        ];
        for cmd in envelope {
            w.write_all(format!("{cmd}\r\n").as_bytes()).await?;
            let code = reply(&mut r).await?;
            if code >= 400 {
                return Ok(code);
            }
        }
        w.write_all(format!("{data}.\r\n").as_bytes()).await?;
        let code = reply(&mut r).await?;
        let _ = w.write_all(b"QUIT\r\n").await;
        Ok(code)
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// A client of instance `home`: `REPLIES` replies, paced so the run spans
/// the kill; on a failure it tries the other instances, like an MTA.
/// Returns (Message-ID, ticket) of every reply acknowledged with 250.
async fn requester(addrs: Arc<Vec<SocketAddr>>, round: usize, home: usize) -> Vec<(String, i64)> {
    let mut acked = Vec::new();
    for i in 0..REPLIES {
        let ticket = 1 + ((home * REPLIES + i) as i64 % TICKETS);
        let id = format!("<mi-{round}-{home}-{i}@cliente.example>");
        let data = format!(
            "From: Ana <{REQUESTER}>\r\nTo: {GATEWAY}\r\nSubject: RES: Chamado {ticket}\r\nMessage-ID: {id}\r\n\r\nResposta {round}/{home}/{i}\r\n"
        );
        let mut done = false;
        for attempt in 0..3 * INSTANCES {
            let addr = addrs[(home + attempt) % INSTANCES];
            match smtp_once(addr, &data).await {
                Ok(250) => {
                    done = true;
                    break;
                }
                // 4xx or a dead instance: the next one, after a pause.
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(done, "no instance accepted {id}");
        acked.push((id, ticket));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acked
}

async fn seed(store: &Store) {
    let id = store
        .template_add("t", "Chamado ${IDSOLICITACAOSERVICO}", "${MENSAGEM}", None)
        .await
        .unwrap()
        .unwrap();
    store.param_set(417, &id.to_string()).await.unwrap();
    for t in 1..=TICKETS {
        let f = TicketFields {
            requester: Some(REQUESTER.into()),
            technicians: Some(vec!["tec@suporte.example".into()]),
            ..Default::default()
        };
        let root = format!("<ticket.{t}.mi@gw.test>");
        store.ticket_upsert(t, &f, &root, "AQ==").await.unwrap();
    }
}

/// Technicians' messages queued the way `ticket reply` does it.
async fn burst(store: &Store, cfg: &Config, round: usize) {
    for k in 0..BURST {
        let ticket = 1 + (k as i64 % TICKETS);
        let text = format!("Mensagem {round}/{k} do técnico");
        outbound::technician_reply(store, cfg, ticket, "tec@suporte.example", &text)
            .await
            .unwrap();
    }
}

/// The instance holding a row in `sending` right now.
async fn claimant(store: &Store, owners: &[String]) -> Option<usize> {
    for row in store.outbox_list().await.unwrap() {
        if row.state != "sending" {
            continue;
        }
        let Some(lease) = store.outbox_lease(row.id).await.unwrap() else {
            continue;
        };
        let by = lease.claimed_by.unwrap_or_default();
        if let Some(i) = owners.iter().position(|o| by.starts_with(o.as_str())) {
            return Some(i);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_postgres_database_and_survive_a_kill() {
    let tdb = TestDb::new(Db::Postgres).await;
    let sink = Sink::start().await;
    let store = Store::connect(&tdb.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    seed(&store).await;

    let mut cfgs = Vec::new();
    let mut daemons = Vec::new();
    for n in 0..INSTANCES {
        let port = free_port();
        let mut c = support::config(&tdb.url, sink.addr.port());
        // Load, not a loop: lift the loop caps for this test.
        c.loops.per_recipient = 1_000_000;
        c.loops.per_ticket_recipient = 1_000_000;
        c.smtp.listen = Listen::One(format!("127.0.0.1:{port}"));
        c.smtp.hostname = format!("gw{n}.test");
        // Short, so the killed instance's claims come back within the test;
        // long enough for a whole claimed batch (32 rows, each ~45 ms with
        // lettre's Nagle stall) to go out under the same lease.
        c.relay.lease_secs = 4;
        c.relay.max_attempts = 20;
        let dir = tdb.dir.path().join(format!("gw{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = support::write_config(&dir, &c);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        daemons.push(Daemon::spawn(&conf, addr).await);
        cfgs.push(c);
    }
    let addrs = Arc::new(daemons.iter().map(|d| d.addr).collect::<Vec<_>>());
    // The relay's lease owner is `hostname:pid:nonce`.
    let owners: Vec<String> = daemons
        .iter()
        .zip(&cfgs)
        .map(|(d, c)| format!("{}:{}:", c.smtp.hostname, d.child.id()))
        .collect();

    // Round 1 on all three listeners, and a burst of technicians' mail.
    let round1: Vec<_> = (0..INSTANCES)
        .map(|home| tokio::spawn(requester(addrs.clone(), 1, home)))
        .collect();
    burst(&store, &cfgs[0], 1).await;
    // Kill an instance while it holds claimed rows, when one is seen.
    let victim = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(i) = claimant(&store, &owners).await {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or(1);
    daemons[victim].signal("KILL");
    daemons[victim].wait(Duration::from_secs(10)).await;
    // Its rows still in `sending` are frozen now: the crash window.
    let mut in_window = HashSet::new();
    for row in store.outbox_list().await.unwrap() {
        let lease = store.outbox_lease(row.id).await.unwrap().unwrap();
        if row.state == "sending"
            && lease
                .claimed_by
                .is_some_and(|b| b.starts_with(owners[victim].as_str()))
        {
            in_window.insert(row.message_id);
        }
    }
    let mut acked = Vec::new();
    for t in round1 {
        acked.extend(t.await.unwrap());
    }

    // Keep going on the survivors.
    let round2: Vec<_> = (0..INSTANCES)
        .filter(|&home| home != victim)
        .map(|home| tokio::spawn(requester(addrs.clone(), 2, home)))
        .collect();
    burst(&store, &cfgs[0], 2).await;
    for t in round2 {
        acked.extend(t.await.unwrap());
    }

    // Every outbound row leaves the outbox, the victim's after its lease.
    let rows = wait_until("the outbox to drain", Duration::from_secs(90), || async {
        let rows = store.outbox_list().await.unwrap();
        rows.iter()
            .all(|r| r.state == "sent" || r.state == "failed")
            .then_some(rows)
    })
    .await;
    // No settling wait: the sink records a mail before its 250, and a row
    // is sent only after that 250, so every final row's mail is at the sink.

    // Inbound: each acknowledged reply threaded once, on its ticket.
    let mut threaded: HashMap<String, Vec<i64>> = HashMap::new();
    for t in 1..=TICKETS {
        for m in store.messages_of_ticket(t).await.unwrap() {
            if m.direction == "in" {
                threaded.entry(m.message_id).or_default().push(t);
            }
        }
    }
    let want = (INSTANCES + INSTANCES - 1) * REPLIES;
    assert_eq!(acked.len(), want, "every reply was acknowledged somewhere");
    for (id, ticket) in &acked {
        assert_eq!(
            threaded.get(id),
            Some(&vec![*ticket]),
            "{id} threaded once on ticket {ticket}"
        );
    }
    assert_eq!(threaded.len(), want, "nothing else was threaded");

    // Outbound: one notification per reply (a re-delivered reply is a
    // duplicate, stored and notified once), every row sent.
    let failed: Vec<_> = rows.iter().filter(|r| r.state != "sent").collect();
    assert!(failed.is_empty(), "rows not sent: {failed:?}");
    let notifications = rows.iter().filter(|r| r.kind == "notification").count();
    assert_eq!(notifications, want, "one notification per reply");
    assert_eq!(rows.len(), want + 2 * BURST);

    // At the relay: every row's Message-ID, once; twice only in the window.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in sink.messages() {
        let parsed = mail_parser::MessageParser::default()
            .parse(&m.data)
            .expect("relayed mail parses");
        let id = format!(
            "<{}>",
            parsed.message_id().expect("relayed mail has a Message-ID")
        );
        *seen.entry(id).or_default() += 1;
    }
    let queued: HashSet<&String> = rows.iter().map(|r| &r.message_id).collect();
    for id in &queued {
        assert!(seen.contains_key(*id), "{id} never reached the relay");
    }
    for id in seen.keys() {
        assert!(
            queued.contains(id),
            "the relay got {id}, which was never queued"
        );
    }
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    for (id, n) in &twice {
        assert_eq!(**n, 2, "{id} relayed {n} times");
        assert!(
            in_window.contains(*id),
            "{id} relayed twice outside the crash window"
        );
    }
    assert!(twice.len() <= in_window.len());
    eprintln!(
        "multi-instance: killed gw{victim} holding {} claimed rows; {} replies threaded once; \
         {} outbound mails, {} relayed twice (crash window)",
        in_window.len(),
        acked.len(),
        rows.len(),
        twice.len()
    );

    for (n, d) in daemons.iter_mut().enumerate() {
        if n != victim {
            d.signal("TERM");
            d.wait(Duration::from_secs(30)).await;
        }
    }
}
