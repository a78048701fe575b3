//! Reply extraction: from the body of a requester's e-mail, keep what the
//! sender wrote new — without the quoted history (attribution lines, Outlook
//! header blocks, "Original Message" and forward separators, trailing `>`
//! blocks) and with the signature set apart. It only reads text: it never
//! changes or drops the message (the raw bytes are stored elsewhere, and a
//! reply with nothing new is marked `empty`, not discarded), never guesses a
//! signature that has no delimiter or client line, and never panics.
//!
//! Every language-dependent word comes from the one table `LOCALES`.

use std::sync::OnceLock;

use html2text::render::TextDecorator;
use mail_parser::{Message, PartType};
use regex::Regex;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// What the sender wrote new, without quoted history and without the
    /// signature. Trimmed. LF line ends.
    pub text: String,
    /// The signature block that was separated, if any.
    pub signature: Option<String>,
    /// True when nothing new was written (only a quote). `text` may then
    /// still hold a bare `>` quote that carried no sign of being history.
    pub empty: bool,
}

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
        opens: &["on", "at"], wrote: &["wrote"], original: &["original message"],
        forward: &["forwarded message", "begin forwarded message"],
        from: &["from"], date: &["sent", "date"], to: &["to", "cc"], subject: &["subject"],
        mobile: &[r"sent from my\b", r"sent from (?:outlook|yahoo|mail|windows mail|mailbox|aol|proton ?mail|samsung|\[mail\])",
            r"sent (?:via|with|using) \S+", r"get \[?outlook for", r"from my (?:iphone|ipad|android|mobile|phone|samsung|galaxy)",
            r"sent by galaxy", r"sent from a (?:phone|mobile)"],
    },
    Locale { // pt
        opens: &["em", "no dia"], wrote: &["escreveu"], original: &["mensagem original"],
        forward: &["mensagem encaminhada", "início da mensagem encaminhada", "mensagem reencaminhada"],
        from: &["de"], date: &["enviado", "enviada", "enviado em", "enviada em", "data"], to: &["para", "cc", "cco"],
        subject: &["assunto"],
        mobile: &[r"enviado do meu\b", r"enviad[oa] (?:a partir )?d[oe] (?:meu |minha )?(?:iphone|ipad|android|smartphone|celular|tablet|samsung|galaxy|outlook|e-?mail|yahoo|dispositivo)",
            r"enviad[oa] (?:via|pelo|pela) \S+", r"obter (?:o )?outlook para", r"baixe o outlook para"],
    },
    Locale { // es
        opens: &["el"], wrote: &["escribió"], original: &["mensaje original"],
        forward: &["mensaje reenviado", "inicio del mensaje reenviado"],
        from: &["de"], date: &["enviado", "enviado el", "fecha"], to: &["para", "cc"], subject: &["asunto"],
        mobile: &[r"enviado desde mi\b", r"enviado desde (?:outlook|yahoo|correo|mail)", r"obtener outlook para"],
    },
    Locale { // fr
        opens: &["le"], wrote: &[r"a\s+écrit"], original: &["message d'origine", "message original"],
        forward: &["message transféré", "début du message (?:transféré|réexpédié)"],
        from: &["de"], date: &["envoyé", "date"], to: &["à", "a", "cc"], subject: &["objet"],
        mobile: &[r"envoyé (?:de|depuis) mon\b", r"obtenir outlook pour"],
    },
    Locale { // de
        opens: &["am"], wrote: &["schrieb"], original: &["ursprüngliche nachricht", "original-nachricht"],
        forward: &["weitergeleitete nachricht", "anfang der weitergeleiteten nachricht"],
        from: &["von"], date: &["gesendet", "datum"], to: &["an", "cc"], subject: &["betreff"],
        mobile: &[r"von meinem .{1,40} gesendet", r"gesendet von meinem\b", r"gesendet mit \S+",
            r"diese nachricht wurde von meinem .{1,80} gesendet"],
    },
    Locale { // it
        opens: &["il"], wrote: &["ha scritto"], original: &["messaggio originale"],
        forward: &["messaggio inoltrato", "inizio messaggio inoltrato"],
        from: &["da"], date: &["inviato", "data"], to: &["a", "cc"], subject: &["oggetto"],
        mobile: &[r"inviato dal mio\b", r"inviato da (?:iphone|ipad|outlook|yahoo)"],
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
        mobile: &[r"skickat från min\b", r"sendt fra min\b"],
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
    Locale { // zh, ja
        opens: &[], wrote: &["写道", "寫道", "のメッセージ", "書きました"], original: &[],
        forward: &["转发的邮件", "轉寄的郵件"],
        from: &["发件人", "寄件者", "差出人"], date: &["发送时间", "日期", "寄件日期", "送信日時"],
        to: &["收件人", "收件者", "宛先"], subject: &["主题", "主旨", "件名"],
        mobile: &["发自我的", "從我的 ?iphone 傳送", "寄自我的", "iphoneから送信"],
    },
];

struct Rules {
    opens: Regex,
    wrote: Regex,
    wrote_bare: Regex,
    original: Regex,
    forward: Regex,
    from: Regex,
    date: Regex,
    to: Regex,
    subject: Regex,
    /// "From: … Sent: … Subject: …" flattened on one line.
    flat_header: Regex,
    mobile: Regex,
    /// Old Gmail: "2016-03-03 17:21 GMT+01:00 Name <a@b>:".
    date_first: Regex,
    email: Regex,
    html_quote: Regex,
}

fn rules() -> &'static Rules {
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
            date_first: re(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"),
            email: re(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
            html_quote: re(concat!(
                r#"<[a-z][a-z0-9]*\b[^>]*\b(?:class\s*=\s*["']?[^"'>]*\b(?:gmail_quote|yahoo_quoted|moz-cite-prefix)\b"#,
                r#"|id\s*=\s*["']?(?:divrplyfwdmsg|appendonsend)\b)|<blockquote\b[^>]*\btype\s*=\s*["']?cite"#
            )),
        }
    })
}

/// The line as the rules see it: NFC, bold markers, NBSPs and bidi marks gone.
fn norm(line: &str) -> String {
    let s: String = line
        .nfc()
        .filter(|c| !matches!(c, '*' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}'))
        .map(|c| {
            if matches!(c, '\u{A0}' | '\u{202F}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    s.trim().to_owned()
}

fn blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// `>` quoting, also supercite initials ("C>", "RC>").
fn is_quote(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    let caps = t.chars().take_while(char::is_ascii_uppercase).count();
    caps <= 3 && t[caps..].starts_with('>')
}

fn is_ruler(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() >= 2 && t.chars().all(|c| "-_=*~+#─━–—".contains(c))
}

/// A line that starts the signature: "-- ", an underscore rule, a client line.
fn is_sig_delim(raw: &str, norm: &str) -> bool {
    raw.trim_end() == "--"
        || (norm.len() >= 5 && norm.chars().all(|c| c == '_'))
        // U+1427, left alone on a line by some tracking add-ons.
        || norm == "\u{1427}"
        || rules().mobile.is_match(norm)
}

enum Marker {
    /// An attribution line ("On … wrote:") spanning that many lines.
    Attribution(usize),
    Forward,
    /// Any other start of quoted history.
    History,
}

fn marker(raw: &[&str], norm: &[String], i: usize) -> Option<Marker> {
    let r = rules();
    let n = norm.get(i)?;
    if n.is_empty() || is_quote(raw.get(i)?) {
        return None;
    }
    let core = n.trim_matches(|c| matches!(c, '-' | '_' | '=' | ' '));
    if raw[i].contains("--") && r.original.is_match(core) {
        return Some(Marker::History);
    }
    if r.forward.is_match(core) {
        return Some(Marker::Forward);
    }
    if r.from.is_match(n) {
        let near = norm.iter().skip(i + 1).take(8);
        let (mut date, mut to) = (false, false);
        for l in near {
            date |= r.date.is_match(l);
            to |= r.to.is_match(l) || r.subject.is_match(l);
        }
        if (date && to) || r.flat_header.is_match(n) {
            return Some(Marker::History);
        }
    }
    if n.len() < 200
        && r.date_first.is_match(n)
        && (n.contains("GMT") || n.contains('@') || n.ends_with(':'))
    {
        return Some(Marker::History);
    }
    attribution(norm, i).map(Marker::Attribution)
}

/// An attribution at line `i`, maybe wrapped over up to five lines (Gmail
/// wraps at 78 columns, sometimes right inside the `<address>`).
fn attribution(norm: &[String], i: usize) -> Option<usize> {
    let r = rules();
    let first = &norm[i];
    // Only a line that looks like the start of one may be joined with the
    // next, or a sentence ending the reply would swallow the attribution.
    let may_wrap = r.opens.is_match(first)
        || first.starts_with(|c: char| c.is_ascii_digit())
        || r.email.is_match(first)
        || first.ends_with('<');
    let (mut joined, mut blanks) = (String::new(), 0);
    for (k, l) in norm.iter().enumerate().skip(i).take(5) {
        if k > i && !may_wrap {
            break;
        }
        if l.is_empty() {
            blanks += 1;
            if blanks > 1 {
                break;
            }
            continue;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(l);
        if joined.len() > 400 {
            break;
        }
        let t = joined.trim_matches(|c| matches!(c, '-' | ' '));
        let dated = t.contains(|c: char| c.is_ascii_digit()) || t.contains('@');
        // Zoho writes "---- On … wrote ----", without the colon.
        let bare = r.opens.is_match(t) && r.wrote_bare.is_match(t);
        if dated && (r.wrote.is_match(t) || bare) {
            return Some(k - i + 1);
        }
    }
    None
}

/// After an attribution: a `>` block and then more new text, i.e. an
/// answer written between the quoted lines.
fn interleaved(raw: &[&str], norm: &[String], mut j: usize) -> bool {
    while j < raw.len() && blank(raw[j]) {
        j += 1;
    }
    if j >= raw.len() || !is_quote(raw[j]) {
        return false;
    }
    while j < raw.len() && (blank(raw[j]) || is_quote(raw[j])) {
        j += 1;
    }
    j < raw.len() && !is_sig_delim(raw[j], &norm[j]) && marker(raw, norm, j).is_none()
}

/// Whether a body made only of `>` lines shows it is history.
fn quoted_history(lines: &[&str]) -> bool {
    let inner: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.trim_start()
                .trim_start_matches(|c| matches!(c, '>' | ' '))
        })
        .collect();
    let norms: Vec<String> = inner.iter().map(|l| norm(l)).collect();
    (0..inner.len()).any(|i| marker(&inner, &norms, i).is_some())
}

/// From a plain-text body.
pub fn extract_text(body: &str) -> Extracted {
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    let raw: Vec<&str> = body.split('\n').collect();
    let norms: Vec<String> = raw.iter().map(|l| norm(l)).collect();
    let n = raw.len();
    let (mut out, mut sig, mut end, mut i) = (Vec::new(), None, n, 0);
    while i < n {
        if sig.is_some() {
            // The signature runs until the history starts.
            if is_quote(raw[i]) || marker(&raw, &norms, i).is_some() {
                end = i;
                break;
            }
            i += 1;
            continue;
        }
        if blank(raw[i]) || is_quote(raw[i]) {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        if is_sig_delim(raw[i], &norms[i]) {
            sig = Some(i);
            i += 1;
            continue;
        }
        let top = out.iter().all(|l| blank(l));
        match marker(&raw, &norms, i) {
            None => {
                out.push(raw[i]);
                i += 1;
            }
            // Reply written below the quote: drop the attribution and the
            // quote right after it, keep reading.
            Some(Marker::Attribution(len)) if top => {
                i += len;
                while i < n && blank(raw[i]) {
                    i += 1;
                }
                while i < n && (blank(raw[i]) || is_quote(raw[i])) {
                    i += 1;
                }
            }
            Some(Marker::Attribution(len)) if interleaved(&raw, &norms, i + len) => i += len,
            // A forward with no comment: the forwarded text is the message.
            Some(Marker::Forward) if top => {
                i += 1;
                while i < n && blank(raw[i]) {
                    i += 1;
                }
                let r = rules();
                if i < n && (r.from.is_match(&norms[i]) || r.date.is_match(&norms[i])) {
                    while i < n && !blank(raw[i]) {
                        i += 1;
                    }
                }
            }
            Some(_) => {
                end = i;
                break;
            }
        }
    }
    trim_tail(&mut out);
    match out.iter().rposition(|l| !is_quote(l) && !blank(l)) {
        None if quoted_history(&out) => out.clear(),
        Some(last) if last + 1 < out.len() => {
            out.truncate(last + 1);
            drop_loose_attribution(&mut out);
        }
        _ => {}
    }
    trim_tail(&mut out);
    let text = join(&out);
    let signature = sig
        .and_then(|s| raw.get(s..end))
        .map(|l| join(l))
        .filter(|s| s.chars().any(char::is_alphanumeric));
    let empty = text.lines().all(|l| blank(l) || is_quote(l));
    Extracted {
        text,
        signature,
        empty,
    }
}

fn join(lines: &[&str]) -> String {
    let v: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    v.join("\n").trim().to_owned()
}

fn trim_tail(out: &mut Vec<&str>) {
    while out.last().is_some_and(|l| blank(l) || is_ruler(l)) {
        out.pop();
    }
}

/// A line of an unknown language just above a removed quote, shaped like an
/// attribution: it ends with a colon and names an address or a time.
fn drop_loose_attribution(out: &mut Vec<&str>) {
    let Some(last) = out.last().map(|l| norm(l)) else {
        return;
    };
    let timed = last.as_bytes().windows(3).any(|w| {
        w[0].is_ascii_digit() && matches!(w[1], b':' | b'.' | b'h') && w[2].is_ascii_digit()
    });
    let ends = last.ends_with(':') || last.ends_with('：');
    if ends && last.chars().count() > 15 && (timed || rules().email.is_match(&last)) {
        out.pop();
        trim_tail(out);
    }
}

/// From an HTML body: cut the quoted structure, convert, apply the text rules.
pub fn extract_html(html: &str) -> Extracted {
    let lower = html.to_ascii_lowercase();
    // ASCII lowercasing keeps byte offsets, and the match starts at '<'.
    let cut = rules().html_quote.find(&lower).map(|m| m.start());
    let head = cut.and_then(|c| html.get(..c)).unwrap_or(html);
    let got = extract_text(&html_to_text(head));
    if cut.is_some() && got.text.is_empty() && got.signature.is_none() {
        // Nothing above the quote: maybe a forward without comment, which
        // the text rules keep; a bare quoted reply still comes out empty.
        return extract_text(&html_to_text(html));
    }
    got
}

/// Renders links as "text <url>", bold and italics as plain text.
#[derive(Default)]
struct Plain {
    links: Vec<String>,
}

impl TextDecorator for Plain {
    type Annotation = ();
    fn decorate_link_start(&mut self, url: &str) -> (String, ()) {
        self.links.push(url.to_owned());
        (String::new(), ())
    }
    fn decorate_link_end(&mut self) -> String {
        match self.links.pop() {
            Some(u) if u.starts_with("http") || u.starts_with("mailto:") => format!(" <{u}>"),
            _ => String::new(),
        }
    }
    fn decorate_em_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_em_end(&self) -> String {
        String::new()
    }
    fn decorate_strong_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strong_end(&self) -> String {
        String::new()
    }
    fn decorate_strikeout_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }
    fn decorate_code_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_code_end(&self) -> String {
        String::new()
    }
    fn decorate_preformat_first(&self) {}
    fn decorate_preformat_cont(&self) {}
    fn decorate_image(&mut self, _src: &str, _title: &str) -> (String, ()) {
        (String::new(), ())
    }
    fn header_prefix(&self, _level: usize) -> String {
        String::new()
    }
    fn quote_prefix(&self) -> String {
        "> ".into()
    }
    fn unordered_item_prefix(&self) -> String {
        "- ".into()
    }
    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }
    fn make_subblock_decorator(&self) -> Self {
        Plain::default()
    }
}

fn html_to_text(html: &str) -> String {
    // Wide enough that html2text never re-wraps a line.
    let text = html2text::config::with_decorator(Plain::default())
        .link_footnotes(false)
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|_| html.to_owned());
    text.lines()
        .map(drop_self_links)
        .collect::<Vec<_>>()
        .join("\n")
}

/// "https://x <https://x>" and "a@b <mailto:a@b>" say the address twice.
fn drop_self_links(line: &str) -> String {
    let mut s = line.to_owned();
    let mut from = 0;
    while let Some(p) = s.get(from..).and_then(|t| t.find(" <")).map(|p| p + from) {
        let Some(close) = s[p..].find('>').map(|c| c + p) else {
            break;
        };
        let url = &s[p + 2..close];
        let bare = url.strip_prefix("mailto:").unwrap_or(url);
        if !bare.is_empty() && (s[..p].ends_with(url) || s[..p].ends_with(bare)) {
            s.replace_range(p..=close, "");
        } else {
            from = p + 2;
        }
    }
    s
}

/// The text/plain part(s) of a parsed message if it has any, else the HTML.
pub fn extract_message(msg: &Message<'_>) -> Extracted {
    let plain: Vec<&str> = msg
        .text_bodies()
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    if !plain.is_empty() {
        return extract_text(&plain.join("\n"));
    }
    let html = msg.html_bodies().find_map(|p| match &p.body {
        PartType::Html(h) => Some(h.as_ref()),
        _ => None,
    });
    html.map(extract_html).unwrap_or_else(|| extract_text(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_compiles() {
        let _ = rules();
    }

    #[test]
    fn gmail_pt_attribution_wrapped() {
        let e = extract_text(
            "Pode fechar.\n\nEm ter., 3 de mar. de 2026 às 10:00, Suporte TI <\nsuporte@x.com.br> escreveu:\n\n> Chamado resolvido?\n",
        );
        assert_eq!(e.text, "Pode fechar.");
        assert!(!e.empty);
    }

    #[test]
    fn outlook_pt_header_block() {
        let e = extract_text(
            "Ok, obrigado.\n\n________________________________\nDe: Suporte <s@x.com>\nEnviado: segunda-feira, 3 de março de 2026 10:00\nPara: Ana <a@x.com>\nAssunto: RES: Chamado\n\nTexto antigo",
        );
        assert_eq!(e.text, "Ok, obrigado.");
        assert_eq!(e.signature, None);
    }

    #[test]
    fn mobile_signature_is_separated() {
        let e = extract_text(
            "Funcionou!\n\nEnviado do meu iPhone\n\n> Em 3 de mar. de 2026, à(s) 10:00, S <s@x.com> escreveu:\n> oi",
        );
        assert_eq!(e.text, "Funcionou!");
        assert_eq!(e.signature.as_deref(), Some("Enviado do meu iPhone"));
    }

    #[test]
    fn only_a_quote_is_empty() {
        let e = extract_text("Em 03/03/2026 10:00, Suporte escreveu:\n> Chamado aberto.\n");
        assert_eq!(e.text, "");
        assert!(e.empty);
        assert!(extract_text("> citação solta").empty);
    }

    #[test]
    fn sentence_with_date_is_kept() {
        let t = "Em março de 2026 o sistema parou.\nO técnico disse que volta amanhã.";
        assert_eq!(extract_text(t).text, t);
    }

    #[test]
    fn html_gmail_quote_cut_and_links_kept() {
        let e = extract_html(
            r#"<div dir="ltr">Veja <a href="https://x.example/p">a página</a> e <a href="https://y.example">https://y.example</a>.</div><br><div class="gmail_quote"><div class="gmail_attr">Em ter., 3 de mar. de 2026 às 10:00, S &lt;s@x.com&gt; escreveu:<br></div><blockquote class="gmail_quote">velho</blockquote></div>"#,
        );
        assert_eq!(
            e.text,
            "Veja a página <https://x.example/p> e https://y.example."
        );
    }
}
