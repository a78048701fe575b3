//! Builds the exact bytes of an outbound mail (RFC 5322 + MIME) from a
//! rendered subject and body, with the threading headers.
//!
//! lettre's builder does the headers' encoding (RFC 2047 words for a
//! non-ASCII subject, folding of long headers) and base64 for files; the
//! bodies are quoted-printable UTF-8, encoded by `qp`.

use std::time::SystemTime;

use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("bad address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// Everything an outbound mail is made of.
pub struct Draft<'a> {
    pub from_name: &'a str,
    pub from: &'a str,
    pub reply_to: &'a str,
    pub to: &'a [String],
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    pub thread_topic: &'a str,
    pub thread_index: &'a str,
    /// Machine-made mail: the RFC 3834 Auto-Submitted value
    /// (`auto-generated`, `auto-replied`); it also asks Exchange not to
    /// answer with out-of-office replies.
    pub auto: Option<&'static str>,
    /// Files sent along (a requester's attachments on a notification);
    /// empty for every other mail.
    pub attachments: &'a [Attachment<'a>],
}

/// A file attached to an outbound mail, its bytes sent unchanged (base64).
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    pub filename: &'a str,
    /// `type/subtype`; anything lettre cannot parse goes as
    /// `application/octet-stream`.
    pub content_type: &'a str,
    pub body: &'a [u8],
    /// Without angle brackets. Set for an inline part (an image the sender's
    /// HTML showed by `cid:`): it keeps its Content-ID and inline disposition.
    pub content_id: Option<&'a str>,
}

/// Outlook's conversation topic (the subject without prefixes).
#[derive(Clone)]
struct ThreadTopic(String);

/// Outlook's conversation index (base64; see `thread`).
#[derive(Clone)]
struct ThreadIndex(String);

#[derive(Clone)]
struct AutoSubmitted(String);

#[derive(Clone)]
struct AutoResponseSuppress(String);

macro_rules! text_header {
    ($t:ident, $name:literal) => {
        impl Header for $t {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($t(s.to_owned()))
            }
            fn display(&self) -> HeaderValue {
                // `new` encodes non-ASCII as RFC 2047 and folds.
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}
text_header!(ThreadTopic, "Thread-Topic");
text_header!(ThreadIndex, "Thread-Index");
text_header!(AutoSubmitted, "Auto-Submitted");
text_header!(AutoResponseSuppress, "X-Auto-Response-Suppress");

fn mailbox(name: Option<&str>, addr: &str) -> Result<Mailbox, ComposeError> {
    let email = addr
        .parse()
        .map_err(|_| ComposeError::Address(addr.to_owned()))?;
    Ok(Mailbox::new(
        name.filter(|n| !n.is_empty()).map(str::to_owned),
        email,
    ))
}

fn qp_part(ct: ContentType, text: &str) -> SinglePart {
    // Encoded here in one pass (see `qp`), CRLF line ends included.
    let body = Body::dangerous_pre_encoded(
        super::qp::encode(text),
        ContentTransferEncoding::QuotedPrintable,
    );
    SinglePart::builder().header(ct).body(body)
}

fn attachment_part(a: &Attachment<'_>) -> Result<SinglePart, ComposeError> {
    let ct = ContentType::parse(a.content_type)
        .or_else(|_| ContentType::parse("application/octet-stream"))
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    // Base64 whatever the content: the technician gets the very bytes the
    // requester sent, line ends included (a text file is not re-wrapped).
    let body = Body::new_with_encoding(a.body.to_vec(), ContentTransferEncoding::Base64)
        .map_err(|_| ComposeError::Build("attachment cannot be base64 encoded".into()))?;
    let name = a.filename.to_owned();
    Ok(match a.content_id {
        Some(cid) => lettre::message::Attachment::new_inline_with_name(cid.to_owned(), name),
        None => lettre::message::Attachment::new(name),
    }
    .body(body, ct))
}

/// The mail as it will be relayed, CRLF line ends.
pub fn build(d: &Draft<'_>) -> Result<Vec<u8>, ComposeError> {
    let mut b = lettre::Message::builder()
        .from(mailbox(Some(d.from_name), d.from)?)
        .reply_to(mailbox(Some(d.from_name), d.reply_to)?)
        .subject(d.subject)
        .date(SystemTime::now())
        .message_id(Some(d.message_id.to_owned()))
        .header(ThreadTopic(d.thread_topic.to_owned()))
        .header(ThreadIndex(d.thread_index.to_owned()));
    if let Some(kind) = d.auto {
        b = b
            .header(AutoSubmitted(kind.to_owned()))
            .header(AutoResponseSuppress("All".to_owned()));
    }
    for to in d.to {
        b = b.to(mailbox(None, to)?);
    }
    if let Some(irt) = d.in_reply_to {
        b = b.in_reply_to(irt.to_owned());
    }
    if !d.references.is_empty() {
        b = b.references(d.references.join(" "));
    }
    let text = qp_part(ContentType::TEXT_PLAIN, d.text);
    let msg = if d.attachments.is_empty() {
        match d.html {
            Some(html) => b.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(qp_part(ContentType::TEXT_HTML, html)),
            ),
            None => b.singlepart(text),
        }
    } else {
        b.multipart(with_attachments(text, d.html, d.attachments)?)
    }
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(msg.formatted())
}

/// multipart/mixed: the body first, then the files. Inline parts go in a
/// multipart/related with the HTML that shows them (RFC 2387); a text-only
/// body cannot show them, so they follow it in the mixed part, still inline.
fn with_attachments(
    text: SinglePart,
    html: Option<&str>,
    attachments: &[Attachment<'_>],
) -> Result<MultiPart, ComposeError> {
    let (inline, files): (Vec<_>, Vec<_>) =
        attachments.iter().partition(|a| a.content_id.is_some());
    let mut mixed = match html {
        Some(html) => {
            let alt = MultiPart::alternative()
                .singlepart(text)
                .singlepart(qp_part(ContentType::TEXT_HTML, html));
            if inline.is_empty() {
                MultiPart::mixed().multipart(alt)
            } else {
                let mut related = MultiPart::related().multipart(alt);
                for a in &inline {
                    related = related.singlepart(attachment_part(a)?);
                }
                MultiPart::mixed().multipart(related)
            }
        }
        None => {
            let mut m = MultiPart::mixed().singlepart(text);
            for a in &inline {
                m = m.singlepart(attachment_part(a)?);
            }
            m
        }
    };
    for a in &files {
        mixed = mixed.singlepart(attachment_part(a)?);
    }
    Ok(mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portuguese_subject_is_encoded_and_threaded() {
        let to = vec!["ana@cliente.example".to_string()];
        let refs = vec!["<root@gw>".to_string(), "<a@gw>".to_string()];
        let raw = build(&Draft {
            from_name: "Central de Serviços",
            from: "suporte@gw.example",
            reply_to: "suporte@gw.example",
            to: &to,
            subject: "Solicitação nº 42 — impressão",
            text: "Olá, Ana.\nA impressora já está funcionando.\n",
            html: None,
            message_id: "<m1@gw>",
            in_reply_to: Some("<a@gw>"),
            references: &refs,
            thread_topic: "Solicitação nº 42",
            thread_index: "AQHZ",
            auto: None,
            attachments: &[],
        })
        .unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Solicitação nº 42 — impressão"));
        assert_eq!(parsed.message_id(), Some("m1@gw"));
        assert_eq!(parsed.in_reply_to().as_text(), Some("a@gw"));
        assert_eq!(
            parsed
                .body_text(0)
                .unwrap()
                .replace("\r\n", "\n")
                .trim_end(),
            "Olá, Ana.\nA impressora já está funcionando."
        );
        let head =
            String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
                .into_owned();
        assert!(head.is_ascii(), "headers must be 7-bit: {head}");
        assert!(head.contains("Thread-Index: AQHZ"));
        assert!(head.contains("quoted-printable"));
    }

    #[test]
    fn attachments_keep_their_bytes() {
        use mail_parser::MimeHeaders;
        let to = vec!["tec@gw.example".to_string()];
        let pdf: &[u8] = b"%PDF-1.4\n\x00\xff\xfe binary\r\n";
        let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00";
        let files = [
            Attachment {
                filename: "relatório.pdf",
                content_type: "application/pdf",
                body: pdf,
                content_id: None,
            },
            Attachment {
                filename: "tela.png",
                content_type: "image/png",
                body: png,
                content_id: Some("img1@cliente"),
            },
        ];
        let raw = build(&Draft {
            from_name: "",
            from: "suporte@gw.example",
            reply_to: "suporte@gw.example",
            to: &to,
            subject: "x",
            text: "Segue.\n",
            html: None,
            message_id: "<m2@gw>",
            in_reply_to: None,
            references: &[],
            thread_topic: "x",
            thread_index: "AQHZ",
            auto: None,
            attachments: &files,
        })
        .unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.body_text(0).unwrap().trim_end(), "Segue.");
        let parts: Vec<_> = m.attachments().collect();
        assert_eq!(parts.len(), 2);
        let by_name = |n: &str| {
            parts
                .iter()
                .find(|p| p.attachment_name() == Some(n))
                .unwrap()
        };
        assert_eq!(by_name("relatório.pdf").contents(), pdf);
        assert_eq!(by_name("tela.png").contents(), png);
        assert_eq!(by_name("tela.png").content_id(), Some("img1@cliente"));
    }
}
