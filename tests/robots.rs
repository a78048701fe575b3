//! Robots are never threaded as a person's reply and never notified: an
//! out-of-office, list mail, a bounce of our own mail (recognised and tied
//! to its ticket) and a bounce of someone else's all go to quarantine.

mod support;

use std::time::Duration;

use mensageria::gateway::Gateway;
use mensageria::outbound;
use mensageria::store::tickets::TicketFields;
use support::client::deliver;
use support::{Db, GATEWAY, TestDb};

fn dsn(about: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.cliente.example>\r\nTo: {GATEWAY}\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{n}@mx>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.cliente.example\r\n\r\n\
Final-Recipient: rfc822; ana@cliente.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: [HD #77] x\r\nMessage-ID: {about}\r\n\r\n--b--\r\n",
        n = about.len()
    )
}

async fn robots(db: Db) {
    let tdb = TestDb::new(db).await;
    let cfg = support::config(&tdb.url, support::sink::free_port());
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    let id = gw.store.template_add("t", "[HD #${IDSOLICITACAOSERVICO}]", "${MENSAGEM}", None).await.unwrap().unwrap();
    gw.store.param_set(417, &id.to_string()).await.unwrap();
    let f = TicketFields {
        requester: Some("ana@cliente.example".into()),
        technicians: Some(vec!["tec@suporte.example".into()]),
        ..Default::default()
    };
    gw.store.ticket_upsert(77, &f, "<ticket.77.r@gw.test>", "AQ==").await.unwrap();
    let ours = outbound::technician_reply(&gw.store, &cfg, 77, "tec@suporte.example", "Oi").await.unwrap().message_id;

    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "out of office",
            "ana@cliente.example",
            "From: ana@cliente.example\r\nSubject: Ausente: [HD #77] x\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@c>\r\n\r\nEstou de férias.\r\n".into(),
            "automatic reply",
        ),
        (
            "list mail",
            "lista@listas.example",
            "From: ana@cliente.example\r\nSubject: Re: [HD #77] x\r\nList-Id: <geral.listas.example>\r\nMessage-ID: <list@c>\r\n\r\nx\r\n".into(),
            "mailing-list",
        ),
        ("bounce of our mail", "", dsn(&ours), "ticket 77"),
        ("bounce of someone else's mail", "", dsn("<outra@mx.example>"), "not sent by this gateway"),
    ];
    for (what, from, raw, _) in &cases {
        let r = deliver(gw.smtp_addr(), from, &[GATEWAY], raw.as_bytes()).await;
        assert_eq!(r.code, 250, "{what}: {r:?}");
    }
    let q = gw.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), cases.len(), "{q:?}");
    for ((what, _, _, reason), row) in cases.iter().zip(&q) {
        assert!(row.reason.contains(reason), "{what}: {}", row.reason);
    }
    assert!(gw.store.messages_of_ticket(77).await.unwrap().iter().all(|m| m.direction == "out"));
    let notifications = gw.store.outbox_list().await.unwrap().into_iter().filter(|r| r.kind != "reply").count();
    assert_eq!(notifications, 0, "no notification for any robot");
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(robots);
