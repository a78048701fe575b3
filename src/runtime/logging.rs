//! Logging through tracing to stderr: human text or JSON lines, filtered
//! by `RUST_LOG` when set, else by `[log] filter` (which SIGHUP reloads).
//!
//! When stderr is the journal (`JOURNAL_STREAM` names stderr's device and
//! inode, so a redirected stderr is not mistaken for it), lines carry no
//! timestamp, since the journal stamps them, and start with an sd-daemon(3)
//! priority prefix such as `<4>`, which journald strips and stores as
//! PRIORITY, so `journalctl -p warning` works. This module never writes
//! anything but log lines.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::{LogConfig, LogFormat};

type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Set once by `init`; `set_filter` swaps the filter behind it.
static FILTER: OnceLock<FilterHandle> = OnceLock::new();

pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let journal = stderr_is_journal();
    let ansi = !journal && std::io::stderr().is_terminal();
    let base = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let layer = match (cfg.format, journal) {
        (LogFormat::Json, false) => base.json().boxed(),
        (LogFormat::Json, true) => base
            .event_format(Priority(
                tracing_subscriber::fmt::format().json().without_time(),
            ))
            .boxed(),
        (LogFormat::Text, false) => base.boxed(),
        (LogFormat::Text, true) => base
            .event_format(Priority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .boxed(),
    };
    if tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(handle);
    }
}

/// What a reload did with `[log] filter`.
#[derive(Debug, PartialEq, Eq)]
pub enum FilterChange {
    Applied,
    /// `RUST_LOG` is set and wins over the file, as at start.
    OverriddenByEnv,
    /// Logging was not initialised by `init` (tests, other subscribers).
    NotInitialised,
}

/// Applies a new `[log] filter` to the running process.
pub fn set_filter(filter: &str) -> Result<FilterChange, String> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Ok(FilterChange::OverriddenByEnv);
    }
    let new = EnvFilter::try_new(filter).map_err(|e| format!("log.filter {filter:?}: {e}"))?;
    let Some(handle) = FILTER.get() else {
        return Ok(FilterChange::NotInitialised);
    };
    handle.reload(new).map_err(|e| format!("log.filter: {e}"))?;
    Ok(FilterChange::Applied)
}

/// systemd sets `JOURNAL_STREAM=DEV:INODE` for a unit whose stderr is the
/// journal; a child that redirected stderr inherits the variable, so the
/// device and inode must match stderr's own (sd_journal_stream_fd(3)).
pub fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = var.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    meta.is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// syslog(3) priority for a tracing level (debug and trace share 7).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Prefixes each line of another formatter with `<priority>`.
struct Priority<F>(F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
    }

    #[test]
    fn a_bad_filter_is_refused() {
        if std::env::var_os("RUST_LOG").is_none() {
            assert!(set_filter("info,=[").is_err());
        }
    }
}
