//! E-mail address checks shared by the CLI, the config and the SMTP policy.
//!
//! Deliberately small: an address is `local@domain` with no spaces, no angle
//! brackets and no control characters. It never tries to resolve anything.

/// Splits `local@domain`, or None when the text is not a usable mailbox.
pub fn parse_mailbox(addr: &str) -> Option<(&str, &str)> {
    let (local, domain) = addr.rsplit_once('@')?;
    let bad = |s: &str| {
        s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
    };
    if bad(local)
        || bad(domain)
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return None;
    }
    Some((local, domain))
}

/// Lower-cases the domain part, which is case-insensitive (RFC 5321 2.4);
/// the local part is kept as written.
pub fn normalize(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((l, d)) => format!("{l}@{}", d.to_ascii_lowercase()),
        None => addr.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        assert_eq!(
            parse_mailbox("ana@example.com"),
            Some(("ana", "example.com"))
        );
        assert_eq!(parse_mailbox("\"a b\"@x"), None);
        for bad in [
            "",
            "ana",
            "@x.com",
            "ana@",
            "a na@x.com",
            "ana@x..com",
            "<ana@x.com>",
            "a@b@c d",
        ] {
            assert_eq!(parse_mailbox(bad), None, "{bad}");
        }
        assert_eq!(normalize("Ana@Example.COM"), "Ana@example.com");
    }
}
