//! A relay on loopback for the outbound path: a small SMTP server that
//! records what it accepts, or refuses everything with a chosen reply.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Transactions that reached end of data (accepted or not).
    pub attempts: Arc<Mutex<u32>>,
    /// Replies for the next ends of data, used up in order; then 250.
    pub script: Arc<Mutex<Vec<&'static str>>>,
    /// Recipients refused at RCPT with this reply.
    pub refuse_rcpt: Arc<Mutex<Option<(String, &'static str)>>>,
    /// Connections accepted so far.
    pub sessions: Arc<Mutex<u32>>,
    /// When set, a session is closed without a word after this many
    /// accepted mails, as a relay that drops idle clients does.
    pub close_after: Arc<Mutex<Option<u32>>>,
    /// Offer PIPELINING in the EHLO reply.
    pub pipelining: Arc<Mutex<bool>>,
    /// MAIL commands that arrived with more commands behind them in the
    /// same read: the client did not wait for MAIL's reply.
    pub pipelined: Arc<Mutex<u32>>,
    /// How long the end of data waits for its reply, as a slow relay's.
    pub stall: Arc<Mutex<Option<std::time::Duration>>>,
}

impl Sink {
    /// Accepts every message.
    pub async fn start() -> Sink {
        Self::start_on(0, None).await
    }

    /// On a given port; with `refuse`, every end of data gets that reply.
    pub async fn start_on(port: u16, refuse: Option<&'static str>) -> Sink {
        let l = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind sink");
        let sink = Sink {
            addr: l.local_addr().unwrap(),
            received: Arc::default(),
            attempts: Arc::default(),
            script: Arc::default(),
            refuse_rcpt: Arc::default(),
            sessions: Arc::default(),
            close_after: Arc::default(),
            pipelining: Arc::default(),
            pipelined: Arc::default(),
            stall: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = l.accept().await {
                let s = s.clone();
                *s.sessions.lock().unwrap() += 1;
                tokio::spawn(async move {
                    let _ = s.session(stream, refuse).await;
                });
            }
        });
        sink
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn session(
        &self,
        stream: tokio::net::TcpStream,
        refuse: Option<&str>,
    ) -> std::io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 sink.test ESMTP\r\n").await?;
        let mut cur = Received {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            data: Vec::new(),
        };
        let mut line = Vec::new();
        let mut accepted = 0;
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            if self
                .close_after
                .lock()
                .unwrap()
                .is_some_and(|n| accepted >= n)
            {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let upper = text.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                if *self.pipelining.lock().unwrap() {
                    b"250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                } else {
                    b"250-sink.test\r\n250 8BITMIME\r\n"
                }
            } else if upper.starts_with("HELO")
                || upper.starts_with("RSET")
                || upper.starts_with("NOOP")
            {
                b"250 ok\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                cur.mail_from = addr_of(&text);
                cur.rcpt_to.clear();
                if !r.buffer().is_empty() {
                    *self.pipelined.lock().unwrap() += 1;
                }
                b"250 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = addr_of(&text);
                let refused = self
                    .refuse_rcpt
                    .lock()
                    .unwrap()
                    .clone()
                    .filter(|(a, _)| *a == rcpt);
                if let Some((_, r)) = refused {
                    w.write_all(format!("{r}\r\n").as_bytes()).await?;
                    continue;
                }
                cur.rcpt_to.push(rcpt);
                b"250 ok\r\n"
            } else if upper == "DATA" {
                w.write_all(b"354 go on\r\n").await?;
                cur.data.clear();
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    let l = if line.starts_with(b"..") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    cur.data.extend_from_slice(l);
                }
                *self.attempts.lock().unwrap() += 1;
                let stall = *self.stall.lock().unwrap();
                if let Some(d) = stall {
                    tokio::time::sleep(d).await;
                }
                let scripted = {
                    let mut s = self.script.lock().unwrap();
                    (!s.is_empty()).then(|| s.remove(0))
                };
                // Lenient, as RFC 2920 allows: DATA was taken without a
                // valid recipient, and the end of data is refused.
                let nobody = cur
                    .rcpt_to
                    .is_empty()
                    .then_some("554 5.5.1 no valid recipients");
                match refuse.or(nobody).or(scripted) {
                    Some(r) => {
                        w.write_all(format!("{r}\r\n").as_bytes()).await?;
                        continue;
                    }
                    None => {
                        self.received.lock().unwrap().push(cur.clone());
                        accepted += 1;
                        b"250 2.0.0 queued\r\n"
                    }
                }
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 not here\r\n"
            };
            w.write_all(reply).await?;
        }
    }
}

fn addr_of(line: &str) -> String {
    let start = line.find('<').map(|i| i + 1).unwrap_or(0);
    let end = line[start..]
        .find('>')
        .map(|i| i + start)
        .unwrap_or(line.len());
    line[start..end].to_owned()
}

/// A loopback port with nobody listening on it (yet).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
