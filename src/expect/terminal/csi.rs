//! A CSI sequence (`ESC [` …), the kind that moves the cursor and edits
//! the screen, as the screen acts on it: whether it is a private one (`?`),
//! its numeric parameters and its final byte.
//!
//! The vte parser hands one over through its callback once it has taken
//! the sequence a byte at a time through its state machine; in a
//! full-screen program's redraw, mostly cursor addressing and colours
//! between short runs of text, that was the most of the screen's time. The
//! common form (`ESC [`, an optional `?`, digits and `;`, a final byte),
//! whole in one feed, is therefore parsed here straight from the bytes,
//! with vte's rules (a value stops growing at 65535; an empty parameter is
//! 0). Any other form is vte's: intermediates, subparameters, controls
//! inside, a sequence cut by the feed's end, more than `QUICK_PARAMS`
//! parameters (vte has rules of its own past 32). The property test against
//! vt100 covers both roads.

/// As many parameters as vte keeps.
const MAX_PARAMS: usize = 32;

/// The most parameters the quick parse takes; longer sequences are rare.
const QUICK_PARAMS: usize = 16;

/// A CSI sequence that may act on the screen. The quick road keeps one and
/// parses into it again and again (zeroing and moving a fresh one for each
/// of a redraw's many sequences showed in the profile); vte's road, rare,
/// fills a new one.
pub(super) struct Csi {
    /// `ESC [ ?`: DEC private modes, and the selective erases (taken as
    /// plain ones).
    pub(super) private: bool,
    /// Each parameter's first number.
    params: [u16; MAX_PARAMS],
    /// Bit `i`: parameter `i` is a number alone, without subparameters
    /// (`6`, not `6:1`; a mode is only ever a number alone).
    alone: u32,
    count: usize,
    /// The final byte, which names the action.
    pub(super) action: u8,
}

impl Csi {
    pub(super) fn new() -> Csi {
        Csi {
            private: false,
            params: [0; MAX_PARAMS],
            alone: 0,
            count: 0,
            action: 0,
        }
    }

    fn start(&mut self, private: bool) {
        self.private = private;
        self.alone = 0;
        self.count = 0;
    }

    /// Parses the sequence at the start of `bytes` and says its length,
    /// when it has the common form and is whole.
    pub(super) fn parse(&mut self, bytes: &[u8]) -> Option<usize> {
        let rest = bytes.strip_prefix(b"\x1b[")?;
        let params = rest.strip_prefix(b"?");
        self.start(params.is_some());
        let params = params.unwrap_or(rest);
        let mut value = 0u16;
        for (at, &byte) in params.iter().enumerate() {
            match byte {
                b'0'..=b'9' => {
                    value = value
                        .saturating_mul(10)
                        .saturating_add(u16::from(byte - b'0'));
                }
                // Room is left for the last parameter, which the final
                // byte pushes; one `;` more is not the common form.
                b';' if self.count + 1 < QUICK_PARAMS => {
                    self.push(value, true);
                    value = 0;
                }
                0x40..=0x7e => {
                    self.push(value, true);
                    self.action = byte;
                    return Some(bytes.len() - params.len() + at + 1);
                }
                _ => return None,
            }
        }
        None
    }

    /// Takes what vte parsed; `false` when its first intermediate is not
    /// `?` (no sequence with one changes the screen; as in vt100, only the
    /// first counts).
    pub(super) fn take_vte(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        action: char,
    ) -> bool {
        match intermediates.first() {
            None => self.start(false),
            Some(b'?') => self.start(true),
            Some(_) => return false,
        }
        for param in params.iter().take(MAX_PARAMS) {
            self.push(param.first().copied().unwrap_or(0), param.len() == 1);
        }
        // vte dispatches on a final byte, 0x40 to 0x7e.
        self.action = u8::try_from(action).unwrap_or(0);
        true
    }

    fn push(&mut self, first: u16, alone: bool) {
        self.params[self.count] = first;
        self.alone |= u32::from(alone) << self.count;
        self.count += 1;
    }

    /// Parameter `at` (from 0); absent or 0 means `default`.
    pub(super) fn param(&self, at: usize, default: u16) -> u16 {
        match self.params[..self.count].get(at) {
            None | Some(0) => default,
            Some(&value) => value,
        }
    }

    /// The parameters that are a number alone: the modes DECSET and DECRST
    /// name.
    pub(super) fn modes(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.count)
            .filter(|at| self.alone & (1 << at) != 0)
            .map(|at| self.params[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_form_is_parsed_as_vte_would() {
        let mut csi = Csi::new();
        let len = csi.parse(b"\x1b[;99999;7Hrest").unwrap();
        assert_eq!((len, csi.action, csi.private), (11, b'H', false));
        assert_eq!([0, 1, 2, 3].map(|at| csi.param(at, 1)), [1, 65535, 7, 1]);
        let len = csi.parse(b"\x1b[?1049h").unwrap();
        assert_eq!((len, csi.private), (8, true));
        assert_eq!(csi.modes().collect::<Vec<_>>(), [1049]);
    }

    #[test]
    fn other_forms_are_left_to_vte() {
        for bytes in [
            &b"\x1b[1:2m"[..],
            b"\x1b[>c",
            b"\x1b[ q",
            b"\x1b[1?h",
            b"\x1b[1\n2H",
            b"\x1b[12",
            b"\x1b]0;t\x07",
            b"\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17m",
        ] {
            assert!(Csi::new().parse(bytes).is_none(), "{bytes:?}");
        }
        assert!(Csi::new()
            .parse(b"\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16m")
            .is_some());
    }
}
