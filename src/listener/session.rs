//! One SMTP session: bytes, framing, limits and timeouts. mailin's `Session`
//! owns the verbs and their order; this file owns everything that depends on
//! what the client sends, so memory per session is bounded by config.
//! Framing rules are in `framing`; a message with a bare CR or LF is refused
//! here, at end of data.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio_util::sync::CancellationToken;

use super::framing::{Line, has_bare_line_end, is_ehlo, mail_params, read_line, take_buffered};
use super::policy::{Policy, Shared};
use super::reply;
use super::tls::Tls;
use crate::config::Config;
use crate::inbound::{Envelope, Inbound, Outcome};

pub struct SessionCtx {
    pub cfg: Arc<Config>,
    pub inbound: Arc<Inbound>,
    pub shutdown: CancellationToken,
    /// Offered as STARTTLS when configured.
    pub tls: Option<Arc<Tls>>,
}

/// Any byte stream a session can run on: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Bytes read from the socket at a time; every open session holds them.
const READ_BUFFER: usize = 8192;

/// The connection's two halves; rebuilt when STARTTLS changes the stream.
struct Conn {
    r: BufReader<ReadHalf<Box<dyn Io>>>,
    w: WriteHalf<Box<dyn Io>>,
}

impl Conn {
    fn new(io: Box<dyn Io>) -> Conn {
        let (r, w) = tokio::io::split(io);
        Conn {
            r: BufReader::with_capacity(READ_BUFFER, r),
            w,
        }
    }

    /// Hands the stream to TLS. Whatever the client pipelined after
    /// STARTTLS is still in the plaintext buffer and is dropped here: it
    /// must never be read as if it came over TLS (CVE-2011-0411).
    async fn starttls(self, tls: &Tls) -> std::io::Result<Conn> {
        let pending = self.r.buffer().len();
        if pending > 0 {
            tracing::warn!(bytes = pending, "plaintext sent after STARTTLS dropped");
        }
        let io = self.r.into_inner().unsplit(self.w);
        let stream = tls.acceptor().accept(io).await?;
        Ok(Conn::new(Box::new(stream)))
    }
}

/// Runs a session to its end. I/O errors end it quietly (the peer left).
/// `tls_on` is true on the implicit-TLS port, where the handshake is done.
pub async fn run(
    io: Box<dyn Io>,
    peer: SocketAddr,
    ctx: &SessionCtx,
    mut tls_on: bool,
) -> std::io::Result<()> {
    let cfg = &ctx.cfg;
    let mut conn = Conn::new(io);
    let txn = Shared::new();
    let policy = Policy {
        txn: txn.clone(),
        cfg: cfg.clone(),
    };
    let mut builder = mailin::SessionBuilder::new(cfg.smtp.hostname.clone());
    if ctx.tls.is_some() {
        builder.enable_start_tls();
    }
    let mut session = builder.build(peer.ip(), policy);
    if tls_on {
        session.tls_active();
    }
    conn.w
        .write_all(&reply::greeting(&cfg.smtp.hostname))
        .await?;
    let mut line = Vec::with_capacity(256);
    let mut errors = 0u32;
    let mut data_line_too_long = false;
    let mut data_deadline: Option<Instant> = None;
    loop {
        let in_data = txn.lock().in_data;
        // Idle time is bounded per line; the DATA phase as a whole has its
        // own deadline, so a client trickling bytes cannot hold a session.
        let limit = if in_data {
            let deadline =
                *data_deadline.get_or_insert_with(|| Instant::now() + cfg.data_timeout());
            cfg.idle_timeout()
                .min(deadline.saturating_duration_since(Instant::now()))
        } else {
            data_deadline = None;
            cfg.idle_timeout()
        };
        let max = if in_data {
            cfg.smtp.max_line_length
        } else {
            cfg.smtp.max_command_length
        };
        if limit.is_zero() {
            // The DATA deadline passed, even for a client that never paused.
            write_reply(&mut conn.w, reply::TIMEOUT).await?;
            return Ok(());
        }
        // Between transactions a stop closes the session at once; inside
        // DATA the message is allowed to finish.
        if !in_data && ctx.shutdown.is_cancelled() {
            write_reply(&mut conn.w, reply::SHUTTING_DOWN).await?;
            return Ok(());
        }
        let outcome = if let Some(n) = take_buffered(conn.r.buffer(), &mut line, max, in_data) {
            // A whole line already read: no timer, no wait.
            conn.r.consume(n);
            Line::Complete
        } else {
            let read = read_line(&mut conn.r, &mut line, max, in_data);
            let result = tokio::select! {
                res = tokio::time::timeout(limit, read) => res,
                _ = ctx.shutdown.cancelled(), if !in_data => {
                    write_reply(&mut conn.w, reply::SHUTTING_DOWN).await?;
                    return Ok(());
                }
            };
            match result {
                Err(_) => {
                    write_reply(&mut conn.w, reply::TIMEOUT).await?;
                    return Ok(());
                }
                Ok(res) => res?,
            }
        };
        match outcome {
            Line::Eof => return Ok(()),
            Line::TooLong if in_data => {
                // Keep reading to the end of data, then refuse the message.
                data_line_too_long = true;
                continue;
            }
            Line::TooLong => {
                write_reply(&mut conn.w, reply::LINE_TOO_LONG).await?;
                errors += 1;
            }
            Line::Complete => {
                if !in_data {
                    if !line.ends_with(b"\r\n") {
                        // A bare LF ends a command; mailin wants CRLF.
                        line.pop();
                        line.extend_from_slice(b"\r\n");
                    }
                    match mail_params(&line, cfg.smtp.max_message_size) {
                        Ok(Some(rewritten)) => line = rewritten,
                        Ok(None) => {}
                        Err(r) => {
                            write_reply(&mut conn.w, r).await?;
                            errors += 1;
                            continue;
                        }
                    }
                }
                let resp = session.process(&line);
                let complete = std::mem::take(&mut txn.lock().complete);
                if complete {
                    // Boxed: the decision and the commit are the largest
                    // state of a session, and only a session finishing a
                    // message needs it; an idle one stays small.
                    let finishing =
                        finish_message(&txn, peer, ctx, std::mem::take(&mut data_line_too_long));
                    let reply = Box::pin(finishing).await;
                    conn.w.write_all(&reply::line(reply.0, &reply.1)).await?;
                    continue;
                }
                if resp.code == 250 && is_ehlo(&line) {
                    let starttls = ctx.tls.is_some() && !tls_on;
                    let ehlo = reply::ehlo(&cfg.smtp.hostname, cfg.smtp.max_message_size, starttls);
                    conn.w.write_all(&ehlo).await?;
                    continue;
                }
                let mut out = Vec::new();
                resp.write_to(&mut out)?;
                conn.w.write_all(&out).await?;
                if resp.is_error {
                    errors += 1;
                }
                if let (mailin::Action::UpgradeTls, Some(tls)) = (&resp.action, &ctx.tls) {
                    conn.w.flush().await?;
                    let handshake =
                        tokio::time::timeout(cfg.idle_timeout(), Box::pin(conn.starttls(tls)));
                    conn = match handshake.await {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => {
                            tracing::info!(error = %e, "TLS handshake failed");
                            return Ok(());
                        }
                        Err(_) => return Ok(()),
                    };
                    tls_on = true;
                    session.tls_active();
                    continue;
                }
                if resp.action == mailin::Action::Close {
                    return Ok(());
                }
            }
        }
        if errors >= cfg.smtp.max_errors {
            write_reply(&mut conn.w, reply::TOO_MANY_ERRORS).await?;
            return Ok(());
        }
    }
}

async fn write_reply<W: AsyncWrite + Unpin>(
    w: &mut W,
    (code, text): (u16, &str),
) -> std::io::Result<()> {
    w.write_all(&reply::line(code, text)).await?;
    w.flush().await
}

/// End of data: checks the limits that could only be judged on the whole
/// message, commits it, and gives the reply. 250 only after the commit.
async fn finish_message(
    txn: &Shared,
    peer: SocketAddr,
    ctx: &SessionCtx,
    line_too_long: bool,
) -> (u16, String) {
    let started = Instant::now();
    let (env, data, too_big) = {
        let mut t = txn.lock();
        let env = Envelope {
            peer,
            helo: t.helo.clone(),
            mail_from: t.mail_from.clone(),
            rcpt_to: std::mem::take(&mut t.rcpt_to),
        };
        (env, std::mem::take(&mut t.data), t.too_big)
    };
    let (code, text, outcome, reason): (u16, String, &str, String) = if too_big {
        (
            reply::TOO_BIG.0,
            reply::TOO_BIG.1.into(),
            "rejected",
            "message too big".into(),
        )
    } else if line_too_long {
        let r = reply::DATA_LINE_TOO_LONG;
        (r.0, r.1.into(), "rejected", "data line too long".into())
    } else if has_bare_line_end(&data) {
        let r = reply::BARE_LINE_END;
        (r.0, r.1.into(), "rejected", "bare CR or LF in data".into())
    } else {
        // A bug in the inbound path must cost a 451 (the client retries, the
        // message is not lost), never a dropped connection with no reply.
        use futures_util::FutureExt;
        let accept = std::panic::AssertUnwindSafe(ctx.inbound.accept(&env, &data)).catch_unwind();
        let accepted =
            crate::admin::metrics::timed(&crate::admin::metrics::DB_COMMIT, accept).await;
        match accepted.unwrap_or_else(|_| Err(crate::inbound::InboundError::Internal)) {
            Ok(o) => {
                let (code, text) = reply::outcome(&o);
                let (name, reason) = match &o {
                    Outcome::Stored { .. } => ("stored", String::new()),
                    Outcome::Duplicate { .. } => ("duplicate", String::new()),
                    Outcome::Quarantined { reason, .. } => ("quarantined", reason.clone()),
                    Outcome::Rejected { reason } => ("rejected", reason.clone()),
                    Outcome::Dropped { reason } => ("dropped", reason.clone()),
                };
                (code, text, name, reason)
            }
            Err(e) => (
                reply::TRY_LATER.0,
                reply::TRY_LATER.1.into(),
                "deferred",
                e.to_string(),
            ),
        }
    };
    tracing::info!(
        peer = %peer,
        helo = %env.helo,
        mail_from = %env.mail_from,
        rcpt = %env.rcpt_to.join(","),
        size = data.len(),
        outcome,
        reason = %reason,
        code,
        duration_ms = started.elapsed().as_millis() as u64,
        "smtp transaction"
    );
    crate::admin::metrics::inbound(outcome, &reason, data.len());
    (code, text)
}
