//! The hand-off of notifications to the relay, over real SMTP and a real
//! relay on loopback: a reply's notification reaches the relay without a
//! claim of its own (it was written claimed, with the reply); when the
//! relay's queue is full the rest are queued and claimed, each mail still
//! delivered once; a row handed to an instance that died is taken over
//! when its lease runs out, and not before.
//!
//! One test function, the databases one after the other: the counters it
//! reads are the process's, and no other test in this binary moves them.

mod support;

use std::time::Duration;

use mensageria::admin::metrics::RELAY_ROWS;
use mensageria::config::Config;
use mensageria::gateway::Gateway;
use mensageria::store::outbox::{NewClaim, NewOutbox};
use mensageria::store::{Store, now_ms};
use support::client::deliver;
use support::sink::Sink;
use support::{Db, GATEWAY, REQUESTER, TestDb, wait_until};

const TECH: &str = "tec@suporte.example";
const TICKET: i64 = 31;

fn reply(n: usize) -> Vec<u8> {
    format!(
        "From: {REQUESTER}\r\nSubject: RE: [HD #{TICKET}] rede\r\n\
Message-ID: <handoff-{n}@cliente.example>\r\n\r\nresposta {n}\r\n"
    )
    .into_bytes()
}

fn counts() -> (u64, u64) {
    (RELAY_ROWS.get(&["handed"]), RELAY_ROWS.get(&["claimed"]))
}

/// (state, attempts) of every notification row, by id.
async fn notifications(store: &Store) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT state, attempts FROM outbox WHERE kind = 'notification' ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn wait_delivered(sink: &Sink, n: usize) {
    wait_until(
        &format!("{n} mails at the relay"),
        Duration::from_secs(30),
        || async { (sink.messages().len() >= n).then_some(()) },
    )
    .await;
}

async fn wait_all_sent(store: &Store, n: usize) -> Vec<(String, i64)> {
    wait_until("every row sent", Duration::from_secs(30), || async {
        let rows = notifications(store).await;
        (rows.len() == n && rows.iter().all(|(s, _)| s == "sent")).then_some(rows)
    })
    .await
}

/// A gateway on a database of its own, relaying to a sink of its own, with
/// ticket TICKET assigned to TECH; `tune` adjusts the config first.
async fn start(db: Db, tune: impl FnOnce(&mut Config)) -> (TestDb, Sink, Gateway) {
    support::seeded_gateway(db, support::HD_SUBJECT, TICKET, &[TECH], tune).await
}

/// `n` replies over SMTP, one connection each, every one answered 250.
async fn send_replies(gw: &Gateway, db: Db, n: usize) {
    for i in 0..n {
        let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &reply(i)).await;
        assert_eq!(r.code, 250, "{db:?} reply {i}: {r:?}");
    }
}

async fn handed_without_a_claim(db: Db) {
    let (_tdb, sink, gw) = start(db, |_| {}).await;
    let before = counts();
    send_replies(&gw, db, 5).await;
    wait_delivered(&sink, 5).await;
    let rows = wait_all_sent(&gw.store, 5).await;
    let after = counts();
    assert_eq!(after.0 - before.0, 5, "{db:?}: every copy handed over");
    assert_eq!(after.1 - before.1, 0, "{db:?}: no claim took any");
    assert!(rows.iter().all(|(_, a)| *a == 1), "{db:?}: {rows:?}");
    assert_eq!(sink.messages().len(), 5, "{db:?}: once each");
    gw.stop(Duration::from_secs(5)).await;
}

/// One pooled session (a queue of 32) and a relay that takes 100 ms a
/// mail: of 60 replies sent at once, those past the queue's room are
/// queued unclaimed and claimed later.
async fn a_full_queue_falls_back_to_claims(db: Db) {
    const N: usize = 60;
    let (_tdb, sink, gw) = start(db, |cfg| {
        cfg.relay.pool_size = 1;
        cfg.loops.per_recipient = 1000;
        cfg.loops.per_ticket_recipient = 1000;
    })
    .await;
    *sink.stall.lock().unwrap() = Some(Duration::from_millis(100));
    let before = counts();
    send_replies(&gw, db, N).await;
    wait_delivered(&sink, N).await;
    let rows = wait_all_sent(&gw.store, N).await;
    let after = counts();
    let (handed, claimed) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(handed + claimed, N as u64, "{db:?}: each row given once");
    assert!(handed >= 32, "{db:?}: the queue's room was used: {handed}");
    assert!(claimed >= 1, "{db:?}: the rest was claimed: {claimed}");
    assert!(rows.iter().all(|(_, a)| *a == 1), "{db:?}: {rows:?}");
    let mut ids: Vec<Vec<u8>> = sink.messages().into_iter().map(|m| m.data).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "{db:?}: no mail twice");
    gw.stop(Duration::from_secs(5)).await;
}

/// Rows written claimed by an instance that is gone: the one whose lease
/// ran out is claimed (a second attempt) and delivered; the one still
/// leased is left alone.
async fn a_dead_instances_rows_wait_for_their_lease(db: Db) {
    let (_tdb, sink, gw) = start(db, |_| {}).await;
    let rcpt = [TECH.to_string()];
    let mail = |message_id| NewOutbox {
        ticket_id: Some(TICKET),
        kind: "notification",
        message_id,
        mail_from: GATEWAY,
        rcpt_to: &rcpt,
        raw: b"Subject: x\r\n\r\nx\r\n",
        raw_codec: None,
    };
    let mut tx = gw.store.begin().await.unwrap();
    let lapsed = Store::outbox_insert_claimed(
        &mut tx,
        &mail("<lapsed@gw.test>"),
        NewClaim {
            owner: "gone:1:0",
            until: now_ms() - 1,
        },
    )
    .await
    .unwrap();
    let leased = Store::outbox_insert_claimed(
        &mut tx,
        &mail("<leased@gw.test>"),
        NewClaim {
            owner: "gone:1:0",
            until: now_ms() + 3_600_000,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    gw.wake.notify_one();
    let row = wait_until("the lapsed row sent", Duration::from_secs(10), || async {
        let r = gw.store.outbox_get(lapsed).await.unwrap().unwrap();
        (r.state == "sent").then_some(r)
    })
    .await;
    assert_eq!(row.attempts, 2, "{db:?}: taken over: {row:?}");
    assert!(
        gw.store
            .outbox_claim("another:2:0", 60_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "{db:?}: nothing else is due"
    );
    let held = gw.store.outbox_get(leased).await.unwrap().unwrap();
    assert_eq!(
        (held.state.as_str(), held.attempts),
        ("sending", 1),
        "{db:?}"
    );
    assert_eq!(sink.messages().len(), 1, "{db:?}");
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_handed_to_the_relay_claimed() {
    for db in [Db::Sqlite, Db::Postgres] {
        handed_without_a_claim(db).await;
        a_full_queue_falls_back_to_claims(db).await;
        a_dead_instances_rows_wait_for_their_lease(db).await;
    }
}
