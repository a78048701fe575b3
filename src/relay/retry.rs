//! Back-off between delivery attempts: exponential from
//! `relay.retry_initial_ms`, capped at `relay.retry_max_secs`, with up to
//! 10 % jitter so a relay outage does not end in one synchronised burst.

use std::time::Duration;

use rand::Rng;

use crate::config::RelayConfig;

/// Delay before the attempt that follows attempt number `attempts` (1-based).
pub fn backoff(cfg: &RelayConfig, attempts: u32) -> Duration {
    let base = cfg.retry_initial_ms.max(1);
    let exp = attempts.saturating_sub(1).min(30);
    let ms = base
        .saturating_mul(1u64 << exp)
        .min(cfg.retry_max_secs.saturating_mul(1000).max(base));
    let jitter = rand::rng().random_range(0..=ms / 10);
    Duration::from_millis(ms + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let cfg = RelayConfig {
            retry_initial_ms: 1000,
            retry_max_secs: 60,
            ..RelayConfig::default()
        };
        let ms = |n| backoff(&cfg, n).as_millis() as u64;
        assert!((1000..=1100).contains(&ms(1)));
        assert!((2000..=2200).contains(&ms(2)));
        assert!((8000..=8800).contains(&ms(4)));
        assert!((60_000..=66_000).contains(&ms(20)));
        assert!((60_000..=66_000).contains(&ms(u32::MAX)));
    }
}
