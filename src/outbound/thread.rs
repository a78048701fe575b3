//! Thread identity: Message-IDs the gateway generates, the per-ticket root id
//! every References chain starts with, and Outlook's Thread-Index.
//!
//! Mail clients group a conversation by different signals: Thunderbird and
//! Apple Mail by References/In-Reply-To, Gmail by References plus subject,
//! Outlook by Thread-Index (its first 22 bytes) and Thread-Topic. Every mail
//! on a ticket carries all of them, consistently.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;

/// Newest thread ids kept in References (RFC 5322 allows trimming the
/// middle; the root and the newest ones are what clients use).
pub const MAX_REFERENCES: i64 = 20;

/// A new globally unique Message-ID, angle brackets included. (The
/// gateway's own mail uses signed ids, `token::mint`.)
#[cfg(test)]
fn new_message_id(ticket_id: Option<i64>, hostname: &str) -> String {
    let mut rng = rand::rng();
    let nonce: u64 = rng.random();
    let ms = crate::store::now_ms();
    match ticket_id {
        Some(t) => format!("<ms.{t}.{ms:x}.{nonce:016x}@{hostname}>"),
        None => format!("<ms.{ms:x}.{nonce:016x}@{hostname}>"),
    }
}

/// The stable root id of a ticket's thread, chosen once when it is created.
pub fn new_thread_root(ticket_id: i64, hostname: &str) -> String {
    let nonce: u32 = rand::rng().random();
    format!("<ticket.{ticket_id}.{nonce:08x}@{hostname}>")
}

/// Windows FILETIME (100 ns ticks since 1601) of now.
fn filetime_now() -> u64 {
    const EPOCH_DIFF_MS: u64 = 11_644_473_600_000;
    (crate::store::now_ms().max(0) as u64 + EPOCH_DIFF_MS) * 10_000
}

/// A new 22-byte Thread-Index head: one reserved byte and the top five
/// bytes of the FILETIME, then a 16-byte random GUID; base64 as Outlook sends it.
pub fn new_thread_index() -> String {
    let ft = filetime_now().to_be_bytes();
    let mut head = [0u8; 22];
    head[..6].copy_from_slice(&ft[..6]);
    rand::rng().fill(&mut head[6..]);
    STANDARD.encode(head)
}

/// The Thread-Index of a later mail: the ticket's head plus a 5-byte child
/// block (time since the head, in Outlook's coarse units, and a random
/// nibble). A head that does not decode is used as is.
pub fn child_thread_index(head: &str) -> String {
    let Ok(mut bytes) = STANDARD.decode(head) else {
        return head.to_owned();
    };
    if bytes.len() < 22 {
        return head.to_owned();
    }
    let mut top = [0u8; 8];
    top[..6].copy_from_slice(&bytes[..6]);
    let head_ft = u64::from_be_bytes(top);
    let delta = filetime_now().saturating_sub(head_ft) >> 18;
    let nibble: u64 = rand::rng().random_range(0..16);
    let block = (((delta & 0x7FFF_FFFF) << 8) | (nibble << 4)).to_be_bytes();
    bytes.truncate(22);
    bytes.extend_from_slice(&block[3..]);
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_bracketed() {
        let a = new_message_id(Some(7), "gw.example");
        let b = new_message_id(Some(7), "gw.example");
        assert_ne!(a, b);
        assert!(
            a.starts_with("<ms.7.") && a.ends_with("@gw.example>"),
            "{a}"
        );
        assert!(new_thread_root(7, "gw").starts_with("<ticket.7."));
    }

    #[test]
    fn child_index_extends_the_head() {
        let head = new_thread_index();
        assert_eq!(STANDARD.decode(&head).unwrap().len(), 22);
        let child = child_thread_index(&head);
        let bytes = STANDARD.decode(&child).unwrap();
        assert_eq!(bytes.len(), 27);
        assert_eq!(&bytes[..22], &STANDARD.decode(&head).unwrap()[..]);
    }
}
