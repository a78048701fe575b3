//! Tells a person's reply from a robot's: bounces (null reverse path,
//! multipart/report) and auto-replies (RFC 3834 Auto-Submitted, the common
//! X-Autoreply headers) and list or bulk mail (List-Id, Precedence). A robot's mail is never
//! threaded as the requester's words, and never notified (no mail loops).

use mail_parser::{HeaderValue, Message, MimeHeaders};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Person,
    /// Out-of-office and other automatic replies (RFC 3834), read receipts.
    AutoReply,
    /// Mailing-list or bulk mail (List-Id, List-Unsubscribe, Precedence).
    List,
    /// A bounce that is not an RFC 3464 report (null sender, MAILER-DAEMON).
    Bounce,
    /// RFC 3464 delivery status notification.
    DeliveryReport,
    /// RFC 5965 abuse feedback report.
    FeedbackReport,
}

impl Kind {
    /// The class as stored and shown as `"kind"` in `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "reply",
            Kind::AutoReply => "auto-reply",
            Kind::List => "list",
            Kind::Bounce => "bounce",
            Kind::DeliveryReport => "delivery-report",
            Kind::FeedbackReport => "feedback-report",
        }
    }

    /// Why a robot's mail is quarantined, in the row and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Kind::Person => "",
            Kind::AutoReply => "an automatic reply (out of office or similar), not a reply",
            Kind::List => "mailing-list or bulk mail, not a reply",
            Kind::Bounce | Kind::DeliveryReport => {
                "a delivery status notification (bounce), not a reply"
            }
            Kind::FeedbackReport => "an abuse feedback report, not a reply",
        }
    }

    pub fn is_bounce(self) -> bool {
        matches!(self, Kind::Bounce | Kind::DeliveryReport)
    }
}

/// Subject starts of out-of-office replies (folded to lower case).
const OUT_OF_OFFICE: &[&str] = &[
    "ausente:",
    "resposta automática:",
    "resposta automatica:",
    "fora do escritório",
    "fora do escritorio",
    "out of office",
    "automatic reply:",
    "auto reply:",
    "autoreply:",
    "auto-reply:",
    "respuesta automática:",
    "respuesta automatica:",
    "fuera de la oficina",
    "réponse automatique",
    "abwesenheitsnotiz",
    "automatische antwort",
];

fn header_text<'a>(msg: &'a Message<'_>, name: &'static str) -> Option<&'a str> {
    match msg.header(name)? {
        HeaderValue::Text(t) => Some(t.as_ref()),
        HeaderValue::TextList(l) => l.first().map(|t| t.as_ref()),
        _ => None,
    }
}

pub fn classify(mail_from: &str, msg: &Message<'_>) -> Kind {
    if let Some(ct) = msg.content_type()
        && ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        return match ct
            .attribute("report-type")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("delivery-status") => Kind::DeliveryReport,
            Some("feedback-report") => Kind::FeedbackReport,
            // Read receipts (disposition-notification) and the like.
            _ => Kind::AutoReply,
        };
    }
    let from_local = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| a.split('@').next())
        .unwrap_or("");
    if mail_from.is_empty()
        || ["mailer-daemon", "postmaster"]
            .iter()
            .any(|d| from_local.eq_ignore_ascii_case(d))
    {
        return Kind::Bounce;
    }
    // RFC 3834: any value but "no" marks a robot; "no" is a person.
    if header_text(msg, "Auto-Submitted").is_some_and(|v| !v.trim().eq_ignore_ascii_case("no")) {
        return Kind::AutoReply;
    }
    if ["X-Autoreply", "X-Autorespond"]
        .iter()
        .any(|h| msg.header(*h).is_some())
    {
        return Kind::AutoReply;
    }
    // Exchange stamps its own automatic replies with X-Auto-Response-Suppress.
    if header_text(msg, "X-Auto-Response-Suppress").is_some_and(|v| {
        v.split(',')
            .any(|p| ["all", "oof", "autoreply"].contains(&p.trim().to_ascii_lowercase().as_str()))
    }) {
        return Kind::AutoReply;
    }
    let precedence = header_text(msg, "Precedence").map(str::trim).unwrap_or("");
    if precedence.eq_ignore_ascii_case("auto_reply") {
        return Kind::AutoReply;
    }
    if ["bulk", "junk", "list"]
        .iter()
        .any(|p| precedence.eq_ignore_ascii_case(p))
        || msg.header("List-Id").is_some()
        || msg.header("List-Unsubscribe").is_some()
    {
        return Kind::List;
    }
    let subject = msg.subject().unwrap_or("").trim_start().to_lowercase();
    if OUT_OF_OFFICE.iter().any(|p| subject.starts_with(p)) {
        return Kind::AutoReply;
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
        assert_eq!(
            kind(
                "a@b",
                "List-Id: <x.lists.example>\r\nSubject: RE: x\r\n\r\nx"
            ),
            Kind::List
        );
        assert_eq!(
            kind(
                "a@b",
                "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x--\r\n"
            ),
            Kind::DeliveryReport
        );
        assert_eq!(
            kind("a@b", "Precedence: normal\r\nSubject: RE: x\r\n\r\nx"),
            Kind::Person
        );
        assert_eq!(
            kind("a@b", "Subject: Ausente: RES: [HD #1]\r\n\r\nx"),
            Kind::AutoReply
        );
        assert_eq!(
            kind("a@b", "Subject: Automatic reply: x\r\n\r\nx"),
            Kind::AutoReply
        );
        assert_eq!(
            kind(
                "a@b",
                "From: MAILER-DAEMON@mx.example\r\nSubject: failure\r\n\r\nx"
            ),
            Kind::Bounce
        );
        assert_eq!(
            kind(
                "a@b",
                "Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x--\r\n"
            ),
            Kind::FeedbackReport
        );
    }
}
