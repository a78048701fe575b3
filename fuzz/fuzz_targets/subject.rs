//! Arbitrary subjects and subject templates through the ticket matcher.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mensageria::inbound::subject::{SubjectMatcher, strip_reply_prefixes};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (template, subject) = text
        .split_once('\n')
        .unwrap_or(("Solicitação nº ${IDSOLICITACAOSERVICO}", &text));
    let _ = strip_reply_prefixes(subject);
    if let Ok(m) = SubjectMatcher::from_template(template) {
        if let Some(id) = m.find(subject) {
            assert!(id >= 0);
        }
    }
    let _ = SubjectMatcher::fallback().find(subject);
});
