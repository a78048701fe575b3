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
    pub(super) opens: Regex,
    pub(super) wrote: Regex,
    pub(super) wrote_any: Regex,
    pub(super) wrote_bare: Regex,
    pub(super) original: Regex,
    pub(super) forward: Regex,
    pub(super) from: Regex,
    pub(super) date: Regex,
    pub(super) to: Regex,
    pub(super) subject: Regex,
    /// "From: … Sent: … Subject: …" flattened on one line.
    pub(super) flat_header: Regex,
    pub(super) mobile: Regex,
    /// Old Gmail: "2016-03-03 17:21 GMT+01:00 Name <a@b>:", "2013/7/20 Name <a@b>".
    pub(super) date_first: Regex,
    /// A year, a time or an address: what makes "… wrote:" an attribution.
    pub(super) dated: Regex,
    pub(super) email: Regex,
    pub(super) html_quote: Regex,
    pub(super) word_p: Regex,
}

pub(super) fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let alt = |f: fn(&Locale) -> &'static [&'static str]| {
            LOCALES.iter().flat_map(f).copied().collect::<Vec<_>>().join("|")
        };
        let label = |f| format!(r"(?i)^(?:{})\s*[:：]", alt(f));
        // The table is constant: a pattern that fails to compile is a bug
        // caught by the unit tests, never an input-dependent failure.
        let re = |p: &str| Regex::new(p).expect("locale table pattern");
        Rules {
            opens: re(&format!(r"(?i)^(?:{})\b", alt(|l| l.opens))),
            wrote: re(&format!(r"(?i)(?:{}).{{0,120}}[:：]$", alt(|l| l.wrote))),
            wrote_any: re(&format!(r"(?i)(?:{})", alt(|l| l.wrote))),
            wrote_bare: re(&format!(r"(?i)(?:{})$", alt(|l| l.wrote))),
            original: re(&format!(r"(?i)^(?:{})$", alt(|l| l.original))),
            forward: re(&format!(r"(?i)^(?:{})\s*[:：]?$", alt(|l| l.forward))),
            from: re(&label(|l| l.from)),
            date: re(&label(|l| l.date)),
            to: re(&label(|l| l.to)),
            subject: re(&label(|l| l.subject)),
            flat_header: re(&format!(
                r"(?i)^(?:{})\s*:.+\s(?:{})\s*:.+\s(?:{}|{})\s*:",
                alt(|l| l.from),
                alt(|l| l.date),
                alt(|l| l.to),
                alt(|l| l.subject)
            )),
            mobile: re(&format!(r"(?i)^[\s(<\[]*(?:{})", alt(|l| l.mobile))),
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
