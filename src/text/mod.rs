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

use std::borrow::Cow;

mod ansi;
mod scrub;
mod utf8;

pub use ansi::EscapeStripper;
pub use scrub::{scrub_credentials, scrub_in_place, Scrubber, REDACTED, SHORT_SECRET};
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

/// `s` safe to print on an operator's terminal: every control character
/// (ESC, CR, BEL, C1 controls…) written as a visible escape (`\u{1b}`), so
/// text from input (a target list, a summary file) can neither move the
/// cursor, clear the screen nor set the window title.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape_controls(s, |_| true)
}

/// [`printable`] for a message of several lines: newlines and tabs stay.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape_controls(s, |c| !matches!(c, '\n' | '\t'))
}

/// Characters that reorder or hide text without being control characters
/// (Unicode's `Bidi_Control` and the zero-width ones): `x \u{202e}gnp.exe`
/// shows as `x exe.png` (second review of issue 32).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
    )
}

fn escape_controls(s: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    let hidden = |c: char| (c.is_control() || is_invisible_format(c)) && escaped(c);
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_shows_control_characters_as_escapes() {
        assert_eq!(printable("i-0abc"), "i-0abc");
        assert_eq!(
            printable("exec:x\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{9b}"),
            "exec:x\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\r\\u{9b}"
        );
        assert_eq!(printable_lines("a\n\tb\u{1b}c"), "a\n\tb\\u{1b}c");
        // Bidi and zero-width characters reorder or hide what is shown.
        assert_eq!(
            printable("x \u{202e}gnp.exe \u{2066}h\u{2069}\u{200b}z"),
            "x \\u{202e}gnp.exe \\u{2066}h\\u{2069}\\u{200b}z"
        );
    }

    #[test]
    fn tail_takes_characters_not_bytes() {
        assert_eq!(tail_chars("héllo", 4), "éllo");
        assert_eq!(tail_chars("ab", 10), "ab");
        assert_eq!(tail_chars("ab", 0), "");
        assert_eq!(floor_char_boundary("é", 1), 0);
    }
}
