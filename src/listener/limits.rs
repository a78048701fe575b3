//! Session caps: overall (a semaphore) and per client address (a counted
//! map). Both are checked right after accept and answered inline with 421,
//! so a flood of idle connections never blocks the accept loop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::reply;

pub struct Limits {
    total: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
}

/// Held for the life of a session; releases both counts on drop.
pub struct Permit {
    _total: OwnedSemaphorePermit,
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Limits {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Limits> {
        Arc::new(Limits {
            total: Arc::new(Semaphore::new(max_total)),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip,
        })
    }

    /// A permit, or the 421 reply that refuses the session.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, (u16, &'static str)> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| reply::TOO_MANY_SESSIONS)?;
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(reply::TOO_MANY_FROM_PEER);
        }
        *n += 1;
        Ok(Permit {
            _total: total,
            limits: self.clone(),
            ip,
        })
    }

    /// Sessions open now (for metrics and tests).
    pub fn open(&self) -> usize {
        self.per_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address() {
        let l = Limits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = l.enter(a).unwrap();
        let _p2 = l.enter(a).unwrap();
        assert_eq!(l.enter(a).err(), Some(reply::TOO_MANY_FROM_PEER));
        let _p3 = l.enter(b).unwrap();
        assert_eq!(l.enter(b).err(), Some(reply::TOO_MANY_SESSIONS));
        drop(p1);
        let _p4 = l.enter(a).unwrap();
        assert_eq!(l.open(), 3);
    }
}
