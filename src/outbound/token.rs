//! The gateway's signatures: per-ticket, per-recipient Reply-To tokens and
//! signed Message-IDs, HMAC-SHA256 under one key kept in the state
//! directory (created on first use, mode 0600). A reply that comes back to a
//! token address, or that quotes a signed Message-ID, proves it answers mail
//! the gateway sent to that ticket — no database lookup can be forged.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ring::hmac;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot create the key file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the key file {path}: {message}")]
    Read { path: PathBuf, message: String },
}

pub struct Key(hmac::Key);

/// Hex digits of a token or signature: 48 bits, enough against guessing
/// over SMTP, short enough for an address a person may retype.
const TOKEN_HEX: usize = 12;

static KEYS: Mutex<Option<HashMap<PathBuf, Arc<Key>>>> = Mutex::new(None);

/// The key named by `[security] key_file`, created when missing.
pub fn key(cfg: &Config) -> Result<Arc<Key>, KeyError> {
    let path = cfg.security.key_file.clone();
    let mut cache = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(k) = map.get(&path) {
        return Ok(k.clone());
    }
    let k = Arc::new(load_or_create(&path)?);
    map.insert(path, k.clone());
    Ok(k)
}

fn load_or_create(path: &Path) -> Result<Key, KeyError> {
    let read = |path: &Path| -> Result<Key, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let bytes = decode_hex(text.trim())
            .filter(|b| b.len() >= 32)
            .ok_or_else(|| KeyError::Read {
                path: path.to_owned(),
                message: "not 64 hex digits".into(),
            })?;
        Ok(Key(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    };
    if path.exists() {
        return read(path);
    }
    let create = |source| KeyError::Create {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(create)?;
    }
    let secret: [u8; 32] = rand::random();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    use std::os::unix::fs::OpenOptionsExt;
    // Written whole to a private temporary file, then linked into place:
    // two processes starting at once never see a half-written key, and the
    // link fails for the second, which then reads the first one's key.
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(create)?;
    f.write_all(format!("{hex}\n").as_bytes()).map_err(create)?;
    f.sync_all().map_err(create)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Key(hmac::Key::new(hmac::HMAC_SHA256, &secret))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(create(e)),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Key {
    fn mac(&self, parts: &[&str]) -> String {
        let tag = hmac::sign(&self.0, parts.join("\u{0}").as_bytes());
        tag.as_ref()
            .iter()
            .take(TOKEN_HEX / 2)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The token of `rcpt`'s Reply-To address on `ticket`.
    pub fn reply_token(&self, ticket: i64, rcpt: &str) -> String {
        self.mac(&["reply", &ticket.to_string(), &rcpt.to_ascii_lowercase()])
    }

    /// Which of `candidates` the token was minted for, if any.
    pub fn check_reply_token<'a>(
        &self,
        ticket: i64,
        token: &str,
        candidates: &'a [String],
    ) -> Option<&'a str> {
        candidates
            .iter()
            .find(|c| constant_eq(&self.reply_token(ticket, c), token))
            .map(String::as_str)
    }

    /// The signature part of a Message-ID sent to `rcpt` on `ticket`.
    pub fn message_id_sig(&self, ticket: i64, rcpt: &str, nonce: &str) -> String {
        self.mac(&[
            "mid",
            &ticket.to_string(),
            &rcpt.to_ascii_lowercase(),
            nonce,
        ])
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `local+TICKET.TOKEN@domain` for `rcpt`, from the gateway's own address.
pub fn reply_address(cfg: &Config, key: &Key, ticket: i64, rcpt: &str) -> String {
    match cfg.mail.from.rsplit_once('@') {
        Some((local, domain)) => format!(
            "{local}+{ticket}.{}@{domain}",
            key.reply_token(ticket, rcpt)
        ),
        None => cfg.mail.from.clone(),
    }
}

/// The ticket and token of a subaddressed recipient of ours.
pub fn parse_reply_address<'a>(cfg: &Config, rcpt: &'a str) -> Option<(i64, &'a str)> {
    let (local, domain) = rcpt.rsplit_once('@')?;
    let (our_local, our_domain) = cfg.mail.from.rsplit_once('@')?;
    let (base, tag) = local.split_once('+')?;
    if !base.eq_ignore_ascii_case(our_local) || !domain.eq_ignore_ascii_case(our_domain) {
        return None;
    }
    let (id, token) = tag.split_once('.')?;
    Some((id.parse().ok()?, token))
}

/// A signed Message-ID for mail to `rcpt` on `ticket`.
#[cfg(test)]
fn signed_message_id(key: &Key, ticket: i64, rcpt: &str, hostname: &str) -> String {
    mint_parts(key, ticket, rcpt, hostname).0
}

fn mint_parts(key: &Key, ticket: i64, rcpt: &str, hostname: &str) -> (String, String, String) {
    let nonce = format!(
        "{:x}{:012x}",
        crate::store::now_ms(),
        rand::random::<u64>() & 0xffff_ffff_ffff
    );
    let sig = key.message_id_sig(ticket, rcpt, &nonce);
    (
        format!("<ms.{ticket}.{nonce}.{sig}@{hostname}>"),
        nonce,
        sig,
    )
}

/// The addresses of one outbound mail to one recipient.
pub struct Minted {
    /// Signed Message-ID, angle brackets included.
    pub message_id: String,
    /// Per-ticket, per-recipient Reply-To.
    pub reply_to: String,
    /// VERP envelope sender: a bounce comes back to an address naming
    /// exactly this mail (its outbox row is found by it).
    pub envelope_from: String,
}

pub fn mint(cfg: &Config, key: &Key, ticket: i64, rcpt: &str) -> Minted {
    let (message_id, nonce, sig) = mint_parts(key, ticket, rcpt, &cfg.smtp.hostname);
    let envelope_from = match cfg.mail.from.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+b.{nonce}.{sig}@{domain}"),
        None => cfg.mail.from.clone(),
    };
    Minted {
        message_id,
        reply_to: reply_address(cfg, key, ticket, rcpt),
        envelope_from,
    }
}

/// True when `rcpt` is one of our VERP bounce addresses (`local+b.…`).
pub fn is_bounce_address(cfg: &Config, rcpt: &str) -> bool {
    let (Some((local, domain)), Some((ours, our_domain))) =
        (rcpt.rsplit_once('@'), cfg.mail.from.rsplit_once('@'))
    else {
        return false;
    };
    domain.eq_ignore_ascii_case(our_domain)
        && local.len() > ours.len() + 3
        // By `get`: a byte offset inside a non-ASCII local part is no match.
        && local.get(..ours.len()).is_some_and(|l| l.eq_ignore_ascii_case(ours))
        && local[ours.len()..].starts_with("+b.")
}

/// Ticket, nonce and signature of a Message-ID in our signed form.
pub fn parse_message_id<'a>(id: &'a str, hostname: &str) -> Option<(i64, &'a str, &'a str)> {
    let inner = id.strip_prefix("<ms.")?.strip_suffix('>')?;
    let (local, host) = inner.rsplit_once('@')?;
    if !host.eq_ignore_ascii_case(hostname) {
        return None;
    }
    let mut parts = local.splitn(3, '.');
    let ticket = parts.next()?.parse().ok()?;
    Some((ticket, parts.next()?, parts.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> Key {
        Key(hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]))
    }

    #[test]
    fn tokens_bind_ticket_and_recipient() {
        let k = test_key();
        let t = k.reply_token(42, "Ana@Cliente.example");
        assert_eq!(t.len(), TOKEN_HEX);
        let who = vec![
            "bob@x.example".to_string(),
            "ana@cliente.example".to_string(),
        ];
        assert_eq!(
            k.check_reply_token(42, &t, &who),
            Some("ana@cliente.example")
        );
        assert_eq!(k.check_reply_token(43, &t, &who), None, "another ticket");
        assert_eq!(
            k.check_reply_token(42, "000000000000", &who),
            None,
            "forged"
        );
    }

    #[test]
    fn bounce_address_check_takes_any_local_part() {
        let cfg = Config::default();
        let (ours, domain) = cfg.mail.from.rsplit_once('@').unwrap();
        // A multi-byte character where our local part ends: no match, no panic.
        let odd = format!("{}ã+b.1.x@{domain}", &ours[..ours.len() - 1]);
        assert!(!is_bounce_address(&cfg, &odd));
        assert!(is_bounce_address(&cfg, &format!("{ours}+b.1.x@{domain}")));
    }

    #[test]
    fn message_ids_round_trip() {
        let k = test_key();
        let id = signed_message_id(&k, 42, "ana@cliente.example", "gw.test");
        let (t, nonce, sig) = parse_message_id(&id, "gw.test").unwrap();
        assert_eq!(t, 42);
        assert_eq!(k.message_id_sig(42, "ana@cliente.example", nonce), sig);
        assert!(parse_message_id(&id, "other.host").is_none());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/mensageria.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.reply_token(1, "x@y"), b.reply_token(1, "x@y"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
