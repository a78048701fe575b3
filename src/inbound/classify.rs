//! Tells a person's reply from a robot's: bounces (null reverse path,
//! multipart/report) and auto-replies (RFC 3834 Auto-Submitted, the common
//! X-Autoreply headers) and list or bulk mail (List-Id, Precedence). A robot's mail is never
//! threaded as the requester's words, and never notified (no mail loops).

use mail_parser::{HeaderValue, Message, MimeHeaders};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Person,
    Bounce,
    AutoReply,
    /// Mailing-list or bulk mail (List-Id, List-Unsubscribe, Precedence).
    List,
}

impl Kind {
    /// Why a robot's mail is quarantined, in the row and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Kind::Person => "",
            Kind::Bounce => "a delivery status notification (bounce), not a reply",
            Kind::AutoReply => "an automatic reply (out of office or similar), not a reply",
            Kind::List => "mailing-list or bulk mail, not a reply",
        }
    }
}

fn header_text<'a>(msg: &'a Message<'_>, name: &'static str) -> Option<&'a str> {
    match msg.header(name)? {
        HeaderValue::Text(t) => Some(t.as_ref()),
        HeaderValue::TextList(l) => l.first().map(|t| t.as_ref()),
        _ => None,
    }
}

pub fn classify(mail_from: &str, msg: &Message<'_>) -> Kind {
    if mail_from.is_empty() {
        return Kind::Bounce;
    }
    let ct = msg.content_type();
    if ct.is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case("multipart")
            && c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    }) {
        return Kind::Bounce;
    }
    if header_text(msg, "Auto-Submitted").is_some_and(|v| !v.trim().eq_ignore_ascii_case("no")) {
        return Kind::AutoReply;
    }
    if [
        "X-Autoreply",
        "X-Autorespond",
        "X-Auto-Response-Suppress-Reply",
    ]
    .iter()
    .any(|h| msg.header(*h).is_some())
    {
        return Kind::AutoReply;
    }
    let precedence = header_text(msg, "Precedence").map(str::trim).unwrap_or("");
    if precedence.eq_ignore_ascii_case("auto_reply") {
        return Kind::AutoReply;
    }
    if ["bulk", "junk", "list"].iter().any(|p| precedence.eq_ignore_ascii_case(p))
        || msg.header("List-Id").is_some()
        || msg.header("List-Unsubscribe").is_some()
    {
        return Kind::List;
    }
    Kind::Person
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(from: &str, raw: &str) -> Kind {
        classify(
            from,
            &mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .unwrap(),
        )
    }

    #[test]
    fn robots_and_people() {
        assert_eq!(kind("a@b", "Subject: RES: x\r\n\r\nok"), Kind::Person);
        assert_eq!(kind("", "Subject: x\r\n\r\nok"), Kind::Bounce);
        assert_eq!(
            kind(
                "a@b",
                "Auto-Submitted: auto-replied\r\nSubject: Fora do escritório\r\n\r\nx"
            ),
            Kind::AutoReply
        );
        assert_eq!(
            kind("a@b", "Auto-Submitted: no\r\nSubject: x\r\n\r\nx"),
            Kind::Person
        );
        assert_eq!(
            kind("a@b", "Precedence: bulk\r\nSubject: x\r\n\r\nx"),
            Kind::List
        );
        assert_eq!(kind("a@b", "List-Id: <x.lists.example>\r\nSubject: RE: x\r\n\r\nx"), Kind::List);
        assert_eq!(
            kind(
                "a@b",
                "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x--\r\n"
            ),
            Kind::Bounce
        );
    }
}
