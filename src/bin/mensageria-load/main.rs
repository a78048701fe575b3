//! `mensageria-load`: drives a running gateway with requesters' replies and
//! measures it. It starts nothing by itself: N concurrent SMTP sessions
//! (tokio, our own client in `smtp`), M messages each, over one reused
//! connection per session (RSET between transactions) or a new one per
//! message; realistic bodies from `corpus`; per-message latency from the
//! terminating `.\r\n` written to the 250 read.
//!
//! The run is bounded in count (`--sessions` × `--messages`) and in time
//! (`--max-secs`, plus a deadline on every read and write), and it talks
//! to loopback addresses only. The last line of output is machine-readable:
//! `RESULT sessions=… messages=… ok=… seconds=… rate=… p50_ms=… p99_ms=… max_ms=… errors=…`.
//!
//! `--idle N` instead opens N sessions, says EHLO on each and holds them
//! (for the memory-per-session figure), printing `IDLE READY` once all are
//! open.

mod corpus;
mod smtp;
mod stats;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use smtp::{Conn, Mail};
use stats::Tally;

#[derive(Parser, Debug)]
#[command(
    name = "mensageria-load",
    about = "Load generator for the mensageria SMTP listener (loopback only)"
)]
struct Args {
    /// The gateway's listener; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    addr: SocketAddr,
    /// Concurrent SMTP sessions.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Messages per session.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Ticket IDs put in subjects, chosen uniformly: `1-100` or `42`.
    #[arg(long, default_value = "1-100", value_parser = parse_ids)]
    ticket_ids: (i64, i64),
    #[arg(long, default_value = "chamados@suporte.example")]
    to: String,
    /// Sender (envelope and From:); `{id}` is the ticket ID, for tickets
    /// whose requester differs (the gateway quarantines strangers).
    #[arg(long, default_value = "requerente@cliente.example")]
    from: String,
    /// `{id}` is the ticket ID, `{topic}` a short description.
    #[arg(long, default_value = "RES: Solicitação nº {id} - {topic}")]
    subject_template: String,
    /// Smallest message body in bytes.
    #[arg(long, default_value_t = 2048)]
    size_min: usize,
    /// Largest message body in bytes.
    #[arg(long, default_value_t = 51200)]
    size_max: usize,
    /// Share of messages carrying a base64 attachment.
    #[arg(long, default_value_t = 10)]
    attach_percent: u32,
    /// Connect, EHLO, send one message and QUIT, every time.
    #[arg(long)]
    new_connection_per_message: bool,
    /// Send RSET/MAIL/RCPT/DATA in one write (RFC 2920).
    #[arg(long)]
    pipelining: bool,
    /// Offered load in messages/s over all sessions: each session starts
    /// its messages on a fixed schedule (late ones go at once) instead of
    /// back to back. Latency is then measured at a known load rather than
    /// at saturation.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value = "carga.cliente.example")]
    helo: String,
    /// No message is started after this many seconds.
    #[arg(long, default_value_t = 300)]
    max_secs: u64,
    /// Deadline for each reply.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Seed of the message generator (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Open this many sessions, EHLO, and hold them idle instead.
    #[arg(long)]
    idle: Option<usize>,
    /// With --idle: how long to hold the sessions.
    #[arg(long, default_value_t = 30)]
    hold_secs: u64,
}

fn parse_ids(s: &str) -> Result<(i64, i64), String> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let lo: i64 = lo
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: not N or N-M"))?;
    let hi: i64 = hi
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: not N or N-M"))?;
    if lo < 1 || hi < lo {
        return Err(format!("{s:?}: need 1 <= N <= M"));
    }
    Ok((lo, hi))
}

/// Every problem with the arguments, so a typo fails before any traffic.
fn check(a: &Args) -> Vec<String> {
    let mut p = Vec::new();
    if !a.addr.ip().is_loopback() {
        p.push(format!(
            "--addr {}: only loopback addresses are allowed",
            a.addr
        ));
    }
    if a.sessions == 0 || a.sessions > 10_000 {
        p.push("--sessions: 1 to 10000".into());
    }
    if a.messages == 0 || a.messages > 1_000_000 {
        p.push("--messages: 1 to 1000000".into());
    }
    if a.size_min < 256 || a.size_min > a.size_max || a.size_max > 10 << 20 {
        p.push("--size-min/--size-max: need 256 <= min <= max <= 10 MiB".into());
    }
    if a.attach_percent > 100 {
        p.push("--attach-percent: 0 to 100".into());
    }
    if !a.subject_template.contains("{id}") {
        p.push("--subject-template: must contain {id}".into());
    }
    if a.idle.is_some_and(|n| n == 0 || n > 60_000) {
        p.push("--idle: 1 to 60000".into());
    }
    if a.max_secs == 0 || a.timeout_secs == 0 {
        p.push("--max-secs and --timeout-secs: at least 1".into());
    }
    p
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let problems = check(&args);
    if !problems.is_empty() {
        for p in problems {
            eprintln!("mensageria-load: {p}");
        }
        return ExitCode::from(2);
    }
    match args.idle {
        Some(n) => idle(&args, n).await,
        None => load(args).await,
    }
}

/// What every session shares.
struct Plan {
    args: Args,
    bodies: Vec<corpus::Body>,
    seed: u64,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
    /// Distinguishes this run's Message-IDs from any earlier run's.
    run: u64,
}

async fn load(args: Args) -> ExitCode {
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let mut rng = StdRng::seed_from_u64(seed);
    // A few dozen bodies cover the size range; the share with an
    // attachment is the asked one, up to rounding.
    let variants = (args.sessions * args.messages).clamp(1, 64);
    let with_attachment = (variants * args.attach_percent as usize).div_ceil(100);
    let bodies: Vec<_> = (0..variants)
        .map(|i| {
            let size = rng.random_range(args.size_min..=args.size_max);
            corpus::body(&mut rng, size, i < with_attachment)
        })
        .collect();
    let mode = match (args.new_connection_per_message, args.pipelining) {
        (true, _) => "new connection per message",
        (false, true) => "reused connection, pipelining",
        (false, false) => "reused connection",
    };
    let mode = match args.rate {
        Some(r) => format!("{mode}, offered {r} messages/s"),
        None => format!("{mode}, back to back"),
    };
    println!(
        "mensageria-load: {} sessions × {} messages → {} ({mode}; bodies {}–{} B, {} % with attachment; seed {seed})",
        args.sessions, args.messages, args.addr, args.size_min, args.size_max, args.attach_percent
    );
    let started = Instant::now();
    let plan = Arc::new(Plan {
        started,
        deadline: started + Duration::from_secs(args.max_secs),
        timeout: Duration::from_secs(args.timeout_secs),
        run: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0),
        args,
        bodies,
        seed,
    });
    let done = Arc::new(AtomicU64::new(0));
    let ticker = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            every.tick().await;
            loop {
                every.tick().await;
                eprintln!(
                    "[{:>6.1} s] {} messages accepted",
                    started.elapsed().as_secs_f64(),
                    done.load(Ordering::Relaxed)
                );
            }
        })
    };
    let mut set = tokio::task::JoinSet::new();
    for i in 0..plan.args.sessions {
        set.spawn(session(plan.clone(), i, done.clone()));
    }
    let mut total = Tally::default();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(t) => total.merge(t),
            Err(e) => eprintln!("mensageria-load: a session task failed: {e}"),
        }
    }
    ticker.abort();
    let secs = started.elapsed().as_secs_f64();
    report(&plan.args, &mut total, secs);
    if total.ok == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(a: &Args, t: &mut Tally, secs: f64) {
    let rate = t.ok as f64 / secs.max(1e-9);
    let p = stats::percentiles(&mut t.latencies_us);
    println!(
        "accepted {} of {} messages in {secs:.2} s: {rate:.1} messages/s",
        t.ok, t.attempted
    );
    println!(
        "latency from end of data to 250: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p.p50, p.p99, p.max
    );
    if t.errors.is_empty() {
        println!("errors: none");
    }
    for (key, (n, first)) in &t.errors {
        println!("errors {key}: {n} (first {first})");
    }
    println!(
        "RESULT sessions={} messages={} ok={} seconds={secs:.3} rate={rate:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} errors={} errors_by_code={}",
        a.sessions,
        t.attempted,
        t.ok,
        p.p50,
        p.p99,
        p.max,
        t.error_count(),
        t.errors_by_code()
    );
    let _ = std::io::stdout().flush();
}

/// One session's messages; a broken connection is replaced for the next
/// message, after a short pause so a refusing server is not hammered.
async fn session(plan: Arc<Plan>, index: usize, done: Arc<AtomicU64>) -> Tally {
    let a = &plan.args;
    let mut rng =
        StdRng::seed_from_u64(plan.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut tally = Tally::default();
    let mut conn: Option<Conn> = None;
    let mut data = Vec::with_capacity(a.size_max + 2048);
    // With --rate: this session's messages every `every`, the sessions
    // spread evenly over one interval.
    let every = a
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(a.sessions as f64 / r));
    for n in 0..a.messages {
        if let Some(every) = every {
            let due = plan.started + every.mul_f64(n as f64 + index as f64 / a.sessions as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        if Instant::now() >= plan.deadline {
            break;
        }
        tally.attempted += 1;
        let mut c = match conn.take() {
            Some(c) => c,
            None => match Conn::open(a.addr, &a.helo, plan.timeout).await {
                Ok(c) => c,
                Err(f) => {
                    tally.failed(&f);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let from = message(&plan, &mut rng, index, n, &mut data);
        let mail = Mail {
            from: &from,
            to: &a.to,
            data: &data,
        };
        match c.send(&mail, a.pipelining).await {
            Ok(took) => {
                tally.ok(took);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(f) => {
                tally.failed(&f);
                if f.fatal() {
                    continue;
                }
            }
        }
        if a.new_connection_per_message {
            c.quit().await;
        } else {
            conn = Some(c);
        }
    }
    if let Some(c) = conn {
        c.quit().await;
    }
    tally
}

/// Headers for message `n` of session `s` in front of a prepared body;
/// returns the sender.
fn message(plan: &Plan, rng: &mut StdRng, s: usize, n: usize, out: &mut Vec<u8>) -> String {
    let a = &plan.args;
    let id = rng.random_range(a.ticket_ids.0..=a.ticket_ids.1);
    let from = a.from.replace("{id}", &id.to_string());
    let topic = corpus::TOPICS[rng.random_range(0..corpus::TOPICS.len())];
    let subject = a
        .subject_template
        .replace("{id}", &id.to_string())
        .replace("{topic}", topic);
    let body = &plan.bodies[rng.random_range(0..plan.bodies.len())];
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let cte = if body.content_type.starts_with("multipart/") {
        ""
    } else {
        "Content-Transfer-Encoding: 8bit\r\n"
    };
    out.clear();
    let headers = format!(
        "Date: {date}\r\nFrom: {} <{}>\r\nTo: <{}>\r\nSubject: {}\r\nMessage-ID: <load.{:x}.{s}.{n}.{:08x}@cliente.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: {}\r\n{cte}Content-Language: pt-BR\r\nX-Mailer: mensageria-load\r\n\r\n",
        corpus::encode_word(corpus::name(rng)),
        from,
        a.to,
        corpus::encode_word(&subject),
        plan.run,
        rng.random::<u32>(),
        body.content_type,
    );
    out.extend_from_slice(headers.as_bytes());
    out.extend_from_slice(&body.bytes);
    from
}

/// Opens `n` sessions, holds them for `--hold-secs` (or until SIGINT or
/// SIGTERM), then says QUIT on each.
async fn idle(a: &Args, n: usize) -> ExitCode {
    let timeout = Duration::from_secs(a.timeout_secs);
    let deadline = Instant::now() + Duration::from_secs(a.max_secs);
    let mut conns = Vec::with_capacity(n);
    let mut failed = Tally::default();
    for _ in 0..n {
        if Instant::now() >= deadline {
            break;
        }
        match Conn::open(a.addr, &a.helo, timeout).await {
            Ok(c) => conns.push(c),
            Err(f) => failed.failed(&f),
        }
    }
    println!(
        "IDLE READY sessions={} failed={} errors_by_code={}",
        conns.len(),
        failed.error_count(),
        failed.errors_by_code()
    );
    let _ = std::io::stdout().flush();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(a.hold_secs)) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
    let held = conns.len();
    let mut set = tokio::task::JoinSet::new();
    for c in conns {
        set.spawn(c.quit());
    }
    while set.join_next().await.is_some() {}
    println!(
        "RESULT idle={n} opened={held} failed={} errors_by_code={}",
        failed.error_count(),
        failed.errors_by_code()
    );
    if held == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
