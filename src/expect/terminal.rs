//! A virtual terminal fed with the console's bytes, for programs that draw
//! a screen rather than write a stream: GRUB's menu and editor, dialog and
//! whiptail boxes, pagers, editors.
//!
//! Such programs move the cursor and overwrite what they drew, so the order
//! of bytes says little about what the screen shows: a stream regex cannot
//! tell which menu entry is highlighted or what an edited line now holds.
//! A [`VirtualTerminal`] keeps the screen as a terminal of the session's
//! size would show it (the `vt100` crate's parser: a well-kept VT emulator,
//! not ours), so expectations can be about the rendered rows and the cursor.
//! It only reads the bytes; the transcript stays the exact byte stream.

/// The screen a terminal would show after the bytes fed so far.
pub struct VirtualTerminal {
    parser: vt100::Parser,
}

impl VirtualTerminal {
    /// An empty screen of `columns` × `rows` (each at least 1).
    pub fn new((columns, rows): (u16, u16)) -> VirtualTerminal {
        let size =
            |n: u16| std::num::NonZeroU16::new(n.max(1)).unwrap_or(std::num::NonZeroU16::MIN);
        VirtualTerminal {
            parser: vt100::Parser::new(size(rows), size(columns), 0),
        }
    }

    /// Takes more of what the console sent.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    /// The rows as text, trailing blanks removed, joined with `\n` (so a
    /// pattern can name a row with `(?m)^…$`).
    pub fn text(&self) -> String {
        let screen = self.parser.screen();
        let (_, columns) = screen.size();
        let rows: Vec<String> = screen
            .rows(0, columns.get())
            .map(|row| row.trim_end().to_string())
            .collect();
        rows.join("\n")
    }

    /// Where the cursor is: (row, column), both from 0.
    pub fn cursor(&self) -> (u16, u16) {
        self.parser.screen().cursor_position()
    }
}

/// `text` (rows joined with `\n`) with every secret that a row break cuts
/// in two masked with `*`, one per character: a secret wrapped at the right
/// margin shows as two row ends the scrubber cannot recognise. Secrets
/// within one row are left for the scrubber.
pub(super) fn mask_across_rows(text: &str, secrets: &[String]) -> String {
    if !text.contains('\n') || secrets.is_empty() {
        return text.to_string();
    }
    // The text without row breaks, and where each of its bytes came from.
    let mut flat = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (at, c) in text.char_indices().filter(|&(_, c)| c != '\n') {
        flat.push(c);
        origin.extend((0..c.len_utf8()).map(|k| at + k));
    }
    let mut masked: Vec<(usize, usize)> = Vec::new();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for (start, _) in flat.match_indices(secret.as_str()) {
            let (from, to) = (origin[start], origin[start + secret.len() - 1] + 1);
            if text[from..to].contains('\n') {
                masked.push((from, to));
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        let hidden = c != '\n' && masked.iter().any(|&(from, to)| (from..to).contains(&at));
        out.push(if hidden { '*' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_wrapped_at_the_margin_is_masked() {
        let secrets = vec!["hunter2-pass".to_string()];
        // A 10-column screen wraps the secret after "hunter2-pa".
        let mut vt = VirtualTerminal::new((10, 3));
        vt.feed(b"hunter2-pass ok");
        let text = vt.text();
        assert_eq!(text, "hunter2-pa\nss ok\n");
        assert_eq!(mask_across_rows(&text, &secrets), "**********\n** ok\n");
        // Within one row it is the scrubber's: left as it is here.
        assert_eq!(
            mask_across_rows("a hunter2-pass\nb", &secrets),
            "a hunter2-pass\nb"
        );
    }

    #[test]
    fn what_is_drawn_where_not_in_which_order() {
        let mut vt = VirtualTerminal::new((20, 4));
        // "World" is written first, on row 3; "Hello" last, on row 1.
        vt.feed(b"\x1b[2J\x1b[3;5HWorld\x1b[1;1HHello");
        assert_eq!(vt.text(), "Hello\n\n    World\n");
        assert_eq!(vt.cursor(), (0, 5));
        // An overwrite replaces what was there.
        vt.feed(b"\x1b[3;5HEarth");
        assert_eq!(vt.text().lines().nth(2), Some("    Earth"));
    }
}
