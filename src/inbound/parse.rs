//! What the inbound path needs from a raw message, read once with
//! mail-parser: decoded subject, Message-ID, thread references, sender and
//! the text the sender wrote.

use std::hash::{Hash, Hasher};

use mail_parser::{HeaderValue, MessageParser};

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
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![format!("<{t}>")],
        HeaderValue::TextList(l) => l.iter().map(|t| format!("<{t}>")).collect(),
        _ => Vec::new(),
    }
}

/// None when the bytes are not a message at all.
pub fn parse<'x>(raw: &'x [u8], hostname: &str) -> Option<(Parsed, mail_parser::Message<'x>)> {
    let msg = MessageParser::default().parse(raw)?;
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
    fn missing_message_id_is_stable() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let a = parse(raw, "gw").unwrap().0.message_id;
        let b = parse(raw, "gw").unwrap().0.message_id;
        assert_eq!(a, b);
        assert!(a.starts_with("<nomsgid."));
    }
}
