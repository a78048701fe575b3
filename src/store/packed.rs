//! Whole mails as the store keeps them: compressed by the gateway.
//!
//! Every byte of a reply and of its technicians' copies goes through the
//! committer's serial section. SQLite has no compression, so there each
//! byte was copied into pages, checksummed into the WAL, written, synced,
//! and written again by the checkpoint. PostgreSQL compresses a large value
//! itself (TOAST, lz4 since migration 0005), but in the backend of the
//! committer's one connection, which every reply waits on. Mail text
//! compresses about 2× with lz4, so the session that received (or composed)
//! a mail compresses it before the commit, outside the serial section, and
//! a reader uncompresses it. On PostgreSQL the packed columns are stored
//! without TOAST compression since migration 0008, so the backend does not
//! try again.
//!
//! The codec is stored beside the bytes (`raw_codec`): NULL for the bytes
//! as they are (rows written before migration 0007 on SQLite or 0008 on
//! PostgreSQL, and mail that does not shrink), `lz4` for an lz4 block with
//! its length in front (`lz4_flex`'s size-prepended block format).

use super::StoreError;

/// The `raw_codec` of an lz4 block with its length in front.
pub const LZ4: &str = "lz4";

/// Compressed bytes are kept only when they save at least this share
/// (1/8) of the mail: base64 attachments and already compressed content
/// hardly shrink, and are then read back without a decoding step.
const MIN_SAVING_DIVISOR: usize = 8;

/// lz4 cannot expand input more than about 255-fold; a stored length past
/// that is a damaged row, refused before anything is allocated for it.
const MAX_RATIO: usize = 255;

/// The bytes to store for `raw`, when they are not `raw` itself: Some(lz4
/// block) when that is worth it, else None.
pub fn pack(raw: &[u8]) -> Option<Vec<u8>> {
    let packed = lz4_flex::compress_prepend_size(raw);
    (packed.len() <= raw.len() - raw.len() / MIN_SAVING_DIVISOR).then_some(packed)
}

/// The `raw_codec` of a row whose bytes [`pack`] did or did not compress.
fn codec(packed: bool) -> Option<&'static str> {
    packed.then_some(LZ4)
}

/// The bytes a row holds for `raw` and their codec, given what [`pack`]
/// made of it.
pub fn as_stored<'a>(raw: &'a [u8], packed: Option<&'a [u8]>) -> (&'a [u8], Option<&'static str>) {
    (packed.unwrap_or(raw), codec(packed.is_some()))
}

/// [`pack`] for a row that owns its bytes: the packed form, or a copy of
/// `raw`, with the codec.
pub fn to_stored(raw: &[u8]) -> (Vec<u8>, Option<&'static str>) {
    let packed = pack(raw);
    let codec = codec(packed.is_some());
    (packed.unwrap_or_else(|| raw.to_vec()), codec)
}

/// The mail as it was received or composed, from its stored bytes.
pub fn unpack(stored: Vec<u8>, codec: Option<&str>) -> Result<Vec<u8>, StoreError> {
    match codec {
        None => Ok(stored),
        Some(LZ4) => {
            let Some(len) = stored.get(..4) else {
                return Err(damaged("an lz4 block shorter than its length"));
            };
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len > (stored.len() - 4).saturating_mul(MAX_RATIO) {
                return Err(damaged("an lz4 block whose length cannot be right"));
            }
            lz4_flex::decompress_size_prepended(&stored)
                .map_err(|e| damaged(&format!("an lz4 block that does not decode: {e}")))
        }
        Some(other) => Err(damaged(&format!("an unknown raw_codec {other:?}"))),
    }
}

fn damaged(what: &str) -> StoreError {
    StoreError::Decode(format!("stored mail: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Vec<u8> {
        let mut m = b"From: Ana <ana@cliente.example>\r\nSubject: RES: Solicita\xc3\xa7\xc3\xa3o n\xc2\xba 42\r\n\r\n".to_vec();
        for i in 0..200 {
            m.extend_from_slice(format!("> linha {i} da mensagem anterior, citada\r\n").as_bytes());
        }
        m
    }

    #[test]
    fn mail_text_is_stored_compressed_and_read_back_exactly() {
        let raw = mail();
        let packed = pack(&raw).expect("mail text shrinks");
        assert!(
            packed.len() < raw.len() / 2,
            "{} of {}",
            packed.len(),
            raw.len()
        );
        assert_eq!(unpack(packed, Some(LZ4)).unwrap(), raw);
    }

    #[test]
    fn bytes_that_do_not_shrink_are_stored_as_they_are() {
        // A pseudo-random run, as a base64 attachment's decoded bytes are.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(pack(&noise), None);
        assert_eq!(pack(b""), None);
        assert_eq!(unpack(noise.clone(), None).unwrap(), noise);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic_or_a_huge_allocation() {
        let mut packed = pack(&mail()).unwrap();
        for bad in [
            vec![1, 2],
            // Claims 4 GiB from a few bytes.
            vec![0xff, 0xff, 0xff, 0xff, 0x10, 0x41],
        ] {
            assert!(matches!(unpack(bad, Some(LZ4)), Err(StoreError::Decode(_))));
        }
        packed.truncate(packed.len() / 2);
        assert!(matches!(
            unpack(packed, Some(LZ4)),
            Err(StoreError::Decode(_))
        ));
        assert!(matches!(
            unpack(b"x".to_vec(), Some("zstd")),
            Err(StoreError::Decode(_))
        ));
    }
}
