//! Binary edge: parse the command line, run, and turn any error into one
//! line on stderr and an exit code. No backtraces reach the user.

use clap::Parser;

use mensageria::cli::{self, Cli};

/// jemalloc instead of glibc's malloc: a message is allocated on a session's
/// worker thread and freed on the commit thread, and glibc then takes the
/// owning arena's lock for each free. 5–7 % less CPU per inbound message in
/// A/B runs; RSS with 1,000 idle sessions after the realistic load stays
/// where glibc's was (41 MB on SQLite; see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::panic::set_hook(Box::new(|info| {
        // A library panic the inbound path contains and recovers from.
        if mensageria::inbound::extract::panic_is_expected() {
            return;
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("mensageria: internal error{at}: {msg}");
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mensageria: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(cli::run(cli)) {
        // check-config has printed its problems one per line already.
        if e.downcast_ref::<cli::check::Reported>().is_none() {
            eprintln!("mensageria: {}", one_line(&e));
        }
        std::process::exit(cli::exit_code(&e));
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
