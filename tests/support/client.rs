//! A raw SMTP client over TCP: sends exactly the bytes a test gives it and
//! reads whole (multi-line) replies.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

/// A reply: code and the text of its last line.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> (Client, Reply) {
        let s = TcpStream::connect(addr).await.expect("connect to gateway");
        let (r, w) = s.into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
        };
        let greeting = c.reply().await.expect("greeting");
        (c, greeting)
    }

    pub async fn reply(&mut self) -> Option<Reply> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = tokio::time::timeout(Duration::from_secs(30), self.r.read_line(&mut line))
                .await
                .expect("reply within 30 s")
                .ok()?;
            if n == 0 {
                return None;
            }
            let code: u16 = line.get(..3)?.parse().ok()?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(Reply {
                    code,
                    text: line.get(4..).unwrap_or("").trim_end().to_owned(),
                });
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.expect("write");
    }

    /// Sends one command line (CRLF added) and returns the reply code.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await.expect("reply")
    }

    /// A whole transaction; `data` is dot-stuffed here. Returns the reply to
    /// end of data, or the first refusal before it.
    pub async fn mail(&mut self, from: &str, to: &[&str], data: &[u8]) -> Reply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        if r.code != 250 {
            return r;
        }
        let mut accepted = 0;
        let mut last = r;
        for t in to {
            last = self.cmd(&format!("RCPT TO:<{t}>")).await;
            if last.code == 250 {
                accepted += 1;
            }
        }
        if accepted == 0 {
            return last;
        }
        let r = self.cmd("DATA").await;
        assert_eq!(r.code, 354, "DATA: {r:?}");
        let mut body = Vec::with_capacity(data.len() + 16);
        for line in data.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                body.push(b'.');
            }
            body.extend_from_slice(line);
        }
        if !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        self.send(&body).await;
        self.reply().await.expect("reply to end of data")
    }
}

/// One message over a fresh connection, EHLO first; returns the final reply.
pub async fn deliver(addr: SocketAddr, from: &str, to: &[&str], data: &[u8]) -> Reply {
    let (mut c, g) = Client::connect(addr).await;
    assert_eq!(g.code, 220);
    assert_eq!(c.cmd("EHLO cliente.example").await.code, 250);
    let r = c.mail(from, to, data).await;
    let _ = c.cmd("QUIT").await;
    r
}
