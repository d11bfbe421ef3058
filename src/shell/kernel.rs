//! Separating kernel (printk) lines from what programs print on a console.
//!
//! On a serial console the kernel writes its messages straight to the UART,
//! between (or in the middle of) the lines a shell prints:
//! `abc[   53.501291] cloud-init[2179]: …\r\ndef\r\n`. Matching a prompt or a
//! marker on such text fails, which is the complaint users of every console
//! framework share. [`ConsoleText`] is a streaming filter that removes each
//! kernel line (from its `[  seconds.micros]` header to the end of its line)
//! wherever it starts, keeps it for the caller, and normalises line endings
//! (`\r\n`, `\r\r\n` → `\n`). Text that may still turn out to be a kernel line
//! (a header cut by a read boundary, a header whose line has not ended yet) is
//! held back until it is decided, so nothing downstream ever sees half of one.
//!
//! The header is the kernel's own format, `[%5lu.%06lu]`: seconds padded to at
//! least five columns and exactly six digits of microseconds. Programs rarely
//! print exactly that; `dmesg` does, so its output lands in the kernel lines
//! (use `dmesg --notime` or `journalctl -k` through `run`).

use std::sync::OnceLock;

use regex::Regex;

/// Longest kernel line kept whole for the caller; longer ones are cut.
const MAX_KERNEL_LINE: usize = 4096;

fn header() -> &'static Regex {
    static HEADER: OnceLock<Regex> = OnceLock::new();
    HEADER.get_or_init(|| {
        Regex::new(r"\[(?: {4}\d| {3}\d{2}| {2}\d{3}| \d{4}|\d{5,10})\.\d{6}\]")
            .expect("the kernel header regex is valid")
    })
}

/// A streaming splitter of console text into program text and kernel lines.
#[derive(Debug, Default)]
pub struct ConsoleText {
    /// Text not decided yet: starts at a possible kernel header.
    pending: String,
    /// Carriage returns held back until we know whether a `\n` follows.
    held_crs: usize,
    /// Program text, line endings normalised, not yet taken by the caller.
    clean: String,
    /// Kernel lines removed so far, without their line ending.
    kernel_lines: Vec<String>,
}

impl ConsoleText {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk of (escape-stripped) console text.
    pub fn push(&mut self, chunk: &str) {
        self.pending.push_str(chunk);
        let pending = std::mem::take(&mut self.pending);
        let mut pos = 0;
        while let Some(m) = header().find_at(&pending, pos) {
            self.emit(&pending[pos..m.start()]);
            match pending[m.end()..].find('\n') {
                Some(nl) => {
                    let end = m.end() + nl;
                    self.keep_kernel_line(&pending[m.start()..end]);
                    pos = end + 1;
                }
                None => {
                    // The kernel line has not ended yet: wait for its newline.
                    self.pending = pending[m.start()..].to_string();
                    return;
                }
            }
        }
        let rest = &pending[pos..];
        let hold = partial_header_start(rest).unwrap_or(rest.len());
        self.emit(&rest[..hold]);
        self.pending = rest[hold..].to_string();
    }

    /// The program text received so far and not yet taken.
    pub fn clean(&self) -> &str {
        &self.clean
    }

    /// Takes (removes and returns) the first `n` bytes of program text.
    pub fn take_clean(&mut self, n: usize) -> String {
        let rest = self.clean.split_off(n);
        std::mem::replace(&mut self.clean, rest)
    }

    /// Drops all program text received so far.
    pub fn clear_clean(&mut self) {
        self.clean.clear();
    }

    /// Takes the kernel lines removed so far.
    pub fn take_kernel_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.kernel_lines)
    }

    /// Keeps only the last `max` bytes (about) of program text.
    pub fn keep_tail(&mut self, max: usize) {
        if self.clean.len() > max {
            let cut = crate::text::floor_char_boundary(&self.clean, self.clean.len() - max / 2);
            self.clean.drain(..cut);
        }
    }

    fn keep_kernel_line(&mut self, line: &str) {
        let line = line.trim_end_matches('\r');
        let cut = crate::text::floor_char_boundary(line, MAX_KERNEL_LINE);
        self.kernel_lines.push(line[..cut].to_string());
        if self.kernel_lines.len() > 10_000 {
            self.kernel_lines.drain(..5_000);
        }
    }

    /// Appends program text, turning `\r…\r\n` into `\n`.
    fn emit(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '\r' => self.held_crs += 1,
                '\n' => {
                    self.held_crs = 0;
                    self.clean.push('\n');
                }
                c => {
                    for _ in 0..std::mem::take(&mut self.held_crs) {
                        self.clean.push('\r');
                    }
                    self.clean.push(c);
                }
            }
        }
    }
}

/// Where `text` ends with something that could still grow into a kernel
/// header (`[`, `[  12`, `[  12.3456`), if it does.
fn partial_header_start(text: &str) -> Option<usize> {
    // The window may start inside a multi-byte character (`…` in a boot
    // message): step back to its first byte.
    let window = crate::text::floor_char_boundary(text, text.len().saturating_sub(24));
    let start = text[window..].rfind('[')? + window;
    let after = &text[start + 1..];
    let spaces = after.len() - after.trim_start_matches(' ').len();
    let rest = &after[spaces..];
    let (secs, micros) = match rest.split_once('.') {
        Some((s, m)) => (s, Some(m)),
        None => (rest, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok = spaces <= 4
        && secs.len() <= 10
        && digits(secs)
        && micros.is_none_or(|m| m.len() <= 6 && digits(m) && !secs.is_empty());
    ok.then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in_pieces(text: &str, piece: usize) -> (String, Vec<String>) {
        let mut f = ConsoleText::new();
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(piece) {
            f.push(&chunk.iter().collect::<String>());
        }
        (f.clean().to_string(), f.take_kernel_lines())
    }

    #[test]
    fn multi_byte_characters_near_the_end_never_split() {
        // Found on the lab VM: systemd prints `…` in emergency mode.
        let raw = "Welcome\r\n[  OK  ] \u{2026}Local Integrity Protection\r\n\u{2026}xx";
        for cut in 0..=raw.len() {
            if raw.is_char_boundary(cut) {
                let _ = partial_header_start(&raw[..cut]);
            }
        }
        for piece in 1..30 {
            let (clean, _) = run_in_pieces(raw, piece);
            assert!(clean.contains("\u{2026}Local Integrity"), "{clean:?}");
        }
    }

    #[test]
    fn kernel_lines_are_removed_wherever_they_start_even_split() {
        let raw = "host login: [   53.501291] cloud-init[2179]: done\r\n\
                   abc[    1.000000] eth0: link up\r\ndef\r\n[12345.123456] x\r\n$ ";
        for piece in 1..12 {
            let (clean, kernel) = run_in_pieces(raw, piece);
            assert_eq!(clean, "host login: abcdef\n$ ", "piece {piece}");
            assert_eq!(
                kernel,
                vec![
                    "[   53.501291] cloud-init[2179]: done",
                    "[    1.000000] eth0: link up",
                    "[12345.123456] x"
                ],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn ordinary_brackets_and_lone_carriage_returns_survive() {
        let raw = "[1.5] not kernel\r\n[ 12.34] nor this\r\nprogress 10%\rprogress 99%\r\r\n[x]";
        let (clean, kernel) = run_in_pieces(raw, 3);
        assert_eq!(
            clean,
            "[1.5] not kernel\n[ 12.34] nor this\nprogress 10%\rprogress 99%\n[x]"
        );
        assert!(kernel.is_empty());
    }

    #[test]
    fn a_possible_header_at_the_end_is_held_back_until_decided() {
        let mut f = ConsoleText::new();
        f.push("login: [   53.50");
        assert_eq!(f.clean(), "login: ");
        f.push("1291] still printing");
        assert_eq!(f.clean(), "login: ");
        f.push("\r\n");
        assert_eq!(f.clean(), "login: ");
        assert_eq!(f.take_kernel_lines().len(), 1);
        f.push("[ab");
        assert_eq!(f.clean(), "login: [ab");
    }
}
