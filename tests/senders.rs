//! Who may write on a ticket: its requester and technicians, and anyone
//! answering the ticket's Reply-To address (with its token). A stranger who
//! knows the ticket number is quarantined, unless config says accept.

mod support;

use std::time::Duration;

use mensageria::config::Strangers;
use mensageria::gateway::Gateway;
use mensageria::outbound::token;
use support::client::deliver;
use support::{Db, GATEWAY, TestDb};

async fn senders(db: Db) {
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
    // The Reply-To the requester was given; a colleague answering it is trusted.
    let key = token::key(&cfg).unwrap();
    let token_addr = token::reply_address(&cfg, &key, 77, "ana@cliente.example");
    assert!(
        token_addr.starts_with("chamados+77.")
            && token_addr.len() > "chamados+77.@suporte.example".len()
    );
    let wrong_token = "chamados+77.000000000000@suporte.example";
    // A token minted for another ticket does not open this one.
    let other_ticket =
        token::reply_address(&cfg, &key, 78, "ana@cliente.example").replace("+78.", "+77.");

    let m = |from: &str, subject: &str, id: &str| {
        format!("From: {from}\r\nSubject: {subject}\r\nMessage-ID: <{id}@c>\r\n\r\ntexto\r\n")
            .into_bytes()
    };
    let cases = [
        (
            "requester",
            "ana@cliente.example",
            GATEWAY,
            "RES: [HD #77] x",
            "req",
            true,
        ),
        (
            "technician",
            "tec@suporte.example",
            GATEWAY,
            "RES: [HD #77] x",
            "tec",
            true,
        ),
        (
            "case of the address",
            "Ana@Cliente.Example",
            GATEWAY,
            "RES: [HD #77] x",
            "case",
            true,
        ),
        (
            "stranger",
            "intruso@fora.example",
            GATEWAY,
            "RES: [HD #77] x",
            "str",
            false,
        ),
        (
            "stranger to the token address",
            "colega@cliente.example",
            token_addr.as_str(),
            "assunto novo",
            "tok",
            true,
        ),
        (
            "stranger with a wrong token",
            "intruso@fora.example",
            wrong_token,
            "RES: [HD #77] x",
            "bad",
            false,
        ),
        (
            "stranger with another ticket's token",
            "intruso@fora.example",
            other_ticket.as_str(),
            "RES: [HD #77] x",
            "oth",
            false,
        ),
    ];
    for (what, from, to, subject, id, _) in &cases {
        let r = deliver(gw.smtp_addr(), from, &[to], &m(from, subject, id)).await;
        assert_eq!(r.code, 250, "{what}: {r:?}");
    }
    let stored: Vec<String> = support::thread_ids(&gw.store, 77).await;
    let held = gw.store.quarantine_list().await.unwrap();
    for (what, _, _, _, id, lands) in &cases {
        let mid = format!("<{id}@c>");
        assert_eq!(stored.contains(&mid), *lands, "{what}: stored {stored:?}");
        if !lands {
            let q = held
                .iter()
                .find(|q| q.message_id == mid)
                .unwrap_or_else(|| panic!("{what} held"));
            assert!(
                q.reason.contains("not a participant of ticket 77"),
                "{}",
                q.reason
            );
        }
    }
    gw.stop(Duration::from_secs(5)).await;

    // `strangers = "accept"` lets them in.
    let mut open = cfg.clone();
    open.inbound.strangers = Strangers::Accept;
    let gw = Gateway::start(open).await.unwrap();
    let r = deliver(
        gw.smtp_addr(),
        "outro@fora.example",
        &[GATEWAY],
        &m("outro@fora.example", "RES: [HD #77] y", "acc"),
    )
    .await;
    assert_eq!(r.code, 250);
    let stored: Vec<String> = support::thread_ids(&gw.store, 77).await;
    assert!(stored.contains(&"<acc@c>".to_string()));
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(senders);
