//! Measures the inbound path against the shared third-party corpus
//! (`../shared/corpus`, see its README.md) and the team's pt-BR reply
//! fixtures (`tests/fixtures/replies`): every raw message parses and goes
//! through reply extraction without a panic, declared-charset subjects decode
//! cleanly, and the upstream reply fixtures mostly match.

use std::collections::HashMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mail_parser::MessageParser;
use mensageria::inbound::extract::{extract_html, extract_message, extract_text};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/replies");

/// manifest.tsv as one map per row, keyed by the header's column names.
fn manifest() -> Vec<HashMap<String, String>> {
    let text = fs::read_to_string(Path::new(CORPUS).join("manifest.tsv")).expect("manifest.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header row").split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells = l.split('\t').map(str::to_owned);
            header.iter().map(|h| h.to_string()).zip(cells).collect()
        })
        .collect()
}

fn col<'a>(row: &'a HashMap<String, String>, name: &str) -> &'a str {
    row.get(name).map(String::as_str).unwrap_or("")
}

/// SpamAssassin files start with an mbox "From " line, which is no header.
fn without_mbox_line(bytes: &[u8]) -> &[u8] {
    if bytes.starts_with(b"From ") {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(p) => &bytes[p + 1..],
            None => &[],
        }
    } else {
        bytes
    }
}

/// Team-written pairs: NAME.txt or NAME.html, and NAME.expected.txt.
fn team_fixtures() -> Vec<(PathBuf, String)> {
    let mut v = Vec::new();
    for e in fs::read_dir(FIXTURES).expect("fixtures folder") {
        let p = e.expect("dir entry").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let is_input =
            (name.ends_with(".txt") && !name.ends_with(".expected.txt")) || name.ends_with(".html");
        if is_input {
            let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&name);
            let exp = p.with_file_name(format!("{stem}.expected.txt"));
            let exp = fs::read_to_string(&exp)
                .unwrap_or_else(|_| panic!("{} lacks {}", name, exp.display()));
            v.push((p, exp));
        }
    }
    v.sort();
    v
}

#[test]
fn corpus() {
    let rows = manifest();

    // 1. Every raw message parses and is extracted without a panic.
    // 2. Subjects: count those free of U+FFFD.
    let (mut raw_total, mut parsed, mut panics) = (0, 0, Vec::new());
    let (mut subjects, mut clean_subjects, mut bad_declared) = (0, 0, Vec::new());
    let mut broken_at_source = Vec::new();
    for row in rows.iter().filter(|r| col(r, "type") == "raw-rfc5322") {
        raw_total += 1;
        let file = col(row, "file");
        let bytes = fs::read(Path::new(CORPUS).join(file)).expect("corpus file");
        let bytes = without_mbox_line(&bytes);
        let run = catch_unwind(AssertUnwindSafe(|| {
            let msg = MessageParser::default().parse(bytes)?;
            let _ = extract_message(&msg);
            Some(msg.subject().map(str::to_owned))
        }));
        let subject = match run {
            Err(_) => {
                panics.push(file.to_owned());
                continue;
            }
            Ok(None) => continue,
            Ok(Some(s)) => s,
        };
        parsed += 1;
        let Some(subject) = subject else { continue };
        subjects += 1;
        let clean = !subject.contains('\u{FFFD}');
        clean_subjects += usize::from(clean);
        // An unencoded 8-bit subject declares no charset: counted, not asserted.
        let words = col(row, "subject_encoded_words");
        let declared = !words.is_empty()
            && words != "raw-8bit"
            && !words.split(',').any(|w| w.starts_with("none/"));
        // Where the manifest's reference decoding shows U+FFFD too, the
        // encoded word itself is broken (00311 Q-encodes a Big5 trail byte
        // '_' that decodes as a space): reported, not asserted.
        if declared && !clean {
            if col(row, "subject_decoded").contains('\u{FFFD}') {
                broken_at_source.push(file.to_owned());
            } else {
                bad_declared.push(format!("{file}: {subject}"));
            }
        }
    }

    // 3. Upstream reply fixtures. Upstream's `trimmed/X.txt` drops the
    // signature too ("Sent from Outlook Mobile", "--\nSome One" are cut in
    // embedded_email_10, embedded_ception, usenet), so it is compared with
    // `text` alone, both sides trimmed as upstream does.
    let (mut fixtures, mut matched, mut failed) = (0, 0, Vec::new());
    let folder = Path::new(CORPUS).join("discourse-email_reply_trimmer");
    let mut names: Vec<String> = fs::read_dir(folder.join("emails"))
        .expect("emails folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let input = fs::read(folder.join("emails").join(&name)).expect("input");
        let Ok(expected) = fs::read(folder.join("trimmed").join(&name)) else {
            continue;
        };
        fixtures += 1;
        let input = String::from_utf8_lossy(&input).into_owned();
        let expected = String::from_utf8_lossy(&expected).replace("\r\n", "\n");
        match catch_unwind(|| extract_text(&input)) {
            Ok(got) if got.text.trim() == expected.trim() => matched += 1,
            Ok(_) => failed.push(name),
            Err(_) => panics.push(name),
        }
    }

    // 5. The team's pt-BR fixtures: every one must pass.
    let team = team_fixtures();
    let mut team_ok = 0;
    for (path, expected) in &team {
        let input = fs::read_to_string(path).expect("fixture");
        let html = path.extension().is_some_and(|e| e == "html");
        let got = if html {
            extract_html(&input)
        } else {
            extract_text(&input)
        };
        if got.text.trim() == expected.trim() {
            team_ok += 1;
        } else {
            eprintln!(
                "portuguese fixture {} differs:\n--- got\n{}\n--- expected\n{}",
                path.display(),
                got.text,
                expected.trim()
            );
        }
    }

    let pct = 100.0 * matched as f64 / fixtures.max(1) as f64;
    // 4. One line for the lead to quote.
    eprintln!(
        "corpus: parsed {parsed}/{raw_total}, subjects without U+FFFD {clean_subjects}/{subjects}, \
         reply fixtures {matched}/{fixtures} ({pct:.1} %), portuguese fixtures {team_ok}/{}",
        team.len()
    );
    if !broken_at_source.is_empty() {
        eprintln!(
            "declared-charset subjects broken at the source (U+FFFD in the manifest too): {}",
            broken_at_source.join(", ")
        );
    }
    if !failed.is_empty() {
        eprintln!("reply fixtures that differ: {}", failed.join(", "));
    }
    assert!(panics.is_empty(), "panicked on: {panics:?}");
    assert!(
        bad_declared.is_empty(),
        "declared-charset subjects with U+FFFD: {bad_declared:?}"
    );
    assert!(
        raw_total > 0 && fixtures > 0,
        "corpus not found at {CORPUS}"
    );
    assert!(
        pct >= 95.0,
        "reply fixtures {matched}/{fixtures} below 95 %"
    );
    assert!(
        team.len() >= 10,
        "at least 10 portuguese fixtures, found {}",
        team.len()
    );
    assert_eq!(team_ok, team.len(), "every portuguese fixture must pass");
}
