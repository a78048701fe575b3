//! CPU time per inbound message in the decision path, without the store:
//! parse (mail-parser) → classify (person or robot) → find the ticket ID in
//! the subject, on a realistic 5 KB reply (Outlook-style multipart/
//! alternative, quoted-printable text and HTML, thread headers).
//!
//! `cargo bench --bench pipeline` prints criterion's figures per stage and,
//! last, one line `pipeline: N µs/message` from a plain timed loop, for
//! BENCHMARKS.md and bench/compare.sh. The group `outbound` times the other
//! CPU-heavy step of a reply: composing the technician's copy of a 20 KB
//! reply (headers, quoted-printable text).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mensageria::inbound::classify::{Kind, classify};
use mensageria::inbound::parse::parse;
use mensageria::inbound::subject::SubjectMatcher;

/// The subject of the technician mail template (parameter 417).
const TEMPLATE_SUBJECT: &str = "Solicitação nº ${IDSOLICITACAOSERVICO} - ${SERVICO}";

const PARAGRAPHS: &[&str] = &[
    "Bom dia, conforme conversamos por telefone, a impressora do terceiro andar voltou a apresentar o mesmo erro de atolamento de papel depois da manutenção de ontem.",
    "Já reiniciei o equipamento duas vezes e verifiquei a bandeja, mas a mensagem continua aparecendo na tela e ninguém do setor consegue imprimir os relatórios do fechamento.",
    "Poderiam, por favor, enviar um técnico ainda hoje? Precisamos entregar a documentação da licitação até sexta-feira e a impressora da sala ao lado também está sem toner.",
    "Segue em anexo a foto da tela com o código do erro. Fico no ramal 4321 até as 18h e amanhã a partir das 8h.",
];

/// Quoted-printable for UTF-8 text: soft line breaks under 76 columns.
fn qp(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut col = 0;
        for b in line.bytes() {
            let piece = if b == b'=' || b >= 0x80 {
                format!("={b:02X}")
            } else {
                (b as char).to_string()
            };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

/// A requester's reply of about 5 KB, as Outlook sends it.
fn reply() -> Vec<u8> {
    let mut text = String::new();
    for p in PARAGRAPHS {
        text.push_str(p);
        text.push_str("\n\n");
    }
    text.push_str("Atenciosamente,\nMárcia Gonçalves\nCoordenação de Compras\n\n");
    text.push_str("De: Central de Serviços <chamados@suporte.example>\nEnviada em: segunda-feira, 23 de novembro de 2026 14:05\nAssunto: Solicitação nº 48213 - Impressoras\n\n");
    for p in PARAGRAPHS.iter().take(2) {
        text.push_str(p);
        text.push('\n');
    }
    let mut html = String::from("<html><head><meta charset=\"utf-8\"></head><body>");
    for p in text.split("\n\n") {
        html.push_str("<p class=\"MsoNormal\"><span style=\"font-family:Calibri,sans-serif\">");
        html.push_str(&p.replace('\n', "<br>"));
        html.push_str("</span></p>\n");
    }
    html.push_str("</body></html>");
    let mut m = String::from(
        "Received: from mail.cliente.example (mail.cliente.example [192.0.2.10])\r\n\tby gw.suporte.example with ESMTP; Wed, 25 Nov 2026 10:12:01 -0300\r\n\
From: =?utf-8?Q?M=C3=A1rcia_Gon=C3=A7alves?= <marcia@cliente.example>\r\n\
To: Central de Servicos <chamados@suporte.example>\r\n\
Subject: =?utf-8?Q?RES:_Solicita=C3=A7=C3=A3o_n=C2=BA_48213_-_Impressoras?=\r\n\
Date: Wed, 25 Nov 2026 13:12:00 +0000\r\n\
Message-ID: <CP5PR80MB0123A1B2C3D4E5F6@CP5PR80MB0123.lamprd80.prod.outlook.com>\r\n\
In-Reply-To: <ticket.48213.7f3a9c@gw.suporte.example>\r\n\
References: <root.48213.1a2b3c@gw.suporte.example>\r\n <ticket.48213.7f3a9c@gw.suporte.example>\r\n\
Thread-Topic: =?utf-8?Q?Solicita=C3=A7=C3=A3o_n=C2=BA_48213_-_Impressoras?=\r\n\
Thread-Index: AQHbPqZ2m9c4dE1xTkqW0yZ8s3vYQw==\r\n\
Accept-Language: pt-BR, en-US\r\nContent-Language: pt-BR\r\n\
X-MS-Has-Attach: \r\nX-MS-TNEF-Correlator: \r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"_000_CP5PR80MB0123_\"\r\n\r\n",
    );
    m.push_str("--_000_CP5PR80MB0123_\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    m.push_str(&qp(&text));
    m.push_str("\r\n--_000_CP5PR80MB0123_\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    m.push_str(&qp(&html));
    m.push_str("\r\n--_000_CP5PR80MB0123_--\r\n");
    m.into_bytes()
}

/// What `smtp-source -l 5000` sends (bench/compare.sh): a plain-text body
/// of 64 numbered lines of 78 columns, so every line goes through the
/// reply-extraction rules.
fn smtp_source_shaped() -> Vec<u8> {
    let mut m = String::from(
        "From: <requerente@cliente.example>\r\nTo: <chamados@suporte.example>\r\n\
Date: Tue,  1 Dec 2026 19:30:16 +0000 (UTC)\r\nMessage-Id: <429c.0003.0000@bench.cliente.example>\r\n\
Subject: RES: Solicita\u{e7}\u{e3}o n\u{ba} 48213 - Impressoras\r\n\r\n",
    );
    let mut body = 0;
    for n in 1.. {
        let line = format!("{n}{}", "X".repeat(77 - n.to_string().len()));
        if body + line.len() > 5000 {
            break;
        }
        body += line.len() + 2;
        m.push_str(&line);
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// The three stages as the inbound path runs them; the ticket ID found.
fn pipeline(raw: &[u8], matcher: &SubjectMatcher) -> Option<i64> {
    let (p, msg) = parse(raw, "gw.suporte.example")?;
    if classify("marcia@cliente.example", &msg) != Kind::Person {
        return None;
    }
    matcher.find(&p.subject)
}

fn benches(c: &mut Criterion, raw: &[u8], plain: &[u8], matcher: &SubjectMatcher) {
    let mut g = c.benchmark_group("inbound");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| parse(black_box(raw), "gw.suporte.example").map(|(p, _)| p.text.len()))
    });
    let (p, msg) = parse(raw, "gw.suporte.example").expect("the sample parses");
    g.bench_function("classify", |b| {
        b.iter(|| classify(black_box("marcia@cliente.example"), black_box(&msg)))
    });
    g.bench_function("match", |b| b.iter(|| matcher.find(black_box(&p.subject))));
    g.bench_function("parse+classify+match", |b| {
        b.iter(|| pipeline(black_box(raw), matcher))
    });
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("parse+classify+match/smtp-source body", |b| {
        b.iter(|| pipeline(black_box(plain), matcher))
    });
    g.finish();
}

/// The technician's copy of a long reply, as `notify` composes it.
fn compose(c: &mut Criterion) {
    use mensageria::outbound::compose::{Draft, build};
    let mut text = String::from("Márcia Gonçalves escreveu:\n\n");
    while text.len() < 20_000 {
        for p in PARAGRAPHS {
            text.push_str(p);
            text.push_str("\n\n");
        }
    }
    let to = vec!["tecnico@suporte.example".to_string()];
    let refs = vec!["<root@gw.suporte.example>".to_string()];
    let draft = Draft {
        from_name: "Central de Serviços",
        from: "chamados@suporte.example",
        reply_to: "chamados+48213.abcdef@suporte.example",
        to: &to,
        subject: "RES: Solicitação nº 48213 - Impressoras",
        text: &text,
        html: None,
        message_id: "<48213.n1.s1@gw.suporte.example>",
        in_reply_to: Some("<root@gw.suporte.example>"),
        references: &refs,
        thread_topic: "Solicitação nº 48213 - Impressoras",
        thread_index: "AQHZ",
        auto: None,
        attachments: &[],
    };
    let mut g = c.benchmark_group("outbound");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("compose 20 KB reply", |b| {
        b.iter(|| build(black_box(&draft)).map(|m| m.len()))
    });
    g.finish();
}

fn main() {
    let raw = reply();
    let matcher = SubjectMatcher::from_template(TEMPLATE_SUBJECT).expect("template subject");
    assert_eq!(
        pipeline(&raw, &matcher),
        Some(48213),
        "the sample must thread"
    );
    let plain = smtp_source_shaped();
    assert_eq!(
        pipeline(&plain, &matcher),
        Some(48213),
        "the plain sample must thread"
    );
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut c, &raw, &plain, &matcher);
    compose(&mut c);
    c.final_summary();
    // One plain figure to quote per sample: the whole path, averaged over
    // a second.
    let per_message = |raw: &[u8]| {
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_secs(1) {
            for _ in 0..100 {
                black_box(pipeline(black_box(raw), &matcher));
            }
            n += 100;
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    println!(
        "pipeline: {:.1} µs/message ({} byte reply, parse → classify → match, one core); \
         {:.1} µs for smtp-source's {} byte plain body",
        per_message(&raw),
        raw.len(),
        per_message(&plain),
        plain.len()
    );
}
