//! Output helpers shared by the commands: plain tables and timestamps.

/// Prints rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// RFC 3339 UTC from Unix milliseconds.
pub fn time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// One line of text, cut to `max` characters for a table cell.
pub fn cell(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Pretty JSON on stdout, the form every `--json` flag prints.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `label  value` lines with the values in one column; a value with line
/// breaks continues under itself.
pub fn fields(rows: &[(&str, String)]) {
    let w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    for (label, value) in rows {
        let mut lines = value.lines();
        println!("{:<w$}{}", format!("{label}:"), lines.next().unwrap_or(""));
        for more in lines {
            println!("{:<w$}{more}", "");
        }
    }
}

/// A duration in milliseconds as "2d 3h", "4m 10s" or "12s".
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// The header fields of a raw message, unfolded, as written (not decoded):
/// what an administrator compares with the relay's or the client's logs.
pub fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // RFC 5322 2.2.3: a folded line continues the previous field.
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim_start());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_unfold_and_stop_at_the_body() {
        let h = header_fields(b"Subject: a\r\n b\r\nTo: x@y\r\n\r\nBody: no\r\n");
        assert_eq!(
            h,
            vec![
                ("Subject".to_string(), "a b".to_string()),
                ("To".into(), "x@y".into())
            ]
        );
        assert_eq!(age(59_000), "59s");
        assert_eq!(age(3_723_000), "1h 2m");
    }
}
