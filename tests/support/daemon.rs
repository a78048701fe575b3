//! The built binary as a real daemon: spawned with a config file, waited on
//! until its listener greets, signalled like systemd would, and measured
//! (peak RSS from /proc).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Daemon {
    /// Starts `mensageria serve` and waits until `addr` answers 220.
    pub async fn spawn(config: &Path, addr: SocketAddr) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_mensageria"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mensageria serve");
        let d = Daemon { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
                let mut buf = [0u8; 3];
                use tokio::io::AsyncReadExt;
                let mut s = s;
                if s.read_exact(&mut buf).await.is_ok() && &buf == b"220" {
                    return d;
                }
            }
            assert!(Instant::now() < deadline, "daemon did not start on {addr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit in {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Peak resident set size in KiB (VmHWM).
    pub fn peak_rss_kb(&self) -> u64 {
        status_field(self.child.id(), "VmHWM:")
    }

    pub fn rss_kb(&self) -> u64 {
        status_field(self.child.id(), "VmRSS:")
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
