//! A requester's files: stored with the message (content-addressed, once
//! per content), listed by `ticket show`, forwarded to the technicians as
//! real MIME parts with the same bytes, over-limit ones listed but neither
//! kept nor forwarded, winmail.dat recognised; and undeclared cp1252 text
//! read as cp1252.

mod support;

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use mensageria::gateway::Gateway;
use mensageria::store::tickets::TicketFields;
use support::client::deliver;
use support::sink::{Received, Sink};
use support::{Db, GATEWAY, TestDb, cli_ok, wait_until};

const REQUESTER: &str = "ana@cliente.example";
const TECH: &str = "tec@suporte.example";
const LIMIT: usize = 64 * 1024;

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    let s = base64::engine::general_purpose::STANDARD.encode(bytes);
    // RFC 2045 6.8: lines of at most 76 characters.
    s.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    v.extend((0..3000u32).map(|i| (i * 7 % 256) as u8));
    v.extend_from_slice(b"\n%%EOF\n");
    v
}

fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    v.extend((0..700u32).map(|i| (i * 13 % 251) as u8));
    v
}

/// A reply from the requester in Outlook's shape: mixed[related[alternative
/// [text, html], inline image], files…]. `files` are (name, type, bytes).
fn reply(
    id: &str,
    text: &str,
    inline_png: Option<&[u8]>,
    files: &[(&str, &str, &[u8])],
) -> Vec<u8> {
    let mut m = format!(
        "From: Ana <{REQUESTER}>\r\nTo: {GATEWAY}\r\nSubject: RES: [HD #77] impressora\r\n\
Message-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
--mix\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
--rel\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{text}</p><img src=\"cid:tela@cliente\"><script>alert(1)</script>\r\n\
--alt--\r\n"
    );
    if let Some(png) = inline_png {
        m.push_str(&format!(
            "--rel\r\nContent-Type: image/png; name=\"tela.png\"\r\nContent-ID: <tela@cliente>\r\n\
Content-Disposition: inline; filename=\"tela.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(png)
        ));
    }
    m.push_str("--rel--\r\n");
    for (name, ct, bytes) in files {
        m.push_str(&format!(
            "--mix\r\nContent-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(bytes)
        ));
    }
    m.push_str("--mix--\r\n");
    m.into_bytes()
}

/// The notification of the reply `id` as the technician got it.
async fn notification(sink: &Sink, id: &str) -> Received {
    wait_until(
        "the notification to reach the sink",
        Duration::from_secs(15),
        || async {
            sink.messages().into_iter().find(|r| {
                r.rcpt_to == [TECH]
                    && MessageParser::default()
                        .parse(&r.data)
                        .is_some_and(|m| m.in_reply_to().as_text() == Some(id))
            })
        },
    )
    .await
}

/// (name, bytes) of every attachment of a relayed mail.
fn parts(data: &[u8]) -> Vec<(String, Vec<u8>, Option<String>)> {
    let m = MessageParser::default().parse(data).unwrap();
    m.attachments()
        .map(|p| {
            (
                p.attachment_name().unwrap_or_default().to_owned(),
                p.contents().to_vec(),
                p.content_id().map(str::to_owned),
            )
        })
        .collect()
}

async fn attachments(db: Db) {
    let tdb = TestDb::new(db).await;
    let sink = Sink::start().await;
    let mut cfg = support::config(&tdb.url, sink.addr.port());
    cfg.inbound.max_attachment_bytes = LIMIT;
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let gw = Gateway::start(cfg.clone()).await.unwrap();
    let t = gw
        .store
        .template_add(
            "t",
            "[HD #${IDSOLICITACAOSERVICO}] impressora",
            "${MENSAGEM}",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    gw.store.param_set(417, &t.to_string()).await.unwrap();
    let f = TicketFields {
        requester: Some(REQUESTER.into()),
        technicians: Some(vec![TECH.into()]),
        ..Default::default()
    };
    gw.store
        .ticket_upsert(77, &f, "<ticket.77.r@gw.test>", "AQ==")
        .await
        .unwrap();
    let (pdf, png) = (pdf(), png());

    // A PDF and an inline screenshot.
    let first = reply(
        "r1@cliente",
        "Segue o relatório.",
        Some(&png),
        &[("relatório.pdf", "application/pdf", &pdf)],
    );
    let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &first).await;
    assert_eq!(r.code, 250, "{r:?}");
    let shown: serde_json::Value =
        serde_json::from_str(&cli_ok(&conf, &["ticket", "show", "77", "--json"])).unwrap();
    let files = &shown["messages"][0]["attachments"];
    assert_eq!(
        *files,
        serde_json::json!([
            {"name": "tela.png", "type": "image/png", "size": png.len(), "inline": true},
            {"name": "relatório.pdf", "type": "application/pdf", "size": pdf.len(), "inline": false},
        ]),
        "{shown}"
    );
    // Forwarded as MIME parts with the very same bytes; the requester's HTML
    // is not (notifications are text only).
    let note = notification(&sink, "r1@cliente").await;
    let got = parts(&note.data);
    assert_eq!(
        got.len(),
        2,
        "{:?}",
        got.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    assert!(got.contains(&("relatório.pdf".into(), pdf.clone(), None)));
    assert!(got.contains(&("tela.png".into(), png.clone(), Some("tela@cliente".into()))));
    let n = MessageParser::default().parse(&note.data).unwrap();
    assert!(n.body_text(0).unwrap().starts_with("Segue o relatório."));
    assert!(
        n.parts.iter().all(|p| !p.is_text_html()),
        "no HTML part in a notification"
    );
    assert!(!String::from_utf8_lossy(&note.data).contains("<script>"));

    // The same PDF again, with a file over the limit and a winmail.dat.
    let big: Vec<u8> = (0..LIMIT as u32 + 1000).map(|i| (i % 253) as u8).collect();
    let tnef = b"\x78\x9f\x3e\x22\x01\x00\x01\x06\x90\x08\x00\x04\x00\x00\x00".to_vec();
    let second = reply(
        "r2@cliente",
        "De novo, com o log.",
        None,
        &[
            ("relatório.pdf", "application/pdf", &pdf),
            ("log.bin", "application/octet-stream", &big),
            ("winmail.dat", "application/octet-stream", &tnef),
        ],
    );
    let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &second).await;
    assert_eq!(r.code, 250, "{r:?}");
    // pdf, png, winmail.dat: the second PDF is the first one's blob.
    assert_eq!(gw.store.blob_count().await.unwrap(), 3);
    let rows = gw.store.attachments_of_ticket(77).await.unwrap();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[1].blob_sha256, rows[2].blob_sha256, "{rows:?}");
    let stored = gw
        .store
        .blob_get(rows[2].blob_sha256.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, pdf);
    assert_eq!(rows[3].blob_sha256, None, "over the limit: not stored");

    let shown: serde_json::Value =
        serde_json::from_str(&cli_ok(&conf, &["ticket", "show", "77", "--json"])).unwrap();
    let files = &shown["messages"][1]["attachments"];
    assert_eq!(files[1]["name"], "log.bin");
    assert_eq!(files[1]["size"], big.len());
    assert_eq!(files[1]["note"], "skipped: over max_attachment_bytes");
    assert_eq!(files[2]["name"], "winmail.dat");
    assert_eq!(files[2]["type"], "application/ms-tnef");
    assert_eq!(files[2]["note"], "TNEF (Outlook rich text) container");
    let table = cli_ok(&conf, &["ticket", "show", "77"]);
    for expected in [
        "relatório.pdf",
        "application/pdf",
        "tela.png",
        "log.bin",
        "skipped: over max_attachment_bytes",
        "winmail.dat",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing in:\n{table}"
        );
    }

    let note = notification(&sink, "r2@cliente").await;
    let names: Vec<String> = parts(&note.data).into_iter().map(|p| p.0).collect();
    assert_eq!(
        names,
        ["relatório.pdf", "winmail.dat"],
        "the big file is not forwarded"
    );
    let text = MessageParser::default()
        .parse(&note.data)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(
        text.contains("not forwarded") && text.contains("log.bin"),
        "{text}"
    );

    // Undeclared 8-bit text from an old client: Windows-1252, not U+FFFD.
    let old = format!(
        "From: {REQUESTER}\r\nTo: {GATEWAY}\r\nSubject: RES: [HD #77] impressora\r\nMessage-ID: <r3@cliente>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    );
    let mut old = old.into_bytes();
    old.extend_from_slice(b"\x93ol\xe1\x94\r\n");
    let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &old).await;
    assert_eq!(r.code, 250, "{r:?}");
    let thread = gw.store.messages_of_ticket(77).await.unwrap();
    assert_eq!(thread.last().unwrap().body_text, "\u{201C}ol\u{E1}\u{201D}");

    gw.stop(Duration::from_secs(5)).await;
}

both_databases!(attachments);
