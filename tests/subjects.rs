//! Subject matching over real SMTP: a table of real-looking subjects as
//! clients put them on the wire (prefixes of many languages, RFC 2047 words
//! in UTF-8, ISO-8859-1 and Windows-1252, folding, decoy numbers, rewritten
//! subjects with thread headers) and the ticket each must land on, or none.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use mensageria::config::Config;
use mensageria::gateway::Gateway;
use mensageria::outbound;
use mensageria::store::Store;
use mensageria::store::tickets::TicketFields;
use support::client::Client;
use support::{Db, GATEWAY, TestDb};

const ROOT_4521: &str = "<ticket.4521.a1@gw.test>";

/// (Subject header as sent, possibly folded or encoded; extra headers; expected ticket)
fn table(sent_4522: &str) -> Vec<(String, String, Option<i64>)> {
    let s = |subj: &str, exp: Option<i64>| (subj.to_owned(), String::new(), exp);
    let h = |subj: &str, hdrs: String, exp: Option<i64>| (subj.to_owned(), hdrs, exp);
    let nfd = "Solicitac\u{327}a\u{303}o n\u{ba} 4521 - Impressora";
    vec![
        s("Solicitação nº 4521 - Impressora", Some(4521)),
        s("RE: Solicitação nº 4521 - Impressora", Some(4521)),
        s("RES: Re: ENC: Solicitação nº 4521 - Impressora", Some(4521)),
        s("Res: Solicitação nº 4522 - Rede lenta", Some(4522)),
        s("Enc: Solicitação nº 4522 - Rede lenta", Some(4522)),
        s("Fwd: Solicitação nº 4521 - Impressora", Some(4521)),
        s("FW: Solicitação nº 4521 - Impressora", Some(4521)),
        s("TR: Solicitação nº 4521 - Impressora", Some(4521)),
        s("AW: Solicitação nº 4522 - Rede lenta", Some(4522)),
        s("WG: Solicitação nº 4522 - Rede lenta", Some(4522)),
        s("RV: Solicitação nº 4521 - Impressora", Some(4521)),
        s("SV: Solicitação nº 4521 - Impressora", Some(4521)),
        s("Antw: Solicitação nº 4522 - Rede lenta", Some(4522)),
        s("Re[2]: Solicitação nº 4521 - Impressora", Some(4521)),
        s(
            "RE: RE: RE: RE: Solicitação nº 4522 - Rede lenta",
            Some(4522),
        ),
        s(
            "[EXTERNO] RES: Solicitação nº 98765 - Acesso VPN",
            Some(98765),
        ),
        // RFC 2047 encoded words.
        s(
            "=?UTF-8?B?UkVTOiBTb2xpY2l0YcOnw6NvIG7CuiA0NTIxIC0gSW1wcmVzc29yYQ==?=",
            Some(4521),
        ),
        s(
            "=?UTF-8?Q?RES:_Solicita=C3=A7=C3=A3o_n=C2=BA_4522_-_Rede_lenta?=",
            Some(4522),
        ),
        s(
            "=?ISO-8859-1?Q?RES:_Solicita=E7=E3o_n=BA_4521_-_Impressora?=",
            Some(4521),
        ),
        s(
            "=?iso-8859-1?B?UkVTOiBTb2xpY2l0YefjbyBuuiA5ODc2NQ==?=",
            Some(98765),
        ),
        s(
            "=?windows-1252?Q?RES:_Solicita=E7=E3o_n=BA_4522_=96_Rede?=",
            Some(4522),
        ),
        // Folded headers, and an encoded subject split into two words.
        s("RES: Solicitação nº\r\n 4521 - Impressora", Some(4521)),
        s(
            "=?UTF-8?Q?RES:_Solicita=C3=A7=C3=A3o?=\r\n =?UTF-8?Q?_n=C2=BA_4522_-_Rede?=",
            Some(4522),
        ),
        // Case, accents, spacing and Unicode normalisation (Apple Mail NFD).
        s("RE: SOLICITACAO Nº 4521 - IMPRESSORA", Some(4521)),
        s("Re: Solicitação nº4521 - Impressora", Some(4521)),
        s("Re: Solicitação  nº   4522", Some(4522)),
        s(nfd, Some(4521)),
        // Other numbers must not be taken for the ticket.
        s(
            "Pedido 99881 - RE: Solicitação nº 4521 - Impressora",
            Some(4521),
        ),
        s(
            "RE: Solicitação nº 4522 - NF 123456 vencida em 03/03/2026 10:00",
            Some(4522),
        ),
        s(
            "Re: Fatura 2026/0042 referente à Solicitação nº 98765",
            Some(98765),
        ),
        s("Re: Nota fiscal 55555", None),
        s("Re: Pedido 4521", None),
        s("Re: Solicitação nº 999999 - desconhecida", None),
        s("", None),
        // Rewritten subjects: the thread headers still find the ticket.
        h(
            "Impressora voltou a falhar",
            format!("In-Reply-To: {sent_4522}\r\n"),
            Some(4522),
        ),
        h(
            "Outra dúvida",
            format!("References: <x@y> {ROOT_4521}\r\n"),
            Some(4521),
        ),
        h(
            "Re: Solicitação nº 999999",
            format!("References: {sent_4522}\r\n"),
            Some(4522),
        ),
        // The subject decides before the thread headers.
        h(
            "RES: Solicitação nº 4521 - Impressora",
            format!("References: {sent_4522}\r\n"),
            Some(4521),
        ),
    ]
}

async fn seed(store: &Store, cfg: &Config) -> String {
    let id = store
        .template_add(
            "t",
            "Solicitação nº ${IDSOLICITACAOSERVICO} - ${SERVICO}",
            "${MENSAGEM}",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    store.param_set(417, &id.to_string()).await.unwrap();
    for (t, root) in [
        (4521, ROOT_4521),
        (4522, "<ticket.4522.b2@gw.test>"),
        (98765, "<ticket.98765.c3@gw.test>"),
    ] {
        let f = TicketFields {
            requester: Some("ana@cliente.example".into()),
            ..Default::default()
        };
        store.ticket_upsert(t, &f, root, "AQ==").await.unwrap();
    }
    outbound::technician_reply(
        store,
        cfg,
        4522,
        "tec@suporte.example",
        "Reinicie o roteador.",
    )
    .await
    .unwrap()
    .message_id
}

async fn subjects(db: Db) {
    let tdb = TestDb::new(db).await;
    let cfg = support::config(&tdb.url, support::sink::free_port());
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    let sent = seed(&gw.store, &cfg).await;
    let rows = table(&sent);
    assert!(rows.len() >= 30);
    let (mut c, _) = Client::connect(gw.smtp_addr()).await;
    assert_eq!(c.cmd("EHLO cliente.example").await.code, 250);
    for (i, (subject, extra, _)) in rows.iter().enumerate() {
        let subject_line = if subject.is_empty() {
            String::new()
        } else {
            format!("Subject: {subject}\r\n")
        };
        let raw = format!(
            "From: ana@cliente.example\r\nTo: {GATEWAY}\r\n{subject_line}Message-ID: <subj-{i}@cliente.example>\r\n{extra}\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nresposta {i}\r\n"
        );
        let r = c
            .mail("ana@cliente.example", &[GATEWAY], raw.as_bytes())
            .await;
        assert_eq!(r.code, 250, "row {i}: {r:?}");
    }
    let mut landed: HashMap<String, i64> = HashMap::new();
    for t in [4521, 4522, 98765] {
        for m in gw.store.messages_of_ticket(t).await.unwrap() {
            landed.insert(m.message_id, t);
        }
    }
    let quarantined: Vec<String> = gw
        .store
        .quarantine_list()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.message_id)
        .collect();
    let mut wrong = Vec::new();
    for (i, (subject, extra, expected)) in rows.iter().enumerate() {
        let id = format!("<subj-{i}@cliente.example>");
        let got = landed.get(&id).copied();
        if got != *expected || (expected.is_none() != quarantined.contains(&id)) {
            wrong.push(format!(
                "row {i} {subject:?} {extra:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    eprintln!(
        "subjects on {db:?}: {} of {} as expected",
        rows.len() - wrong.len(),
        rows.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(subjects);
