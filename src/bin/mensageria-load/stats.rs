//! What a run measured: every end-of-data latency (microseconds, only for
//! messages that got their 250) and the failures counted by reply code.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::smtp::Failure;

#[derive(Default)]
pub struct Tally {
    pub attempted: u64,
    pub ok: u64,
    pub latencies_us: Vec<u32>,
    /// Key (reply code, or io/timeout/closed) → count and the first text.
    pub errors: BTreeMap<String, (u64, String)>,
}

impl Tally {
    pub fn ok(&mut self, took: Duration) {
        self.ok += 1;
        self.latencies_us
            .push(took.as_micros().min(u32::MAX as u128) as u32);
    }

    pub fn failed(&mut self, f: &Failure) {
        let e = self
            .errors
            .entry(f.key())
            .or_insert_with(|| (0, format!("at {}: {}", f.step, f.text)));
        e.0 += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        self.attempted += other.attempted;
        self.ok += other.ok;
        self.latencies_us.extend(other.latencies_us);
        for (k, (n, text)) in other.errors {
            self.errors.entry(k).or_insert((0, text)).0 += n;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// `451:3,io:1`, or `none`.
    pub fn errors_by_code(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        self.errors
            .iter()
            .map(|(k, (n, _))| format!("{k}:{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Latency percentiles in milliseconds (nearest rank), over sorted data.
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn percentiles(latencies_us: &mut [u32]) -> Percentiles {
    latencies_us.sort_unstable();
    let at = |p: f64| -> f64 {
        if latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * latencies_us.len() as f64).ceil() as usize;
        latencies_us[rank.clamp(1, latencies_us.len()) - 1] as f64 / 1000.0
    };
    Percentiles {
        p50: at(50.0),
        p99: at(99.0),
        max: at(100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let p = percentiles(&mut v);
        assert_eq!((p.p50, p.p99, p.max), (50.0, 99.0, 100.0));
        let p = percentiles(&mut []);
        assert_eq!(p.max, 0.0);
    }
}
