//! The crash test: clients send replies while the daemon is killed with
//! SIGKILL mid-run; every message that got its 250 must be in the database
//! afterwards (250 is said only after the commit). Run on SQLite (WAL,
//! synchronous=FULL) and PostgreSQL.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mensageria::store::Store;
use mensageria::store::tickets::TicketFields;
use support::client::Client;
use support::daemon::Daemon;
use support::{Db, GATEWAY, TestDb};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 400;

async fn client(addr: SocketAddr, n: usize, acked: Arc<Mutex<Vec<String>>>, sent: Arc<Mutex<usize>>) {
    let (mut c, _) = Client::connect(addr).await;
    c.send(b"EHLO crash.example\r\n").await;
    if c.reply().await.is_none() {
        return;
    }
    for i in 0..PER_CLIENT {
        let id = format!("<crash-{n}-{i}@c>");
        *sent.lock().unwrap() += 1;
        let raw = format!("From: ana@cliente.example\r\nSubject: [HD #77] carga {n}/{i}\r\nMessage-ID: {id}\r\n\r\ntexto {i}\r\n");
        // A dead server ends the client: the reply never comes.
        let ok = tokio::time::timeout(Duration::from_secs(5), async {
            c.send(b"MAIL FROM:<ana@cliente.example>\r\n").await;
            c.reply().await?;
            c.send(format!("RCPT TO:<{GATEWAY}>\r\n").as_bytes()).await;
            c.reply().await?;
            c.send(b"DATA\r\n").await;
            c.reply().await?;
            c.send(format!("{raw}.\r\n").as_bytes()).await;
            c.reply().await
        })
        .await;
        match ok {
            Ok(Some(r)) if r.code == 250 => acked.lock().unwrap().push(id),
            _ => return,
        }
    }
}

async fn crash(db: Db) {
    let tdb = TestDb::new(db).await;
    let port = support::sink::free_port();
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    cfg.smtp.listen = mensageria::config::Listen::One(format!("127.0.0.1:{port}"));
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let store = Store::connect(&tdb.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let id = store.template_add("t", "[HD #${IDSOLICITACAOSERVICO}]", "${MENSAGEM}", None).await.unwrap().unwrap();
    store.param_set(417, &id.to_string()).await.unwrap();
    let f = TicketFields {
        requester: Some("ana@cliente.example".into()),
        ..Default::default()
    };
    store.ticket_upsert(77, &f, "<ticket.77.k@gw.test>", "AQ==").await.unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut d = Daemon::spawn(&conf, addr).await;

    let acked = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(0usize));
    let tasks: Vec<_> = (0..CLIENTS).map(|n| tokio::spawn(client(addr, n, acked.clone(), sent.clone()))).collect();
    // Kill once a good share has been acknowledged, not on a timer.
    support::wait_until("some acknowledged mail", Duration::from_secs(60), || async {
        (acked.lock().unwrap().len() >= CLIENTS * PER_CLIENT / 4).then_some(())
    })
    .await;
    d.signal("KILL");
    d.wait(Duration::from_secs(10)).await;
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let found: HashSet<String> =
        store.messages_of_ticket(77).await.unwrap().into_iter().map(|m| m.message_id).collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !found.contains(*id)).collect();
    eprintln!(
        "crash on {db:?}: sent {}, acknowledged {}, found {}, acknowledged but lost {}",
        sent.lock().unwrap(),
        acked.len(),
        found.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    assert!(acked.len() < CLIENTS * PER_CLIENT, "the kill came mid-run");
}

both_databases!(crash);
