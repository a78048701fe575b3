//! Relay client: a small pool of SMTP sessions to the relay. Each session is
//! lettre's `AsyncSmtpConnection` (its protocol code, replies and errors)
//! over a socket opened here, because lettre's own transport leaves Nagle's
//! algorithm on: its separate end-of-data write then waits for the relay's
//! delayed ACK, about 40 ms per mail, and caps the relay near 25 mails/s
//! per connection. Here the socket has TCP_NODELAY, a pooled session is
//! reused without a NOOP round trip, and a stale one is replaced once.
//!
//! Where the relay offers PIPELINING (RFC 2920), MAIL, RCPT and DATA of a
//! one-recipient mail go in one write: two round trips per mail instead of
//! four. The data goes in one write with its end marker, dot-stuffed here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;

use super::RelayError;
use crate::config::RelayConfig;

/// A pooled session idle longer than this is closed rather than reused:
/// relays drop idle clients (Postfix after 300 s, many after 60 s).
const MAX_IDLE: Duration = Duration::from_secs(30);
/// How long a polite QUIT may take before the socket is simply dropped.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// Why one mail did not reach the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The relay refused it for good (5xx), or it can never be sent.
    Permanent(String),
    /// Try again later: 4xx, network trouble, timeout.
    Temporary(String),
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::Permanent(m) | SendError::Temporary(m) => m,
        }
    }
}

#[derive(Clone)]
enum Security {
    Plain,
    /// STARTTLS when offered.
    Opportunistic(TlsParameters),
    /// STARTTLS or fail.
    Required(TlsParameters),
    /// TLS from the first byte (smtps).
    Wrapper(tokio_rustls::TlsConnector),
}

/// Where and how to reach the relay, parsed once from `[relay]`.
pub struct RelayClient {
    host: String,
    port: u16,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(Session, Instant)>>,
}

/// One open session to the relay.
struct Session {
    conn: AsyncSmtpConnection,
    /// The relay offered PIPELINING.
    pipelining: bool,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl RelayClient {
    /// Builds the client from config; reads the password file. Accepts
    /// `smtp://host[:port]` (port 25), `smtp://host[:port]?tls=required` or
    /// `?tls=opportunistic` (STARTTLS, port 587) and `smtps://host[:port]`
    /// (port 465).
    pub fn new(cfg: &RelayConfig, hello: &str) -> Result<RelayClient, RelayError> {
        let bad = |m: String| RelayError::Url(format!("relay.url: {m}"));
        let u = super::RelayTarget::parse(&cfg.url)
            .map_err(RelayError::Url)?
            .url;
        let host = u.host_str().unwrap_or_default().to_owned();
        let tls_mode = u
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let params = || {
            TlsParameters::new(host.trim_matches(['[', ']']).to_owned())
                .map_err(|e| bad(format!("TLS setup: {e}")))
        };
        let (security, default_port) = match (u.scheme(), tls_mode.as_deref()) {
            ("smtp", None | Some("none")) => (Security::Plain, 25),
            ("smtp", Some("required")) => (Security::Required(params()?), 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic(params()?), 587),
            ("smtps", None | Some("wrapper")) => (Security::Wrapper(wrapper_connector()?), 465),
            (_, Some(other)) => {
                return Err(bad(format!(
                    "tls={other:?} is not one of required, opportunistic, none"
                )));
            }
            (other, None) => return Err(bad(format!("scheme {other:?} is not smtp or smtps"))),
        };
        let credentials = match (&cfg.username, &cfg.password_file) {
            (Some(user), Some(file)) => {
                let password =
                    std::fs::read_to_string(file).map_err(|source| RelayError::Password {
                        path: file.display().to_string(),
                        source,
                    })?;
                Some(Credentials::new(
                    user.clone(),
                    password.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            }
            _ => None,
        };
        Ok(RelayClient {
            port: u.port().unwrap_or(default_port),
            host,
            security,
            hello: ClientId::Domain(hello.to_owned()),
            credentials,
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            max_idle: cfg.pool_size.max(1) as usize,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `raw` exactly as it is. Ok means the relay answered 250 to the
    /// end of data.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        if let Some(conn) = self.take_idle() {
            match self.transaction(conn, envelope, raw).await {
                // The pooled session had gone stale before MAIL was answered
                // (the relay closed it, or said 421): nothing was sent, so
                // the mail goes once more on a new session.
                Err(Failed::Stale(_)) => {}
                other => return other.map_err(Failed::into_send_error),
            }
        }
        let conn = self.connect().await?;
        self.transaction(conn, envelope, raw)
            .await
            .map_err(Failed::into_send_error)
    }

    /// Opens a session (greeting, EHLO, TLS, AUTH) and closes it: for
    /// `check-config --probe-relay` and the admin reachability probe.
    pub async fn probe(&self) -> Result<(), String> {
        let mut s = self.connect().await.map_err(|e| e.message().to_owned())?;
        let _ = tokio::time::timeout(QUIT_WAIT, s.conn.command(Quit)).await;
        Ok(())
    }

    /// Says QUIT on every idle session (at shutdown).
    pub async fn close(&self) {
        let idle: Vec<_> = std::mem::take(&mut *self.idle.lock().expect("relay pool lock"));
        for (mut s, _) in idle {
            let _ = tokio::time::timeout(QUIT_WAIT, s.conn.quit()).await;
        }
    }

    fn take_idle(&self) -> Option<Session> {
        let mut idle = self.idle.lock().expect("relay pool lock");
        while let Some((s, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !s.conn.has_broken() {
                return Some(s);
            }
            quit_in_background(s.conn);
        }
        None
    }

    fn put_back(&self, s: Session) {
        let mut idle = self.idle.lock().expect("relay pool lock");
        if idle.len() < self.max_idle {
            idle.push((s, Instant::now()));
        } else {
            drop(idle);
            quit_in_background(s.conn);
        }
    }

    async fn connect(&self) -> Result<Session, SendError> {
        let addr = format!("{}:{}", self.host.trim_matches(['[', ']']), self.port);
        let what = || format!("relay {addr}");
        let deadline = self.timeout;
        let setup = async {
            let tcp = TcpStream::connect(&addr)
                .await
                .map_err(|e| SendError::Temporary(format!("cannot connect to {}: {e}", what())))?;
            let _ = tcp.set_nodelay(true);
            let stream: Box<dyn AsyncTokioStream> = match &self.security {
                Security::Wrapper(connector) => {
                    let name = rustls_pki_types::ServerName::try_from(
                        self.host.trim_matches(['[', ']']).to_owned(),
                    )
                    .map_err(|e| SendError::Permanent(format!("{}: {e}", what())))?;
                    let tls = connector.connect(name, tcp).await.map_err(|e| {
                        SendError::Temporary(format!("TLS with {} failed: {e}", what()))
                    })?;
                    Box::new(TlsStream(tls))
                }
                _ => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
                .await
                .map_err(|e| classify(&e, &what()))?;
            match &self.security {
                Security::Required(p) => conn
                    .starttls(p.clone(), &self.hello)
                    .await
                    .map_err(|e| classify(&e, &format!("STARTTLS with {}", what())))?,
                Security::Opportunistic(p) if conn.can_starttls() => conn
                    .starttls(p.clone(), &self.hello)
                    .await
                    .map_err(|e| classify(&e, &format!("STARTTLS with {}", what())))?,
                _ => {}
            }
            if let Some(creds) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)
                    .await
                    .map_err(|e| classify(&e, &format!("AUTH at {}", what())))?;
            }
            // lettre keeps only the extensions it uses from its EHLO, and
            // PIPELINING is not one of them: ask once more (RFC 5321 lets
            // a client repeat EHLO; it only resets the session).
            let pipelining = match conn.command(Ehlo::new(self.hello.clone())).await {
                Ok(reply) => offers_pipelining(&reply),
                Err(e) if e.status().is_some() => false,
                Err(e) => return Err(classify(&e, &format!("EHLO at {}", what()))),
            };
            Ok(Session { conn, pipelining })
        };
        match tokio::time::timeout(deadline, setup).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Temporary(format!(
                "{} did not complete the greeting within {} s",
                what(),
                deadline.as_secs()
            ))),
        }
    }

    /// One mail transaction on `s`. The session goes back to the pool
    /// when it is still in a known state.
    async fn transaction(
        &self,
        mut s: Session,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), Failed> {
        let mut params = Vec::new();
        let non_ascii_address = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii_address {
            if !s
                .conn
                .server_info()
                .supports_feature(Extension::SmtpUtfEight)
            {
                return Err(Failed::Other(SendError::Permanent(
                    "an address is not ASCII and the relay does not offer SMTPUTF8".into(),
                )));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !raw.is_ascii() {
            if !s
                .conn
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Failed::Other(SendError::Permanent(
                    "the message is 8-bit and the relay does not offer 8BITMIME".into(),
                )));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let t = self.timeout;
        let mail = Mail::new(envelope.from().cloned(), params);
        let rcpts = envelope.to();
        // Pipelined only with one recipient: with several, a refused one
        // fails the whole mail here (the outbox row has one outcome), and
        // a DATA already sent behind it could not be taken back. Pipelined,
        // each refusal below still has `pending` replies coming after it.
        let pipelined = s.pipelining && rcpts.len() == 1;
        let pending = |n: usize| if pipelined { n } else { 0 };
        let first = if pipelined {
            format!("{mail}{}{Data}", Rcpt::new(rcpts[0].clone(), vec![]))
        } else {
            mail.to_string()
        };
        // MAIL FROM: the first word on a pooled session tells whether the
        // session is still alive.
        match tokio::time::timeout(t, s.conn.command(first)).await {
            Err(_) => return Err(Failed::Stale(late(t, "MAIL FROM"))),
            Ok(Err(e)) if e.status().is_none() || e.is_transient() => {
                return Err(Failed::Stale(classify(&e, "MAIL FROM")));
            }
            Ok(Err(e)) => return Err(self.refused(s, &e, "MAIL FROM", pending(2)).await),
            Ok(Ok(_)) => {}
        }
        for to in rcpts {
            let reply = if pipelined {
                tokio::time::timeout(t, s.conn.read_response()).await
            } else {
                tokio::time::timeout(t, s.conn.command(Rcpt::new(to.clone(), vec![]))).await
            };
            match reply {
                Err(_) => return Err(Failed::Other(late(t, "RCPT TO"))),
                Ok(Err(e)) => {
                    let step = format!("RCPT TO <{to}>");
                    return Err(self.refused(s, &e, &step, pending(1)).await);
                }
                Ok(Ok(_)) => {}
            }
        }
        let reply = if pipelined {
            tokio::time::timeout(t, s.conn.read_response()).await
        } else {
            tokio::time::timeout(t, s.conn.command(Data)).await
        };
        match reply {
            Err(_) => return Err(Failed::Other(late(t, "DATA"))),
            Ok(Err(e)) => return Err(self.refused(s, &e, "DATA", 0).await),
            Ok(Ok(_)) => {}
        }
        self.data(s, raw).await
    }

    /// The mail after the relay's 354, and its reply.
    async fn data(&self, mut s: Session, raw: &[u8]) -> Result<(), Failed> {
        // Text goes in one write with its end marker (lettre's own writer
        // copies it byte by byte and writes the marker apart); other bytes
        // take lettre's writer.
        let sent = match std::str::from_utf8(raw) {
            Ok(text) => tokio::time::timeout(self.timeout, s.conn.command(Body(text))).await,
            Err(_) => tokio::time::timeout(self.timeout, s.conn.message(raw)).await,
        };
        match sent {
            Err(_) => Err(Failed::Other(late(self.timeout, "the end of data"))),
            // After a refused message the session is back at the start.
            Ok(Err(e)) if e.status().is_some() => {
                let err = classify(&e, "end of data");
                self.put_back(s);
                Err(Failed::Other(err))
            }
            Ok(Err(e)) => Err(Failed::Other(classify(&e, "end of data"))),
            Ok(Ok(_)) => {
                self.put_back(s);
                Ok(())
            }
        }
    }

    /// The relay answered with a refusal mid-transaction: read the
    /// `pending` replies of pipelined commands still to come (the last one
    /// DATA's; a DATA the relay took anyway is ended with a lone dot, RFC
    /// 2920 3.1), then reset the session and keep it when RSET works.
    async fn refused(
        &self,
        mut s: Session,
        e: &lettre::transport::smtp::Error,
        step: &str,
        pending: usize,
    ) -> Failed {
        let err = classify(e, step);
        if e.status().is_none() {
            return Failed::Other(err);
        }
        for left in (0..pending).rev() {
            match tokio::time::timeout(self.timeout, s.conn.read_response()).await {
                // DATA answered 354: nothing is delivered to nobody, but
                // the relay waits for the end of data.
                Ok(Ok(_)) if left == 0 => {
                    match tokio::time::timeout(self.timeout, s.conn.command(Body(""))).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(r)) if r.status().is_some() => {}
                        _ => return Failed::Other(err),
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(r)) if r.status().is_some() => {}
                // The connection is gone or out of step: drop it.
                _ => return Failed::Other(err),
            }
        }
        if matches!(
            tokio::time::timeout(self.timeout, s.conn.command(Rset)).await,
            Ok(Ok(_))
        ) {
            self.put_back(s);
        }
        Failed::Other(err)
    }
}

fn late(t: Duration, step: &str) -> SendError {
    SendError::Temporary(format!(
        "relay did not answer {step} within {} s",
        t.as_secs()
    ))
}

/// Whether an EHLO reply lists PIPELINING (the first line is the
/// relay's name).
fn offers_pipelining(reply: &lettre::transport::smtp::response::Response) -> bool {
    reply.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
    })
}

/// A mail's text as the data phase sends it: a dot doubled at the start
/// of every line, and the end marker. A dot is doubled after a bare LF
/// too, so no relay that ends lines at LF can take one for the end of
/// data. A mail that ends with CRLF gets no extra line.
struct Body<'a>(&'a str);

impl std::fmt::Display for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        // From line to line by LF (a byte search), doubling where a line
        // starts with a dot.
        let (mut from, mut at) = (0, 0);
        while let Some(i) = text[at..].find('\n') {
            at += i + 1;
            if text.as_bytes().get(at) == Some(&b'.') {
                f.write_str(&text[from..at])?;
                f.write_str(".")?;
                from = at;
            }
        }
        f.write_str(&text[from..])?;
        if self.0.is_empty() || self.0.ends_with("\r\n") {
            f.write_str(".\r\n")
        } else {
            f.write_str("\r\n.\r\n")
        }
    }
}

/// How a transaction ended when it did not succeed.
enum Failed {
    /// Failed at MAIL FROM without a permanent refusal: on a pooled
    /// session this means the session was stale.
    Stale(SendError),
    Other(SendError),
}

impl Failed {
    fn into_send_error(self) -> SendError {
        match self {
            Failed::Stale(e) | Failed::Other(e) => e,
        }
    }
}

/// lettre's error as ours: a 5xx is permanent, everything else temporary.
fn classify(e: &lettre::transport::smtp::Error, step: &str) -> SendError {
    let text = format!("{step}: {}", describe(e));
    if e.is_permanent() {
        SendError::Permanent(text)
    } else {
        SendError::Temporary(text)
    }
}

/// The relay's own words where it gave a reply, else lettre's description.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn quit_in_background(mut conn: AsyncSmtpConnection) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let _ = tokio::time::timeout(QUIT_WAIT, conn.quit()).await;
        });
    }
}

/// The rustls client for smtps, verifying the relay's certificate against
/// the system's trust store.
fn wrapper_connector() -> Result<tokio_rustls::TlsConnector, RelayError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| RelayError::Url(format!("relay.url: TLS setup: {e}")))?
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// An implicit-TLS socket in the shape lettre's connection takes.
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> RelayConfig {
        let mut c = crate::config::Config::default().relay;
        c.url = url.to_owned();
        c
    }

    #[test]
    fn the_data_phase_doubles_leading_dots_and_ends_once() {
        let wire = |t: &str| Body(t).to_string();
        assert_eq!(wire("a\r\nb\r\n"), "a\r\nb\r\n.\r\n");
        assert_eq!(wire("a\r\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(wire(".x\r\n"), "..x\r\n.\r\n");
        assert_eq!(wire("a\r\n.\r\n..b\r\n"), "a\r\n..\r\n...b\r\n.\r\n");
        assert_eq!(wire("a\n.b"), "a\n..b\r\n.\r\n");
        assert_eq!(wire("a.\r\nb. .\r\n"), "a.\r\nb. .\r\n.\r\n");
        assert_eq!(wire(""), ".\r\n");
        assert_eq!(wire("\r\n."), "\r\n..\r\n.\r\n");
    }

    #[test]
    fn pipelining_is_read_from_the_ehlo_reply() {
        use lettre::transport::smtp::response::{Category, Code, Detail, Response, Severity};
        let reply = |lines: &[&str]| {
            Response::new(
                Code::new(
                    Severity::PositiveCompletion,
                    Category::MailSystem,
                    Detail::Zero,
                ),
                lines.iter().map(|l| (*l).to_owned()).collect(),
            )
        };
        assert!(offers_pipelining(&reply(&[
            "relay.example",
            "SIZE 1000",
            "pipelining"
        ])));
        assert!(!offers_pipelining(&reply(&["relay.example", "8BITMIME"])));
        // The first line is the relay's name, whatever it is.
        assert!(!offers_pipelining(&reply(&["PIPELINING"])));
    }

    #[test]
    fn ports_and_security_follow_the_url() {
        let c = RelayClient::new(&cfg("smtp://127.0.0.1"), "gw.example").unwrap();
        assert_eq!(c.port, 25);
        assert!(matches!(c.security, Security::Plain));
        let c = RelayClient::new(&cfg("smtp://relay.example?tls=required"), "gw").unwrap();
        assert_eq!(c.port, 587);
        assert!(matches!(c.security, Security::Required(_)));
        let c = RelayClient::new(&cfg("smtps://relay.example:4650"), "gw").unwrap();
        assert_eq!(c.port, 4650);
        assert!(matches!(c.security, Security::Wrapper(_)));
        let e = RelayClient::new(&cfg("smtp://relay.example?tls=maybe"), "gw").unwrap_err();
        assert!(e.to_string().contains("tls=\"maybe\""), "{e}");
    }
}
