//! What the inbound path needs from a raw message, read once with
//! mail-parser: decoded subject, Message-ID, thread references, sender and
//! the text the sender wrote.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Encoding, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

#[derive(Debug, Clone)]
pub struct Parsed {
    pub subject: String,
    /// With angle brackets, as stored; synthesised from the bytes when the
    /// message has none, so a re-delivery is still recognised.
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    /// References then In-Reply-To, oldest first, brackets included.
    pub thread_ids: Vec<String>,
    pub from: String,
    pub text: String,
    /// The files attached, read in the same pass as everything else.
    pub attachments: Vec<super::attachments::Found<'static>>,
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![format!("<{t}>")],
        HeaderValue::TextList(l) => l.iter().map(|t| format!("<{t}>")).collect(),
        _ => Vec::new(),
    }
}

/// A part's body with only its transfer encoding undone: the bytes the
/// sender attached, before any charset conversion. None when the encoding is
/// broken (mail-parser's own decoding is then the best there is).
pub fn transfer_decoded<'a>(raw: &'a [u8], part: &MessagePart<'_>) -> Option<Cow<'a, [u8]>> {
    let body = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        Encoding::None => Some(Cow::Borrowed(body)),
        Encoding::QuotedPrintable => quoted_printable_decode(body).map(Cow::Owned),
        Encoding::Base64 => base64_decode(body).map(Cow::Owned),
    }
}

/// Text in an unknown 8-bit charset: UTF-8 when it is valid, else
/// Windows-1252 (what Outlook and Windows scripts send: 0x93/0x94 are curly
/// quotes, 0x80 the euro), else ISO-8859-1 for the five bytes cp1252 leaves
/// undefined (every byte is a Latin-1 character).
pub fn decode_8bit(bytes: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    if let Some(cp1252) = charset_decoder(b"windows-1252") {
        let s = cp1252(bytes);
        if !s.contains('\u{FFFD}') {
            return s;
        }
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// RFC 2045 makes text without a charset US-ASCII, yet clients send raw
/// 8-bit text undeclared, and mail-parser then reads it as UTF-8 with U+FFFD
/// for every other byte. Such parts (no charset, or one mail-parser does not
/// know) are decoded again from their bytes with `decode_8bit`.
fn fix_undeclared_charsets(msg: &mut Message<'_>) {
    let Message {
        parts, raw_message, ..
    } = msg;
    for part in parts.iter_mut() {
        let garbled =
            matches!(&part.body, PartType::Text(t) | PartType::Html(t) if t.contains('\u{FFFD}'));
        let declared = part
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .is_some_and(|c| charset_decoder(c.as_bytes()).is_some());
        if !garbled || declared {
            continue;
        }
        let Some(bytes) = transfer_decoded(raw_message, part) else {
            continue;
        };
        let text = Cow::Owned(decode_8bit(&bytes));
        part.body = match part.body {
            PartType::Html(_) => PartType::Html(text),
            _ => PartType::Text(text),
        };
    }
}

impl Parsed {
    /// Who wrote the message: its From address, else the envelope sender.
    pub fn author<'a>(&'a self, mail_from: &'a str) -> &'a str {
        if self.from.is_empty() {
            mail_from
        } else {
            &self.from
        }
    }
}

/// None when the bytes are not a message at all.
pub fn parse<'x>(raw: &'x [u8], hostname: &str) -> Option<(Parsed, mail_parser::Message<'x>)> {
    let mut msg = MessageParser::default().parse(raw)?;
    fix_undeclared_charsets(&mut msg);
    let message_id = match msg.message_id() {
        Some(id) if !id.trim().is_empty() => format!("<{}>", id.trim()),
        _ => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            raw.hash(&mut h);
            format!("<nomsgid.{:016x}.{}@{hostname}>", h.finish(), raw.len())
        }
    };
    let in_reply_to = ids(msg.in_reply_to());
    let mut thread_ids = ids(msg.references());
    for id in &in_reply_to {
        if !thread_ids.contains(id) {
            thread_ids.push(id.clone());
        }
    }
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    // What the sender wrote new: no quoted history, no signature (the raw
    // message keeps everything). A reply with only a quote is kept, marked.
    let extracted = super::extract::extract_message(&msg);
    let text = if extracted.empty && extracted.text.is_empty() {
        "(no new text: the message only quotes earlier mail)".to_owned()
    } else {
        extracted.text
    };
    let parsed = Parsed {
        subject: msg.subject().unwrap_or_default().to_owned(),
        message_id,
        in_reply_to,
        thread_ids,
        from,
        text,
        attachments: super::attachments::collect(&msg)
            .into_iter()
            .map(|a| a.into_owned())
            .collect(),
    };
    Some((parsed, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_thread_headers() {
        let raw =
            b"From: Ana <ana@x.example>\r\nSubject: =?UTF-8?Q?RES:_Solicita=C3=A7=C3=A3o?=\r\n\
Message-ID: <abc@x>\r\nIn-Reply-To: <m2@gw>\r\nReferences: <root@gw>\r\n <m1@gw>\r\n\r\nOi\r\n";
        let (p, _) = parse(raw, "gw").unwrap();
        assert_eq!(p.subject, "RES: Solicitação");
        assert_eq!(p.message_id, "<abc@x>");
        assert_eq!(p.thread_ids, vec!["<root@gw>", "<m1@gw>", "<m2@gw>"]);
        assert_eq!(p.from, "ana@x.example");
        assert_eq!(p.text, "Oi");
    }

    #[test]
    fn undeclared_8bit_text_is_windows_1252() {
        let raw =
            b"From: a@x\r\nSubject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x93ol\xe1\x94\r\n";
        assert_eq!(parse(raw, "gw").unwrap().0.text, "\u{201C}ol\u{E1}\u{201D}");
        // Valid UTF-8 without a charset stays UTF-8; a declared charset wins.
        let raw = "From: a@x\r\nSubject: x\r\n\r\nol\u{E1}\r\n".as_bytes();
        assert_eq!(parse(raw, "gw").unwrap().0.text, "ol\u{E1}");
        let raw =
            b"From: a@x\r\nContent-Type: text/plain; charset=iso-8859-15\r\n\r\n\xa4 ol\xe1\r\n";
        assert_eq!(parse(raw, "gw").unwrap().0.text, "\u{20AC} ol\u{E1}");
        // 0x81 is undefined in cp1252: the whole part is read as Latin-1.
        assert_eq!(decode_8bit(b"\x81\xe1"), "\u{81}\u{E1}");
        // Quoted-printable, in a multipart.
        let raw = b"From: a@x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=93ol=E1=94\r\n--b--\r\n";
        assert_eq!(parse(raw, "gw").unwrap().0.text, "\u{201C}ol\u{E1}\u{201D}");
    }

    #[test]
    fn missing_message_id_is_stable() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let a = parse(raw, "gw").unwrap().0.message_id;
        let b = parse(raw, "gw").unwrap().0.message_id;
        assert_eq!(a, b);
        assert!(a.starts_with("<nomsgid."));
    }
}
