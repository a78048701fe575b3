//! The files a requester's reply carries: attachments, inline images (by
//! Content-ID) and attached messages, each with the bytes as sent. It only
//! reads the parsed message; storing (store::attachments) and forwarding
//! (outbound::queue_notification) apply `[inbound] max_attachment_bytes`.

use std::borrow::Cow;

use mail_parser::{Message, MimeHeaders, PartType};

use crate::outbound::compose;

/// The note of a part over the size limit: listed, not stored or forwarded.
pub const SKIPPED: &str = "skipped: over max_attachment_bytes";
/// Outlook's winmail.dat: listed and kept as is, never decoded.
pub const TNEF: &str = "TNEF (Outlook rich text) container";

#[derive(Debug, Clone)]
pub struct Found<'x> {
    pub name: String,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    pub bytes: Cow<'x, [u8]>,
    /// Shown in the body by `cid:` rather than offered as a file.
    pub inline: bool,
    /// Without angle brackets.
    pub content_id: Option<String>,
    pub note: Option<&'static str>,
}

impl Found<'_> {
    /// Detached from the message it was read from (its bytes copied when
    /// they were borrowed), so it can travel with `Parsed`.
    pub fn into_owned(self) -> Found<'static> {
        Found {
            bytes: Cow::Owned(self.bytes.into_owned()),
            name: self.name,
            content_type: self.content_type,
            inline: self.inline,
            content_id: self.content_id,
            note: self.note,
        }
    }

    pub fn over(&self, max: usize) -> bool {
        self.bytes.len() > max
    }

    /// What the listing says about it, given the limit.
    pub fn note(&self, max: usize) -> Option<String> {
        match (self.note, self.over(max)) {
            (Some(n), true) => Some(format!("{n}; {SKIPPED}")),
            (Some(n), false) => Some(n.to_owned()),
            (None, true) => Some(SKIPPED.to_owned()),
            (None, false) => None,
        }
    }

    pub fn for_compose(&self) -> compose::Attachment<'_> {
        compose::Attachment {
            filename: &self.name,
            content_type: &self.content_type,
            body: &self.bytes,
            content_id: self.content_id.as_deref().filter(|_| self.inline),
        }
    }
}

fn is_tnef(name: &str, content_type: &str) -> bool {
    name.eq_ignore_ascii_case("winmail.dat")
        || matches!(
            content_type,
            "application/ms-tnef" | "application/vnd.ms-tnef"
        )
}

/// Every attachment of `msg`, in MIME order.
pub fn collect<'x>(msg: &'x Message<'x>) -> Vec<Found<'x>> {
    let raw = msg.raw_message();
    msg.attachments()
        .enumerate()
        .map(|(i, part)| {
            let mut content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase();
            let is_message = matches!(part.body, PartType::Message(_));
            let name = match part.attachment_name() {
                Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
                _ if is_message => format!("message-{}.eml", i + 1),
                _ => format!("attachment-{}", i + 1),
            };
            // mail-parser converts text parts to UTF-8: take the bytes as
            // they were sent instead, so the stored file is the sender's.
            let bytes = match &part.body {
                PartType::Text(_) | PartType::Html(_) => super::parse::transfer_decoded(raw, part)
                    .unwrap_or(Cow::Borrowed(part.contents())),
                _ => Cow::Borrowed(part.contents()),
            };
            let content_id = part
                .content_id()
                .map(|c| {
                    c.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_owned()
                })
                .filter(|c| !c.is_empty());
            let attached = part
                .content_disposition()
                .is_some_and(|d| d.is_attachment());
            let inline = content_id.is_some() && !attached;
            let mut note = None;
            if is_tnef(&name, &content_type) {
                content_type = "application/ms-tnef".into();
                note = Some(TNEF);
            }
            Found {
                name,
                content_type,
                bytes,
                inline,
                content_id,
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    #[test]
    fn files_inline_images_and_tnef() {
        let raw = b"From: a@x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nOi\r\n--b\r\n\
Content-Type: image/png\r\nContent-ID: <img1@x>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1; name=\"a.txt\"\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nol=E1\r\n--b\r\n\
Content-Type: application/octet-stream; name=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\neJ8+Ig==\r\n--b--\r\n";
        let msg = MessageParser::default().parse(raw).unwrap();
        let found = collect(&msg);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].content_type, "image/png");
        assert!(found[0].inline);
        assert_eq!(found[0].content_id.as_deref(), Some("img1@x"));
        assert_eq!(&found[0].bytes[..], b"\x89PNG");
        assert_eq!(found[1].name, "a.txt");
        assert_eq!(
            &found[1].bytes[..],
            b"ol\xe1",
            "the bytes as sent, not UTF-8"
        );
        assert!(!found[1].inline);
        assert_eq!(found[2].content_type, "application/ms-tnef");
        assert_eq!(found[2].note(10), Some(TNEF.to_owned()));
        assert_eq!(found[2].note(2), Some(format!("{TNEF}; {SKIPPED}")));
    }
}
