//! Text: turning the raw bytes a console sends into text people and patterns can read.
//!
//! Consoles send bytes, not text: UTF-8 split across reads, invalid bytes,
//! colour codes, bracketed-paste switches, window titles. Three small streaming
//! pieces handle that, each keeping its state across chunk boundaries:
//!
//! - [`Utf8Decoder`]: bytes → `String`, invalid bytes become U+FFFD, a sequence
//!   split across reads is completed by the next one (as asciinema does);
//! - [`EscapeStripper`]: removes terminal escape sequences (CSI, OSC, DCS…)
//!   and stray control characters, so patterns see what a person sees;
//! - [`Scrubber`]: replaces every known secret with `<redacted>`, holding back
//!   only a tail that could still become a secret.

mod ansi;
mod scrub;
mod utf8;

pub use ansi::EscapeStripper;
pub use scrub::{scrub_credentials, scrub_in_place, Scrubber, REDACTED};
pub use utf8::Utf8Decoder;

/// Returns the largest char boundary of `s` that is `<= index`.
pub fn floor_char_boundary(s: &str, index: usize) -> usize {
    if index >= s.len() {
        return s.len();
    }
    let mut i = index;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The last `max_chars` characters of `s` (for error messages).
pub fn tail_chars(s: &str, max_chars: usize) -> &str {
    match s.char_indices().rev().nth(max_chars.saturating_sub(1)) {
        Some((i, _)) if max_chars > 0 => &s[i..],
        _ if max_chars == 0 => "",
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_characters_not_bytes() {
        assert_eq!(tail_chars("héllo", 4), "éllo");
        assert_eq!(tail_chars("ab", 10), "ab");
        assert_eq!(tail_chars("ab", 0), "");
        assert_eq!(floor_char_boundary("é", 1), 0);
    }
}
