//! Every metric of the process, declared here and nowhere else, and the
//! Prometheus text exposition (format 0.0.4) rendered by hand.
//!
//! Counters and histograms are process-wide statics of plain atomics, so the
//! mail paths record with one call and no handle to carry. Labelled series
//! are bounded: past [`MAX_SERIES`] label sets a metric folds new ones into
//! `other`, so a surprising reason string cannot grow memory without end.
//! Recording must never fail or block the mail: no I/O happens here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::store::now_ms;

pub const INBOUND_TOTAL: &str = "mensageria_inbound_total";
pub const INBOUND_BYTES_TOTAL: &str = "mensageria_inbound_bytes_total";
pub const SMTP_SESSIONS_OPEN: &str = "mensageria_smtp_sessions_open";
pub const SMTP_SESSIONS_REFUSED_TOTAL: &str = "mensageria_smtp_sessions_refused_total";
pub const OUTBOX: &str = "mensageria_outbox";
pub const OUTBOX_OLDEST_QUEUED_SECONDS: &str = "mensageria_outbox_oldest_queued_seconds";
pub const DELIVERY_ATTEMPTS_TOTAL: &str = "mensageria_delivery_attempts_total";
pub const RELAY_ROWS_TOTAL: &str = "mensageria_relay_rows_total";
pub const RELAY_LATENCY_SECONDS: &str = "mensageria_relay_latency_seconds";
pub const RELAY_LAST_SUCCESS: &str = "mensageria_relay_last_success_timestamp_seconds";
pub const RELAY_LAST_FAILURE: &str = "mensageria_relay_last_failure_timestamp_seconds";
pub const DB_COMMIT_SECONDS: &str = "mensageria_db_commit_seconds";

/// Distinct label sets one metric keeps before folding into `other`.
pub const MAX_SERIES: usize = 64;

pub static INBOUND: LabelledCounter = LabelledCounter::new(&["outcome", "reason"]);
pub static INBOUND_BYTES: Counter = Counter::new();
pub static SESSIONS_REFUSED: LabelledCounter = LabelledCounter::new(&["reason"]);
pub static DELIVERY_ATTEMPTS: LabelledCounter = LabelledCounter::new(&["outcome"]);
/// Rows given to the relay's senders, by the way they came: `handed` by the
/// commit that queued them (see `outbound::handoff`), `claimed` from the
/// outbox. Claims that outnumber hand-overs while replies come in mean the
/// relay's queue is full: a backlog.
pub static RELAY_ROWS: LabelledCounter = LabelledCounter::new(&["way"]);
/// Relay round trips take from milliseconds (loopback) to the relay's
/// timeout (30 s by default).
pub static RELAY_LATENCY: Histogram =
    Histogram::new(&[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
/// SQLite with synchronous=FULL commits in about a millisecond; PostgreSQL
/// over a network in a few; seconds mean the pool is starved or the disk is.
pub static DB_COMMIT: Histogram = Histogram::new(&[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
]);
/// Unix milliseconds of the relay's last answer and last unreachability;
/// 0 = never. `/readyz` reads them too.
pub static RELAY_LAST_OK_MS: AtomicI64 = AtomicI64::new(0);
pub static RELAY_LAST_FAIL_MS: AtomicI64 = AtomicI64::new(0);

/// End of one SMTP transaction (`listener::session::finish_message`).
/// `deferred` means the store failed: its error text is in the log, and the
/// label says only where it came from.
pub fn inbound(outcome: &str, reason: &str, bytes: usize) {
    let reason = if outcome == "deferred" {
        "database unavailable"
    } else {
        reason
    };
    INBOUND.inc(&[outcome, reason]);
    INBOUND_BYTES.add(bytes as u64);
}

/// Awaits `f`, observing how long it took in `h`.
pub async fn timed<F: std::future::Future>(h: &Histogram, f: F) -> F::Output {
    let started = std::time::Instant::now();
    let out = f.await;
    h.observe(started.elapsed());
    out
}

/// A session refused at accept with one of the listener's 421 replies.
pub fn session_refused(code: u16, text: &str) {
    let reason = if (code, text) == crate::listener::reply::TOO_MANY_FROM_PEER {
        "max_sessions_per_ip"
    } else if (code, text) == crate::listener::reply::TOO_MANY_SESSIONS {
        "max_sessions"
    } else {
        "other"
    };
    SESSIONS_REFUSED.inc(&[reason]);
}

/// One delivery attempt (recorded by the relay worker): `sent`, `retry` or
/// `failed`. A `retry` (connection refused, timeout, 4xx) marks the relay
/// unreachable for `/readyz`; a `failed` row was refused by a relay that
/// answered, or gave up after retries already counted, so it marks nothing.
pub fn delivery_attempt(outcome: &str, took: Duration) {
    DELIVERY_ATTEMPTS.inc(&[outcome]);
    RELAY_LATENCY.observe(took);
    match outcome {
        "sent" => relay_reached(true),
        "retry" => relay_reached(false),
        _ => {}
    }
}

/// The relay answered (a delivery or an EHLO probe worked), or did not.
pub fn relay_reached(ok: bool) {
    let cell = if ok {
        &RELAY_LAST_OK_MS
    } else {
        &RELAY_LAST_FAIL_MS
    };
    cell.store(now_ms(), Ordering::Relaxed);
}

/// Values read at scrape time from elsewhere (the store, the listener).
#[derive(Debug, Default)]
pub struct Sampled {
    pub sessions_open: Option<usize>,
    /// Rows per outbox state (`queued`, `sending`, `failed`).
    pub outbox: Option<Vec<(&'static str, i64)>>,
    /// Age of the oldest row still waiting to go; 0 when none waits.
    pub oldest_queued_seconds: Option<f64>,
}

/// The whole exposition.
pub fn render(s: &Sampled) -> String {
    let mut out = String::with_capacity(4096);
    header(
        &mut out,
        INBOUND_TOTAL,
        "counter",
        "Inbound SMTP transactions by outcome and reason.",
    );
    INBOUND.render(&mut out, INBOUND_TOTAL);
    header(
        &mut out,
        INBOUND_BYTES_TOTAL,
        "counter",
        "Bytes of message data received at end of DATA.",
    );
    sample(
        &mut out,
        INBOUND_BYTES_TOTAL,
        "",
        INBOUND_BYTES.get() as f64,
    );
    if let Some(n) = s.sessions_open {
        header(
            &mut out,
            SMTP_SESSIONS_OPEN,
            "gauge",
            "SMTP sessions open now.",
        );
        sample(&mut out, SMTP_SESSIONS_OPEN, "", n as f64);
    }
    header(
        &mut out,
        SMTP_SESSIONS_REFUSED_TOTAL,
        "counter",
        "SMTP sessions refused with 421 at accept, by limit.",
    );
    SESSIONS_REFUSED.render(&mut out, SMTP_SESSIONS_REFUSED_TOTAL);
    if let Some(states) = &s.outbox {
        header(&mut out, OUTBOX, "gauge", "Outbox rows by state.");
        for (state, n) in states {
            sample(&mut out, OUTBOX, &labels(&["state"], &[state]), *n as f64);
        }
    }
    if let Some(age) = s.oldest_queued_seconds {
        header(
            &mut out,
            OUTBOX_OLDEST_QUEUED_SECONDS,
            "gauge",
            "Age of the oldest outbox row still waiting to be relayed.",
        );
        sample(&mut out, OUTBOX_OLDEST_QUEUED_SECONDS, "", age);
    }
    header(
        &mut out,
        DELIVERY_ATTEMPTS_TOTAL,
        "counter",
        "Attempts to hand outbox rows to the relay, by outcome.",
    );
    DELIVERY_ATTEMPTS.render(&mut out, DELIVERY_ATTEMPTS_TOTAL);
    header(
        &mut out,
        RELAY_ROWS_TOTAL,
        "counter",
        "Outbox rows given to the relay's senders: handed over by the commit that queued them, or claimed.",
    );
    RELAY_ROWS.render(&mut out, RELAY_ROWS_TOTAL);
    header(
        &mut out,
        RELAY_LATENCY_SECONDS,
        "histogram",
        "Duration of one delivery attempt to the relay.",
    );
    RELAY_LATENCY.render(&mut out, RELAY_LATENCY_SECONDS);
    for (name, cell, help) in [
        (
            RELAY_LAST_SUCCESS,
            &RELAY_LAST_OK_MS,
            "When the relay last accepted mail or answered a probe.",
        ),
        (
            RELAY_LAST_FAILURE,
            &RELAY_LAST_FAIL_MS,
            "When the relay was last found unreachable.",
        ),
    ] {
        let ms = cell.load(Ordering::Relaxed);
        if ms > 0 {
            header(&mut out, name, "gauge", help);
            sample(&mut out, name, "", ms as f64 / 1000.0);
        }
    }
    header(
        &mut out,
        DB_COMMIT_SECONDS,
        "histogram",
        "Duration of the inbound decision and commit of one message.",
    );
    DB_COMMIT.render(&mut out, DB_COMMIT_SECONDS);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, v: f64) {
    let _ = writeln!(out, "{name}{labels} {}", number(v));
}

/// Prometheus numbers: integers without a fraction, `+Inf` spelled so.
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// `{a="x",b="y"}` with the values escaped as the text format requires.
fn labels(names: &[&str], values: &[&str]) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{n}=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Counter::new()
    }
}

/// A counter per label set. The map's lock is held for one increment.
pub struct LabelledCounter {
    names: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl LabelledCounter {
    pub const fn new(names: &'static [&'static str]) -> LabelledCounter {
        LabelledCounter {
            names,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: &[&str], n: u64) {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let key = if map.contains_key(&key) || map.len() < MAX_SERIES {
            key
        } else {
            vec!["other".to_string(); self.names.len()]
        };
        *map.entry(key).or_insert(0) += n;
    }

    /// The value for one label set (0 when never incremented).
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str) {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (values, n) in map.iter() {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            sample(out, name, &labels(self.names, &values), *n as f64);
        }
    }
}

/// Fixed buckets; the sum is kept in microseconds so it stays an atomic.
pub struct Histogram {
    bounds: &'static [f64],
    /// One cell per bound, non-cumulative; rendering adds them up.
    buckets: [AtomicU64; 16],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        assert!(bounds.len() <= 16);
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; 16],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            sample(
                out,
                &bucket,
                &labels(&["le"], &[&number(*b)]),
                cumulative as f64,
            );
        }
        let count = self.count();
        sample(out, &bucket, "{le=\"+Inf\"}", count as f64);
        sample(
            out,
            &format!("{name}_sum"),
            "",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        sample(out, &format!("{name}_count"), "", count as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(
            labels(&["a", "b"], &["x\"y", "1\\2\n"]),
            r#"{a="x\"y",b="1\\2\n"}"#
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        static H: Histogram = Histogram::new(&[0.1, 1.0]);
        H.observe(Duration::from_millis(50));
        H.observe(Duration::from_millis(500));
        H.observe(Duration::from_secs(5));
        let mut out = String::new();
        H.render(&mut out, "h");
        assert!(out.contains("h_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("h_sum 5.55\n"), "{out}");
        assert!(out.contains("h_count 3\n"), "{out}");
    }

    #[test]
    fn series_are_bounded() {
        static C: LabelledCounter = LabelledCounter::new(&["reason"]);
        for i in 0..MAX_SERIES + 10 {
            C.inc(&[&format!("r{i}")]);
        }
        assert_eq!(C.get(&["other"]), 10);
        C.inc(&["r0"]);
        assert_eq!(C.get(&["r0"]), 2);
    }

    #[test]
    fn deferred_hides_the_error_text() {
        inbound("deferred", "database: connection refused to 10.0.0.5", 10);
        assert!(INBOUND.get(&["deferred", "database unavailable"]) >= 1);
    }
}
