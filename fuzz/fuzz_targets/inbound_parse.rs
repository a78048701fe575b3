//! Arbitrary raw messages through what the inbound path reads of them:
//! parse, classify, reply extraction, and the ticket ID in the subject (the
//! built-in fallback matcher and one derived from a typical template).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mensageria::inbound::subject::SubjectMatcher;
use mensageria::inbound::{classify, extract, parse};

static TEMPLATE: LazyLock<SubjectMatcher> = LazyLock::new(|| {
    SubjectMatcher::from_template("Solicitação nº ${IDSOLICITACAOSERVICO} - ${SERVICO}")
        .expect("constant template")
});

fuzz_target!(|data: &[u8]| {
    if let Some((p, msg)) = parse::parse(data, "gw.test") {
        let _ = classify::classify("a@b.example", &msg);
        let _ = extract::extract_message(&msg);
        assert!(p.message_id.starts_with('<'));
        for m in [&SubjectMatcher::fallback(), &*TEMPLATE] {
            if let Some(id) = m.find(&p.subject) {
                assert!(id >= 0, "a ticket ID is never negative: {id}");
            }
        }
    }
});
