//! `~` escapes in what the user types, as `ssh` has them: `~.` leaves,
//! `~~` sends one `~`, `~B` sends a serial BREAK, `~?` lists them. An escape
//! counts only at the start of a line, so a `~` inside a command is text.

/// What `~?` shows.
pub(super) const ESCAPE_HELP: &str = "\r\nescapes (type them at the start of a line):\r\n  \
    ~.  leave the console\r\n  ~~  send a literal ~\r\n  ~B  send a serial BREAK\r\n  \
    ~?  this help\r\n";

/// What a keystroke (or a run of them) asks for, after escape processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeyAction {
    /// Bytes for the console.
    Send(Vec<u8>),
    /// `~B`: a serial BREAK.
    Break,
    /// `~?`: show the escapes.
    Help,
    /// `~.`: leave.
    Leave,
}

/// Finds `~` escapes in what the user types; an escape counts only right
/// after Enter (`\r` or `\n`) or at the very start.
#[derive(Debug, Clone)]
pub(super) struct EscapeScanner {
    at_line_start: bool,
    tilde_pending: bool,
}

impl Default for EscapeScanner {
    fn default() -> Self {
        EscapeScanner {
            at_line_start: true,
            tilde_pending: false,
        }
    }
}

impl EscapeScanner {
    /// Scans typed bytes; stops at `~.` (what follows it is dropped).
    pub(super) fn feed(&mut self, typed: &[u8]) -> Vec<KeyAction> {
        let mut actions = Vec::new();
        let mut plain = Vec::with_capacity(typed.len());
        for &byte in typed {
            let action = self.key(byte, &mut plain);
            if let Some(action) = action {
                if !plain.is_empty() {
                    actions.push(KeyAction::Send(std::mem::take(&mut plain)));
                }
                let leave = action == KeyAction::Leave;
                actions.push(action);
                if leave {
                    return actions;
                }
            }
        }
        if !plain.is_empty() {
            actions.push(KeyAction::Send(plain));
        }
        actions
    }

    /// At the end of input: a `~` still waiting for its second key is sent.
    pub(super) fn finish(&mut self) -> Option<KeyAction> {
        std::mem::take(&mut self.tilde_pending).then(|| KeyAction::Send(b"~".to_vec()))
    }

    fn key(&mut self, byte: u8, plain: &mut Vec<u8>) -> Option<KeyAction> {
        if std::mem::take(&mut self.tilde_pending) {
            match byte {
                b'.' => return Some(KeyAction::Leave),
                b'B' => return Some(KeyAction::Break),
                b'?' => return Some(KeyAction::Help),
                b'~' => {
                    plain.push(b'~');
                    self.at_line_start = false;
                    return None;
                }
                _ => plain.push(b'~'),
            }
        } else if self.at_line_start && byte == b'~' {
            self.tilde_pending = true;
            return None;
        }
        plain.push(byte);
        self.at_line_start = byte == b'\r' || byte == b'\n';
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(s: &str) -> KeyAction {
        KeyAction::Send(s.as_bytes().to_vec())
    }

    #[test]
    fn tilde_dot_at_start_or_after_enter_leaves() {
        assert_eq!(EscapeScanner::default().feed(b"~."), vec![KeyAction::Leave]);
        let mut keys = EscapeScanner::default();
        assert_eq!(
            keys.feed(b"ls\r~.junk"),
            vec![send("ls\r"), KeyAction::Leave]
        );
        let mut keys = EscapeScanner::default();
        assert_eq!(keys.feed(b"a\n"), vec![send("a\n")]);
        assert_eq!(keys.feed(b"~"), vec![]);
        assert_eq!(
            keys.feed(b"."),
            vec![KeyAction::Leave],
            "split across reads"
        );
    }

    #[test]
    fn tilde_in_mid_line_is_plain_text() {
        let mut keys = EscapeScanner::default();
        assert_eq!(keys.feed(b"cd ~.x\r"), vec![send("cd ~.x\r")]);
    }

    #[test]
    fn double_tilde_sends_one_and_other_keys_keep_the_tilde() {
        let mut keys = EscapeScanner::default();
        assert_eq!(keys.feed(b"~~.\r"), vec![send("~.\r")]);
        assert_eq!(keys.feed(b"~x"), vec![send("~x")]);
        let mut keys = EscapeScanner::default();
        assert_eq!(keys.feed(b"~\r~."), vec![send("~\r"), KeyAction::Leave]);
    }

    #[test]
    fn break_and_help_escapes() {
        let mut keys = EscapeScanner::default();
        assert_eq!(
            keys.feed(b"~Bh~?"),
            vec![KeyAction::Break, send("h~?")],
            "the key after ~B goes out at once (a SysRq command)"
        );
        let mut keys = EscapeScanner::default();
        assert_eq!(keys.feed(b"~?"), vec![KeyAction::Help]);
        assert_eq!(
            keys.feed(b"~."),
            vec![KeyAction::Leave],
            "help keeps line start"
        );
    }

    #[test]
    fn a_lone_tilde_at_end_of_input_is_sent() {
        let mut keys = EscapeScanner::default();
        assert_eq!(keys.feed(b"~"), vec![]);
        assert_eq!(keys.finish(), Some(send("~")));
        assert_eq!(keys.finish(), None);
    }
}
