//! Arbitrary template text and values through parse and both renderers:
//! no panic; `render` inserts values verbatim (never re-expanded);
//! `render_header` is one line: no CR, no LF, no control character at all.
//!
//! Input: the template, then up to 12 values (one per key, in `Key::ALL`
//! order), separated by U+001F; a value may hold any other text, controls,
//! CR/LF and `${KEY}` markers included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mensageria::outbound::template::{Key, Segment, Template, Values};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{1f}');
    let src = parts.next().unwrap_or_default();
    let Ok(t) = Template::parse(src) else {
        return;
    };
    let mut values = Values::new();
    for (key, value) in Key::ALL.into_iter().zip(parts) {
        values.set(key, value);
    }

    let body = t.render(&values);
    let want: String = t
        .segments()
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.as_str(),
            Segment::Key(k) => values.get(*k),
        })
        .collect();
    assert_eq!(body, want, "values are inserted verbatim, once");

    let header = t.render_header(&values);
    assert!(
        !header.contains('\r') && !header.contains('\n'),
        "CR/LF in a rendered header: {header:?}"
    );
    assert!(
        !header.chars().any(char::is_control),
        "control in a header: {header:?}"
    );
    assert_eq!(header, header.trim(), "a rendered header is trimmed");
    // A template without keys renders the same whatever the values.
    if t.keys().is_empty() {
        assert_eq!(body, t.render(&Values::new()));
    }
});
