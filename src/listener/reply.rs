//! Every SMTP reply the gateway writes itself, in one table: short, generic
//! text for the client (with RFC 3463 enhanced codes); the full reason goes to
//! the log and the database, never to a stranger.

use crate::inbound::Outcome;

/// One reply line, CRLF included.
pub fn line(code: u16, text: &str) -> Vec<u8> {
    format!("{code} {text}\r\n").into_bytes()
}

pub fn greeting(host: &str) -> Vec<u8> {
    line(220, &format!("{host} ESMTP mensageria"))
}

/// The EHLO answer: mailin's own list is replaced, since the limits (SIZE)
/// and framing (PIPELINING) live in our session, not in mailin.
pub fn ehlo(host: &str, max_size: usize, starttls: bool) -> Vec<u8> {
    let tls = if starttls { "250-STARTTLS\r\n" } else { "" };
    format!("250-{host}\r\n250-PIPELINING\r\n250-SIZE {max_size}\r\n{tls}250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")
        .into_bytes()
}

pub const TOO_MANY_SESSIONS: (u16, &str) = (421, "4.7.0 Too many connections, try again later");
pub const TOO_MANY_FROM_PEER: (u16, &str) = (
    421,
    "4.7.0 Too many connections from your address, try again later",
);
pub const TIMEOUT: (u16, &str) = (421, "4.4.2 Timeout exceeded, closing connection");
pub const SHUTTING_DOWN: (u16, &str) = (421, "4.3.2 Service shutting down, try again later");
pub const TOO_MANY_ERRORS: (u16, &str) = (421, "4.7.0 Too many errors, closing connection");
pub const LINE_TOO_LONG: (u16, &str) = (500, "5.5.2 Line too long");
pub const DATA_LINE_TOO_LONG: (u16, &str) = (552, "5.3.4 A message line is too long");
pub const TOO_BIG: (u16, &str) = (552, "5.3.4 Message size exceeds the limit");
pub const BARE_LINE_END: (u16, &str) = (
    554,
    "5.6.0 Message refused: bare CR or LF in data (RFC 5321 2.3.8)",
);
pub const RELAY_DENIED: (u16, &str) = (
    550,
    "5.7.1 Relaying denied: this server accepts mail only for its own domains",
);
pub const BAD_ADDRESS: (u16, &str) = (553, "5.1.3 Bad recipient address syntax");
pub const TOO_MANY_RECIPIENTS: (u16, &str) = (452, "4.5.3 Too many recipients");
pub const BAD_PARAMETER: (u16, &str) = (555, "5.5.4 MAIL FROM parameter not recognised");
pub const TRY_LATER: (u16, &str) = (451, "4.3.0 Temporary failure, please try again later");

/// The reply to end of data for an inbound outcome.
pub fn outcome(o: &Outcome) -> (u16, String) {
    match o {
        Outcome::Stored { ticket, .. } => (250, format!("2.0.0 Ok: added to ticket {ticket}")),
        Outcome::Duplicate { .. } => (250, "2.0.0 Ok: already received".into()),
        Outcome::Dropped { .. } => (250, "2.0.0 Ok".into()),
        Outcome::Quarantined { id, .. } => (250, format!("2.0.0 Ok: held for review as {id}")),
        Outcome::Rejected { .. } => (
            550,
            "5.7.1 Message refused: it matches no open ticket".into(),
        ),
    }
}
