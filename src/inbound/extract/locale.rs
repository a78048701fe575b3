//! The language data of reply extraction, in one table, and the patterns
//! compiled from it once.

use std::sync::OnceLock;

use regex::Regex;

/// One language's markers. Entries are regex fragments, matched without
/// case against a line whose `*` bold markers, NBSPs and bidi marks are gone.
struct Locale {
    /// Words that open a wrapped attribution ("On", "Em"…).
    opens: &'static [&'static str],
    /// Verbs of an attribution; the line then ends with a colon.
    wrote: &'static [&'static str],
    /// "Original Message" separators, without the dashes.
    original: &'static [&'static str],
    /// Forward markers ("Forwarded message", "Begin forwarded message").
    forward: &'static [&'static str],
    /// Header-block labels, each followed by `:`.
    from: &'static [&'static str],
    date: &'static [&'static str],
    to: &'static [&'static str],
    subject: &'static [&'static str],
    /// Client signatures, matched at the start of a line.
    mobile: &'static [&'static str],
}

#[rustfmt::skip]
static LOCALES: &[Locale] = &[
    Locale { // en
        opens: &["on", "at"], wrote: &["wrote", "writes"], original: &["original message"],
        forward: &["forwarded message", "begin forwarded (?:message|text)"],
        from: &["from"], date: &["sent", "date"], to: &["to", "cc"], subject: &["subject"],
        mobile: &[r"sent from my(?-u:\b)", r"sent from (?:outlook|yahoo|mail|windows mail|mailbox|aol|proton ?mail|samsung|\[mail\])",
            r"sent (?:via|with|using) \S+", r"get \[?outlook for", r"from my (?:iphone|ipad|android|mobile|phone|samsung|galaxy)",
            r"sent by galaxy", r"sent from a (?:phone|mobile)"],
    },
    Locale { // pt
        opens: &["em", "no dia"], wrote: &["escreveu"], original: &["mensagem original"],
        forward: &["mensagem encaminhada", "início da mensagem encaminhada", "mensagem reencaminhada"],
        from: &["de"], date: &["enviado", "enviada", "enviado em", "enviada em", "data"], to: &["para", "cc", "cco"],
        subject: &["assunto"],
        mobile: &[r"enviado do meu(?-u:\b)", r"enviad[oa] (?:a partir )?d[oe] (?:meu |minha )?(?:iphone|ipad|android|smartphone|celular|tablet|samsung|galaxy|outlook|e-?mail|yahoo|dispositivo)",
            r"enviad[oa] (?:via|pelo|pela) (?:o |a )?(?:app|aplicativo|outlook|gmail|yahoo|e-?mail|celular|iphone|android|smartphone)(?-u:\b)", r"obter (?:o )?outlook para", r"baixe o outlook para"],
    },
    Locale { // es
        opens: &["el"], wrote: &["escribió"], original: &["mensaje original"],
        forward: &["mensaje reenviado", "inicio del mensaje reenviado"],
        from: &["de"], date: &["enviado", "enviado el", "fecha"], to: &["para", "cc"], subject: &["asunto"],
        mobile: &[r"enviado desde mi(?-u:\b)", r"enviado desde (?:outlook|yahoo|correo|mail)", r"obtener outlook para"],
    },
    Locale { // fr
        opens: &["le"], wrote: &[r"a\s+écrit"], original: &["message d'origine", "message original"],
        forward: &["message transféré", "début du message (?:transféré|réexpédié)"],
        from: &["de"], date: &["envoyé", "date"], to: &["à", "a", "cc"], subject: &["objet"],
        mobile: &[r"envoyé (?:de|depuis) mon(?-u:\b)", r"obtenir outlook pour"],
    },
    Locale { // de
        opens: &["am"], wrote: &["schrieb"], original: &["ursprüngliche nachricht", "original-nachricht"],
        forward: &["weitergeleitete nachricht", "anfang der weitergeleiteten nachricht"],
        from: &["von"], date: &["gesendet", "datum"], to: &["an", "cc"], subject: &["betreff"],
        mobile: &[r"von meinem .{1,40} gesendet", r"gesendet von meinem(?-u:\b)", r"gesendet mit \S+",
            r"diese nachricht wurde von meinem .{1,80} gesendet"],
    },
    Locale { // it
        opens: &["il"], wrote: &["ha scritto"], original: &["messaggio originale"],
        forward: &["messaggio inoltrato", "inizio messaggio inoltrato"],
        from: &["da"], date: &["inviato", "data"], to: &["a", "cc"], subject: &["oggetto"],
        mobile: &[r"inviato dal mio(?-u:\b)", r"inviato da (?:iphone|ipad|outlook|yahoo)"],
    },
    Locale { // nl
        opens: &["op"], wrote: &["schreef", "geschreven"], original: &["oorspronkelijk bericht", "origineel bericht"],
        forward: &["doorgestuurd bericht", "begin doorgestuurd bericht"],
        from: &["van"], date: &["verzonden", "datum"], to: &["aan", "cc"], subject: &["onderwerp"],
        mobile: &[r"verzonden (?:vanaf|met|van) \S+", r"verstuurd (?:vanaf|met|van) \S+"],
    },
    Locale { // sv, no, da
        opens: &["den"], wrote: &["skrev"], original: &["ursprungligt meddelande", "opprinnelig melding", "oprindelig meddelelse"],
        forward: &["vidarebefordrat meddelande", "videresendt melding"],
        from: &["från", "fra"], date: &["skickat", "sendt", "datum", "dato"], to: &["till", "til"], subject: &["ämne", "emne"],
        mobile: &[r"skickat från min(?-u:\b)", r"sendt fra min(?-u:\b)"],
    },
    Locale { // pl
        opens: &["dnia", "w dniu"], wrote: &[r"napisał(?:\(a\)|a)?"], original: &["oryginalna wiadomość", "wiadomość oryginalna"],
        forward: &["przekazana wiadomość"],
        from: &["od"], date: &["wysłano", "data"], to: &["do", "dw"], subject: &["temat"],
        mobile: &[r"wysłane z (?:mojego )?\S+"],
    },
    Locale { // ru, uk
        opens: &[], wrote: &["написал(?:а)?", "пишет", "пише", "написав(?:ла)?"], original: &["исходное сообщение", "оригінальне повідомлення"],
        forward: &["пересылаемое сообщение", "переслане повідомлення"],
        from: &["от", "від"], date: &["отправлено", "дата", "надіслано"], to: &["кому"], subject: &["тема"],
        mobile: &[r"отправлено с (?:моего )?\S+", r"надіслано з (?:мого )?\S+"],
    },
    Locale { // zh, ja, ko
        opens: &[], wrote: &["写道", "寫道", "のメッセージ", "書きました", "님이 작성"], original: &[],
        forward: &["转发的邮件", "轉寄的郵件"],
        from: &["发件人", "寄件者", "差出人"], date: &["发送时间", "日期", "寄件日期", "送信日時"],
        to: &["收件人", "收件者", "宛先"], subject: &["主题", "主旨", "件名"],
        mobile: &["发自我的", "從我的 ?iphone 傳送", "寄自我的", "iphoneから送信"],
    },
];

pub(super) struct Rules {
    pub(super) opens: Anchored,
    pub(super) wrote: Regex,
    pub(super) wrote_any: Regex,
    pub(super) wrote_bare: Regex,
    pub(super) original: Anchored,
    pub(super) forward: Anchored,
    pub(super) from: Anchored,
    pub(super) date: Anchored,
    pub(super) to: Anchored,
    pub(super) subject: Anchored,
    /// "From: … Sent: … Subject: …" flattened on one line.
    pub(super) flat_header: Regex,
    pub(super) mobile: Anchored,
    /// Old Gmail: "2016-03-03 17:21 GMT+01:00 Name <a@b>:", "2013/7/20 Name <a@b>".
    pub(super) date_first: Regex,
    /// A year, a time or an address: what makes "… wrote:" an attribution.
    pub(super) dated: Regex,
    pub(super) email: Regex,
    pub(super) html_quote: Regex,
    pub(super) word_p: Regex,
}

/// A rule anchored at the start of the line, with the first letters its
/// words can start with. Every line of every reply meets these rules, and
/// a regex call costs more than the whole test of a line that starts with
/// a letter no word of the table starts with.
pub(super) struct Anchored {
    re: Regex,
    lead: Lead,
}

impl Anchored {
    pub(super) fn is_match(&self, line: &str) -> bool {
        self.lead.admits(line) && self.re.is_match(line)
    }
}

/// The ASCII characters (lowercased) a match can start with, as a bit set.
/// A line that starts with any other character than ASCII is always handed
/// to the regex, so case folding to non-ASCII letters (the Kelvin sign is a
/// `k`) can never hide a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lead {
    ascii: u128,
    /// The pattern allows `[\s(<\[]*` before the words (`mobile`).
    skip_open: bool,
}

impl Lead {
    const ANY: u128 = u128::MAX;

    /// From the regex alternatives the rule is built of. An alternative
    /// that does not start with a literal character makes the filter admit
    /// every line.
    pub(super) fn of(alternatives: &[&str], skip_open: bool) -> Lead {
        let mut ascii = 0u128;
        for alt in alternatives {
            let mut chars = alt.chars();
            let (first, second) = (chars.next(), chars.next());
            let meta = |c: char| "\\()[].^$|?*+{".contains(c);
            let optional = second.is_some_and(|c| matches!(c, '?' | '*' | '{'));
            let Some(first) = first.filter(|&c| !meta(c) && !optional) else {
                return Lead {
                    ascii: Self::ANY,
                    skip_open,
                };
            };
            for c in std::iter::once(first)
                .chain(first.to_lowercase())
                .chain(first.to_uppercase())
            {
                if c.is_ascii() {
                    ascii |= 1 << (c.to_ascii_lowercase() as u8);
                }
            }
        }
        Lead { ascii, skip_open }
    }

    /// False only when the rule cannot match `line`.
    pub(super) fn admits(&self, line: &str) -> bool {
        let line = match self.skip_open {
            true => {
                line.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '(' | '<' | '['))
            }
            false => line,
        };
        match line.as_bytes().first() {
            Some(&b) if b.is_ascii() => self.ascii >> b.to_ascii_lowercase() & 1 == 1,
            _ => true,
        }
    }
}

/// False only when `date_first` cannot match: it starts with four digits
/// and a `-` or a `/`. A line with a non-ASCII character in its first five
/// bytes goes to the regex (`\d` also takes other scripts' digits).
pub(super) fn may_start_with_date(line: &str) -> bool {
    let b = line.as_bytes();
    if b.iter().take(5).any(|c| !c.is_ascii()) {
        return true;
    }
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && matches!(b[4], b'-' | b'/')
}

pub(super) fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let list = |f: fn(&Locale) -> &'static [&'static str]| {
            LOCALES.iter().flat_map(f).copied().collect::<Vec<_>>()
        };
        let alt = |f| list(f).join("|");
        // The table is constant: a pattern that fails to compile is a bug
        // caught by the unit tests, never an input-dependent failure.
        let re = |p: &str| Regex::new(p).expect("locale table pattern");
        let anchored = |f, pattern: String, skip_open| Anchored {
            re: re(&pattern),
            lead: Lead::of(&list(f), skip_open),
        };
        let label = |f| anchored(f, format!(r"(?i)^(?:{})\s*[:：]", alt(f)), false);
        Rules {
            opens: anchored(|l| l.opens, format!(r"(?i)^(?:{})\b", alt(|l| l.opens)), false),
            wrote: re(&format!(r"(?i)(?:{}).{{0,120}}[:：]$", alt(|l| l.wrote))),
            wrote_any: re(&format!(r"(?i)(?:{})", alt(|l| l.wrote))),
            wrote_bare: re(&format!(r"(?i)(?:{})$", alt(|l| l.wrote))),
            original: anchored(|l| l.original, format!(r"(?i)^(?:{})$", alt(|l| l.original)), false),
            forward: anchored(
                |l| l.forward,
                format!(r"(?i)^(?:{})\s*[:：]?$", alt(|l| l.forward)),
                false,
            ),
            from: label(|l| l.from),
            date: label(|l| l.date),
            to: label(|l| l.to),
            subject: label(|l| l.subject),
            flat_header: re(&format!(
                r"(?i)^(?:{})\s*:.+\s(?:{})\s*:.+\s(?:{}|{})\s*:",
                alt(|l| l.from),
                alt(|l| l.date),
                alt(|l| l.to),
                alt(|l| l.subject)
            )),
            mobile: anchored(|l| l.mobile, format!(r"(?i)^[\s(<\[]*(?:{})", alt(|l| l.mobile)), true),
            date_first: re(concat!(
                r"^(?:\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2} GMT[+-]\d{1,2}:?\d{2}",
                r"|\d{4}/\d{1,2}/\d{1,2} [^:]*<[^\s<>]+@[^\s<>]+>?:?$)"
            )),
            dated: re(r"(?-u:\b)(?:19|20)\d{2}(?-u:\b)|\d{1,2}[:.h]\d{2}|@"),
            email: re(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
            html_quote: re(concat!(
                r#"<[a-z][a-z0-9]*(?-u:\b)[^>]*(?-u:\b)(?:class\s*=\s*["']?[^"'>]*(?-u:\b)(?:gmail_quote|yahoo_quoted|moz-cite-prefix)(?-u:\b)"#,
                r#"|id\s*=\s*["']?(?:divrplyfwdmsg|appendonsend)(?-u:\b))|<blockquote(?-u:\b)[^>]*(?-u:\b)type\s*=\s*["']?cite"#
            )),
            word_p: re(r"(?i)<(/?)p(?-u:\b)"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_syntax::hir::literal::{ExtractKind, Extractor};

    /// Every byte a match of `pattern` can start with (None: any byte).
    fn first_bytes(pattern: &str) -> Option<Vec<u8>> {
        let hir = regex_syntax::parse(pattern).expect("pattern parses");
        let mut ex = Extractor::new();
        ex.kind(ExtractKind::Prefix)
            .limit_literal_len(1)
            .limit_total(1000);
        let seq = ex.extract(&hir);
        let lits = seq.literals()?;
        Some(
            lits.iter()
                .filter_map(|l| l.as_bytes().first().copied())
                .collect(),
        )
    }

    #[test]
    fn the_lead_filters_never_hide_a_match() {
        let r = rules();
        let all = [
            ("opens", &r.opens),
            ("original", &r.original),
            ("forward", &r.forward),
            ("from", &r.from),
            ("date", &r.date),
            ("to", &r.to),
            ("subject", &r.subject),
            ("mobile", &r.mobile),
        ];
        for (name, rule) in all {
            // What `skip_open` skips is checked below; here, the words.
            let words = rule.re.as_str().replace(r"^[\s(<\[]*", "^");
            let starts = first_bytes(&words);
            for b in 0u8..128 {
                let line = format!("{}rest of the line", b as char);
                let possible = starts.as_ref().is_none_or(|s| s.contains(&b));
                assert!(
                    !possible || rule.lead.admits(&line),
                    "{name}: a match may start with {:?}, the filter drops it",
                    b as char
                );
            }
            // Whatever starts with a non-ASCII character goes to the regex.
            assert!(rule.lead.admits("\u{212A}elvin"), "{name}");
        }
        for opened in [
            "(Sent from my phone)",
            "<sent from my phone>",
            "  [Sent from my phone",
        ] {
            assert!(
                r.mobile.is_match(opened) && r.mobile.lead.admits(opened),
                "{opened}"
            );
        }
    }

    #[test]
    fn the_lead_filters_drop_lines_no_word_starts_like() {
        let r = rules();
        let digits = "1XXXXXXXXXXXXXXXXXXXXXXXXXXX";
        for rule in [
            &r.opens, &r.forward, &r.from, &r.date, &r.to, &r.subject, &r.mobile,
        ] {
            assert!(!rule.lead.admits(digits));
        }
        assert!(r.from.lead.admits("De: Suporte <s@x.com>"));
        assert!(r.mobile.lead.admits("(Enviado do meu iPhone)"));
        assert!(!r.mobile.lead.admits("(1) item"));
    }

    #[test]
    fn the_date_filter_admits_what_date_first_matches() {
        let r = rules();
        for line in [
            "2016-03-03 17:21 GMT+01:00 Ana <a@b.example>:",
            "2013/7/20 Ana <a@b.example>",
            "\u{0662}\u{0660}\u{0661}\u{0666}-03-03 17:21 GMT+01:00 x",
        ] {
            assert!(may_start_with_date(line), "{line}");
        }
        assert!(r.date_first.is_match("2013/7/20 Ana <a@b.example>"));
        for line in ["1XXXXXXXX", "12:30 reunião", "2016 foi um ano", "1234"] {
            assert!(!may_start_with_date(line), "{line}");
            assert!(!r.date_first.is_match(line), "{line}");
        }
    }
}
