//! Incremental UTF-8 decoding with replacement, across chunk boundaries.

/// Decodes a byte stream chunk by chunk.
///
/// Invalid bytes become U+FFFD; an incomplete sequence at the end of a chunk
/// is kept (at most 3 bytes) and completed by the next chunk.
#[derive(Debug, Default)]
pub struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// A decoder with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes`, appending the text to `out`.
    pub fn decode(&mut self, bytes: &[u8], out: &mut String) {
        self.decode_with(bytes, |text| out.push_str(text));
    }

    /// Decodes `bytes`, handing the text to `each` in pieces, in order.
    /// Valid runs are borrowed from `bytes`, not copied: the session strips
    /// escapes straight from the read buffer (one copy of the console's
    /// text per read instead of two).
    pub(crate) fn decode_with(&mut self, bytes: &[u8], mut each: impl FnMut(&str)) {
        if self.pending.is_empty() {
            self.decode_all(bytes, &mut each);
        } else {
            // Rare (a character split across reads): join and decode together.
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(bytes);
            self.decode_all(&joined, &mut each);
        }
    }

    /// Flushes an incomplete trailing sequence as U+FFFD (at end of stream).
    pub fn finish(&mut self, out: &mut String) {
        if !self.pending.is_empty() {
            self.pending.clear();
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }

    fn decode_all(&mut self, mut input: &[u8], each: &mut impl FnMut(&str)) {
        loop {
            // simdutf8's `compat` reports errors as std's from_utf8 does
            // (where the valid part ends, how long the bad piece is).
            match simdutf8::compat::from_utf8(input) {
                Ok(s) => {
                    each(s);
                    return;
                }
                Err(e) => {
                    let (valid, rest) = input.split_at(e.valid_up_to());
                    each(simdutf8::basic::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            each("\u{fffd}");
                            input = &rest[n..];
                        }
                        None => {
                            self.pending.extend_from_slice(rest);
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(bytes: &[u8], piece: usize) -> String {
        let mut d = Utf8Decoder::new();
        let mut out = String::new();
        for chunk in bytes.chunks(piece) {
            d.decode(chunk, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn split_sequences_decode_whole() {
        let text = "café ☕ 𝄞 end";
        for piece in 1..6 {
            assert_eq!(
                decode_in_pieces(text.as_bytes(), piece),
                text,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn invalid_bytes_become_replacement() {
        let bytes = b"ok\xffthen\xc3(\xe2\x82";
        for piece in 1..5 {
            assert_eq!(
                decode_in_pieces(bytes, piece),
                "ok\u{fffd}then\u{fffd}(\u{fffd}",
                "piece {piece}"
            );
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// `bytes` decoded in pieces cut at `cuts` (each from where the last
        /// ended), then the rest, then the end of the stream.
        fn decode_at_cuts(bytes: &[u8], cuts: &[usize]) -> String {
            let mut d = Utf8Decoder::new();
            let mut out = String::new();
            let mut rest = bytes;
            for &cut in cuts {
                let at = cut.min(rest.len());
                d.decode(&rest[..at], &mut out);
                rest = &rest[at..];
            }
            d.decode(rest, &mut out);
            d.finish(&mut out);
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Mostly text with a stray byte now and then, cut anywhere, in
            /// runs long enough for the validator's wide (64-byte) paths: the
            /// same text as `String::from_utf8_lossy` makes of it whole.
            #[test]
            fn long_text_with_stray_bytes_decodes_as_std_does(
                pieces in proptest::collection::vec(prop_oneof![
                    4 => "[a-z ]{1,90}".prop_map(String::into_bytes),
                    2 => "[é─│☕𝄞]{1,30}".prop_map(String::into_bytes),
                    1 => proptest::collection::vec(any::<u8>(), 1..4),
                ], 0..20),
                cuts in proptest::collection::vec(0usize..300, 0..6),
            ) {
                let bytes = pieces.concat();
                prop_assert_eq!(
                    decode_at_cuts(&bytes, &cuts),
                    String::from_utf8_lossy(&bytes).into_owned()
                );
            }

            /// Any bytes, cut anywhere: the same text as decoding them whole,
            /// which is what `String::from_utf8_lossy` makes of them.
            #[test]
            fn cuts_never_change_the_text(
                bytes in proptest::collection::vec(any::<u8>(), 0..200),
                cuts in proptest::collection::vec(0usize..50, 0..10),
            ) {
                prop_assert_eq!(
                    decode_at_cuts(&bytes, &cuts),
                    String::from_utf8_lossy(&bytes).into_owned()
                );
            }
        }
    }
}
