//! Arbitrary raw messages through what the inbound path reads of them:
//! parse, classify, and reply extraction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mensageria::inbound::{classify, extract, parse};

fuzz_target!(|data: &[u8]| {
    if let Some((p, msg)) = parse::parse(data, "gw.test") {
        let _ = classify::classify("a@b.example", &msg);
        let _ = extract::extract_message(&msg);
        assert!(p.message_id.starts_with('<'));
    }
});
