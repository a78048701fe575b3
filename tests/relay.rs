//! The outbound path against a real SMTP relay on loopback: a relay that is
//! down at first gets the mail once it is up (after a retry, exactly once);
//! a relay that refuses with 5xx fails the row with its reason, no retries;
//! the relay client reuses its sessions and replaces a stale one, and
//! pipelines MAIL, RCPT and DATA where the relay offers PIPELINING.

mod support;

use std::time::Duration;

use mensageria::config::Config;
use mensageria::gateway::Gateway;
use mensageria::outbound;
use mensageria::store::Store;
use mensageria::store::tickets::TicketFields;
use support::sink::{Sink, free_port};
use support::{Db, TestDb, wait_until};

async fn seed(store: &Store) {
    support::seed(store, "Chamado ${IDSOLICITACAOSERVICO}", 5, &[]).await;
}

async fn queue_one(gw: &Gateway, cfg: &Config) -> i64 {
    let q = outbound::technician_reply(&gw.store, cfg, 5, "tec@suporte.example", "Olá")
        .await
        .unwrap();
    gw.wake.notify_one();
    q.outbox_id
}

async fn relay_down_then_up_delivers_once(db: Db) {
    let tdb = TestDb::new(db).await;
    let port = free_port();
    let cfg = support::config(&tdb.url, port);
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    seed(&gw.store).await;
    let id = queue_one(&gw, &cfg).await;
    // Connection refused: the row goes back to the queue with the reason.
    let row = wait_until(
        "a failed first attempt",
        Duration::from_secs(10),
        || async {
            let r = gw.store.outbox_get(id).await.unwrap().unwrap();
            (r.attempts >= 1 && r.state == "queued").then_some(r)
        },
    )
    .await;
    assert!(row.last_error.is_some(), "{row:?}");
    let sink = Sink::start_on(port, None).await;
    let row = wait_until(
        "delivery after the relay is up",
        Duration::from_secs(15),
        || async {
            let r = gw.store.outbox_get(id).await.unwrap().unwrap();
            (r.state == "sent").then_some(r)
        },
    )
    .await;
    assert!(row.attempts >= 2, "delivered after a retry: {row:?}");
    assert!(row.last_error.is_none());
    // Exactly once, even after more polling rounds.
    gw.wake.notify_one();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(*sink.attempts.lock().unwrap(), 1);
    gw.stop(Duration::from_secs(5)).await;
}

async fn permanent_refusal_fails_with_reason(db: Db) {
    let tdb = TestDb::new(db).await;
    let sink = Sink::start_on(0, Some("554 5.7.1 Recipient rejected by policy")).await;
    let cfg = support::config(&tdb.url, sink.addr.port());
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    seed(&gw.store).await;
    let id = queue_one(&gw, &cfg).await;
    let row = wait_until("the row to fail", Duration::from_secs(10), || async {
        let r = gw.store.outbox_get(id).await.unwrap().unwrap();
        (r.state == "failed").then_some(r)
    })
    .await;
    assert_eq!(row.attempts, 1, "a 5xx is not retried: {row:?}");
    let err = row.last_error.unwrap();
    assert!(err.contains("Recipient rejected by policy"), "{err}");
    assert_eq!(*sink.attempts.lock().unwrap(), 1);
    gw.stop(Duration::from_secs(5)).await;
}

async fn missing_template_fails_the_row(db: Db) {
    let tdb = TestDb::new(db).await;
    let cfg = support::config(&tdb.url, free_port());
    let store = Store::connect(&tdb.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let f = TicketFields {
        requester: Some("ana@cliente.example".into()),
        ..Default::default()
    };
    store
        .ticket_upsert(5, &f, "<ticket.5.y@gw.test>", "AQ==")
        .await
        .unwrap();
    let err = outbound::technician_reply(&store, &cfg, 5, "tec@suporte.example", "Olá")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("parameter 417"), "{err}");
    let rows = store.outbox_list().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "failed");
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("parameter 417")
    );
    assert!(
        store.messages_of_ticket(5).await.unwrap().is_empty(),
        "nothing half-sent on the thread"
    );
}

both_databases!(
    relay_down_then_up_delivers_once,
    permanent_refusal_fails_with_reason,
    missing_template_fails_the_row,
);

async fn temporary_refusals_then_delivered_once(db: Db) {
    let tdb = TestDb::new(db).await;
    let sink = Sink::start().await;
    sink.script
        .lock()
        .unwrap()
        .extend(["451 4.3.0 try later", "451 4.3.0 still busy"]);
    let cfg = support::config(&tdb.url, sink.addr.port());
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    seed(&gw.store).await;
    let id = queue_one(&gw, &cfg).await;
    let row = wait_until(
        "delivery after two 451s",
        Duration::from_secs(15),
        || async {
            let r = gw.store.outbox_get(id).await.unwrap().unwrap();
            (r.state == "sent").then_some(r)
        },
    )
    .await;
    assert_eq!(row.attempts, 3, "{row:?}");
    assert_eq!(*sink.attempts.lock().unwrap(), 3);
    assert_eq!(sink.messages().len(), 1, "delivered once");
    gw.stop(Duration::from_secs(5)).await;
}

async fn refused_recipient_fails_and_technician_is_told(db: Db) {
    let tdb = TestDb::new(db).await;
    let sink = Sink::start().await;
    *sink.refuse_rcpt.lock().unwrap() =
        Some(("ana@cliente.example".into(), "550 5.1.1 No such user here"));
    let cfg = support::config(&tdb.url, sink.addr.port());
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    support::seed(
        &gw.store,
        "Chamado ${IDSOLICITACAOSERVICO}",
        5,
        &["tec@suporte.example"],
    )
    .await;
    let id = queue_one(&gw, &cfg).await;
    let row = wait_until("the row to fail", Duration::from_secs(10), || async {
        let r = gw.store.outbox_get(id).await.unwrap().unwrap();
        (r.state == "failed").then_some(r)
    })
    .await;
    assert_eq!(row.attempts, 1, "no retry of a 5xx: {row:?}");
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("No such user here"),
        "{row:?}"
    );
    let notice = wait_until(
        "the technician's notice",
        Duration::from_secs(10),
        || async {
            sink.messages()
                .into_iter()
                .find(|m| m.rcpt_to == ["tec@suporte.example"])
        },
    )
    .await;
    let text = String::from_utf8_lossy(&notice.data);
    assert!(text.contains("No such user here"), "{text}");
    assert!(text.contains("could not be delivered"), "{text}");
    gw.stop(Duration::from_secs(5)).await;
}

/// Behind a slow relay, a claimed row whose lease no longer leaves time for
/// a whole attempt is not sent under it: it is claimed again once the lease
/// has run out, and every mail reaches the relay once.
async fn a_row_whose_lease_runs_short_waits_for_the_next_claim(db: Db) {
    let tdb = TestDb::new(db).await;
    let sink = Sink::start().await;
    *sink.stall.lock().unwrap() = Some(Duration::from_millis(700));
    let mut cfg = support::config(&tdb.url, sink.addr.port());
    // An attempt must fit in min(4 × timeout, lease / 2) = 1 s of the 2 s
    // lease. One session, 700 ms per mail: the first two start within the
    // first second of the lease, the third at about 1.4 s.
    cfg.relay.lease_secs = 2;
    cfg.relay.timeout_secs = 1;
    cfg.relay.pool_size = 1;
    // All three queued before the worker starts, so one claim takes them.
    let store = Store::connect(&tdb.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    seed(&store).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let q =
            outbound::technician_reply(&store, &cfg, 5, "tec@suporte.example", &format!("Olá {n}"))
                .await
                .unwrap();
        ids.push(q.outbox_id);
    }
    store.close().await;
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    let rows = wait_until("all three sent", Duration::from_secs(20), || async {
        let mut rows = Vec::new();
        for id in &ids {
            let r = gw.store.outbox_get(*id).await.unwrap().unwrap();
            if r.state != "sent" {
                return None;
            }
            rows.push(r);
        }
        Some(rows)
    })
    .await;
    let attempts: Vec<i64> = rows.iter().map(|r| r.attempts).collect();
    assert_eq!(
        attempts,
        [1, 1, 2],
        "the third was claimed twice, sent once: {rows:?}"
    );
    assert_eq!(sink.messages().len(), 3, "each mail reached the relay once");
    assert_eq!(*sink.attempts.lock().unwrap(), 3);
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(
    temporary_refusals_then_delivered_once,
    refused_recipient_fails_and_technician_is_told,
    a_row_whose_lease_runs_short_waits_for_the_next_claim
);

fn relay_cfg(port: u16) -> mensageria::config::RelayConfig {
    let mut c = Config::default().relay;
    c.url = format!("smtp://127.0.0.1:{port}");
    c.pool_size = 1;
    c
}

fn envelope(to: &str) -> lettre::address::Envelope {
    envelope_to(&[to])
}

fn envelope_to(to: &[&str]) -> lettre::address::Envelope {
    lettre::address::Envelope::new(
        Some("chamados@suporte.example".parse().unwrap()),
        to.iter().map(|t| t.parse().unwrap()).collect(),
    )
    .unwrap()
}

fn mail(n: u32) -> Vec<u8> {
    format!("Message-ID: <{n}@gw.test>\r\nSubject: n{n}\r\n\r\n.leading dot {n}\r\n").into_bytes()
}

#[tokio::test]
async fn relay_client_reuses_sessions_and_replaces_stale_ones() {
    use mensageria::relay::{RelayClient, SendError};
    let sink = Sink::start().await;
    let client = RelayClient::new(&relay_cfg(sink.addr.port()), "gw.test").unwrap();

    // One session carries many mails.
    for n in 0..10 {
        client
            .send(&envelope("ana@cliente.example"), &mail(n))
            .await
            .unwrap();
    }
    assert_eq!(*sink.sessions.lock().unwrap(), 1, "ten mails, one session");

    // The relay now drops every session after one mail, silently: the next
    // mail finds the pooled session dead at MAIL FROM and goes once on a
    // new one, with no error for the caller.
    *sink.close_after.lock().unwrap() = Some(1);
    for n in 10..15 {
        client
            .send(&envelope("ana@cliente.example"), &mail(n))
            .await
            .unwrap();
    }
    assert_eq!(
        *sink.sessions.lock().unwrap(),
        6,
        "one new session per mail"
    );
    *sink.close_after.lock().unwrap() = None;

    // A refused recipient is a permanent error with the relay's words; the
    // session is reset and carries the next mail.
    *sink.refuse_rcpt.lock().unwrap() =
        Some(("x@cliente.example".into(), "550 5.1.1 no such user"));
    let sessions = *sink.sessions.lock().unwrap();
    let err = client
        .send(&envelope("x@cliente.example"), &mail(15))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent(m) if m.contains("no such user")),
        "{err:?}"
    );
    client
        .send(&envelope("ana@cliente.example"), &mail(16))
        .await
        .unwrap();
    assert!(*sink.sessions.lock().unwrap() <= sessions + 1);

    // A 4xx at end of data is temporary.
    sink.script.lock().unwrap().push("451 4.3.0 busy");
    let err = client
        .send(&envelope("ana@cliente.example"), &mail(17))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Temporary(m) if m.contains("busy")),
        "{err:?}"
    );

    let got = sink.messages();
    let ids: Vec<u32> = got
        .iter()
        .map(|m| {
            let t = String::from_utf8_lossy(&m.data);
            t.split("<")
                .nth(1)
                .unwrap()
                .split('@')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        (0..15).chain([16]).collect::<Vec<_>>(),
        "each mail once, in order"
    );
    assert!(String::from_utf8_lossy(&got[3].data).contains("\r\n.leading dot 3\r\n"));
    client.close().await;
}

#[tokio::test]
async fn relay_client_pipelines_where_the_relay_offers_it() {
    use mensageria::relay::{RelayClient, SendError};
    let sink = Sink::start().await;
    *sink.pipelining.lock().unwrap() = true;
    let client = RelayClient::new(&relay_cfg(sink.addr.port()), "gw.test").unwrap();

    // MAIL, RCPT and DATA in one write; the mail's exact bytes, its dots
    // (after CRLF and after a bare LF) doubled on the wire and undone by
    // the relay, and no line added at the end.
    let odd =
        b"Message-ID: <9@gw.test>\r\nSubject: n9\r\n\r\n.one\r\nbare\n.two\r\n..three\r\n".to_vec();
    for raw in [mail(0), mail(1), odd.clone()] {
        client
            .send(&envelope("ana@cliente.example"), &raw)
            .await
            .unwrap();
    }
    assert_eq!(
        *sink.pipelined.lock().unwrap(),
        3,
        "every MAIL had RCPT and DATA behind it"
    );
    assert_eq!(*sink.sessions.lock().unwrap(), 1);
    let got = sink.messages();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].data, mail(0));
    assert_eq!(got[2].data, odd);

    // A refused recipient with DATA already sent behind it: the relay took
    // DATA anyway (RFC 2920 allows it), so a lone dot ends it; the mail
    // fails with the relay's words and the same session carries the next.
    *sink.refuse_rcpt.lock().unwrap() =
        Some(("x@cliente.example".into(), "550 5.1.1 no such user"));
    let err = client
        .send(&envelope("x@cliente.example"), &mail(2))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent(m) if m.contains("RCPT TO <x@cliente.example>") && m.contains("no such user")),
        "{err:?}"
    );
    client
        .send(&envelope("ana@cliente.example"), &mail(3))
        .await
        .unwrap();
    assert_eq!(
        *sink.sessions.lock().unwrap(),
        1,
        "the session survived the refusal"
    );
    let got = sink.messages();
    assert_eq!(got.len(), 4, "nothing delivered for the refused mail");
    assert_eq!(got[3].data, mail(3));

    // Two recipients: one step at a time, so that a refused one stops the
    // mail before DATA.
    let two = envelope_to(&["ana@cliente.example", "bia@cliente.example"]);
    let before = *sink.pipelined.lock().unwrap();
    client.send(&two, &mail(4)).await.unwrap();
    assert_eq!(*sink.pipelined.lock().unwrap(), before);
    assert_eq!(
        sink.messages()[4].rcpt_to,
        ["ana@cliente.example", "bia@cliente.example"]
    );
    client.close().await;
}
