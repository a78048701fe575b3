//! Arbitrary client bytes through the listener's line framing: no panic,
//! every line within the limit, and in DATA mode a line only ends at CRLF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mensageria::listener::framing::{Line, has_bare_line_end, mail_params, read_line};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for crlf_only in [false, true] {
            let mut r = tokio::io::BufReader::with_capacity(64, data);
            let mut line = Vec::new();
            loop {
                match read_line(&mut r, &mut line, 256, crlf_only).await {
                    Ok(Line::Eof) | Err(_) => break,
                    Ok(Line::TooLong) => assert!(line.len() <= 256),
                    Ok(Line::Complete) => {
                        assert!(line.len() <= 256);
                        if crlf_only {
                            assert!(line.ends_with(b"\r\n"));
                        }
                        let _ = mail_params(&line, 1000);
                    }
                }
            }
        }
        let _ = has_bare_line_end(data);
    });
});
