//! One SMTP session: bytes, framing, limits and timeouts. mailin's `Session`
//! owns the verbs and their order; this file owns everything that depends on
//! what the client sends, so memory per session is bounded by config.
//!
//! Framing: a command ends at LF (a bare LF is tolerated there), but inside
//! DATA a line ends only at CRLF, so `\n.\r\n` or `\r\n.\n` can never end the
//! data early (SMTP smuggling); a message with bare CR or LF is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::policy::{Policy, Shared};
use super::reply;
use crate::config::Config;
use crate::inbound::{Envelope, Inbound, Outcome};

/// How a line read ended.
enum Line {
    Complete,
    /// Longer than the limit; the bytes past it were dropped.
    TooLong,
    Eof,
}

/// Reads one line into `buf` (terminator included), keeping at most `max`
/// bytes. With `crlf_only`, an LF not preceded by CR does not end the line.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
    crlf_only: bool,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, found) = match memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        // When the line is already over the limit, only its last byte is
        // kept, so a CR just before the LF is still seen.
        if buf.len() + take <= max {
            buf.extend_from_slice(&avail[..take]);
        } else {
            too_long = true;
            let last = avail[take - 1];
            buf.clear();
            buf.push(last);
        }
        r.consume(take);
        if found && (!crlf_only || buf.ends_with(b"\r\n") || (too_long && ends_with_cr_lf(buf))) {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

fn ends_with_cr_lf(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[buf.len() - 2] == b'\r'
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// True when the message has a CR or LF that is not part of a CRLF pair.
fn has_bare_line_end(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, &c)| match c {
        b'\r' => data.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || data[i - 1] != b'\r',
        _ => false,
    })
}

/// Rewrites `MAIL FROM:<a> SIZE=n BODY=8BITMIME` for mailin, which knows
/// only BODY=: returns the line to pass on, or the reply that refuses it.
fn mail_params(line: &[u8], max_size: usize) -> Result<Option<Vec<u8>>, (u16, &'static str)> {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim_end();
    if !trimmed
        .get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case("mail from:"))
    {
        return Ok(None);
    }
    let Some(close) = trimmed.find('>') else {
        return Ok(None);
    };
    let (path, params) = trimmed.split_at(close + 1);
    let mut body = "";
    for p in params.split_whitespace() {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if k.eq_ignore_ascii_case("SIZE") {
            match v.parse::<u64>() {
                Ok(n) if n > max_size as u64 => return Err(reply::TOO_BIG),
                Ok(_) => {}
                Err(_) => return Err(reply::BAD_PARAMETER),
            }
        } else if k.eq_ignore_ascii_case("BODY") {
            body = if v.eq_ignore_ascii_case("8BITMIME") {
                " BODY=8BITMIME"
            } else {
                " BODY=7BIT"
            };
        } else {
            return Err(reply::BAD_PARAMETER);
        }
    }
    Ok(Some(format!("{path}{body}\r\n").into_bytes()))
}

fn is_ehlo(line: &[u8]) -> bool {
    line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"ehlo")
}

pub struct SessionCtx {
    pub cfg: Arc<Config>,
    pub inbound: Arc<Inbound>,
    pub shutdown: CancellationToken,
}

/// Runs a session to its end. I/O errors end it quietly (the peer left).
pub async fn run<S>(stream: S, peer: SocketAddr, ctx: &SessionCtx) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &ctx.cfg;
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::with_capacity(8192, r);
    let txn = Shared::new();
    let policy = Policy {
        txn: txn.clone(),
        cfg: cfg.clone(),
    };
    let mut session =
        mailin::SessionBuilder::new(cfg.smtp.hostname.clone()).build(peer.ip(), policy);
    w.write_all(&reply::greeting(&cfg.smtp.hostname)).await?;
    let mut line = Vec::with_capacity(1024);
    let mut errors = 0u32;
    let mut data_line_too_long = false;
    let mut data_deadline: Option<Instant> = None;
    loop {
        let in_data = txn.lock().in_data;
        // Idle time is bounded per line; the DATA phase as a whole has its
        // own deadline, so a client trickling bytes cannot hold a session.
        let limit = if in_data {
            let deadline = *data_deadline.get_or_insert_with(|| Instant::now() + cfg.data_timeout());
            cfg.idle_timeout().min(deadline.saturating_duration_since(Instant::now()))
        } else {
            data_deadline = None;
            cfg.idle_timeout()
        };
        let max = if in_data { cfg.smtp.max_line_length } else { cfg.smtp.max_command_length };
        let read = read_line(&mut r, &mut line, max, in_data);
        let result = tokio::select! {
            res = tokio::time::timeout(limit, read) => res,
            // Between transactions a stop closes the session at once;
            // inside DATA the message is allowed to finish.
            _ = ctx.shutdown.cancelled(), if !in_data => {
                write_reply(&mut w, reply::SHUTTING_DOWN).await?;
                return Ok(());
            }
        };
        let outcome = match result {
            Err(_) => {
                write_reply(&mut w, reply::TIMEOUT).await?;
                return Ok(());
            }
            Ok(res) => res?,
        };
        match outcome {
            Line::Eof => return Ok(()),
            Line::TooLong if in_data => {
                // Keep reading to the end of data, then refuse the message.
                data_line_too_long = true;
                continue;
            }
            Line::TooLong => {
                write_reply(&mut w, reply::LINE_TOO_LONG).await?;
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
                            write_reply(&mut w, r).await?;
                            errors += 1;
                            continue;
                        }
                    }
                }
                let resp = session.process(&line);
                let complete = std::mem::take(&mut txn.lock().complete);
                if complete {
                    let reply =
                        finish_message(&txn, peer, ctx, std::mem::take(&mut data_line_too_long))
                            .await;
                    w.write_all(&reply::line(reply.0, &reply.1)).await?;
                    continue;
                }
                if resp.code == 250 && is_ehlo(&line) {
                    w.write_all(&reply::ehlo(&cfg.smtp.hostname, cfg.smtp.max_message_size))
                        .await?;
                    continue;
                }
                let mut out = Vec::new();
                resp.write_to(&mut out)?;
                w.write_all(&out).await?;
                if resp.is_error {
                    errors += 1;
                }
                if resp.action == mailin::Action::Close {
                    return Ok(());
                }
            }
        }
        if errors >= cfg.smtp.max_errors {
            write_reply(&mut w, reply::TOO_MANY_ERRORS).await?;
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
        match ctx.inbound.accept(&env, &data).await {
            Ok(o) => {
                let (code, text) = reply::outcome(&o);
                let (name, reason) = match &o {
                    Outcome::Stored { .. } => ("stored", String::new()),
                    Outcome::Duplicate { .. } => ("duplicate", String::new()),
                    Outcome::Quarantined { reason, .. } => ("quarantined", reason.clone()),
                    Outcome::Rejected { reason } => ("rejected", reason.clone()),
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
    (code, text)
}
