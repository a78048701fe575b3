//! Finds the ticket ID in the Subject of an inbound reply. The pattern comes
//! from the administrator's outbound subject template (the literal text around
//! `${IDSOLICITACAOSERVICO}`), from a regex override in the config, or from a
//! built-in fallback. It only reads text: it never touches the database and
//! never decides what happens to a message whose subject has no ID.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Template keys that stand for the ticket ID.
const ID_KEYS: [&str; 2] = ["IDSOLICITACAOSERVICO", "IDSERVICEREQUEST"];
/// At most 18 digits always fits an i64; longer runs are never taken.
const DIGITS: &str = "([0-9]{1,18})";

#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    #[error(
        "the template subject has no ${{IDSOLICITACAOSERVICO}} (or ${{IDSERVICEREQUEST}}) key, so replies cannot be matched by subject"
    )]
    NoIdKey,
    #[error(
        "the ticket ID key in the template subject has no fixed text next to it, so the ID cannot be told apart from other numbers; put text such as \"nº \" or \"[#\" around it"
    )]
    NoAnchor,
    #[error("the subject pattern is not a valid regex: {0}")]
    BadRegex(String),
    #[error(
        "the subject pattern must have exactly one capture group, around the digits (it has {0})"
    )]
    RegexGroups(usize),
}

#[derive(Debug, Clone)]
pub struct SubjectMatcher {
    /// Tried in order, most specific first; the first one that matches decides.
    tiers: Vec<Regex>,
    /// Template and fallback patterns run on folded text; an override on NFC.
    fold: bool,
}

impl SubjectMatcher {
    /// Derive from the template subject: the literal text immediately before and after the ID key (back to the previous key / start, forward to the next key / end) is the anchor.
    pub fn from_template(subject_template: &str) -> Result<Self, SubjectError> {
        static KEY: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\$\{([A-Z_][A-Z0-9_]*)\}").expect("constant regex"));
        let keys: Vec<_> = KEY.captures_iter(subject_template).collect();
        let idx = keys
            .iter()
            .position(|c| ID_KEYS.contains(&&c[1]))
            .ok_or(SubjectError::NoIdKey)?;
        let whole = |i: usize| keys.get(i).and_then(|c| c.get(0));
        let id = whole(idx).ok_or(SubjectError::NoIdKey)?;
        let start = idx.checked_sub(1).and_then(whole).map_or(0, |m| m.end());
        let end = whole(idx + 1).map_or(subject_template.len(), |m| m.start());
        let before = &subject_template[start..id.start()];
        let after = &subject_template[id.end()..end];

        let (pre, suf) = (tokens(before), tokens(after));
        if pre.is_empty() && suf.is_empty() {
            return Err(SubjectError::NoAnchor);
        }
        // A word boundary is only honest where the template itself has one:
        // text glued to a neighbouring key's value must not require it.
        let pre_open = start == 0 || before.starts_with(char::is_whitespace);
        let suf_open = end == subject_template.len() || after.ends_with(char::is_whitespace);

        // Short anchors survive clients that mangle the rest of the subject;
        // the full literal is tried first because it is the least ambiguous.
        let pre_cut = pre.len() - distinctive(pre.iter().rev(), false).min(pre.len());
        let suf_cut = distinctive(suf.iter(), !pre.is_empty()).min(suf.len());
        let (short_pre, short_suf) = (&pre[pre_cut..], &suf[..suf_cut]);
        let (pre_open2, suf_open2) = (pre_open || pre_cut > 0, suf_open || suf_cut < suf.len());
        let mut sources = vec![
            anchored((&pre, pre_open), (&suf, suf_open), false),
            anchored(
                (short_pre, pre_open2),
                (short_suf, suf_open2),
                !pre.is_empty(),
            ),
        ];
        sources.dedup();
        let tiers = sources
            .iter()
            .map(|s| Regex::new(s).map_err(|e| SubjectError::BadRegex(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Self { tiers, fold: true })
    }

    /// Administrator override from config: a regex with exactly one capture group that captures the digits; matched case-insensitively against the decoded subject (NFC).
    pub fn from_regex(pattern: &str) -> Result<Self, SubjectError> {
        let re = RegexBuilder::new(pattern)
            .case_insensitive(true)
            .build()
            .map_err(|e| SubjectError::BadRegex(e.to_string()))?;
        // captures_len counts the implicit whole-match group 0.
        let groups = re.captures_len() - 1;
        if groups != 1 {
            return Err(SubjectError::RegexGroups(groups));
        }
        let tiers = vec![re];
        Ok(Self { tiers, fold: false })
    }

    /// Used when no template is configured: recognises common forms such as "[#123]", "#123", "nº 123", "n° 123", "No. 123", "Ticket 123", "Chamado 123", "Solicitação 123", "Solicitacao: 123", "Request 123", "ID 123".
    pub fn fallback() -> Self {
        // Keywords beat a bare "nº", which beats a bare "#": invoices and
        // orders also use "nº"/"#", but rarely next to "chamado" or "ticket".
        static TIERS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
            let end = r"(?:[^0-9]|$)";
            let words = r"ticket|chamado|solicitacao|requisicao|request|incidente|incident|ocorrencia|protocolo|caso|case|id";
            [
                format!(
                    r"(?:\[\s*#\s*{DIGITS}\s*\]|\b(?:{words})\b\s*(?:#|n\.?o\b\.?|nr\b\.?|num(?:ero)?\b\.?)?\s*[:.-]?\s*#?\s*{DIGITS}){end}"
                ),
                // "no 2º andar" folds to "no 2o andar": an ordinal is no ID.
                format!(r"\bn\.?o\b\.?\s*:?\s*{DIGITS}(?:[^0-9a-z]|$)"),
                format!(r"#\s*{DIGITS}{end}"),
            ]
            .iter()
            .map(|s| Regex::new(s).expect("constant fallback regex"))
            .collect()
        });
        let tiers = TIERS.clone();
        Self { tiers, fold: true }
    }

    /// Human-readable description of what is matched (the compiled regex), printed by `template check`.
    pub fn describe(&self) -> String {
        let on = if self.fold {
            "the subject (reply prefixes skipped, then not; accents and case folded; whitespace collapsed)"
        } else {
            "the subject (reply prefixes skipped, then not; NFC, case-insensitive; whitespace collapsed)"
        };
        let tiers: Vec<String> = self.tiers.iter().map(|r| format!("/{r}/")).collect();
        format!(
            "ticket ID = first capture of {} on {on}",
            tiers.join(", else ")
        )
    }

    /// The ticket ID in an already-decoded subject (RFC 2047 decoding and header unfolding are done before this; but be robust to stray CR/LF/tab whitespace runs anyway). None when the anchor isn't there.
    pub fn find(&self, subject: &str) -> Option<i64> {
        let stripped = strip_reply_prefixes(subject);
        // Prefixes like "Re[2]:" carry digits; look past them first, but fall
        // back to the whole subject in case the stripping was too eager.
        for text in [stripped, subject] {
            let prepared = match self.fold {
                true => fold(text),
                false if text.is_ascii() => collapse(text),
                false => collapse(&text.nfc().collect::<String>()),
            };
            for re in &self.tiers {
                if let Some(caps) = re.captures(&prepared) {
                    let digits = caps.iter().skip(1).flatten().next()?;
                    return digits.as_str().trim().parse().ok();
                }
            }
        }
        None
    }
}

/// How many tokens (from the given end) make a distinctive anchor: enough to
/// hold two letters or digits, or a single token when `one` is set.
fn distinctive<'a>(tokens: impl Iterator<Item = &'a String>, one: bool) -> usize {
    let mut alnum = 0;
    for (n, t) in tokens.enumerate() {
        alnum += t.chars().filter(|c| c.is_alphanumeric()).count();
        if one || alnum >= 2 {
            return n + 1;
        }
    }
    usize::MAX
}

/// Regex source for folded text: prefix tokens, the digits, suffix tokens.
/// Each side comes with whether the template has a word boundary there.
fn anchored(pre: (&[String], bool), suf: (&[String], bool), or_end: bool) -> String {
    let join = |t: &[String]| {
        t.iter()
            .map(|s| regex::escape(s))
            .collect::<Vec<_>>()
            .join(r"\s*")
    };
    let wordy = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut re = String::new();
    match pre.0.first() {
        // Without a prefix the digits must not be the tail of a longer number.
        None => re.push_str("(?:^|[^0-9])"),
        Some(first) => {
            if pre.1 && wordy(first.chars().next()) {
                re.push_str(r"\b");
            }
            re.push_str(&join(pre.0));
            re.push_str(r"\s*");
        }
    }
    re.push_str(DIGITS);
    match suf.0.last() {
        None => re.push_str("(?:[^0-9]|$)"),
        Some(last) => {
            let b = if suf.1 && wordy(last.chars().last()) {
                r"\b"
            } else {
                ""
            };
            // A subject cut short (or an empty value after the ID) loses the
            // suffix; with a prefix in front, the end of the subject will do.
            let alt = if or_end { "|$" } else { "" };
            re.push_str(&format!(r"(?:\s*{}{b}{alt})", join(suf.0)));
        }
    }
    re
}

/// NFKD, marks dropped, lowercase, whitespace runs collapsed: "Solicitação
/// Nº" and NFD "SOLICITAÇÃO nº" both become "solicitacao no".
fn fold(s: &str) -> String {
    let plain: String = s
        .nfkd()
        .flat_map(char::to_lowercase)
        .filter(|c| !is_combining_mark(*c))
        .filter(|c| !matches!(c, '\u{200b}' | '\u{200d}' | '\u{feff}' | '\u{ad}'))
        // Clients type the degree sign for the ordinal ("n°"), and some
        // turn a hyphen into a dash.
        .map(|c| match c {
            '°' => 'o',
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            _ => c,
        })
        .collect();
    collapse(&plain)
}

/// Folded literal text split into words (punctuation stays attached).
fn tokens(literal: &str) -> Vec<String> {
    fold(literal).split_whitespace().map(String::from).collect()
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Strips any run of reply/forward prefixes at the start, repeated and mixed, case-insensitive, with optional bracketed counters: Re:, RE:, Res:, RES:, Resp:, Enc:, ENC:, Fwd:, Fw:, FW:, TR:, AW:, WG:, RV:, SV:, VS:, Antw:, Antwort:, Rif:, R:, I:, Odp:, PD:, YNT:, Ref:, Réf:, Re[2]:, Re(2):, "Re :", full-width colon "：", and also "[EXTERNAL]"/"[EXTERNO]" style tags that some gateways add. Returns the remainder (trimmed).
pub fn strip_reply_prefixes(subject: &str) -> &str {
    static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"(?i)^\s*(?:",
            r"(?:re|res|resp|enc|fwd|fw|tr|aw|wg|rv|sv|vs|antw|antwort|rif|r|i|odp|pd|ynt|ref|r(?:é|e\x{301})f)",
            r"\s*(?:\[\s*\d+\s*\]|\(\s*\d+\s*\))?\s*[:：]",
            r"|\[\s*(?:e-?mail\s+)?(?:external|externo|externa|extern|externe|ext|spam|caution|suspeito)",
            r"(?:\s+(?:e-?mail|sender|message|remetente))?\s*\]",
            r")\s*"
        ))
        .expect("constant prefix regex")
    });
    let mut rest = subject;
    while let Some(m) = PREFIX.find(rest) {
        if m.end() == 0 {
            break;
        }
        rest = &rest[m.end()..];
    }
    rest.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PT: &str = "Solicitação nº ${IDSOLICITACAOSERVICO} - ${SERVICO}";
    const BIZ: &str = "[4biz #${IDSOLICITACAOSERVICO}] ${NOMECONTATO}: ${CATEGORIA}";
    const LEAD: &str = "${IDSERVICEREQUEST} - Chamado aberto: ${SERVICO}";
    const FB: &str = "FALLBACK";
    const RX: &str = r"regex:chamado\s*#(\d+)";
    const ID: Option<i64> = Some(4521);
    const NONE: Option<i64> = None;

    fn matcher(spec: &str) -> SubjectMatcher {
        if spec == FB {
            return SubjectMatcher::fallback();
        }
        match spec.strip_prefix("regex:") {
            Some(re) => SubjectMatcher::from_regex(re).expect("test regex"),
            None => SubjectMatcher::from_template(spec).expect("test template"),
        }
    }

    #[test]
    fn table() {
        let rows: &[(&str, &str, Option<i64>)] = &[
            (PT, "Solicitação nº 4521 - Impressora", ID),
            (PT, "RES: Re: ENC: Solicitação nº 4521 - Impressora", ID),
            (PT, "Re[2]: Fwd: Solicitação nº 4521 - Impressora", ID),
            (PT, "AW: WG: Solicitação nº 4521 - Drucker", ID),
            (PT, "TR : Réf : Solicitação nº 4521 - Imprimante", ID),
            (PT, "RV: RE: Solicitação nº 4521 - Impresora", ID),
            (PT, "Re：Solicitação nº 4521 - Impressora", ID),
            (PT, "[EXTERNO] RES: Solicitação nº 4521 - Impressora", ID),
            (PT, "Solicitacao no 4521 - Impressora", ID),
            (PT, "SOLICITAÇÃO Nº 4521 - IMPRESSORA", ID),
            (PT, "Solicitac\u{327}a\u{303}o no\u{302} 4521 - Rede", ID),
            (PT, "Solicita\u{e7}\u{e3}o n\u{ba} 4521 - Impressora", ID),
            (PT, "Solicitação n° 4521 - Impressora", ID),
            (PT, "Solicitação nº\r\n 4521 - Impressora", ID),
            (PT, "Solicitação\tnº4521  -  Impressora", ID),
            (PT, "Pedido 99881 - RE: Solicitação nº 4521 - Rede", ID),
            (PT, "Pedido nº 99881 - RE: Solicitação nº 4521 - Rede", ID),
            (
                PT,
                "Solicitação nº 4521 - NF 123456 de 03/03/2020 10:00",
                ID,
            ),
            (PT, "Ligar (11) 3456-7890 ref. Solicitação nº 4521 - TI", ID),
            (PT, "Re: nº 4521 - ainda sem solução", ID),
            (PT, "Re: nº 4521 ainda sem solução", NONE),
            (PT, "Solicitação nº 4521 - x / Solicitação nº 4600 - y", ID),
            (PT, "RE: Impressora do 3º andar parada em 03/03/2020", NONE),
            (PT, "Pedido 99881 - Fatura 2020/0042", NONE),
            (PT, "Solicitação nº 99999999999999999999 - Impressora", NONE),
            (PT, "Solicitação nº abc - Impressora", NONE),
            (BIZ, "RE: [4biz #4521] Maria Silva: Hardware", ID),
            (BIZ, "[4BIZ # 4521] Maria Silva: Hardware", ID),
            (BIZ, "Fw: Pedido #777 - [4biz #4521] João: Rede", ID),
            (BIZ, "Pedido #777 sem chamado", NONE),
            (LEAD, "RE: 4521 - Chamado aberto: Impressora", ID),
            (LEAD, "Re[3]: 4521 - chamado ABERTO: Rede", ID),
            (LEAD, "Res: 2020 relatório 4521 - Chamado aberto: Rede", ID),
            (LEAD, "Impressora quebrada", NONE),
            (FB, "Re: [#123] Impressora", Some(123)),
            (FB, "Fatura nº 5566 - Chamado 4521", ID),
            (FB, "RES: Solicitacao: 4521", ID),
            (FB, "Ticket 88 about order 5566", Some(88)),
            (FB, "n° 31 - Rede", Some(31)),
            (FB, "Impressora no 2º andar", NONE),
            (FB, "Re: No. 77", Some(77)),
            (FB, "Request #9", Some(9)),
            (FB, "ID 123", Some(123)),
            (FB, "Reunião às 10:00 em 03/03/2020", NONE),
            (RX, "RE: Chamado #4521 - rede", ID),
            (RX, "Re: CHAMADO   #4521", ID),
            (RX, "Chamado 4521", NONE),
        ];
        assert!(rows.len() >= 35);
        for (spec, subject, want) in rows {
            assert_eq!(matcher(spec).find(subject), *want, "{spec:?} / {subject:?}");
        }
    }

    #[test]
    fn encoded_subjects() {
        let rows: &[(&[u8], Option<i64>)] = &[
            (b"Subject: =?ISO-8859-1?Q?RES:_Solicita=E7=E3o_n=BA_4521?=\r\n\r\nx", ID),
            (b"Subject: =?UTF-8?Q?Re:_Solicita=C3=A7=C3=A3o_n=C2=BA_4521_-_Rede?=\r\n\r\nx", ID),
            (b"Subject: =?UTF-8?B?RW5jOiBTb2xpY2l0YcOnw6NvIG7CuiA0NTIx?=\r\n\r\nx", ID),
            (b"Subject: =?windows-1252?Q?AW:_Solicita=E7=E3o_n=BA_4521_=96_Impressora?=\r\n\r\nx", ID),
            (
                b"Subject: =?UTF-8?Q?RES:_Solicita=C3=A7=C3=A3o?=\r\n =?ISO-8859-1?Q?_n=BA_4521_-_Impressora?=\r\n\r\nx",
                ID,
            ),
            (b"Subject: =?UTF-8?Q?Re:_Pedido_99881_-_Jo=C3=A3o?=\r\n\r\nx", NONE),
        ];
        let m = matcher(PT);
        for (raw, want) in rows {
            let parser = mail_parser::MessageParser::default();
            let msg = parser.parse(*raw).expect("parses");
            let subject = msg.subject().expect("has subject");
            assert_eq!(m.find(subject), *want, "{subject:?}");
        }
    }

    #[test]
    fn strips_prefixes() {
        let strip = strip_reply_prefixes;
        assert_eq!(strip("RES: Re: ENC: Solicitação nº 1"), "Solicitação nº 1");
        assert_eq!(strip("Re[2]: Re(3): FW:Fwd : x"), "x");
        assert_eq!(strip("AW: WG: SV: VS: Antw: Antwort: Rif: R: I: x"), "x");
        assert_eq!(
            strip("Odp: PD: YNT: Ref: Réf: Re\u{301}f: Resp: TR: x"),
            "x"
        );
        assert_eq!(strip("[EXTERNAL] re：[Externo] Enc: x "), "x");
        assert_eq!(strip("[4biz #12] Re: x"), "[4biz #12] Re: x");
        assert_eq!(strip("Relatório mensal"), "Relatório mensal");
        assert_eq!(strip("Resposta: ok"), "Resposta: ok");
        assert_eq!(strip("  Re:  "), "");
    }

    #[test]
    fn errors_and_description() {
        use SubjectError::*;
        let tmpl = |t: &str| SubjectMatcher::from_template(t).err();
        let rx = |r: &str| SubjectMatcher::from_regex(r).err();
        assert!(matches!(tmpl("Chamado ${SERVICO}"), Some(NoIdKey)));
        assert!(matches!(tmpl(""), Some(NoIdKey)));
        assert!(matches!(
            tmpl("${A} ${IDSERVICEREQUEST} ${B}"),
            Some(NoAnchor)
        ));
        assert!(matches!(rx("(\\d+"), Some(BadRegex(_))));
        assert!(matches!(rx("#\\d+"), Some(RegexGroups(0))));
        assert!(matches!(rx("(#)(\\d+)"), Some(RegexGroups(2))));
        let d = matcher(BIZ).describe();
        assert!(d.contains(r"\[4biz\s*\#\s*([0-9]{1,18})(?:\s*\])"), "{d}");
    }
}
