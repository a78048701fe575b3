//! Loop caps on the technicians' notifications, over real SMTP: past the
//! per-ticket and per-recipient caps a reply is still stored, its
//! notification is not queued, and a suppression row says why; a
//! technician whose address bounced is not notified while it is paused.

mod support;

use std::time::Duration;

use mensageria::gateway::Gateway;
use mensageria::store::Store;
use support::client::deliver;
use support::{Db, GATEWAY, REQUESTER, TestDb};

const TECH: &str = "tec@suporte.example";

fn reply(ticket: i64, n: usize) -> Vec<u8> {
    format!(
        "From: {REQUESTER}\r\nSubject: RE: [HD #{ticket}] impressora\r\n\
Message-ID: <loop-{ticket}-{n}@cliente.example>\r\n\r\nresposta {n}\r\n"
    )
    .into_bytes()
}

/// (kind, rcpt) of every outbox row, and (rcpt, reason) of every suppression.
async fn rows(store: &Store) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let outbox = sqlx::query_as("SELECT kind, rcpt_to FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let suppressed = sqlx::query_as("SELECT rcpt, reason FROM suppressions ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    (outbox, suppressed)
}

async fn caps_stop_notifications(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    cfg.loops.per_ticket_recipient = 2;
    cfg.loops.per_recipient = 3;
    let gw = Gateway::start(cfg).await.unwrap();
    support::seed(&gw.store, "[HD #${IDSOLICITACAOSERVICO}] x", 77, &[TECH]).await;
    support::ticket(&gw.store, 78, &[TECH]).await;

    // Ticket 77: three replies, the third over the per-ticket cap (2).
    // Ticket 78: two more, the second over the per-recipient cap (3).
    for (ticket, n) in [(77, 1), (77, 2), (77, 3), (78, 1), (78, 2)] {
        let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &reply(ticket, n)).await;
        assert_eq!(r.code, 250, "reply {ticket}/{n}: {r:?}");
    }
    let (outbox, suppressed) = rows(&gw.store).await;
    let notified = outbox
        .iter()
        .filter(|(k, r)| k == "notification" && r == TECH);
    assert_eq!(notified.count(), 3, "{outbox:?}");
    assert_eq!(suppressed.len(), 2, "{suppressed:?}");
    assert_eq!(suppressed[0].0, TECH);
    assert!(
        suppressed[0]
            .1
            .starts_with("loop cap: 2 automatic mails to tec@suporte.example on ticket 77"),
        "{}",
        suppressed[0].1
    );
    assert!(
        suppressed[1]
            .1
            .starts_with("loop cap: 3 automatic mails to tec@suporte.example in"),
        "{}",
        suppressed[1].1
    );
    // Every reply is on its ticket all the same.
    assert_eq!(support::thread_ids(&gw.store, 77).await.len(), 3);
    assert_eq!(support::thread_ids(&gw.store, 78).await.len(), 2);
    gw.stop(Duration::from_secs(5)).await;
}

async fn a_bounced_technician_is_not_notified(db: Db) {
    let tdb = TestDb::new(db).await;
    let cfg = support::config(&tdb.url, support::sink::free_port());
    let gw = Gateway::start(cfg).await.unwrap();
    support::seed(&gw.store, "[HD #${IDSOLICITACAOSERVICO}] x", 77, &[TECH]).await;
    // As the bounce handler leaves it: paused for a day (any case).
    let until = mensageria::store::now_ms() + 86_400_000;
    let mut tx = gw.store.begin().await.unwrap();
    Store::suppression_add(
        &mut tx,
        None,
        "Tec@Suporte.example",
        "bounce",
        "5.1.1",
        Some(until),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &reply(77, 1)).await;
    assert_eq!(r.code, 250, "{r:?}");
    let (outbox, suppressed) = rows(&gw.store).await;
    assert!(
        outbox.iter().all(|(k, _)| k != "notification"),
        "{outbox:?}"
    );
    assert_eq!(suppressed.len(), 2, "{suppressed:?}");
    assert!(
        suppressed[1].1.contains("bounced permanently"),
        "{}",
        suppressed[1].1
    );
    assert_eq!(support::thread_ids(&gw.store, 77).await.len(), 1);
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(
    caps_stop_notifications,
    a_bounced_technician_is_not_notified
);
