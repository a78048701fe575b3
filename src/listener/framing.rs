//! Framing of the client's bytes: lines bounded in length, and the
//! end-of-line rules that keep SMTP smuggling out. A command ends at LF (a
//! bare LF is tolerated there); inside DATA only CRLF ends a line, so
//! `\n.\r\n` or `\r\n.\n` can never end the data early.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::reply;

/// How a line read ended.
pub enum Line {
    Complete,
    /// Longer than the limit; the bytes past it were dropped.
    TooLong,
    Eof,
}

/// Reads one line into `buf` (terminator included), keeping at most `max`
/// bytes. With `crlf_only`, an LF not preceded by CR does not end the line.
pub async fn read_line<R: AsyncBufRead + Unpin>(
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
pub fn has_bare_line_end(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, &c)| match c {
        b'\r' => data.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || data[i - 1] != b'\r',
        _ => false,
    })
}

/// What mailin is given in place of `MAIL FROM:<>`.
pub const NULL_SENDER: &str = "null-reverse-path@mensageria.invalid";

/// Rewrites `MAIL FROM:<a> SIZE=n BODY=8BITMIME` for mailin, which knows
/// only BODY=: returns the line to pass on, or the reply that refuses it.
pub fn mail_params(line: &[u8], max_size: usize) -> Result<Option<Vec<u8>>, (u16, &'static str)> {
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
    // mailin refuses the null reverse-path of bounces (RFC 5321 4.5.5
    // requires accepting it): hand it a stand-in the policy maps back.
    let null_path;
    let path = if path[10..].trim() == "<>" {
        null_path = format!("MAIL FROM:<{NULL_SENDER}>");
        null_path.as_str()
    } else {
        path
    };
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

pub fn is_ehlo(line: &[u8]) -> bool {
    line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"ehlo")
}
