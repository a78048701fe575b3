//! Quoted-printable bodies (RFC 2045 §6.7) in one pass, with CRLF line
//! ends: every line of the text (ended by LF or CRLF) becomes one or more
//! encoded lines of at most 76 characters, joined by soft breaks.
//!
//! lettre's own path copies the text to normalise its line ends, scans it
//! to choose an encoding, inserts a CR before each LF in place and then
//! encodes; on a technician's copy of a long reply that was a tenth of the
//! gateway's CPU per message.

/// Longest encoded line, the soft break's "=" included (RFC 2045 rule 5).
const MAX_LINE: usize = 76;
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `text` quoted-printable encoded, hard line breaks as CRLF.
pub fn encode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    // Mostly ASCII text: the soft breaks and a few escapes on top.
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32 + 16);
    let mut rest = bytes;
    loop {
        // A CR is part of the line end only right before its LF.
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (
                rest[..i].strip_suffix(b"\r").unwrap_or(&rest[..i]),
                Some(&rest[i + 1..]),
            ),
            None => (rest, None),
        };
        encode_line(line, &mut out);
        match next {
            Some(n) => {
                out.extend_from_slice(b"\r\n");
                rest = n;
            }
            None => return out,
        }
    }
}

/// Bytes written as they are (RFC 2045 rule 2, and white space not
/// ending a line, rule 3).
const LITERAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 33;
    while b <= 126 {
        t[b] = b != b'=' as usize;
        b += 1;
    }
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t
};

/// One line without its line end: runs of literal bytes copied at once,
/// split by soft breaks where the line is full, and each other byte as
/// "=XX".
fn encode_line(line: &[u8], out: &mut Vec<u8>) {
    let mut col = 0;
    let mut i = 0;
    // "From " opening a line is escaped, so an mbox on the way cannot take
    // it for the start of a new message ("=46rom").
    let from = line.starts_with(b"From ");
    while i < line.len() {
        let run = if i == 0 && from {
            0
        } else {
            literal_run(&line[i..])
        };
        if run > 0 {
            let ends_line = i + run == line.len();
            let mut rest = &line[i..i + run];
            loop {
                // A soft break needs a column of its own, except after the
                // line's last character.
                let room = MAX_LINE - 1 - col;
                if rest.len() <= room || (ends_line && rest.len() == room + 1) {
                    out.extend_from_slice(rest);
                    col += rest.len();
                    break;
                }
                out.extend_from_slice(&rest[..room]);
                out.extend_from_slice(b"=\r\n");
                col = 0;
                rest = &rest[room..];
            }
            i += run;
            continue;
        }
        let b = line[i];
        let limit = if i + 1 == line.len() {
            MAX_LINE
        } else {
            MAX_LINE - 1
        };
        if col + 3 > limit {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        col += 3;
        i += 1;
    }
}

/// How many bytes from the start of `s` (the rest of a line) are written
/// as they are; white space ending the line is not (it would be stripped
/// on the way).
fn literal_run(s: &[u8]) -> usize {
    match s.iter().position(|&b| !LITERAL[b as usize]) {
        Some(n) => n,
        None if matches!(s.last(), Some(b' ' | b'\t')) => s.len() - 1,
        None => s.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder RFC 2045 describes, written out for the tests.
    fn decode(enc: &[u8]) -> Vec<u8> {
        let hex = |c: u8| (c as char).to_digit(16).unwrap() as u8;
        let mut out = Vec::new();
        let mut i = 0;
        while i < enc.len() {
            if enc[i] == b'=' {
                // "=XX" is a byte; "=" CRLF, a soft break, is nothing.
                if !enc[i + 1..].starts_with(b"\r\n") {
                    out.push(hex(enc[i + 1]) << 4 | hex(enc[i + 2]));
                }
                i += 3;
            } else {
                out.push(enc[i]);
                i += 1;
            }
        }
        out
    }

    /// What a decoder must give back: the text with CRLF line ends.
    fn crlf(text: &str) -> Vec<u8> {
        text.replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    fn check(text: &str) {
        let enc = encode(text);
        assert_eq!(
            decode(&enc),
            crlf(text),
            "{text:?} → {:?}",
            String::from_utf8_lossy(&enc)
        );
        for line in enc.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(
                line.len() <= MAX_LINE,
                "line of {}: {:?}",
                line.len(),
                String::from_utf8_lossy(line)
            );
            assert!(!line.contains(&b'\r'), "a bare CR");
            assert!(
                line.iter().all(|&b| (32..=126).contains(&b) || b == b'\t'),
                "not 7-bit clean"
            );
            assert!(
                !line.ends_with(b" ") && !line.ends_with(b"\t"),
                "white space at the end"
            );
        }
        assert!(
            !enc.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "a bare LF"
        );
    }

    #[test]
    fn plain_lines_pass_through_with_crlf() {
        assert_eq!(encode("Olá\nTudo bem?\n"), b"Ol=C3=A1\r\nTudo bem?\r\n");
        assert_eq!(encode("a\r\nb"), b"a\r\nb");
        assert_eq!(encode(""), b"");
        assert_eq!(encode("\n\n"), b"\r\n\r\n");
    }

    #[test]
    fn the_rules_of_rfc_2045() {
        assert_eq!(encode("1+1=2"), b"1+1=3D2");
        assert_eq!(encode("fim \nfim\t"), b"fim=20\r\nfim=09");
        assert_eq!(encode("From here\n From"), b"=46rom here\r\n From");
        assert_eq!(encode("a\rb"), b"a=0Db");
        let long = "x".repeat(200);
        let enc = encode(&long);
        assert_eq!(&enc[..78], format!("{}=\r\n", "x".repeat(75)).as_bytes());
        // A line of exactly 76 needs no soft break.
        assert_eq!(encode(&"y".repeat(76)), "y".repeat(76).as_bytes());
        check(&long);
    }

    /// Every mix of the characters that matter, at every length around the
    /// line limit: decodes back, lines within 76, 7-bit, no bare CR or LF.
    #[test]
    fn round_trips_at_every_length() {
        let alphabet = ['a', ' ', '=', 'ç', '\t', '\n', '\r', '€', 'F', '.'];
        let mut seed = 0x2545_f491_u32;
        for len in 0..400 {
            for _ in 0..8 {
                let s: String = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        alphabet[(seed % alphabet.len() as u32) as usize]
                    })
                    .collect();
                check(&s);
            }
            check(&"é".repeat(len));
            check(&format!("{}=", "b".repeat(len)));
        }
    }
}
