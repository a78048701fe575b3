//! The scrape side: a GET over a raw connection, and a strict enough
//! parser of the Prometheus text format (every non-comment line must be
//! `name{labels} value`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One sample of the text format: `name{labels} value`.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the Prometheus text format strictly enough to catch a bad line:
/// `# HELP name text`, `# TYPE name kind`, or `name{k="v",...} value [ts]`.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix("# ") {
            let mut w = c.splitn(3, ' ');
            let (kind, name) = (w.next().unwrap(), w.next().expect("metric name in comment"));
            assert!(valid_name(name), "{line}");
            match kind {
                "TYPE" => {
                    let t = w.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "{line}"
                    );
                }
                _ => assert_eq!(kind, "HELP", "{line}"),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "{line}");
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(body) => parse_labels(body, line),
            None => (BTreeMap::new(), line[name_end..].to_owned()),
        };
        assert!(rest.starts_with(' '), "no space before the value: {line}");
        let mut parts = rest.split_whitespace();
        let v = parts.next().unwrap_or_else(|| panic!("no value: {line}"));
        let value = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?}: {line}")),
        };
        assert!(
            parts.next().is_none_or(|ts| ts.parse::<i64>().is_ok()),
            "{line}"
        );
        assert!(parts.next().is_none(), "{line}");
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    out
}

/// `k="v",...}` and what follows the closing brace.
fn parse_labels(body: &str, line: &str) -> (BTreeMap<String, String>, String) {
    let b: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut labels = BTreeMap::new();
    loop {
        if b.get(i) == Some(&'}') {
            return (labels, b[i + 1..].iter().collect());
        }
        let start = i;
        while b.get(i).is_some_and(|c| *c != '=') {
            i += 1;
        }
        let key: String = b[start..i].iter().collect();
        assert!(
            valid_name(&key) && b.get(i + 1) == Some(&'"'),
            "bad label: {line}"
        );
        i += 2;
        let mut val = String::new();
        loop {
            match b.get(i) {
                Some('\\') => {
                    val.push(match b.get(i + 1) {
                        Some('n') => '\n',
                        Some(c @ ('\\' | '"')) => *c,
                        _ => panic!("bad escape: {line}"),
                    });
                    i += 2;
                }
                Some('"') => {
                    i += 1;
                    break;
                }
                Some(c) => {
                    val.push(*c);
                    i += 1;
                }
                None => panic!("unterminated label value: {line}"),
            }
        }
        assert!(labels.insert(key, val).is_none(), "repeated label: {line}");
        match b.get(i) {
            Some(',') => i += 1,
            Some('}') => {}
            _ => panic!("bad label list: {line}"),
        }
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Sum of the samples of `name` whose labels include `with`.
pub fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// A GET over a fresh connection: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}
