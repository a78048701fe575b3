//! SIGHUP: the configuration file read again and compared with the one the
//! process runs. What can change live is applied (today `log.filter`);
//! every other changed key is named in the log as waiting for a restart, so
//! an operator never believes a change took effect when it did not. A file
//! that does not load changes nothing.

use crate::config::Config;
use crate::runtime::logging::{self, FilterChange};

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<String>,
    /// Changed in the file, but the process keeps the old value.
    pub need_restart: Vec<String>,
    /// A live key that did not take (e.g. RUST_LOG overrides the filter).
    pub notes: Vec<String>,
}

impl Report {
    /// One line for STATUS= and the log.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.applied.is_empty() && self.need_restart.is_empty() {
            parts.push("configuration reloaded, nothing changed".to_string());
        }
        if !self.applied.is_empty() {
            parts.push(format!("applied {}", self.applied.join(", ")));
        }
        if !self.need_restart.is_empty() {
            parts.push(format!(
                "restart needed for {}",
                self.need_restart.join(", ")
            ));
        }
        parts.extend(self.notes.iter().cloned());
        parts.join("; ")
    }
}

/// Applies `new` over `running` where it can, updating `running` to what
/// the process now uses.
pub fn apply(running: &mut Config, new: &Config) -> Report {
    let mut report = Report::default();
    for key in changed_keys(running, new) {
        if key == "log.filter" {
            match logging::set_filter(&new.log.filter) {
                Ok(FilterChange::Applied | FilterChange::NotInitialised) => {
                    running.log.filter = new.log.filter.clone();
                    report.applied.push(key);
                }
                Ok(FilterChange::OverriddenByEnv) => report
                    .notes
                    .push("log.filter unchanged: RUST_LOG is set and wins".into()),
                Err(e) => report.notes.push(e),
            }
        } else {
            report.need_restart.push(key);
        }
    }
    report
}

/// Dotted paths of every key whose value differs (a key set in one and
/// unset in the other counts).
pub fn changed_keys(a: &Config, b: &Config) -> Vec<String> {
    let (Ok(a), Ok(b)) = (toml::Value::try_from(a), toml::Value::try_from(b)) else {
        return vec!["(configuration not comparable)".into()];
    };
    let mut out = Vec::new();
    diff("", Some(&a), Some(&b), &mut out);
    out
}

fn diff(path: &str, a: Option<&toml::Value>, b: Option<&toml::Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(&p, x.get(k), y.get(k), out);
            }
        }
        (x, y) if x != y => out.push(path.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_changed_keys() {
        let a = Config::default();
        let mut b = Config::default();
        b.relay.url = "smtp://relay.example:587".into();
        b.log.filter = "debug".into();
        b.admin.listen = Some("127.0.0.1:9425".into());
        assert_eq!(
            changed_keys(&a, &b),
            ["admin.listen", "log.filter", "relay.url"]
        );
    }

    #[test]
    fn live_keys_apply_others_wait() {
        let mut running = Config::default();
        let mut new = Config::default();
        new.smtp.max_sessions = 5;
        new.log.filter = "mensageria=debug".into();
        let r = apply(&mut running, &new);
        assert_eq!(r.need_restart, ["smtp.max_sessions"]);
        if std::env::var_os("RUST_LOG").is_none() {
            assert_eq!(r.applied, ["log.filter"]);
            assert_eq!(running.log.filter, "mensageria=debug");
        }
        assert_eq!(
            running.smtp.max_sessions,
            Config::default().smtp.max_sessions
        );
        assert!(r.summary().contains("restart needed for smtp.max_sessions"));
    }
}
