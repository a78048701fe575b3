//! Typed configuration: parsed once from TOML, validated whole.
//!
//! Every key has a safe default so the shipped `config/mensageria.toml` runs as
//! is. `validate` reports every problem at once, each with its key path, the way
//! `nginx -t` does; nothing else in the crate reads the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub smtp: SmtpConfig,
    pub mail: MailConfig,
    pub relay: RelayConfig,
    pub inbound: InboundConfig,
    pub security: SecurityConfig,
    pub loops: LoopConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// HMAC key for Reply-To tokens and signed Message-IDs; created (0600)
    /// on first use. Every instance sharing a database must share this file.
    pub key_file: PathBuf,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            key_file: PathBuf::from("var/mensageria.key"),
        }
    }
}

/// Caps on machine-made mail, so a loop that slips past classification
/// stops (starting point: Zammad's), and the pause after a hard bounce.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    pub window_secs: u64,
    /// Automatic mails per ticket and recipient within the window.
    pub per_ticket_recipient: i64,
    /// Automatic mails per recipient within the window.
    pub per_recipient: i64,
    /// Days a permanently bounced address is not mailed again.
    pub bounce_suppress_days: u64,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            window_secs: 600,
            per_ticket_recipient: 10,
            per_recipient: 30,
            bounce_suppress_days: 7,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain and private key; with both set, STARTTLS is
    /// offered on every listener. Re-read on SIGHUP.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Extra listeners that speak TLS from the first byte (port 465 style).
    pub implicit_listen: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://var/mensageria.db` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// Seconds a query waits for a connection; past it the client gets 451.
    pub acquire_timeout_secs: u64,
    /// Group commit: at most this many replies share one transaction.
    pub max_batch: usize,
}

/// A listen address may be written as one string or a list of strings.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Listen {
    One(String),
    Many(Vec<String>),
}

impl Listen {
    pub fn addresses(&self) -> Vec<String> {
        match self {
            Listen::One(a) => vec![a.clone()],
            Listen::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub listen: Listen,
    /// Name used in the greeting and in Message-IDs the gateway generates.
    pub hostname: String,
    /// Domains whose mailboxes this gateway accepts mail for; all else is 550.
    pub local_domains: Vec<String>,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_sessions: usize,
    /// Concurrent sessions from one client address.
    pub max_sessions_per_ip: usize,
    /// Connections the kernel queues for `accept` (listen(2)'s backlog;
    /// the kernel caps it at net.core.somaxconn).
    pub listen_backlog: u32,
    /// Longest command line (RFC 5321 4.5.3.1.4: 512 octets; a margin for
    /// sloppy clients).
    pub max_command_length: usize,
    /// Longest line inside DATA (RFC 5321: 1000 octets with CRLF).
    pub max_line_length: usize,
    pub idle_timeout_secs: u64,
    /// Deadline for the whole DATA phase of one message.
    pub data_timeout_secs: u64,
    pub max_errors: u32,
    /// On SIGTERM, how long sessions inside DATA and mail in hand may take.
    pub drain_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The gateway's own address: From of outbound mail and the Reply-To that
    /// brings answers back to the listener.
    pub from: String,
    /// Display name put before `from`.
    pub from_name: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// `smtp://host:port` (plain, or STARTTLS with `?tls=required`),
    /// `smtps://host:port` (implicit TLS).
    pub url: String,
    pub username: Option<String>,
    /// File holding the relay password (systemd `LoadCredential=`), never the
    /// password itself.
    pub password_file: Option<PathBuf>,
    pub timeout_secs: u64,
    pub max_attempts: u32,
    /// First retry delay; doubled after each temporary failure up to the max.
    pub retry_initial_ms: u64,
    pub retry_max_secs: u64,
    /// How often the worker looks for due mail when nothing wakes it.
    pub poll_interval_ms: u64,
    pub pool_size: u32,
    /// How long a claimed outbox row belongs to this instance.
    pub lease_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// Accept (250) and keep the mail in quarantine with the reason.
    Quarantine,
    /// Refuse with 550 at end of data.
    Reject,
}

/// What a requester's reply to a closed ticket does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClosedTicket {
    /// Store it, reopen the ticket and notify the technicians as usual.
    Reopen,
    /// Store it, keep the ticket closed, notify nobody, and send the sender
    /// one automatic reply (RFC 3834) saying the ticket is closed.
    Keep,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    pub unmatched: Unmatched,
    /// Regex with one capture group for the ticket ID; overrides the pattern
    /// derived from the subject of template 417.
    pub subject_pattern: Option<String>,
    /// `reopen` (default) or `keep`; any other value is refused when the
    /// file is parsed, with its line.
    pub closed_ticket: ClosedTicket,
    /// Mail matched to a ticket by subject or thread headers from someone who
    /// is neither its requester nor a technician, and not sent to the
    /// ticket's Reply-To address: `quarantine` (default) or `accept`.
    pub strangers: Strangers,
    /// Sender domains trusted like participants (e.g. the requesters' own
    /// company), for mail matched by subject or thread headers.
    pub trusted_domains: Vec<String>,
    /// Largest attachment stored and forwarded to the technicians; a bigger
    /// one is listed with its size and a note, its bytes left in the raw
    /// message only.
    pub max_attachment_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strangers {
    Quarantine,
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `RUST_LOG` syntax; the environment variable wins when set.
    pub filter: String,
    pub format: LogFormat,
}

/// The loopback HTTP listener for /metrics, /healthz and /readyz.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `IP:port`; unset (the default) means no admin listener.
    pub listen: Option<String>,
    /// /readyz answers 503 once the relay failed and neither a delivery nor
    /// a probe reached it for this long.
    pub relay_reachable_minutes: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://var/mensageria.db".into(),
            max_connections: 8,
            acquire_timeout_secs: 5,
            max_batch: 64,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: Listen::One("127.0.0.1:2525".into()),
            hostname: "localhost".into(),
            local_domains: vec!["localhost".into()],
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 50,
            max_sessions: 1000,
            max_sessions_per_ip: 20,
            listen_backlog: 1024,
            max_command_length: 2048,
            max_line_length: 8192,
            idle_timeout_secs: 300,
            data_timeout_secs: 600,
            max_errors: 10,
            drain_timeout_secs: 30,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: "suporte@localhost".into(),
            from_name: "Service Desk".into(),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            url: "smtp://127.0.0.1:25".into(),
            username: None,
            password_file: None,
            timeout_secs: 30,
            max_attempts: 10,
            retry_initial_ms: 30_000,
            retry_max_secs: 3600,
            poll_interval_ms: 1000,
            pool_size: 4,
            lease_secs: 300,
        }
    }
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            unmatched: Unmatched::Quarantine,
            subject_pattern: None,
            closed_ticket: ClosedTicket::Reopen,
            strangers: Strangers::Quarantine,
            trusted_domains: Vec::new(),
            max_attachment_bytes: 10 * 1024 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: None,
            relay_reachable_minutes: 15,
        }
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })?;
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            });
        }
        Ok(config)
    }

    /// Parses TOML text; the error is one line (toml's own message folded).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start].matches('\n').count() + 1;
                    // Quote the line itself, so the key is named too.
                    let src = text.lines().nth(line - 1).unwrap_or("").trim();
                    format!("line {line} ({src}): {msg}")
                }
                None => msg,
            }
        })
    }

    /// Every problem, each as `key.path: what is wrong`.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            p.push(format!(
                "database.url: {url:?} is neither sqlite:// nor postgres://"
            ));
        }
        if self.database.max_connections < 2 {
            // One connection stays with the inbound committer.
            p.push(
                "database.max_connections: must be at least 2 (one is kept by the inbound commit)"
                    .into(),
            );
        }
        let listen = self.smtp.listen.addresses();
        if listen.is_empty() {
            p.push("smtp.listen: at least one address is needed".into());
        }
        for a in &listen {
            if a.parse::<SocketAddr>().is_err() {
                p.push(format!("smtp.listen: {a:?} is not an IP:port address"));
            }
        }
        if self.smtp.hostname.trim().is_empty() || self.smtp.hostname.contains(char::is_whitespace)
        {
            p.push("smtp.hostname: must be a host name without spaces".into());
        }
        if self.smtp.local_domains.is_empty() {
            p.push("smtp.local_domains: at least one domain is needed".into());
        }
        for (key, v) in [
            ("smtp.max_message_size", self.smtp.max_message_size),
            ("smtp.max_recipients", self.smtp.max_recipients),
            ("smtp.max_sessions", self.smtp.max_sessions),
            ("smtp.max_sessions_per_ip", self.smtp.max_sessions_per_ip),
            ("smtp.listen_backlog", self.smtp.listen_backlog as usize),
        ] {
            if v == 0 {
                p.push(format!("{key}: must be at least 1"));
            }
        }
        for (key, v) in [
            ("smtp.idle_timeout_secs", self.smtp.idle_timeout_secs),
            ("smtp.data_timeout_secs", self.smtp.data_timeout_secs),
        ] {
            if v == 0 {
                p.push(format!("{key}: must be at least 1"));
            }
        }
        if self.smtp.max_command_length < 512 {
            p.push("smtp.max_command_length: must be at least 512 (RFC 5321 4.5.3.1.4)".into());
        }
        if self.smtp.max_line_length < 1002 {
            p.push("smtp.max_line_length: must be at least 1002 (RFC 5321 allows 1000-octet lines plus CRLF)".into());
        }
        if crate::address::parse_mailbox(&self.mail.from).is_none() {
            p.push(format!(
                "mail.from: {:?} is not an e-mail address",
                self.mail.from
            ));
        }
        if let Err(e) = crate::relay::RelayTarget::parse(&self.relay.url) {
            p.push(format!("relay.url: {e}"));
        }
        if let Some(f) = &self.relay.password_file {
            if self.relay.username.is_none() {
                p.push("relay.password_file: set relay.username too".into());
            }
            if let Err(e) = std::fs::metadata(f) {
                p.push(format!("relay.password_file: {}: {e}", f.display()));
            }
        }
        if self.relay.max_attempts == 0 {
            p.push("relay.max_attempts: must be at least 1".into());
        }
        if let Some(a) = &self.admin.listen
            && a.parse::<SocketAddr>().is_err()
        {
            p.push(format!("admin.listen: {a:?} is not an IP:port address"));
        }
        if self.admin.relay_reachable_minutes == 0 {
            p.push("admin.relay_reachable_minutes: must be at least 1".into());
        }
        if self.inbound.max_attachment_bytes == 0 {
            p.push("inbound.max_attachment_bytes: must be at least 1".into());
        }
        if let Some(pattern) = &self.inbound.subject_pattern
            && let Err(e) = crate::inbound::subject::SubjectMatcher::from_regex(pattern)
        {
            p.push(format!("inbound.subject_pattern: {e}"));
        }
        match (&self.tls.cert_file, &self.tls.key_file) {
            (Some(c), Some(k)) => {
                for (key, f) in [("tls.cert_file", c), ("tls.key_file", k)] {
                    if let Err(e) = std::fs::metadata(f) {
                        p.push(format!("{key}: {}: {e}", f.display()));
                    }
                }
            }
            (None, None) if !self.tls.implicit_listen.is_empty() => {
                p.push("tls.implicit_listen: needs tls.cert_file and tls.key_file".into());
            }
            (None, None) => {}
            _ => p.push("tls: set both cert_file and key_file, or neither".into()),
        }
        for a in &self.tls.implicit_listen {
            if a.parse::<SocketAddr>().is_err() {
                p.push(format!(
                    "tls.implicit_listen: {a:?} is not an IP:port address"
                ));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            p.push(format!(
                "log.filter: {:?} is not a valid filter",
                self.log.filter
            ));
        }
        p
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.smtp.idle_timeout_secs)
    }

    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.smtp.data_timeout_secs)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.smtp.drain_timeout_secs)
    }

    /// True when `domain` (of a recipient) is one of ours, ignoring case.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.smtp
            .local_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Vec::<String>::new());
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let err = Config::parse("[smtp]\nlisten = \"127.0.0.1:25\"\nlistne = 1\n").unwrap_err();
        assert!(err.starts_with("line 3 (listne = 1):"), "{err}");
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn closed_ticket_policy() {
        assert_eq!(
            Config::default().inbound.closed_ticket,
            ClosedTicket::Reopen
        );
        let c = Config::parse("[inbound]\nclosed_ticket = \"keep\"\n").unwrap();
        assert_eq!(c.inbound.closed_ticket, ClosedTicket::Keep);
        let err = Config::parse("[inbound]\nclosed_ticket = \"ignore\"\n").unwrap_err();
        assert!(
            err.starts_with("line 2 (closed_ticket") && err.contains("ignore"),
            "{err}"
        );
    }

    #[test]
    fn listen_accepts_string_or_list() {
        let c = Config::parse("[smtp]\nlisten = [\"127.0.0.1:1\", \"[::1]:2\"]\n").unwrap();
        assert_eq!(c.smtp.listen.addresses().len(), 2);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn every_problem_is_reported() {
        let c = Config::parse(
            "[database]\nurl = \"mysql://x\"\n[smtp]\nlisten = \"nowhere\"\n[mail]\nfrom = \"nobody\"\n",
        )
        .unwrap();
        let p = c.validate();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("database.url"));
        assert!(p[1].starts_with("smtp.listen"));
        assert!(p[2].starts_with("mail.from"));
    }

    #[test]
    fn a_zero_backlog_is_refused() {
        let c = Config::parse("[smtp]\nlisten_backlog = 0\n").unwrap();
        assert_eq!(c.validate(), ["smtp.listen_backlog: must be at least 1"]);
    }
}
