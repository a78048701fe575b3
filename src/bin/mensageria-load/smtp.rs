//! The load tool's SMTP client, written against the raw socket so that what
//! is timed is the gateway and nothing else: CRLF lines, whole (multi-line)
//! replies, dot-stuffing done once per body by the corpus. Every read and
//! write has a deadline; a failure says at which step and with what code.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Longest reply line kept; the rest is dropped (memory stays bounded).
const MAX_REPLY_LINE: usize = 4096;

/// Why a message (or a connection) did not get its 250.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `connect`, `greeting`, `EHLO`, `RSET`, `MAIL`, `RCPT`, `DATA`, `end-of-data`.
    pub step: &'static str,
    pub kind: FailKind,
    /// The server's reply text (or the I/O error), for the error summary.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailKind {
    Code(u16),
    Io,
    Timeout,
    /// The server closed the connection.
    Closed,
}

impl Failure {
    /// The key errors are counted under: the reply code, or the I/O class.
    pub fn key(&self) -> String {
        match self.kind {
            FailKind::Code(c) => c.to_string(),
            FailKind::Io => "io".into(),
            FailKind::Timeout => "timeout".into(),
            FailKind::Closed => "closed".into(),
        }
    }

    /// True when the connection cannot carry another transaction.
    pub fn fatal(&self) -> bool {
        !matches!(self.kind, FailKind::Code(c) if c != 421)
    }
}

/// One reply: its code and the text of its last line.
struct Reply {
    code: u16,
    text: String,
}

/// The envelope and bytes of one message; `data` is already dot-stuffed
/// and ends with CRLF, the `.\r\n` terminator is added here.
pub struct Mail<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub data: &'a [u8],
}

pub struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    timeout: Duration,
    line: Vec<u8>,
    /// Transactions already run on this connection (RSET before the next).
    used: u32,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects, reads the 220 greeting and says EHLO.
    pub async fn open(addr: SocketAddr, helo: &str, timeout: Duration) -> Result<Conn, Failure> {
        let s = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(io_failure("connect", &e)),
            Err(_) => return Err(timed_out("connect")),
        };
        // Commands are tiny and each waits for its reply: Nagle would only
        // add delayed-ACK stalls to the figures.
        let _ = s.set_nodelay(true);
        let (r, w) = s.into_split();
        let mut c = Conn {
            r: BufReader::with_capacity(4096, r),
            w,
            timeout,
            line: Vec::with_capacity(256),
            used: 0,
            buf: Vec::new(),
        };
        c.expect("greeting", 220).await?;
        c.command("EHLO", &format!("EHLO {helo}\r\n"), 250).await?;
        Ok(c)
    }

    /// One transaction. On success, the time from the terminating `.\r\n`
    /// being written to the 250 being read.
    pub async fn send(&mut self, m: &Mail<'_>, pipelining: bool) -> Result<Duration, Failure> {
        let rset = self.used > 0;
        self.used += 1;
        let mail = format!("MAIL FROM:<{}>\r\n", m.from);
        let rcpt = format!("RCPT TO:<{}>\r\n", m.to);
        if pipelining {
            // RFC 2920: RSET, MAIL, RCPT and DATA in one write; DATA last.
            let mut group = String::with_capacity(128);
            if rset {
                group.push_str("RSET\r\n");
            }
            group.push_str(&mail);
            group.push_str(&rcpt);
            group.push_str("DATA\r\n");
            self.write("MAIL", group.as_bytes()).await?;
            // Every reply of the group is read before judging any of them,
            // so the stream stays in step.
            let mut first_bad = None;
            let steps: &[(&'static str, u16)] = if rset {
                &[("RSET", 250), ("MAIL", 250), ("RCPT", 250), ("DATA", 354)]
            } else {
                &[("MAIL", 250), ("RCPT", 250), ("DATA", 354)]
            };
            for &(step, want) in steps {
                let r = self.reply(step).await?;
                if r.code != want && !(step == "RCPT" && r.code == 251) && first_bad.is_none() {
                    first_bad = Some(code_failure(step, r));
                }
            }
            if let Some(f) = first_bad {
                return Err(f);
            }
        } else {
            if rset {
                self.command("RSET", "RSET\r\n", 250).await?;
            }
            self.command("MAIL", &mail, 250).await?;
            self.write("RCPT", rcpt.as_bytes()).await?;
            let r = self.reply("RCPT").await?;
            if r.code != 250 && r.code != 251 {
                return Err(code_failure("RCPT", r));
            }
            self.command("DATA", "DATA\r\n", 354).await?;
        }
        // One write for body and terminator: a separate small write of
        // `.\r\n` would time the client's segmenting, not the server.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(m.data);
        buf.extend_from_slice(b".\r\n");
        let written = self.write("end-of-data", &buf).await;
        self.buf = buf;
        written?;
        let sent_at = Instant::now();
        let r = self.reply("end-of-data").await?;
        let took = sent_at.elapsed();
        if r.code == 250 {
            Ok(took)
        } else {
            Err(code_failure("end-of-data", r))
        }
    }

    /// QUIT, best effort, with a short deadline.
    pub async fn quit(mut self) {
        self.timeout = self.timeout.min(Duration::from_secs(2));
        if self.write("QUIT", b"QUIT\r\n").await.is_ok() {
            let _ = self.reply("QUIT").await;
        }
    }

    async fn command(&mut self, step: &'static str, line: &str, want: u16) -> Result<(), Failure> {
        self.write(step, line.as_bytes()).await?;
        self.expect(step, want).await
    }

    async fn expect(&mut self, step: &'static str, want: u16) -> Result<(), Failure> {
        let r = self.reply(step).await?;
        if r.code == want {
            Ok(())
        } else {
            Err(code_failure(step, r))
        }
    }

    async fn write(&mut self, step: &'static str, bytes: &[u8]) -> Result<(), Failure> {
        match tokio::time::timeout(self.timeout, self.w.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_failure(step, &e)),
            Err(_) => Err(timed_out(step)),
        }
    }

    /// Reads one whole reply: `250-…` lines continue, `250 …` ends it.
    async fn reply(&mut self, step: &'static str) -> Result<Reply, Failure> {
        let deadline = Instant::now() + self.timeout;
        loop {
            self.line.clear();
            let left = deadline.saturating_duration_since(Instant::now());
            let mut limited = (&mut self.r).take(MAX_REPLY_LINE as u64);
            let read = limited.read_until(b'\n', &mut self.line);
            let n = match tokio::time::timeout(left, read).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(io_failure(step, &e)),
                Err(_) => return Err(timed_out(step)),
            };
            if n == 0 {
                return Err(Failure {
                    step,
                    kind: FailKind::Closed,
                    text: "connection closed by the server".into(),
                });
            }
            let text = String::from_utf8_lossy(&self.line);
            let code = text.get(..3).and_then(|c| c.parse::<u16>().ok());
            let Some(code) = code else {
                return Err(Failure {
                    step,
                    kind: FailKind::Io,
                    text: format!("not an SMTP reply: {:?}", text.trim_end()),
                });
            };
            if self.line.get(3) != Some(&b'-') {
                return Ok(Reply {
                    code,
                    text: text.get(4..).unwrap_or("").trim_end().to_owned(),
                });
            }
        }
    }
}

fn code_failure(step: &'static str, r: Reply) -> Failure {
    Failure {
        step,
        kind: FailKind::Code(r.code),
        text: format!("{} {}", r.code, r.text),
    }
}

fn io_failure(step: &'static str, e: &std::io::Error) -> Failure {
    Failure {
        step,
        kind: FailKind::Io,
        text: e.to_string(),
    }
}

fn timed_out(step: &'static str) -> Failure {
    Failure {
        step,
        kind: FailKind::Timeout,
        text: "no answer in time".into(),
    }
}
