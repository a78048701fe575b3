//! Property tests (proptest, 256 cases each): template rendering, the
//! subject matcher on generated reply subjects, the bare-line-end check of
//! the listener, and the inbound parser on arbitrary bytes.

use mensageria::inbound::parse;
use mensageria::inbound::subject::SubjectMatcher;
use mensageria::listener::framing::has_bare_line_end;
use mensageria::outbound::template::{Key, Template, Values};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

const CASES: u32 = 256;

/// Names a template may use: canonical names and the CITSmart aliases.
fn key_name() -> impl Strategy<Value = (&'static str, Key)> {
    let mut names: Vec<(&'static str, Key)> = Key::ALL.iter().map(|k| (k.name(), *k)).collect();
    names.push(("COMMENTTEXT", Key::Mensagem));
    names.push(("IDSERVICEREQUEST", Key::IdSolicitacaoServico));
    proptest::sample::select(names)
}

/// A piece of template source: what it renders to, or a key.
#[derive(Debug, Clone)]
enum Piece {
    Text { src: String, out: String },
    Key(&'static str, Key),
}

fn piece() -> impl Strategy<Value = Piece> {
    let text = |s: &str| Piece::Text {
        src: s.to_owned(),
        out: s.to_owned(),
    };
    prop_oneof![
        4 => "[^$]{0,12}".prop_map(move |s| text(&s)),
        1 => Just(text("R$ 10,00 ")),
        1 => Just(text("\r\n")),
        1 => Just(text("\u{85}\u{2028}\t\0")),
        // The escape for a literal "${".
        1 => Just(Piece::Text { src: "$${NOMECONTATO}".into(), out: "${NOMECONTATO}".into() }),
        4 => key_name().prop_map(|(n, k)| Piece::Key(n, k)),
    ]
}

/// Values that look like template text, controls and line ends included.
fn value() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        3 => ".{0,8}",
        1 => Just("${MENSAGEM}".to_owned()),
        1 => Just("${NOMECONTATO} ".to_owned()),
        1 => Just("$${IDSOLICITACAOSERVICO}".to_owned()),
        1 => Just("$".to_owned()),
        1 => Just("\r\nBcc: x@y.example\r\n".to_owned()),
        1 => Just("\n\r\u{0}\u{1b}\u{7f}\u{85}\u{2028}\u{2029}  \t".to_owned()),
    ];
    proptest::collection::vec(frag, 0..5).prop_map(|v| v.concat())
}

fn values() -> impl Strategy<Value = Values> {
    proptest::collection::vec(value(), Key::ALL.len()).prop_map(|vs| {
        let mut v = Values::new();
        for (k, s) in Key::ALL.into_iter().zip(vs) {
            v.set(k, s);
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// `render` inserts each value verbatim, once: a value holding
    /// "${MENSAGEM}" is not expanded again.
    #[test]
    fn render_never_re_expands(pieces in proptest::collection::vec(piece(), 0..10), v in values()) {
        let mut src = String::new();
        let mut want = String::new();
        for p in &pieces {
            match p {
                Piece::Text { src: s, out } => {
                    src.push_str(s);
                    want.push_str(out);
                }
                Piece::Key(name, k) => {
                    src.push_str(&format!("${{{name}}}"));
                    want.push_str(v.get(*k));
                }
            }
        }
        let t = Template::parse(&src).expect("generated template parses");
        prop_assert_eq!(t.render(&v), want);
    }

    /// `render_header` is one line whatever the template literals and the
    /// values hold: no CR, no LF, no control character, trimmed.
    #[test]
    fn render_header_is_one_line(pieces in proptest::collection::vec(piece(), 0..10), v in values()) {
        let src: String = pieces
            .iter()
            .map(|p| match p {
                Piece::Text { src, .. } => src.clone(),
                Piece::Key(name, _) => format!("${{{name}}}"),
            })
            .collect();
        let t = Template::parse(&src).expect("generated template parses");
        let h = t.render_header(&v);
        prop_assert!(!h.contains('\r') && !h.contains('\n'), "CR/LF in {:?}", h);
        prop_assert!(!h.chars().any(char::is_control), "control in {:?}", h);
        prop_assert_eq!(h.trim(), h.as_str());
    }

    /// Arbitrary template text and values: parse may refuse, never panics;
    /// what parses renders a one-line header.
    #[test]
    fn arbitrary_template_text(src in ".{0,40}", v in values()) {
        if let Ok(t) = Template::parse(&src) {
            let h = t.render_header(&v);
            prop_assert!(!h.contains('\r') && !h.contains('\n'), "CR/LF in {:?}", h);
            let _ = t.render(&v);
        }
    }
}

/// "Solicitação nº " as a person or a client might have typed it.
fn anchor() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec!["Solicitação", "Solicitacao", "Solicitaçao"]);
    let numero = prop::sample::select(vec!["nº", "n°", "no", "Nº", "NO", "N°"]);
    let gap = prop::sample::select(vec![" ", "  ", "\t", "\r\n ", " \u{a0}"]);
    let after = prop::sample::select(vec!["", " ", "  ", "\t"]);
    let case = proptest::collection::vec(any::<bool>(), 16);
    (word, gap, numero, after, case, any::<bool>()).prop_map(|(w, g, n, a, case, nfd)| {
        let mixed: String = w
            .chars()
            .zip(case.iter().cycle())
            .flat_map(|(c, up)| {
                if *up {
                    c.to_uppercase().collect::<Vec<_>>()
                } else {
                    c.to_lowercase().collect::<Vec<_>>()
                }
            })
            .collect();
        let s = format!("{mixed}{g}{n}{a}");
        if nfd { s.nfd().collect() } else { s }
    })
}

/// Reply/forward prefixes, repeated and mixed, and gateway tags.
fn prefixes() -> impl Strategy<Value = String> {
    let p = prop::sample::select(vec![
        "Re: ",
        "RE: ",
        "RES: ",
        "Res: ",
        "ENC: ",
        "Fwd: ",
        "FW: ",
        "AW: ",
        "WG: ",
        "TR : ",
        "RV: ",
        "Re[2]: ",
        "Re(3): ",
        "Re：",
        "[EXTERNO] ",
        "[EXTERNAL] ",
        "Resp: ",
    ]);
    proptest::collection::vec(p, 0..4).prop_map(|v| v.concat())
}

/// The rest of the subject: the service name with other numbers in it.
fn suffix() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        prop::sample::select(vec![
            "Impressora",
            "do",
            "3º andar",
            "R$ 10,00",
            "#55",
            "nº 12",
            "chamado 9",
            "NF",
            "03/03/2020",
            "10:00",
            "ramal",
            "(61)",
            "sala 204",
            "–",
            "-",
        ])
        .prop_map(str::to_owned),
        (0u64..10_000_000).prop_map(|n| n.to_string()),
    ];
    let sep = prop::sample::select(vec![" - ", " -", "  -  ", " — "]);
    prop_oneof![
        1 => Just(String::new()),
        6 => (sep, proptest::collection::vec(word, 0..6))
            .prop_map(|(s, w)| format!("{s}{}", w.join(" "))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The matcher derived from the usual pt-BR template finds the ticket ID
    /// in `{prefixes}{anchor}{id}{suffix}`, whatever the other numbers.
    #[test]
    fn subject_finds_the_ticket_id(
        pre in prefixes(),
        anchor in anchor(),
        id in 1i64..1_000_000_000_000,
        suf in suffix(),
    ) {
        let m = SubjectMatcher::from_template("Solicitação nº ${IDSOLICITACAOSERVICO} - ${SERVICO}")
            .expect("template matcher");
        let subject = format!("{pre}{anchor}{id}{suf}");
        prop_assert_eq!(m.find(&subject), Some(id), "subject {:?}", subject);
    }
}

/// The reference: drop every CRLF pair, then any CR or LF left is bare.
fn bare_reference(data: &[u8]) -> bool {
    let mut rest = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(b"\r\n") {
            i += 2;
        } else {
            rest.push(data[i]);
            i += 1;
        }
    }
    rest.iter().any(|&b| b == b'\r' || b == b'\n')
}

/// Bytes rich in CR, LF and dots, as SMTP smuggling attempts are.
fn line_bytes() -> impl Strategy<Value = Vec<u8>> {
    let b = prop_oneof![
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        1 => Just(b'.'),
        3 => any::<u8>(),
    ];
    proptest::collection::vec(b, 0..48)
}

/// Something close to a message: known headers with arbitrary values, then
/// an arbitrary body.
fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(vec![
        "Subject",
        "From",
        "To",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "MIME-Version",
        "Auto-Submitted",
        "Date",
        "X",
        "",
    ]);
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        prop::sample::select(vec![
            "=?UTF-8?Q?Solicita=C3=A7=C3=A3o_n=C2=BA_12?=",
            "=?ISO-2022-JP?B?GyRCJEskWyRzGyhC?=",
            "multipart/mixed; boundary=\"b\"",
            "multipart/report; report-type=delivery-status; boundary=b",
            "text/html; charset=windows-1252",
            "base64",
            "quoted-printable",
            "<a@b> <c@d>",
            "<>",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    let header = (name, value).prop_map(|(n, v)| [n.as_bytes(), b": ", &v, b"\r\n"].concat());
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        Just(b"--b\r\nContent-Type: text/plain\r\n\r\noi\r\n--b--\r\n".to_vec()),
        Just(b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n--b".to_vec()),
    ];
    (proptest::collection::vec(header, 0..8), body)
        .prop_map(|(h, b)| [h.concat(), b"\r\n".to_vec(), b].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn bare_line_end_agrees_with_reference(data in line_bytes()) {
        prop_assert_eq!(has_bare_line_end(&data), bare_reference(&data), "{:?}", data);
    }

    #[test]
    fn parse_never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Some((p, _)) = parse::parse(&data, "gw.test") {
            prop_assert!(p.message_id.starts_with('<') && p.message_id.ends_with('>'));
        }
    }

    #[test]
    fn parse_never_panics_on_messages(data in message_bytes()) {
        if let Some((p, _)) = parse::parse(&data, "gw.test") {
            prop_assert!(p.message_id.starts_with('<') && p.message_id.ends_with('>'));
        }
    }
}

/// Inputs the fuzzers found crashes with (tests/fixtures/fuzz-regressions/):
/// each must go through parse (and so reply extraction) without a panic.
/// Ignored while the html2text panic on `<td colspan=4><td rowspan=2>` is
/// open; the fix removes the `ignore`.
#[test]
fn fuzz_regressions_do_not_panic() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz-regressions folder") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let r =
            std::panic::catch_unwind(|| parse::parse(&raw, "gw.test").map(|(p, _)| p.message_id));
        assert!(r.is_ok(), "{} panics", path.display());
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}
