//! The mailin `Handler`: what the gateway accepts at HELO, MAIL and RCPT, and
//! where message bytes go during DATA. It decides only; the session owns the
//! socket and the async commit after end of data.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use mailin::{Handler, Response};

use super::reply;
use crate::config::Config;

/// The transaction being received, shared between the handler (inside
/// mailin's session) and our session loop. Never locked across an await.
#[derive(Debug, Default)]
pub struct Txn {
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    pub in_data: bool,
    /// Set at end of data; the session takes the message and replies.
    pub complete: bool,
    pub too_big: bool,
}

#[derive(Clone)]
pub struct Shared(Arc<Mutex<Txn>>);

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    pub fn new() -> Shared {
        Shared(Arc::new(Mutex::new(Txn::default())))
    }

    pub fn lock(&self) -> MutexGuard<'_, Txn> {
        // A poisoned lock only means a panic elsewhere; the data is plain.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Policy {
    pub txn: Shared,
    pub cfg: Arc<Config>,
}

fn reply((code, text): (u16, &str)) -> Response {
    Response::custom(code, text.to_owned())
}

impl Handler for Policy {
    fn helo(&mut self, _ip: IpAddr, domain: &str) -> Response {
        self.txn.lock().helo = domain.to_owned();
        mailin::response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        let mut t = self.txn.lock();
        // The null reverse-path (bounces) reaches mailin as a stand-in.
        t.mail_from = if from == super::framing::NULL_SENDER {
            String::new()
        } else {
            from.to_owned()
        };
        t.rcpt_to.clear();
        t.data.clear();
        t.too_big = false;
        t.complete = false;
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let Some((_, domain)) = crate::address::parse_mailbox(to) else {
            return reply(reply::BAD_ADDRESS);
        };
        if !self.cfg.is_local_domain(domain) {
            return reply(reply::RELAY_DENIED);
        }
        let mut t = self.txn.lock();
        let to = crate::address::normalize(to);
        if t.rcpt_to.contains(&to) {
            return mailin::response::OK;
        }
        if t.rcpt_to.len() >= self.cfg.smtp.max_recipients {
            return reply(reply::TOO_MANY_RECIPIENTS);
        }
        t.rcpt_to.push(to);
        mailin::response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        let mut t = self.txn.lock();
        t.in_data = true;
        t.data.clear();
        t.too_big = false;
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut t = self.txn.lock();
        if t.too_big {
            return Ok(());
        }
        if t.data.len() + buf.len() > self.cfg.smtp.max_message_size {
            // Stop buffering at once; the rest is read and dropped.
            t.too_big = true;
            t.data = Vec::new();
            return Ok(());
        }
        t.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut t = self.txn.lock();
        t.in_data = false;
        t.complete = true;
        // Placeholder: the session answers after the commit.
        mailin::response::OK
    }
}
