//! Reply extraction: from the body of a requester's e-mail, keep what the
//! sender wrote new — without the quoted history (attribution lines, Outlook
//! header blocks, "Original Message" and forward separators, trailing `>`
//! blocks) and with the signature set apart. It only reads text: it never
//! changes or drops the message (the raw bytes are stored elsewhere, and a
//! reply with nothing new is marked `empty`, not discarded), never guesses a
//! signature that has no delimiter or client line, and never panics.
//!
//! Every language-dependent word comes from the one table in `locale.rs`.

mod locale;

use std::borrow::Cow;

use html2text::render::TextDecorator;
use mail_parser::{Message, PartType};
use unicode_normalization::{IsNormalized, UnicodeNormalization};

use locale::rules;

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

/// The lines of a body as the rules see them.
type Norms<'a> = [Cow<'a, str>];

/// Dropped from a line: bold markers, zero-width spaces, bidi marks, BOMs.
const DROPPED: [char; 5] = ['*', '\u{200B}', '\u{200E}', '\u{200F}', '\u{FEFF}'];
/// Read as a plain space: NBSP and its narrow form.
const SPACES: [char; 2] = ['\u{A0}', '\u{202F}'];

/// The line as the rules see it: NFC, bold markers, NBSPs and bidi marks
/// gone. Borrowed when that is only a trim, as for nearly every line.
fn norm(line: &str) -> Cow<'_, str> {
    // Most lines are ASCII, or already NFC: composing them again is the
    // costliest step of the whole inbound path, so it is skipped for them.
    if line.is_ascii() {
        if !line.as_bytes().contains(&b'*') {
            return Cow::Borrowed(line.trim());
        }
        return Cow::Owned(line.replace('*', "").trim().to_owned());
    }
    // Text in the Latin scripts below U+0300 (Portuguese, precomposed, as
    // every mail client sends it) is NFC and has none of the marks dropped
    // below: one pass over the bytes says so, instead of two passes over
    // the chars with table lookups.
    if nothing_to_normalise(line.as_bytes()) {
        return Cow::Borrowed(line.trim());
    }
    let line: Cow<'_, str> =
        match unicode_normalization::is_nfc_quick(line.chars()) == IsNormalized::Yes {
            true => Cow::Borrowed(line),
            false => Cow::Owned(line.nfc().collect()),
        };
    if !line.contains(DROPPED) && !line.contains(SPACES) {
        return match line {
            Cow::Borrowed(l) => Cow::Borrowed(l.trim()),
            Cow::Owned(l) => Cow::Owned(l.trim().to_owned()),
        };
    }
    let s: String = line
        .chars()
        .filter(|c| !DROPPED.contains(c))
        .map(|c| if SPACES.contains(&c) { ' ' } else { c })
        .collect();
    Cow::Owned(s.trim().to_owned())
}

/// True when `line` (UTF-8) holds only code points below U+0300 — every
/// one of them NFC on its own, with combining class 0 — and none of what
/// `norm` drops or turns into a space. Their lead bytes are below 0xCC
/// (U+0300 is CC 80); `*` is the byte 2A; NBSP is C2 A0; the other marks
/// start with E2 or EF, above 0xCC.
fn nothing_to_normalise(line: &[u8]) -> bool {
    // Without an early exit inside a chunk, so that the compiler can test
    // 32 bytes at a time.
    let marked = line
        .chunks(32)
        .any(|c| c.iter().fold(false, |m, &b| m | (b == b'*') | (b >= 0xCC)));
    if marked {
        return false;
    }
    let mut rest = line;
    while let Some(i) = memchr::memchr(0xC2, rest) {
        if rest.get(i + 1) == Some(&0xA0) {
            return false;
        }
        rest = &rest[i + 1..];
    }
    true
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
        // A client line is short; a sentence that happens to start the same
        // way ("Enviado pelo fornecedor, o notebook…") is not cut.
        // (More than 400 bytes is more than 100 characters.)
        || (norm.len() <= 400 && rules().mobile.is_match(norm) && norm.chars().count() <= 100)
}

/// Ends with a colon, as `wrote` requires of an attribution.
fn ends_with_colon(s: &str) -> bool {
    s.ends_with([':', '：'])
}

enum Marker {
    /// An attribution line ("On … wrote:") spanning that many lines.
    Attribution(usize),
    Forward,
    /// Any other start of quoted history.
    History,
}

/// A separator line without the dashes around it.
fn core(norm: &str) -> &str {
    norm.trim_matches(|c| matches!(c, '-' | '_' | '=' | ' '))
}

/// Longer than any line `forward` matches in practice, in bytes: its
/// longest phrase is 43 bytes, three times that if every letter matched a
/// wider case variant, and some blanks before the colon.
const FORWARD_MAX: usize = 160;

fn marker(raw: &[&str], norm: &Norms<'_>, i: usize) -> Option<Marker> {
    let r = rules();
    let n = norm.get(i)?;
    if n.is_empty() || is_quote(raw.get(i)?) {
        return None;
    }
    // This runs for every line of every reply. Anchored rules fail within
    // a few bytes; an unanchored one runs only when the line has what it
    // requires (its length, a digit, a colon, an '@'), so a line of plain
    // prose costs a few anchored tries and no scan.
    if raw[i].contains("--") && r.original.is_match(core(n)) {
        return Some(Marker::History);
    }
    let c = core(n);
    if c.len() <= FORWARD_MAX && r.forward.is_match(c) {
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
    // `date_first` opens with a Unicode `\d`: any numeric first letter.
    if n.len() < 200
        && n.starts_with(char::is_numeric)
        && locale::may_start_with_date(n)
        && r.date_first.is_match(n)
    {
        return Some(Marker::History);
    }
    attribution(norm, i).map(Marker::Attribution)
}

/// An attribution at line `i`, maybe wrapped over up to five lines (Gmail
/// wraps at 78 columns, sometimes right inside the `<address>`).
fn attribution(norm: &Norms<'_>, i: usize) -> Option<usize> {
    let r = rules();
    let first = &norm[i];
    // Only a line that looks like the start of one may be joined with the
    // next, or a sentence ending the reply would swallow the attribution.
    // Name-first forms ("Ana <a@b.c> schrieb am …") have the verb on it.
    let may_wrap = r.opens.is_match(first)
        || first.ends_with('<')
        || (first.contains('@') && r.email.is_match(first) && r.wrote_any.is_match(first));
    // The lines joined so far; borrowed while it is the first line alone.
    let (mut joined, mut blanks) = (Cow::Borrowed(""), 0);
    for (k, l) in norm.iter().enumerate().skip(i).take(5) {
        if k > i && !may_wrap {
            break;
        }
        if l.is_empty() {
            // Gmail sometimes puts a blank line before a wrapped "<address>".
            let next = norm.get(k + 1).map(|l| l.as_ref()).unwrap_or("");
            blanks += 1;
            if blanks > 1 || !next.starts_with('<') {
                break;
            }
            continue;
        }
        if joined.is_empty() {
            joined = Cow::Borrowed(l.as_ref());
        } else {
            let j = joined.to_mut();
            j.push(' ');
            j.push_str(l);
        }
        if joined.len() > 400 {
            break;
        }
        let t = joined.trim_matches(|c| matches!(c, '-' | ' '));
        // Zoho writes "---- On … wrote ----", without the colon. The verb
        // is looked for first: it rules out nearly every line cheaply.
        let wrote = (ends_with_colon(t) && r.wrote.is_match(t))
            || (r.opens.is_match(t) && r.wrote_bare.is_match(t));
        if wrote && r.dated.is_match(t) {
            return Some(k - i + 1);
        }
    }
    // "Ana Souza escreveu:" names no date, but a quote right below it
    // makes it one.
    let next = norm.iter().skip(i + 1).find(|l| !l.is_empty());
    (first.len() < 120
        && ends_with_colon(first)
        && r.wrote.is_match(first)
        && next.is_some_and(|l| is_quote(l)))
    .then_some(1)
}

/// After an attribution: a `>` block and then more new text, i.e. an
/// answer written between the quoted lines.
fn interleaved(raw: &[&str], norm: &Norms<'_>, mut j: usize) -> bool {
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

/// A quote line without its prefix ("> > ", "RC> ").
fn unquote(line: &str) -> &str {
    if !is_quote(line) {
        return line;
    }
    let t = line
        .trim_start()
        .trim_start_matches(|c: char| c.is_ascii_uppercase());
    t.trim_start_matches(['>', ' ', '\t'])
}

/// Whether a body made only of `>` lines shows it is history.
fn quoted_history(lines: &[&str]) -> bool {
    let inner: Vec<&str> = lines.iter().map(|l| unquote(l)).collect();
    let norms: Vec<Cow<str>> = inner.iter().map(|l| norm(l)).collect();
    (0..inner.len()).any(|i| marker(&inner, &norms, i).is_some())
}

/// From a plain-text body.
pub fn extract_text(body: &str) -> Extracted {
    let raw = lines(body);
    let norms: Vec<Cow<str>> = raw.iter().map(|l| norm(l)).collect();
    // The same lines without their `>` prefixes, to see history inside a quote.
    let inner: Vec<&str> = raw.iter().map(|l| unquote(l)).collect();
    let inner_norms: Vec<Cow<str>> = (0..raw.len())
        .map(|i| match inner[i].len() == raw[i].len() {
            // No quote prefix: the same line.
            true => Cow::Borrowed(norms[i].as_ref()),
            false => norm(inner[i]),
        })
        .collect();
    let n = raw.len();
    let mut out: Vec<&str> = Vec::new();
    // Where the signature starts, and where the quoted history starts.
    let (mut sig, mut end, mut i) = (None, n, 0);
    // Whether `out` holds a new-text line, a quote line (kept as flags: a
    // long body must not be rescanned at every line).
    let (mut has_text, mut has_quote) = (false, false);
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
        if is_quote(raw[i]) && has_text {
            // "> -----Original Message-----" under new text: the rest is
            // older history, even where a wrapped line lost its `>`.
            let m = marker(&inner, &inner_norms, i);
            if matches!(m, Some(Marker::History | Marker::Forward)) {
                end = i;
                break;
            }
        }
        if blank(raw[i]) || is_quote(raw[i]) {
            has_quote |= is_quote(raw[i]);
            out.push(raw[i]);
            i += 1;
            continue;
        }
        if is_sig_delim(raw[i], &norms[i]) {
            sig = Some(i);
            i += 1;
            continue;
        }
        let top = !has_text && !has_quote;
        match marker(&raw, &norms, i) {
            None => {
                has_text = true;
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
                let mut q = i;
                while q < n && (blank(raw[q]) || is_quote(raw[q])) {
                    q += 1;
                }
                // More `>` lines further down: answers between the quoted
                // lines, which need the quote to make sense.
                if !raw[q..].iter().any(|l| is_quote(l)) {
                    i = q;
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
        .map(|l| {
            let mut l = l.to_vec();
            trim_tail(&mut l);
            join(&l)
        })
        .filter(|s| s.chars().any(char::is_alphanumeric));
    let empty = text.lines().all(|l| blank(l) || is_quote(l));
    Extracted {
        text,
        signature,
        empty,
    }
}

/// The lines of `body`, split at CRLF, LF or a lone CR, without copying it.
fn lines(body: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(body.len() / 40 + 1);
    let (b, mut start, mut i) = (body.as_bytes(), 0, 0);
    while let Some(at) = memchr::memchr2(b'\n', b'\r', &b[i..]) {
        let end = i + at;
        out.push(&body[start..end]);
        i = match (b[end], b.get(end + 1)) {
            (b'\r', Some(b'\n')) => end + 2,
            _ => end + 1,
        };
        start = i;
    }
    out.push(&body[start..]);
    out
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
    if cut.is_none() || !got.text.is_empty() || got.signature.is_some() {
        return got;
    }
    // Nothing above the quote. A forward without comment (Gmail puts its
    // marker inside `gmail_quote`) keeps the forwarded text, as in plain text.
    let whole = html_to_text(html);
    let first = whole.lines().map(norm).find(|l| !l.is_empty());
    match first {
        Some(l) if rules().forward.is_match(core(&l)) => extract_text(&whole),
        _ => got,
    }
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

thread_local! {
    static EXPECTING_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while a library call that may panic is being contained here, so
/// the binary's panic hook stays quiet about it.
pub fn panic_is_expected() -> bool {
    EXPECTING_PANIC.with(|c| c.get())
}

fn expected_panic<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> std::thread::Result<T> {
    EXPECTING_PANIC.with(|c| c.set(true));
    let r = std::panic::catch_unwind(f);
    EXPECTING_PANIC.with(|c| c.set(false));
    r
}

fn html_to_text(html: &str) -> String {
    if too_deep(html) {
        return mail_parser::decoders::html::html_to_text(html);
    }
    // Word (Outlook desktop) spaces paragraphs with empty zero-margin <p>s:
    // as <div>s they come out one line each, as Outlook shows them.
    let html = match html.to_ascii_lowercase().contains("msonormal") {
        true => rules().word_p.replace_all(html, "<${1}div"),
        false => html.into(),
    };
    // Wide enough that html2text never re-wraps a line. html2text 0.17.4
    // panics on some malformed tables (found by fuzzing, see
    // tests/fixtures/fuzz-regressions): such a body falls back to
    // mail-parser's flat converter instead of losing the message.
    let converted = expected_panic(|| {
        html2text::config::with_decorator(Plain::default())
            .link_footnotes(false)
            // Signatures are often laid out in tables: no box-drawing borders.
            .no_table_borders()
            .string_from_read(html.as_bytes(), 10_000)
    });
    let text = match converted {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => html.clone().into_owned(),
        Err(_) => mail_parser::decoders::html::html_to_text(&html),
    };
    text.lines()
        .map(drop_self_links)
        .collect::<Vec<_>>()
        .join("\n")
}

/// html2text takes time quadratic in the nesting depth: a body nested
/// thousands deep (hostile, never a client's) goes to mail-parser's flat
/// converter instead. Tags that are seldom closed are not counted.
fn too_deep(html: &str) -> bool {
    let (mut depth, mut max) = (0i64, 0);
    for (i, _) in html.match_indices('<') {
        let tag = html.get(i + 1..).unwrap_or("");
        let name: String = tag
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let name = name.to_ascii_lowercase();
        if tag.starts_with('/') {
            depth -= 1;
        } else if !name.is_empty() && !VOID.contains(&name.as_str()) {
            depth += 1;
            max = max.max(depth);
        }
    }
    max > 1000
}

const VOID: &[&str] = &[
    "br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "p", "li", "td",
    "tr", "option",
];

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
    if plain.iter().any(|t| !t.trim().is_empty()) {
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

    /// The shortcut in `norm` skips a line only where the full path would
    /// have had nothing to do: checked against the normaliser's own tables
    /// for every code point, alone and between letters.
    #[test]
    fn a_line_norm_skips_is_one_it_would_not_change() {
        let mut skipped = 0;
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            for s in [c.to_string(), format!("a{c}ção")] {
                if !nothing_to_normalise(s.as_bytes()) {
                    continue;
                }
                skipped += 1;
                assert_eq!(
                    unicode_normalization::is_nfc_quick(s.chars()),
                    IsNormalized::Yes,
                    "U+{:04X}",
                    c as u32
                );
                assert!(
                    !s.contains(DROPPED) && !s.contains(SPACES),
                    "U+{:04X}",
                    c as u32
                );
            }
        }
        // Everything below U+0300 but '*' and NBSP, in both forms.
        assert_eq!(skipped, 2 * (0x300 - 2));
        assert!(!nothing_to_normalise("nº 42\u{A0}ok".as_bytes()));
        assert!(nothing_to_normalise(
            "Solicitação nº 42 – ok".replace('–', "-").as_bytes()
        ));
        assert_eq!(norm("  Solicitação nº 42  "), "Solicitação nº 42");
        assert_eq!(norm("Olá\u{A0}*João*\u{200B}"), "Olá João");
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
    fn pasted_log_and_plain_sentences_are_kept() {
        let t = "Segue o log:\n2026-03-03 10:15:22 ERRO login de ana@empresa.com.br\n\n\
                 Enviado pelo fornecedor ontem, o notebook chegou sem fonte.\n\
                 No chamado 1234 o técnico escreveu:\nreinstalar o driver";
        assert_eq!(extract_text(t).text, t);
    }

    #[test]
    fn android_signature_and_dash_delimiter() {
        let e = extract_text("Ok.\n\nEnviado do meu Android\n");
        assert_eq!(
            (e.text.as_str(), e.signature.as_deref()),
            ("Ok.", Some("Enviado do meu Android"))
        );
        let e = extract_text("Ok.\n-- \nAna Souza\nRamal 4321");
        assert_eq!(e.signature.as_deref(), Some("--\nAna Souza\nRamal 4321"));
    }

    #[test]
    fn sentence_with_date_is_kept() {
        let t = "Em março de 2026 o sistema parou.\nO técnico disse que volta amanhã.";
        assert_eq!(extract_text(t).text, t);
    }

    #[test]
    fn html_reply_with_nothing_new_is_empty() {
        let e = extract_html(
            r#"<div><br></div><div class="yahoo_quoted"><div>Em terça-feira, 3 de março de 2026 10:00:00 BRT, Suporte &lt;s@x.com&gt; escreveu:</div><div>Seu chamado foi resolvido.</div></div>"#,
        );
        assert!(e.empty && e.text.is_empty());
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
