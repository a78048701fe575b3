//! Inbound decisions over real SMTP: unknown ticket → quarantine (or 550
//! under `reject`), foreign domain → 550, duplicates stored once, SMTP
//! smuggling refused, limits answered with the right code.

mod support;

use std::time::Duration;

use mensageria::config::Unmatched;
use mensageria::gateway::Gateway;
use mensageria::store::Store;
use support::client::{Client, deliver};
use support::{Db, GATEWAY, TestDb};

/// A gateway with ticket 77 and a template whose subject is "[HD #id] …".
async fn setup(db: Db, unmatched: Unmatched) -> (TestDb, Gateway) {
    let tdb = TestDb::new(db).await;
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    cfg.inbound.unmatched = unmatched;
    cfg.smtp.max_message_size = 64 * 1024;
    cfg.smtp.max_recipients = 3;
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    seed(&gw.store).await;
    (tdb, gw)
}

async fn seed(store: &Store) {
    support::seed(store, "[HD #${IDSOLICITACAOSERVICO}] ${SERVICO}", 77, &[]).await;
}

fn mail(subject: &str, message_id: &str) -> Vec<u8> {
    format!("From: ana@cliente.example\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\r\nresposta\r\n").into_bytes()
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn unknown_ticket_is_quarantined(db: Db) {
    let (_t, gw) = setup(db, Unmatched::Quarantine).await;
    let r = deliver(
        gw.smtp_addr(),
        "x@cliente.example",
        &[GATEWAY],
        &mail("RE: [HD #999] nada", "q1@c"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let q = gw.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].message_id, "<q1@c>");
    assert!(q[0].reason.contains("no ticket"), "{}", q[0].reason);
    assert_eq!(count(&gw.store, "messages").await, 0);
    gw.stop(Duration::from_secs(5)).await;
}

async fn unknown_ticket_is_rejected_under_reject(db: Db) {
    let (_t, gw) = setup(db, Unmatched::Reject).await;
    let r = deliver(
        gw.smtp_addr(),
        "x@cliente.example",
        &[GATEWAY],
        &mail("Oi", "q2@c"),
    )
    .await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text.contains("no open ticket"), "{r:?}");
    assert_eq!(count(&gw.store, "quarantine").await, 0);
    // A known ticket still lands.
    let r = deliver(
        gw.smtp_addr(),
        "ana@cliente.example",
        &[GATEWAY],
        &mail("[HD #77] ok", "q3@c"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    gw.stop(Duration::from_secs(5)).await;
}

async fn foreign_domain_is_refused(db: Db) {
    let (_t, gw) = setup(db, Unmatched::Quarantine).await;
    let (mut c, _) = Client::connect(gw.smtp_addr()).await;
    assert_eq!(c.cmd("EHLO x").await.code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@cliente.example>").await.code, 250);
    let r = c.cmd("RCPT TO:<someone@elsewhere.example>").await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text.contains("Relaying denied"), "{r:?}");
    // With no accepted recipient DATA is out of sequence.
    assert_eq!(c.cmd("DATA").await.code, 503);
    gw.stop(Duration::from_secs(5)).await;
}

async fn duplicates_are_stored_once(db: Db) {
    let (_t, gw) = setup(db, Unmatched::Quarantine).await;
    let m = mail("RES: [HD #77] impressora", "dup@c");
    for _ in 0..2 {
        let r = deliver(gw.smtp_addr(), "ana@cliente.example", &[GATEWAY], &m).await;
        assert_eq!(r.code, 250, "{r:?}");
    }
    // One mail to two local addresses.
    let m2 = mail("RES: [HD #77] de novo", "dup2@c");
    let r = deliver(
        gw.smtp_addr(),
        "ana@cliente.example",
        &[GATEWAY, "outro@suporte.example"],
        &m2,
    )
    .await;
    assert_eq!(r.code, 250);
    let msgs = gw.store.messages_of_ticket(77).await.unwrap();
    let ids: Vec<&str> = msgs.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, vec!["<dup@c>", "<dup2@c>"]);
    gw.stop(Duration::from_secs(5)).await;
}

async fn smuggling_creates_no_second_message(db: Db) {
    let (_t, gw) = setup(db, Unmatched::Quarantine).await;
    for sep in [&b"\n.\r\n"[..], &b"\r\n.\n"[..], &b"\r.\r\n"[..]] {
        let (mut c, _) = Client::connect(gw.smtp_addr()).await;
        assert_eq!(c.cmd("EHLO x").await.code, 250);
        assert_eq!(c.cmd("MAIL FROM:<ana@cliente.example>").await.code, 250);
        assert_eq!(c.cmd(&format!("RCPT TO:<{GATEWAY}>")).await.code, 250);
        assert_eq!(c.cmd("DATA").await.code, 354);
        let mut data = b"Subject: [HD #77] primeira\r\nMessage-ID: <first@c>\r\n\r\noi".to_vec();
        data.extend_from_slice(sep);
        data.extend_from_slice(
            b"MAIL FROM:<evil@c>\r\nRCPT TO:<chamados@suporte.example>\r\nDATA\r\n",
        );
        data.extend_from_slice(
            b"Subject: [HD #77] smuggled\r\nMessage-ID: <smuggled@c>\r\n\r\nevil\r\n.\r\n",
        );
        c.send(&data).await;
        let r = c.reply().await.unwrap();
        assert_eq!(r.code, 554, "bare line end must be refused: {r:?}");
        // Nothing more answers: the smuggled commands were data.
        assert_eq!(c.cmd("NOOP").await.code, 250);
    }
    assert_eq!(count(&gw.store, "messages").await, 0);
    assert_eq!(count(&gw.store, "quarantine").await, 0);
    gw.stop(Duration::from_secs(5)).await;
}

async fn limits_have_clear_codes(db: Db) {
    let (_t, gw) = setup(db, Unmatched::Quarantine).await;
    let (mut c, _) = Client::connect(gw.smtp_addr()).await;
    let ehlo = c.cmd("EHLO x").await;
    assert_eq!(ehlo.code, 250);
    // Declared size over the limit: refused at MAIL FROM.
    let r = c.cmd("MAIL FROM:<a@cliente.example> SIZE=100000000").await;
    assert_eq!(r.code, 552, "{r:?}");
    assert_eq!(
        c.cmd("MAIL FROM:<a@cliente.example> SIZE=100").await.code,
        250
    );
    for i in 0..3 {
        assert_eq!(
            c.cmd(&format!("RCPT TO:<r{i}@suporte.example>")).await.code,
            250
        );
    }
    assert_eq!(c.cmd("RCPT TO:<r9@suporte.example>").await.code, 452);
    assert_eq!(c.cmd("RSET").await.code, 250);
    // Undeclared size: counted while reading, refused at the end.
    let big = format!(
        "Subject: [HD #77] big\r\n\r\n{}\r\n",
        vec!["x".repeat(900); 100].join("\r\n")
    );
    let r = c
        .mail("a@cliente.example", &[GATEWAY], big.as_bytes())
        .await;
    assert_eq!(r.code, 552, "{r:?}");
    // A command line far past the limit.
    c.send(format!("NOOP {}\r\n", "y".repeat(10_000)).as_bytes())
        .await;
    assert_eq!(c.reply().await.unwrap().code, 500);
    assert_eq!(c.cmd("NOOP").await.code, 250);
    assert_eq!(count(&gw.store, "messages").await, 0);
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(
    unknown_ticket_is_quarantined,
    unknown_ticket_is_rejected_under_reject,
    foreign_domain_is_refused,
    duplicates_are_stored_once,
    smuggling_creates_no_second_message,
    limits_have_clear_codes,
);

async fn html_that_crashed_html2text_still_lands(db: Db) {
    let (_t, gw) = setup(db, Unmatched::Quarantine).await;
    // Found by fuzzing: html2text 0.17.4 panics on this table.
    let raw = "From: ana@cliente.example\r\nSubject: RES: [HD #77] tabela\r\nMessage-ID: <tbl@c>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<table><td colspan=4><td rowspan=2>ok\r\n";
    let r = deliver(
        gw.smtp_addr(),
        "ana@cliente.example",
        &[GATEWAY],
        raw.as_bytes(),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let ids: Vec<String> = support::thread_ids(&gw.store, 77).await;
    assert_eq!(ids, vec!["<tbl@c>"]);
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(html_that_crashed_html2text_still_lands);
