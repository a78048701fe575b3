//! The service manager's side channel (sd_notify(3)), written out instead of
//! linking libsystemd: one datagram per state change to the socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Without
//! that variable every call is a no-op, so `serve` runs the same under a
//! terminal, a test or systemd. This module never decides *when* to notify;
//! `cli::serve` does.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;
use std::time::Duration;

/// Where notifications go, read once: the environment does not change.
fn target() -> Option<&'static SocketAddr> {
    static TARGET: OnceLock<Option<SocketAddr>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let raw = std::env::var_os("NOTIFY_SOCKET")?;
            match parse_address(raw.to_str()?) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, "NOTIFY_SOCKET unusable; not notifying systemd");
                    None
                }
            }
        })
        .as_ref()
}

/// `/run/systemd/notify` or `@abstract-name`, as sd_notify(3) accepts.
pub fn parse_address(s: &str) -> std::io::Result<SocketAddr> {
    match s.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None if s.starts_with('/') => SocketAddr::from_pathname(s),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{s:?} is neither an absolute path nor @abstract"),
        )),
    }
}

/// True when a service manager listens (`NOTIFY_SOCKET` is set and valid).
pub fn enabled() -> bool {
    target().is_some()
}

/// Sends `state` (newline-separated `KEY=VALUE` lines). A lost notification
/// must not stop the mail, so failures are logged, never returned.
pub fn notify(state: &str) {
    let Some(addr) = target() else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|s| s.send_to_addr(state.as_bytes(), addr));
    if let Err(e) = sent {
        tracing::debug!(error = %e, state, "sd_notify failed");
    }
}

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    notify(&format!("READY=1\nSTATUS={}", one_line(status)));
}

pub fn status(status: &str) {
    notify(&format!("STATUS={}", one_line(status)));
}

/// Start of a reload. systemd ≥ 253 matches `MONOTONIC_USEC` against the
/// time it sent SIGHUP; 252 ignores it, so sending it always is harmless.
pub fn reloading() {
    notify(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading configuration",
        monotonic_usec()
    ));
}

pub fn stopping(status: &str) {
    notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
}

pub fn watchdog() {
    notify("WATCHDOG=1");
}

/// The keep-alive period: half of `WATCHDOG_USEC` (sd_watchdog_enabled(3)
/// advises pinging at half the timeout), or None when no watchdog is
/// armed for this process (`WATCHDOG_PID` names another one).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID")
        && pid.to_str()?.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0 && enabled()).then(|| Duration::from_micros(usec / 2))
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd stamps reloads with.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// A newline would start a new `KEY=` assignment in the datagram.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_path_and_abstract() {
        let p = parse_address("/run/systemd/notify").unwrap();
        assert_eq!(
            p.as_pathname().unwrap().to_str(),
            Some("/run/systemd/notify")
        );
        let a = parse_address("@mensageria/notify").unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"mensageria/notify"[..]));
        assert!(parse_address("relative/path").is_err());
    }

    #[test]
    fn monotonic_moves_forward() {
        let a = monotonic_usec();
        let b = monotonic_usec();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn status_stays_on_one_line() {
        assert_eq!(one_line("a\nREADY=1"), "a READY=1");
    }
}
