//! Robots are never threaded as a person's reply and never notified: list
//! mail and bounces go to quarantine (a bounce of our own mail marks its
//! outbox row, tells the technician once and pauses the address), an
//! out-of-office stays on the ticket as an event, our own mail coming back
//! is dropped.

mod support;

use std::time::Duration;

use mensageria::gateway::Gateway;
use mensageria::outbound;
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
    support::seed(
        &gw.store,
        "[HD #${IDSOLICITACAOSERVICO}]",
        77,
        &["tec@suporte.example"],
    )
    .await;
    let ours = outbound::technician_reply(&gw.store, &cfg, 77, "tec@suporte.example", "Oi")
        .await
        .unwrap()
        .message_id;

    let row = gw.store.outbox_by_message_id(&ours).await.unwrap().unwrap();
    assert!(
        row.mail_from.starts_with("chamados+b."),
        "VERP envelope sender: {}",
        row.mail_from
    );

    // Held: list mail, our bounce (quoted Message-ID), someone else's bounce.
    let held: Vec<(&str, &str, String, &str, &str)> = vec![
        (
            "list mail",
            "lista@listas.example",
            "From: ana@cliente.example\r\nSubject: Re: [HD #77] x\r\nList-Id: <geral.listas.example>\r\nMessage-ID: <list@c>\r\n\r\nx\r\n".into(),
            "mailing-list",
            "list",
        ),
        ("bounce of our mail", "", dsn(&ours), "ticket 77", "delivery-report"),
        ("bounce of someone else's mail", "", dsn("<outra@mx.example>"), "not sent by this gateway", "delivery-report"),
    ];
    for (what, from, raw, _, _) in &held {
        let r = deliver(gw.smtp_addr(), from, &[GATEWAY], raw.as_bytes()).await;
        assert_eq!(r.code, 250, "{what}: {r:?}");
    }
    // The same bounce again, now to the row's VERP address: told only once.
    let r = deliver(
        gw.smtp_addr(),
        "",
        &[row.mail_from.as_str()],
        dsn(&ours).as_bytes(),
    )
    .await;
    assert_eq!(r.code, 250);
    let q = gw.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), held.len() + 1, "{q:?}");
    for ((what, _, _, reason, kind), row) in held.iter().zip(&q) {
        assert!(row.reason.contains(reason), "{what}: {}", row.reason);
        assert_eq!(row.kind, *kind, "{what}");
    }
    assert!(
        q[3].reason.contains("ticket 77"),
        "VERP names the row: {}",
        q[3].reason
    );
    let bounced = gw.store.outbox_get(row.id).await.unwrap().unwrap();
    assert!(
        bounced.bounce.as_deref().unwrap().contains("5.1.1"),
        "{bounced:?}"
    );

    // Kept as an event on the ticket: an out-of-office from the requester.
    let ooo = "From: ana@cliente.example\r\nSubject: Ausente: RES: [HD #77] x\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@c>\r\n\r\nEstou de férias.\r\n";
    assert_eq!(
        deliver(
            gw.smtp_addr(),
            "ana@cliente.example",
            &[GATEWAY],
            ooo.as_bytes()
        )
        .await
        .code,
        250
    );
    // A person, whatever "Auto-Submitted: no" and "Precedence: normal" say.
    let person = "From: ana@cliente.example\r\nSubject: RES: [HD #77] x\r\nAuto-Submitted: no\r\nPrecedence: normal\r\nMessage-ID: <pessoa@c>\r\n\r\nObrigada.\r\n";
    assert_eq!(
        deliver(
            gw.smtp_addr(),
            "ana@cliente.example",
            &[GATEWAY],
            person.as_bytes()
        )
        .await
        .code,
        250
    );
    // A self-loop: our own mail coming back is dropped (logged), not kept.
    let own =
        format!("From: {GATEWAY}\r\nSubject: [HD #77] eco\r\nMessage-ID: <eco@c>\r\n\r\neco\r\n");
    assert_eq!(
        deliver(gw.smtp_addr(), GATEWAY, &[GATEWAY], own.as_bytes())
            .await
            .code,
        250
    );

    let thread = gw.store.messages_of_ticket(77).await.unwrap();
    let inbound: Vec<(&str, &str)> = thread
        .iter()
        .filter(|m| m.direction == "in")
        .map(|m| (m.message_id.as_str(), m.kind.as_str()))
        .collect();
    assert_eq!(
        inbound,
        vec![("<ooo@c>", "auto-reply"), ("<pessoa@c>", "reply")]
    );
    let rows = gw.store.outbox_list().await.unwrap();
    let kinds: Vec<&str> = rows
        .iter()
        .map(|r| r.kind.as_str())
        .filter(|k| *k != "reply")
        .collect();
    // One notice that our mail bounced, one notification for the person; none for robots.
    assert_eq!(kinds, vec!["failure-notice", "notification"], "{rows:?}");
    // The bounced address is not mailed again for a while.
    let err = outbound::technician_reply(&gw.store, &cfg, 77, "tec@suporte.example", "De novo")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bounced permanently"), "{err}");
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(robots);
