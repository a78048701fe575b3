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
        let (take, ended) = scan(buf, avail, max, crlf_only, &mut too_long);
        r.consume(take);
        if let Some(line) = ended {
            return Ok(line);
        }
    }
}

/// Takes one line out of `pending` (what the reader already holds) without
/// waiting for the socket: Some when a whole line was there, None (nothing
/// consumed) when the caller must read with its timeout. Most DATA lines
/// arrive many to a segment, so most lines never arm a timer. The line ends
/// by the same rules as in `read_line` (`scan`).
pub fn take_buffered(
    pending: &[u8],
    buf: &mut Vec<u8>,
    max: usize,
    crlf_only: bool,
) -> Option<usize> {
    buf.clear();
    let (mut at, mut too_long) = (0, false);
    while at < pending.len() {
        let (take, ended) = scan(buf, &pending[at..], max, crlf_only, &mut too_long);
        at += take;
        match ended {
            Some(Line::Complete) => return Some(at),
            // Over-long lines take the general path, which keeps only
            // their end and reads on to it.
            Some(_) => return None,
            None => {}
        }
    }
    None
}

/// Adds the bytes of `avail` up to its first LF to the line in `buf`;
/// returns how many were taken, and how the line ended if it did.
fn scan(
    buf: &mut Vec<u8>,
    avail: &[u8],
    max: usize,
    crlf_only: bool,
    too_long: &mut bool,
) -> (usize, Option<Line>) {
    let (take, found) = match memchr::memchr(b'\n', avail) {
        Some(i) => (i + 1, true),
        None => (avail.len(), false),
    };
    let chunk = &avail[..take];
    if !*too_long && buf.len() + take <= max {
        buf.extend_from_slice(chunk);
    } else {
        // Over the limit: only the last two bytes seen are kept, so a CRLF
        // is still recognised wherever the reads split it.
        *too_long = true;
        buf.extend_from_slice(&chunk[chunk.len().saturating_sub(2)..]);
        let excess = buf.len().saturating_sub(2);
        buf.drain(..excess);
    }
    if found && (!crlf_only || buf.ends_with(b"\r\n")) {
        let line = if *too_long {
            Line::TooLong
        } else {
            Line::Complete
        };
        return (take, Some(line));
    }
    (take, None)
}

/// True when the message has a CR or LF that is not part of a CRLF pair.
pub fn has_bare_line_end(data: &[u8]) -> bool {
    memchr::memchr2_iter(b'\r', b'\n', data).any(|i| match data[i] {
        b'\r' => data.get(i + 1) != Some(&b'\n'),
        _ => i == 0 || data[i - 1] != b'\r',
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` one read at a time, as a socket might split them.
    async fn lines(parts: &[&[u8]], max: usize, crlf_only: bool) -> Vec<(bool, Vec<u8>)> {
        let mut parts = Parts(parts.iter().map(|p| p.to_vec()).collect());
        let mut r = tokio::io::BufReader::with_capacity(16, &mut parts);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match read_line(&mut r, &mut buf, max, crlf_only).await.unwrap() {
                Line::Eof => return out,
                Line::Complete => out.push((true, buf.clone())),
                Line::TooLong => out.push((false, buf.clone())),
            }
        }
    }

    /// A reader that returns each part as one read (at most what fits).
    struct Parts(std::collections::VecDeque<Vec<u8>>);

    impl tokio::io::AsyncRead for Parts {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            out: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(mut p) = self.0.pop_front() {
                let n = p.len().min(out.remaining());
                out.put_slice(&p[..n]);
                if n < p.len() {
                    self.0.push_front(p.split_off(n));
                }
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn an_over_long_line_still_ends_at_its_crlf() {
        // The line's end arrives in the read that takes it over the limit:
        // its CRLF must still end it, or the terminating "." would be
        // swallowed and the client left waiting for a reply.
        let long = [b'x'; 40];
        let got = lines(&[&long[..], b"yy\r\n.\r\n"], 20, true).await;
        assert_eq!(
            got,
            vec![(false, b"\r\n".to_vec()), (true, b".\r\n".to_vec())]
        );
        // Split between CR and LF.
        let got = lines(&[&long[..], b"\r", b"\n.\r\n"], 20, true).await;
        assert_eq!(
            got,
            vec![(false, b"\r\n".to_vec()), (true, b".\r\n".to_vec())]
        );
    }

    #[tokio::test]
    async fn inside_data_only_crlf_ends_a_line() {
        let got = lines(&[b"a\nb\r\n", b"c\r.\r\n"], 100, true).await;
        assert_eq!(
            got,
            vec![(true, b"a\nb\r\n".to_vec()), (true, b"c\r.\r\n".to_vec())]
        );
        let got = lines(&[b"EHLO x\nQUIT\r\n"], 100, false).await;
        assert_eq!(
            got,
            vec![(true, b"EHLO x\n".to_vec()), (true, b"QUIT\r\n".to_vec())]
        );
    }

    #[test]
    fn buffered_lines_are_taken_as_read_line_would() {
        let mut buf = Vec::new();
        assert_eq!(take_buffered(b"a\nb\r\nc", &mut buf, 100, true), Some(5));
        assert_eq!(buf, b"a\nb\r\n");
        assert_eq!(take_buffered(b"a\nb\r\nc", &mut buf, 100, false), Some(2));
        assert_eq!(buf, b"a\n");
        // No whole line yet, or one over the limit: the caller reads.
        assert_eq!(take_buffered(b"abc\r", &mut buf, 100, true), None);
        assert_eq!(take_buffered(b"abcdef\r\n", &mut buf, 4, true), None);
    }

    #[test]
    fn bare_line_ends_are_found() {
        assert!(!has_bare_line_end(b"a\r\nb\r\n"));
        assert!(has_bare_line_end(b"a\nb\r\n"));
        assert!(has_bare_line_end(b"a\r\rb\r\n"));
        assert!(has_bare_line_end(b"\nb"));
        assert!(has_bare_line_end(b"ab\r"));
    }
}
