//! Removing terminal escape sequences from console text.
//!
//! Covers what consoles really send: CSI (`ESC [ … final`, colours, cursor
//! moves, bracketed paste `ESC[?2004h`), OSC (`ESC ] … BEL|ESC \\`, window
//! titles), DCS/SOS/PM/APC strings, two- and three-byte escapes (`ESC ( B`),
//! bells and backspaces. Other control characters are rare on consoles and
//! pass through: the fast path only stops at ESC, BEL and BS (via `memchr3`).
//! The state survives chunk boundaries, so a sequence split across reads is
//! still removed whole.

/// Longest string sequence (OSC, DCS…) we swallow before deciding it was noise.
const MAX_STRING_SEQUENCE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    Escape,
    Intermediate,
    Csi,
    /// Inside OSC (ends at BEL or ST) or DCS/SOS/PM/APC (ends at ST).
    String {
        osc: bool,
    },
    /// Saw ESC inside a string: `\` completes ST.
    StringEscape {
        osc: bool,
    },
}

/// A streaming filter that drops escape sequences and control noise.
#[derive(Debug, Default)]
pub struct EscapeStripper {
    state: State,
    string_len: usize,
}

impl EscapeStripper {
    /// A stripper in the ground state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `text` without its escape sequences to `out`.
    pub fn strip(&mut self, text: &str, out: &mut String) {
        let mut rest = text;
        while !rest.is_empty() {
            if self.state == State::Ground {
                // Fast path: copy everything up to the next control byte.
                match memchr::memchr3(0x1b, 0x07, 0x08, rest.as_bytes()) {
                    None => {
                        push_printable(rest, out);
                        return;
                    }
                    Some(i) => {
                        push_printable(&rest[..i], out);
                        rest = &rest[i..];
                    }
                }
                // The commonest sequence, a CSI whole in this text (colours
                // come every ~150 bytes of a boot log), skipped in one step:
                // the state machine's three steps for it (ESC, `[`, the final
                // byte, each a character decoded and matched) took a third
                // of the stripping.
                if let Some(after) = whole_csi_len(rest.as_bytes()) {
                    rest = &rest[after..];
                    continue;
                }
            }
            if self.state == State::Csi {
                // A CSI's parameters and intermediates (colours: `ESC[0;1;39m`)
                // are skipped at once, up to its final byte or an ESC; both are
                // ASCII, so the cut is a character boundary.
                match rest.bytes().position(ends_csi_parameters) {
                    None => return,
                    Some(i) => rest = &rest[i..],
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            rest = &rest[c.len_utf8()..];
            self.step(c, out);
        }
    }

    fn step(&mut self, c: char, out: &mut String) {
        self.state = match (self.state, c) {
            (State::Ground, '\x1b') => State::Escape,
            (State::Ground, c) => {
                if !matches!(c, '\x07' | '\x08') {
                    out.push(c);
                }
                State::Ground
            }
            (State::Escape, '[') => State::Csi,
            (State::Escape, ']') => self.enter_string(true),
            (State::Escape, 'P' | 'X' | '^' | '_') => self.enter_string(false),
            (State::Escape, '\x20'..='\x2f') => State::Intermediate,
            (State::Escape, '\x1b') => State::Escape,
            (State::Escape, _) => State::Ground,
            (State::Intermediate, '\x20'..='\x2f') => State::Intermediate,
            (State::Intermediate, _) => State::Ground,
            (State::Csi, '\x40'..='\x7e') => State::Ground,
            (State::Csi, '\x1b') => State::Escape,
            (State::Csi, _) => State::Csi,
            (State::String { osc: true }, '\x07') => State::Ground,
            (State::String { osc }, '\x1b') => State::StringEscape { osc },
            (State::String { osc }, _) => {
                self.string_len += 1;
                if self.string_len > MAX_STRING_SEQUENCE {
                    State::Ground
                } else {
                    State::String { osc }
                }
            }
            (State::StringEscape { .. }, '\\') => State::Ground,
            (State::StringEscape { osc }, _) => State::String { osc },
        };
    }

    fn enter_string(&mut self, osc: bool) -> State {
        self.string_len = 0;
        State::String { osc }
    }
}

/// The length of the CSI `ESC [ params… final` that `bytes` starts with, if
/// it ends within `bytes` (a CSI cut by an ESC, or by the chunk's end, is
/// left to the state machine). The final byte is ASCII, so the length ends
/// on a character boundary.
fn whole_csi_len(bytes: &[u8]) -> Option<usize> {
    let params = bytes.strip_prefix(b"\x1b[")?;
    let end = params.iter().copied().position(ends_csi_parameters)?;
    (params[end] != 0x1b).then_some(2 + end + 1)
}

/// A CSI's final byte, or an ESC that cuts it short.
fn ends_csi_parameters(b: u8) -> bool {
    (0x40..=0x7e).contains(&b) || b == 0x1b
}

fn push_printable(s: &str, out: &mut String) {
    out.push_str(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_in_pieces(text: &str, piece: usize) -> String {
        let mut st = EscapeStripper::new();
        let mut out = String::new();
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(piece) {
            st.strip(&chunk.iter().collect::<String>(), &mut out);
        }
        out
    }

    #[test]
    fn removes_prompt_sequences_even_when_split() {
        let raw = "\x1b[?2004hec2-user@lab:~$ \x1b[?2004l\r\n\x1b]0;title\x07\x1b[01;32mgreen\x1b[0m \x1b(Bdone\x1bP1$r\x1b\\!";
        for piece in 1..8 {
            assert_eq!(
                strip_in_pieces(raw, piece),
                "ec2-user@lab:~$ \r\ngreen done!",
                "piece {piece}"
            );
        }
    }

    #[test]
    fn keeps_tabs_newlines_and_drops_bells() {
        assert_eq!(strip_in_pieces("a\tb\x07c\x08\r\n", 100), "a\tbc\r\n");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever a console sends, cut anywhere: no ESC reaches the
            /// patterns, and the cuts do not change the result. (8-bit C1
            /// controls pass through, as the module doc says.)
            #[test]
            fn no_escape_survives_and_cuts_do_not_matter(
                text in "(\u{1b}|\u{9b}|\\[|\\]|[0-9;?]|[ -~]|\u{7}|\r|\n|é|\u{9c}){0,120}",
                cuts in proptest::collection::vec(0usize..30, 0..8),
            ) {
                let mut whole = String::new();
                EscapeStripper::new().strip(&text, &mut whole);
                let mut s = EscapeStripper::new();
                let mut out = String::new();
                let mut rest = text.as_str();
                for cut in cuts {
                    let at = crate::text::floor_char_boundary(rest, cut.min(rest.len()));
                    s.strip(&rest[..at], &mut out);
                    rest = &rest[at..];
                }
                s.strip(rest, &mut out);
                prop_assert!(!out.contains('\u{1b}'), "{out:?}");
                prop_assert_eq!(out, whole);
            }

            /// The fast paths (runs of plain text, a whole CSI) are only
            /// shortcuts: the state machine fed one character at a time
            /// strips exactly the same.
            #[test]
            fn the_fast_paths_strip_as_the_state_machine_does(
                text in "(\u{1b}|\\[|\\]|[0-9;?]|[ -~]|\u{7}|\u{8}|\r|\n|é|P|\\\\){0,160}",
            ) {
                let mut fast = String::new();
                EscapeStripper::new().strip(&text, &mut fast);
                let mut machine = EscapeStripper::new();
                let mut slow = String::new();
                for c in text.chars() {
                    machine.step(c, &mut slow);
                }
                prop_assert_eq!(fast, slow);
            }
        }
    }
}
