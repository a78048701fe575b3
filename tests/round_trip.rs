//! The whole product in one pass: template with every key → parameter 417
//! → technician reply relayed → requester answers over SMTP → stored on the
//! ticket → notification threaded to the technician.

mod support;

use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use mensageria::gateway::Gateway;
use support::sink::Sink;
use support::{Db, TestDb, cli_ok, client, wait_until};

const SUBJECT: &str = "Solicitação nº ${IDSOLICITACAOSERVICO} - ${SERVICO} (${DEMANDA})";
const BODY: &str = "Olá ${NOMECONTATO},\n\n${MENSAGEM}\n\n\
Registrado por: ${REGISTRADOPOR} em ${DATAHORA}\n\
Atividade: ${SERVICO} / Serviço: ${SERVICORELACIONADO}\n\
Portfólio: ${PORTFOLIO} · Categoria: ${CATEGORIA}\n\
Tempo gasto: ${TEMPOGASTODATA} ${TEMPOGASTOHORA}\n";

async fn round_trip(db: Db) {
    let started = Instant::now();
    let tdb = TestDb::new(db).await;
    let sink = Sink::start().await;
    let cfg = support::config(&tdb.url, sink.addr.port());
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let body = tdb.dir.path().join("body.txt");
    std::fs::write(&body, BODY).unwrap();

    // Administrator: the template and parameter 417, through the CLI.
    let id = cli_ok(
        &conf,
        &[
            "template",
            "add",
            "--name",
            "tecnico",
            "--subject",
            SUBJECT,
            "--body-file",
            body.to_str().unwrap(),
        ],
    );
    let id = id.trim();
    cli_ok(&conf, &["param", "set", "417", id]);
    assert_eq!(cli_ok(&conf, &["param", "get", "417"]).trim(), id);
    cli_ok(
        &conf,
        &[
            "ticket",
            "upsert",
            "4521",
            "--requester",
            "ana@cliente.example",
            "--contact",
            "Ana Souza",
            "--registered-by",
            "João Lima",
            "--date-time",
            "03/03/2026 10:00",
            "--demand",
            "Incidente",
            "--service",
            "Impressora não imprime",
            "--related-service",
            "Impressão",
            "--portfolio",
            "Infraestrutura",
            "--category",
            "Hardware",
            "--time-spent-date",
            "03/03/2026",
            "--time-spent-hours",
            "01:30",
            "--technician",
            "tecnico@suporte.example",
        ],
    );

    let gw = Gateway::start(cfg.clone()).await.expect("gateway starts");

    // Technician: a message on the ticket, relayed to the requester.
    cli_ok(
        &conf,
        &[
            "ticket",
            "reply",
            "4521",
            "--from",
            "tecnico@suporte.example",
            "--body",
            "Troquei o toner; pode testar?",
        ],
    );
    let first = wait_until(
        "the relay to receive the reply",
        Duration::from_secs(15),
        || async { sink.messages().into_iter().next() },
    )
    .await;
    assert_eq!(first.rcpt_to, vec!["ana@cliente.example"]);
    let m = MessageParser::default()
        .parse(&first.data)
        .expect("relayed mail parses");
    let subject = m.subject().unwrap().to_owned();
    assert_eq!(
        subject,
        "Solicitação nº 4521 - Impressora não imprime (Incidente)"
    );
    let text = m.body_text(0).unwrap();
    for expected in [
        "Olá Ana Souza,",
        "Troquei o toner; pode testar?",
        "Registrado por: João Lima em 03/03/2026 10:00",
        "Atividade: Impressora não imprime / Serviço: Impressão",
        "Portfólio: Infraestrutura · Categoria: Hardware",
        "Tempo gasto: 03/03/2026 01:30",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("${"), "unrendered key in:\n{text}");
    let out_id = m.message_id().expect("Message-ID").to_owned();
    assert!(out_id.ends_with("@gw.test"), "{out_id}");
    let reply_to = m
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap();
    // The gateway's address with the ticket and its token (RFC 5233).
    assert!(
        reply_to.starts_with("chamados+4521.") && reply_to.ends_with("@suporte.example"),
        "{reply_to}"
    );
    let refs: Vec<String> = m
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(
        refs[0].starts_with("ticket.4521."),
        "References must start with the ticket root: {refs:?}"
    );
    assert!(m.header("Thread-Index").is_some() && m.header("Thread-Topic").is_some());

    // Requester: answers from a mail client, through the real listener.
    let answer = format!(
        "From: Ana Souza <ana@cliente.example>\r\nTo: {gw_addr}\r\nSubject: =?UTF-8?B?{subj}?=\r\n\
Message-ID: <resposta.1@cliente.example>\r\nIn-Reply-To: <{out_id}>\r\nReferences: <{r0}> <{out_id}>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
Funcionou, obrigada!\r\n",
        gw_addr = support::GATEWAY,
        subj = base64_encode(format!("RES: {subject}").as_bytes()),
        r0 = refs[0],
    );
    let r = client::deliver(
        gw.smtp_addr(),
        "ana@cliente.example",
        &[support::GATEWAY],
        answer.as_bytes(),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    assert!(r.text.contains("4521"), "{r:?}");

    // The thread, as `ticket show --json` prints it.
    let shown: serde_json::Value =
        serde_json::from_str(&cli_ok(&conf, &["ticket", "show", "4521", "--json"])).unwrap();
    let msgs = shown["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{shown}");
    assert_eq!(msgs[0]["direction"], "out");
    assert_eq!(msgs[1]["direction"], "in");
    assert_eq!(msgs[1]["from"], "ana@cliente.example");
    assert_eq!(msgs[1]["text"], "Funcionou, obrigada!");
    assert_eq!(msgs[1]["message_id"], "<resposta.1@cliente.example>");
    assert_eq!(msgs[1]["kind"], "reply");
    // Sent to the gateway's plain address: found by subject and by the
    // signed Message-ID it quotes, not by a token.
    assert_eq!(msgs[1]["matched_by"], "subject,signed-reference,references");

    // Technician: the notification, threaded under the ticket's mail.
    let note = wait_until(
        "the notification to reach the technician",
        Duration::from_secs(15),
        || async {
            sink.messages()
                .into_iter()
                .find(|m| m.rcpt_to == ["tecnico@suporte.example"])
        },
    )
    .await;
    let n = MessageParser::default().parse(&note.data).unwrap();
    assert_eq!(
        n.in_reply_to().as_text(),
        Some("resposta.1@cliente.example")
    );
    let nrefs: Vec<String> = n
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(nrefs[0], refs[0], "same thread root");
    assert!(nrefs.contains(&out_id), "{nrefs:?}");
    assert!(
        n.body_text(0).unwrap().starts_with("Funcionou, obrigada!"),
        "new text first"
    );
    assert_eq!(
        n.header("Thread-Index")
            .unwrap()
            .as_text()
            .unwrap()
            .get(..28),
        m.header("Thread-Index")
            .unwrap()
            .as_text()
            .unwrap()
            .get(..28)
    );

    assert!(gw.stop(Duration::from_secs(10)).await, "gateway drains");
    eprintln!("round trip on {db:?}: {} ms", started.elapsed().as_millis());
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

both_databases!(round_trip);
